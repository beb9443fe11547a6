#!/usr/bin/env python3
"""Cold start of Lambda binaries: exec to the first Runtime API poll.

Serves a minimal Lambda Runtime API on 127.0.0.1, starts each binary with the
environment Lambda gives it, and times from exec until the binary asks for its
first invocation (`GET /2018-06-01/runtime/invocation/next`), which is where
Lambda's init phase ends. Prints the median and worst of N runs per binary.

    ARCH=x86_64 sam build --parameter-overrides Architecture=x86_64
    python3 infra/scripts/cold-start.py .aws-sam/build/*/bootstrap

or, without SAM, the same build (infra/Makefile): the `lambda` profile, one
function per build (packages built together share their features):

    for f in get-order confirm-payment; do cargo lambda build --profile lambda --x86-64 -p $f; done
    python3 infra/scripts/cold-start.py target/lambda/get-order/bootstrap target/lambda/confirm-payment/bootstrap

A binary called `bootstrap` is named by its directory. With `--markdown` it
prints the table of docs/benchmarks.md (function size and cold start);
`--max-mb 8` fails on a binary over the size budget. Binaries for the
machine's own architecture only: it runs them.

Extra environment for the functions is passed through: e.g. with
`AWS_ENDPOINT_URL=<ministack>` and `PG_SECRET_KEY_PARAMETER=/shop/pg-secret-key`
the PG functions' cold start includes the SSM GetParameter they make (pass
only PG functions then: every binary given the variable reads SSM).
"""

import argparse
import os
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

polled = threading.Event()


class Runtime(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path.endswith("/runtime/invocation/next"):
            polled.set()
            time.sleep(5)  # long-poll: no invocation comes; the binary is killed
        try:
            self.send_response(404)
            self.end_headers()
        except OSError:
            pass  # the binary is gone

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--markdown", action="store_true", help="print the table docs/benchmarks.md carries (function size and cold start)")
    ap.add_argument("--max-mb", type=float, help="exit 1 if a binary is larger (MB, 10^6 bytes)")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "cold-start",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "cold-start",
        "AWS_LAMBDA_LOG_GROUP_NAME": "cold-start",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "TABLE_NAME": "shop",
        "EVENT_BUS_NAME": "shop",
        "DATA_PLATFORM_URL": "http://127.0.0.1:9",
        "RUST_LOG": "warn",
        **{k: v for k, v in os.environ.items() if k.startswith(("AWS_", "PG_")) or k == "PATH"},
    }
    if args.markdown:
        print(f"| function | size | cold start, median of {args.runs} | worst |")
        print("| --- | ---: | ---: | ---: |")
    else:
        print(f"{'binary':<24} {'size':>8} {'median':>9} {'max':>9}  ({args.runs} runs, exec -> first /invocation/next)")
    too_big = []
    for path in args.binaries:
        samples = []
        for _ in range(args.runs):
            polled.clear()
            t0 = time.perf_counter()
            p = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ok = polled.wait(10)
            samples.append((time.perf_counter() - t0) * 1000)
            p.kill()
            p.wait()
            if not ok:
                raise SystemExit(f"{path} never polled the Runtime API")
        size = os.path.getsize(path) / 1e6
        name = os.path.basename(path)
        if name == "bootstrap":
            name = os.path.basename(os.path.dirname(os.path.abspath(path)))
        if args.max_mb is not None and size > args.max_mb:
            too_big.append(f"{name} ({size:.1f} MB)")
        if args.markdown:
            print(f"| `{name}` | {size:.1f} MB | {statistics.median(samples):.1f} ms | {max(samples):.1f} ms |")
        else:
            print(f"{name:<24} {size:>6.1f}MB {statistics.median(samples):>7.1f}ms {max(samples):>7.1f}ms")
    if too_big:
        raise SystemExit(f"larger than {args.max_mb} MB: {', '.join(too_big)}")


if __name__ == "__main__":
    main()
