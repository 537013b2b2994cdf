"""A straightforward Python peer of ingest-feedback, written for the benchmark only.

It does the same job the way a typical boto3 handler would, not the same table design:

- each SQS record body is an SNS envelope (`Type: Notification`, the SES JSON in `Message`) or
  the SES JSON itself (raw delivery); no signature check;
- the notification or event is classified: hard bounce (Permanent), soft bounce (Transient,
  Undetermined), complaint, delivery; anything else is skipped;
- per recipient, a conditional PutItem of a history item keyed by the feedback id (or message
  id) and the address (`attribute_not_exists(pk)`: a replay writes nothing more), then one
  UpdateItem of the address item: counters (`ADD`), last event, and for a hard bounce or a
  complaint `suppressed = true` (soft bounces are counted, and suppress at 3);
- records that fail are reported in `batchItemFailures`.

Table: `pk` (hash) and `sk` (range), strings (bench/corpus.py `create_plain_table`).
"""

import hashlib
import json
import os
import time

import boto3
from botocore.exceptions import ClientError

TABLE = os.environ.get("PEER_TABLE", "python-peer")
SOFT_BOUNCE_THRESHOLD = 3

_dynamodb = boto3.client("dynamodb", endpoint_url=os.environ.get("DYNAMODB_ENDPOINT"))


def parse_body(body):
    message = json.loads(body)
    if message.get("Type") == "Notification" and "Message" in message:
        message = json.loads(message["Message"])
    return message


def classify(message):
    """Returns (kind, feedback id, [addresses]) or None for what is not feedback."""
    kind = message.get("notificationType") or message.get("eventType")
    mail = message.get("mail") or {}
    if kind == "Bounce":
        bounce = message["bounce"]
        hard = bounce.get("bounceType") == "Permanent"
        return ("hard_bounce" if hard else "soft_bounce", bounce.get("feedbackId") or mail["messageId"],
                [r["emailAddress"] for r in bounce.get("bouncedRecipients", [])])
    if kind == "Complaint":
        complaint = message["complaint"]
        return ("complaint", complaint.get("feedbackId") or mail["messageId"],
                [r["emailAddress"] for r in complaint.get("complainedRecipients", [])])
    if kind == "Delivery":
        return ("delivery", mail["messageId"], list(message["delivery"].get("recipients", [])))
    return None


def normalise(address):
    # Display names ("Name <a@b>") and case: keep the bare address, lower-cased.
    if "<" in address and ">" in address:
        address = address[address.index("<") + 1:address.index(">")]
    return address.strip().lower()


def apply(kind, feedback_id, address, now):
    pk = f"ADDR#{address}"
    try:
        _dynamodb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": pk}, "sk": {"S": f"EVT#{feedback_id}"}, "kind": {"S": kind},
                  "at": {"N": str(now)}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return  # already applied
        raise
    names = {"#c": kind, "#l": "last_event", "#t": "updated_at"}
    values = {":one": {"N": "1"}, ":k": {"S": kind}, ":now": {"N": str(now)}}
    update = "ADD #c :one SET #l = :k, #t = :now"
    if kind in ("hard_bounce", "complaint"):
        update += ", suppressed = :yes"
        values[":yes"] = {"BOOL": True}
    result = _dynamodb.update_item(
        TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "STATE"}},
        UpdateExpression=update, ExpressionAttributeNames=names,
        ExpressionAttributeValues=values, ReturnValues="UPDATED_NEW",
    )
    if kind == "soft_bounce":
        count = int(result["Attributes"]["soft_bounce"]["N"])
        if count >= SOFT_BOUNCE_THRESHOLD:
            _dynamodb.update_item(
                TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "STATE"}},
                UpdateExpression="SET suppressed = :yes",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )


def handler(event, _context):
    failures = []
    now = int(time.time())
    for record in event["Records"]:
        try:
            feedback = classify(parse_body(record["body"]))
            if feedback is None:
                continue
            kind, feedback_id, addresses = feedback
            for address in addresses:
                apply(kind, feedback_id, normalise(address), now)
        except Exception as e:  # noqa: BLE001 - any failure returns the record to the queue
            digest = hashlib.sha256(record["messageId"].encode()).hexdigest()[:12]
            print(json.dumps({"level": "error", "record": digest, "error": type(e).__name__}))
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
