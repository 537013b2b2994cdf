"""Driver of bench/peak-rss: one SQS batch of N records into the release ingest-feedback."""

import json
import os
import pathlib
import sys
import time

import boto3

sys.dont_write_bytecode = True  # nothing to clean up in bench/
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus  # noqa: E402
import runtime_api  # noqa: E402

ROOT = corpus.ROOT


def main():
    records = int(sys.argv[1])
    endpoint = os.environ["DYNAMODB_LOCAL_ENDPOINT"]
    table = f"peak-rss-{int(time.time())}"
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-central-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    corpus.create_rust_table(ddb, table)
    event = corpus.sqs_event(corpus.bodies(records))
    payload = json.dumps(event).encode()
    logs = ROOT / ".local" / "bench"
    logs.mkdir(parents=True, exist_ok=True)

    api = runtime_api.RuntimeApi(function_name="ingest-feedback")
    env = corpus.ingest_env(runtime_api.aws_env(endpoint), table)
    proc, _ = runtime_api.spawn(str(ROOT / "target/release/ingest-feedback"), api, env,
                                logs / "peak-rss-ingest.log")
    try:
        if not api.first_next.wait(10):
            raise SystemExit("ingest-feedback did not start; see .local/bench/peak-rss-ingest.log")
        idle = runtime_api.vm_hwm_kib(proc.pid)
        started = time.perf_counter()
        kind, answer = api.invoke(payload, timeout_s=900)
        wall = time.perf_counter() - started
        peak = runtime_api.vm_hwm_kib(proc.pid)
        cpu = runtime_api.cpu_seconds(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        api.close()
    if kind != "response":
        raise SystemExit(f"the invocation failed: {answer}")
    failures = len(answer.get("batchItemFailures") or [])
    items, start = 0, None
    while True:
        page = ddb.scan(TableName=table, Select="COUNT", **({"ExclusiveStartKey": start} if start else {}))
        items += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    print(f"| figure | value |")
    print(f"| --- | --- |")
    print(f"| records in the batch | {records:,} (event {len(payload) / 2**20:.1f} MiB) |")
    print(f"| batch item failures | {failures} |")
    print(f"| invocation wall time | {wall:.1f} s ({records / wall:,.0f} records/s) |")
    print(f"| process CPU (init + batch) | {cpu:.2f} s |")
    print(f"| VmHWM after init (idle) | {idle / 1024:.1f} MiB |")
    print(f"| VmHWM after the batch | **{peak / 1024:.1f} MiB** ({peak / 1024 / 128:.0%} of 128 MB) |")
    print(f"| table items after the batch | {items:,} |")


if __name__ == "__main__":
    main()
