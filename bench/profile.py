#!/usr/bin/env python3
"""Instruction-count profile of the gateway's request path (valgrind --tool=callgrind).

    python3 bench/profile.py --switchboard target/ci-perf/switchboard \
        --loadgen target/ci-perf/sb-loadgen [--requests 2000] [--stream] [--out DIR]

Starts the simulator and the gateway under callgrind exactly as bench/run does, sends a
warm-up, zeroes the counters (callgrind_control -z), sends a fixed number of requests one at
a time, dumps (callgrind_control -d) and prints instructions per request and the top
inclusive costs. Instruction counts do not depend on machine load, so runs compare.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switchboard", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--stream", action="store_true", help="streamed requests (64 chunks)")
    ap.add_argument("--out", default="/tmp/sb-callgrind")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    out_file = os.path.join(a.out, "callgrind.out.gateway")
    os.environ["BENCH_GATEWAY_WRAPPER"] = (
        f"valgrind --tool=callgrind --callgrind-out-file={out_file} --dump-instr=no")
    args = argparse.Namespace(switchboard=a.switchboard, loadgen=a.loadgen, smoke=True,
                              no_pin=False, no_peers=True)
    b = harness.Bench(args)
    try:
        b.start_sim()
        b.start_gateway()
        b.setup_org()
        b.base_targets()
        text = "Hello [[sim:chunks=64]]" if a.stream else "Hello"

        def send(n):
            spec = {"mode": "stream" if a.stream else "latency", "rounds": 1, "per_round": n,
                    "warmup": 0,
                    "targets": b.target_specs(["switchboard"], text, stream=a.stream)}
            return b.loadgen(spec, f"cg-{n}")

        send(200)
        subprocess.run(["callgrind_control", "-z", str(b.gw_pid)], check=True,
                       capture_output=True)
        res = send(a.requests)
        subprocess.run(["callgrind_control", "-d", str(b.gw_pid)], check=True,
                       capture_output=True)
        time.sleep(1)
    finally:
        b.procs.stop_all()
        harness.shutil.rmtree(b.work, ignore_errors=True)
    dumps = sorted(f for f in os.listdir(a.out) if f.startswith("callgrind.out.gateway."))
    dump = os.path.join(a.out, dumps[-1]) if dumps else out_file
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", dump], capture_output=True,
                         text=True).stdout
    total = None
    for line in ann.splitlines():
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
    ok = res["targets"]["switchboard"]["total_us"]["n"]
    print(json.dumps({"dump": dump, "requests": ok, "instructions_total": total,
                      "instructions_per_request": round(total / ok) if total and ok else None}))
    with open(os.path.join(a.out, "annotate.txt"), "w") as f:
        f.write(ann)
    print(f"inclusive profile: {os.path.join(a.out, 'annotate.txt')}")


if __name__ == "__main__":
    main()
