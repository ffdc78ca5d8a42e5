#!/usr/bin/env python3
"""Receive throughput of the Python loader (client/python/examples/loader.py)
against the C++ devmem-demo-job, in the same run against the same devmemd.

    PYTHONPATH=build/rel/python python3 bench/python/loader_bench.py \
        --bin build/rel/bin --bytes 1G --queues 2 --reps 3

Each rep runs the C++ job then the Python loader (both verify every byte and
return every token), each fed by devmem-demo-sender; prints each run's GB/s
(from the jobs' own summary lines), the medians and their ratio.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LOADER = os.path.join(HERE, "../../client/python/examples/loader.py")
RATE = re.compile(r"verified (\d+) bytes in ([\d.]+) s")


def wait_file(path, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while not (os.path.exists(path) and os.path.getsize(path)):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench: job did not bind: {proc.stdout.read()}")
        time.sleep(0.01)


def run_one(cmd, binary_dir, run_dir, nbytes):
    ep = os.path.join(run_dir, "ep")
    if os.path.exists(ep):
        os.unlink(ep)
    job = subprocess.Popen(cmd + ["--endpoint-file", ep],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
    wait_file(ep, job)
    with open(ep) as f:
        to = f.read().strip()
    sender = subprocess.run([os.path.join(binary_dir, "devmem-demo-sender"),
                             "--to", to, "--bytes", str(nbytes)],
                            capture_output=True, text=True)
    out, _ = job.communicate(timeout=600)
    if job.returncode or sender.returncode:
        raise SystemExit(f"bench: run failed:\n{out}\n{sender.stdout}")
    m = RATE.search(out)
    return int(m.group(1)) / float(m.group(2)) / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="build/rel/bin")
    p.add_argument("--bytes", type=int, default=1 << 30)
    p.add_argument("--queues", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    run_dir = tempfile.mkdtemp(prefix="devmem-bench-")
    log = open(os.path.join(run_dir, "devmemd.log"), "w")
    d = subprocess.Popen([os.path.join(a.bin, "devmemd"),
                          f"--run_dir={run_dir}", "--provider=sim",
                          "--metrics_address=none", "--allow_all"],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "event=devmemd_started" not in open(log.name).read():
            if d.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench: devmemd did not start")
            time.sleep(0.01)
        common = ["--run-dir", run_dir, "--queues", str(a.queues),
                  "--bytes", str(a.bytes)]
        cpp_cmd = [os.path.join(a.bin, "devmem-demo-job")] + common
        py_cmd = [sys.executable, LOADER] + common
        cpp, py = [], []
        for i in range(a.reps):
            cpp.append(run_one(cpp_cmd, a.bin, run_dir, a.bytes))
            py.append(run_one(py_cmd, a.bin, run_dir, a.bytes))
            print(f"rep {i}: C++ devmem-demo-job {cpp[-1]:.2f} GB/s, "
                  f"Python loader {py[-1]:.2f} GB/s", flush=True)
        mc, mp = statistics.median(cpp), statistics.median(py)
        print(f"median: C++ {mc:.2f} GB/s, Python {mp:.2f} GB/s, "
              f"ratio {mp / mc:.2f}x ({a.bytes} bytes, {a.queues} queues, "
              f"{a.reps} reps)")
    finally:
        d.terminate()
        d.wait(timeout=30)
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
