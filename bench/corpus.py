"""SQS events for the benchmarks, built from the SES fixture corpus.

Every bare SES body (raw message delivery) under tests/fixtures/ses/ and derived/ that is a
bounce, complaint or delivery notification or event is a template. Record i copies template
i mod len and makes it unique: its own SES message id, its own feedback id and its own
recipient addresses (`local+r<i>@domain`), so no record replays another and no two records of
a batch contend for one address.
"""

import copy
import json
import pathlib
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "ses"
KINDS = ("Bounce", "Complaint", "Delivery")


def templates():
    found = []
    for path in sorted(list(FIXTURES.glob("*.json")) + list((FIXTURES / "derived").glob("*.json"))):
        if not path.name.startswith(("ses-notification-", "ses-event-")):
            continue
        body = json.loads(path.read_text())
        kind = body.get("notificationType") or body.get("eventType")
        if kind in KINDS and "mail" in body:
            found.append(body)
    if not found:
        raise SystemExit(f"no SES notification fixtures under {FIXTURES}")
    return found


def recipients(body):
    addresses = set(body["mail"].get("destination") or [])
    for r in (body.get("bounce") or {}).get("bouncedRecipients") or []:
        addresses.add(r["emailAddress"])
    for r in (body.get("complaint") or {}).get("complainedRecipients") or []:
        addresses.add(r["emailAddress"])
    addresses.update((body.get("delivery") or {}).get("recipients") or [])
    return [a for a in addresses if "@" in a]


def bodies(count, tag=None, offset=0):
    """`count` unique SQS bodies (strings), numbered from `offset`."""
    tag = tag or str(int(time.time() * 1000))
    out = []
    base = templates()
    for i in range(offset, offset + count):
        body = copy.deepcopy(base[i % len(base)])
        body["mail"]["messageId"] = f"bench-{tag}-{i:06d}"
        for part in ("bounce", "complaint"):
            if part in body:
                body[part]["feedbackId"] = f"bench-feedback-{tag}-{i:06d}"
        text = json.dumps(body)
        for address in sorted(recipients(body), key=len, reverse=True):
            local, domain = address.rsplit("@", 1)
            text = text.replace(f'"{address}"', f'"{local}+r{i}@{domain}"')
            text = text.replace(f"<{address}>", f"<{local}+r{i}@{domain}>")
        out.append(text)
    return out


def sqs_event(batch, start=0):
    """An SQS event (as Lambda delivers it) carrying the given bodies."""
    return {
        "Records": [
            {
                "messageId": f"00000000-0000-4000-8000-{start + i:012d}",
                "receiptHandle": f"bench-{start + i}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": "00000000000000000000000000000000",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-central-1:000000000000:ses-feedback",
                "awsRegion": "eu-central-1",
            }
            for i, body in enumerate(batch)
        ]
    }


def create_rust_table(client, name):
    """The suppression table as shared/suppression-store/src/schema.rs creates it."""
    index = lambda n, pk, sk: {  # noqa: E731
        "IndexName": n,
        "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"},
                      {"AttributeName": sk, "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                              for a in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[index("by-state-reason", "gsi1pk", "gsi1sk"),
                                index("by-domain", "gsi2pk", "gsi2sk")],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.get_waiter("table_exists").wait(TableName=name)


def create_plain_table(client, name):
    """A table with the same keys and nothing else: no stream, no index."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    client.get_waiter("table_exists").wait(TableName=name)


def ingest_env(aws, table):
    """Configuration of the Rust ingest function for the benchmark runs (unsigned raw bodies)."""
    return dict(
        aws,
        SUPPRESSION_TABLE=table,
        QUARANTINE_QUEUE_URL="http://127.0.0.1:9/000000000000/ses-feedback-quarantine",
        REQUIRE_SIGNATURE="false",
        ADDRESS_HASH_KEY="bench-hash-key",
    )
