"""Driver of bench/python-peer/run.

Rust: the release ingest-feedback behind the Runtime API of bench/runtime_api.py, one batch
per invocation. Python: handler.py called in this process with the event parsed from the same
JSON bytes (what the Python runtime loop does). Both write to their own fresh table in the same
DynamoDB Local. CPU is utime + stime of the function's process over the batches only (init and
import excluded); for Python that is this process, which does nothing else meanwhile.
"""

import json
import os
import pathlib
import sys
import time

import boto3

HERE = pathlib.Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # nothing to clean up in bench/
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import corpus  # noqa: E402
import runtime_api  # noqa: E402

ENDPOINT = os.environ["DYNAMODB_LOCAL_ENDPOINT"]
REGION = "eu-central-1"
WARMUP_RECORDS = int(os.environ.get("BENCH_WARMUP", "200"))


def client():
    return boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


def payloads(records, batch, tag, offset=0):
    bodies = corpus.bodies(records, tag=tag, offset=offset)
    return [json.dumps(corpus.sqs_event(bodies[i:i + batch], start=i)).encode()
            for i in range(0, records, batch)]


def run_rust(events, warmup, table):
    logs = corpus.ROOT / ".local" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    api = runtime_api.RuntimeApi(function_name="ingest-feedback")
    env = corpus.ingest_env(runtime_api.aws_env(ENDPOINT, REGION), table)
    proc, _ = runtime_api.spawn(str(corpus.ROOT / "target/release/ingest-feedback"), api, env,
                                logs / "python-peer-ingest.log")
    try:
        if not api.first_next.wait(10):
            raise SystemExit("ingest-feedback did not start; see .local/bench/python-peer-ingest.log")
        failures = 0
        for payload in warmup:
            api.invoke(payload)
        cpu0, t0 = runtime_api.cpu_seconds(proc.pid), time.perf_counter()
        for payload in events:
            kind, answer = api.invoke(payload)
            if kind != "response":
                raise SystemExit(f"ingest-feedback failed a batch: {answer}")
            failures += len(answer.get("batchItemFailures") or [])
        wall = time.perf_counter() - t0
        cpu = runtime_api.cpu_seconds(proc.pid) - cpu0
        rss = runtime_api.vm_hwm_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        api.close()
    return wall, cpu, failures, rss


def run_python(events, warmup, table):
    os.environ.update(PEER_TABLE=table, DYNAMODB_ENDPOINT=ENDPOINT, AWS_DEFAULT_REGION=REGION,
                      AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    import handler  # noqa: PLC0415 - reads its environment at import, as in Lambda

    handler.TABLE = table  # a fresh table per round
    for payload in warmup:
        handler.handler(json.loads(payload), None)
    failures = 0
    pid = os.getpid()
    cpu0, t0 = runtime_api.cpu_seconds(pid), time.perf_counter()
    for payload in events:
        failures += len(handler.handler(json.loads(payload), None)["batchItemFailures"])
    wall = time.perf_counter() - t0
    cpu = runtime_api.cpu_seconds(pid) - cpu0
    return wall, cpu, failures, runtime_api.vm_hwm_kib(pid)


def count(table):
    ddb, total, start = client(), 0, None
    while True:
        kwargs = {"TableName": table, "Select": "COUNT"}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = ddb.scan(**kwargs)
        total += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def main():
    records, batch = int(sys.argv[1]), int(sys.argv[2])
    rounds = int(os.environ.get("BENCH_ROUNDS", "2"))
    results = {"rust": [], "python": []}
    runners = {"rust": run_rust, "python": run_python}
    for r in range(rounds):
        # Alternate the order (Rust first, then Python first) so neither always meets a colder
        # emulator.
        for name in ("rust", "python") if r % 2 == 0 else ("python", "rust"):
            tag = f"{name}{r}-{int(time.time())}"
            table = f"peer-{tag}"
            corpus.create_plain_table(client(), table)
            wall, cpu, failures, rss = runners[name](
                payloads(records, batch, tag), payloads(WARMUP_RECORDS, batch, f"w{tag}", records), table)
            results[name].append((wall, cpu, failures, rss, count(table)))

    print(f"{records:,} records in batches of {batch} per round, {rounds} rounds (each after "
          f"{WARMUP_RECORDS} warm-up records), DynamoDB Local {ENDPOINT}")
    print("| handler | round | wall | records/s | CPU | CPU per record | failures | items | VmHWM |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    labels = {"rust": "Rust ingest-feedback (release)", "python": "Python + boto3 peer"}
    for name in ("rust", "python"):
        for r, (wall, cpu, failures, rss, items) in enumerate(results[name]):
            print(f"| {labels[name]} | {r + 1} | {wall:.1f} s | {records / wall:,.0f} | {cpu:.2f} s "
                  f"| {cpu / records * 1e6:,.0f} µs | {failures} | {items:,} | {rss / 1024:.1f} MiB |")
    total = {n: (sum(x[0] for x in v), sum(x[1] for x in v)) for n, v in results.items()}
    print(f"over all rounds: throughput Rust / Python {total['python'][0] / total['rust'][0]:.2f}x, "
          f"CPU per record Python / Rust {total['python'][1] / total['rust'][1]:.1f}x "
          f"(the Python VmHWM includes this driver)")


if __name__ == "__main__":
    main()
