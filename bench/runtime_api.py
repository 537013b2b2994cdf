"""A minimal Lambda Runtime API on loopback for the benchmarks in bench/.

It answers the routes a Lambda runtime client calls: `GET .../runtime/invocation/next` (a long
poll), `POST .../invocation/{id}/response`, `.../{id}/error` and `.../runtime/init/error`. It
records when the first `next` arrives (the end of a cold start) and hands out events one at a
time, as one Lambda execution environment does. Standard library only.
"""

import http.server
import json
import os
import queue
import subprocess
import threading
import time
import uuid

PREFIX = "/2018-06-01/runtime"
ACCOUNT = "000000000000"


class RuntimeApi:
    """One Runtime API server for one function process."""

    def __init__(self, function_name="bench", region="eu-central-1", timeout_s=900):
        self.function_name = function_name
        self.arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_name}"
        self.timeout_s = timeout_s
        self.first_next_ns = None
        self.first_next = threading.Event()
        self.init_error = None
        self._events = queue.Queue()
        self._results = {}
        self._done = {}
        self._lock = threading.Lock()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):
                pass

            def _reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404)
                    return
                if api.first_next_ns is None:
                    api.first_next_ns = time.perf_counter_ns()
                    api.first_next.set()
                item = api._events.get()
                if item is None:  # shutting down
                    self.close_connection = True
                    return
                request_id, payload = item
                deadline_ms = int(time.time() * 1000) + api.timeout_s * 1000
                self._reply(
                    200,
                    payload,
                    [
                        ("Content-Type", "application/json"),
                        ("Lambda-Runtime-Aws-Request-Id", request_id),
                        ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                        ("Lambda-Runtime-Invoked-Function-Arn", api.arn),
                        ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                    ],
                )

            def do_POST(self):
                body = self._body()
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = body
                    api.first_next.set()
                    self._reply(202, b"{}")
                    return
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    with api._lock:
                        api._results[parts[1]] = (parts[2], body)
                        done = api._done.get(parts[1])
                    self._reply(202, b"{}")
                    if done is not None:
                        done.set()
                    return
                self._reply(404)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a function process killed mid-request: nothing to report

        self._server = Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def invoke(self, payload, timeout_s=None):
        """Queues one event (a dict or bytes) and waits for the function's answer.

        Returns ("response" | "error", parsed JSON body).
        """
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        request_id = str(uuid.uuid4())
        done = threading.Event()
        with self._lock:
            self._done[request_id] = done
        self._events.put((request_id, body))
        if not done.wait(timeout_s or self.timeout_s):
            raise TimeoutError(f"{self.function_name}: no answer within {timeout_s} s")
        with self._lock:
            kind, raw = self._results.pop(request_id)
            del self._done[request_id]
        return kind, json.loads(raw or b"null")

    def close(self):
        # Release any `next` long poll still waiting, then stop the server.
        for _ in range(4):
            self._events.put(None)
        self._server.shutdown()
        self._server.server_close()


def spawn(binary, api, env, log_path):
    """Starts a function binary behind `api` with exactly `env` plus the runtime's variables.

    Returns (process, start time in perf_counter ns taken just before the exec).
    """
    full = dict(env)
    full.update(
        {
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": api.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{api.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        }
    )
    log = open(log_path, "ab")
    start = time.perf_counter_ns()
    proc = subprocess.Popen(
        [binary], env=full, stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True
    )
    log.close()
    return proc, start


def cpu_seconds(pid):
    """utime + stime of a process from /proc/<pid>/stat, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # After the command name: state is field 3, utime 14, stime 15 (1-based) -> 11, 12 here.
    return (int(fields[11]) + int(fields[12])) / ticks


def vm_hwm_kib(pid):
    """Peak resident set size (VmHWM) of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")


def aws_env(endpoint="http://127.0.0.1:9", region="eu-central-1"):
    """The AWS part of a function's environment: static test credentials and one endpoint."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": endpoint,
        "LOG_FORMAT": "json",
        "RUST_LOG": os.environ.get("BENCH_RUST_LOG", "warn"),
    }
