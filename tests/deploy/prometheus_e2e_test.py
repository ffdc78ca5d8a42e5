#!/usr/bin/python3
"""A real Prometheus against a real devmemd.

  prometheus_e2e_test.py BIN_DIR SOURCE_DIR

Starts bin/devmemd (sim provider) in a temp run dir with metrics on a loopback
port, holds one 1 MiB binding with bin/devmem_test_client, starts Debian's
prometheus on loopback scraping it every second, then checks through the HTTP
query API: devmem_bound_bytes equals the bound size; every query of
deploy/grafana/devmemd.json evaluates without error; the bindings, bytes,
queues and sessions panels return data. `promtool check metrics` must accept
the scrape. Waits are bounded waits on the condition, never fixed sleeps.
Exits 77 (skipped) when prometheus or promtool is not installed.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

BOUND = 1 << 20  # devmem_test_client hold binds a 1 MiB memfd
DEADLINE_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, fn, deadline_s=DEADLINE_S):
    """Calls fn until it returns a truthy value; fails after deadline_s."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.2)  # poll interval of a bounded wait, not a sync point
    raise SystemExit(f"FAIL: timed out waiting for {what} (last error: {last})")


def query(prom, expr):
    url = f"http://127.0.0.1:{prom}/api/v1/query?" + urllib.parse.urlencode(
        {"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def dashboard_exprs(path):
    d = json.load(open(path))
    subst = {"$__rate_interval": "1m", "$__interval": "15s",
             "$instance": ".*", "$device": ".*", "$pod": ".*"}
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            e = t["expr"]
            for k, v in subst.items():
                e = e.replace(k, v)
            assert "$" not in e, f"unsubstituted variable in {e}"
            out.append((p["title"], e))
    return d, out


def main():
    bin_dir, src = sys.argv[1], sys.argv[2]
    prom_bin, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prom_bin is None or promtool is None:
        print("SKIP: prometheus or promtool is not installed")
        return 77
    work = tempfile.mkdtemp(prefix="devmem-prom.")
    run_dir = os.path.join(work, "run")
    os.makedirs(run_dir)
    mport, pport = free_port(), free_port()
    procs = []
    dlog = open(os.path.join(work, "devmemd.log"), "w")
    plog = open(os.path.join(work, "prometheus.log"), "w")
    ok = False
    try:
        daemon = subprocess.Popen(
            [os.path.join(bin_dir, "devmemd"), "--run_dir=" + run_dir,
             f"--metrics_address=127.0.0.1:{mport}", "--allow_all"],
            stdout=dlog, stderr=subprocess.STDOUT)
        procs.append(daemon)
        wait_for("devmemd's fd socket",
                 lambda: os.path.exists(os.path.join(run_dir, "fd.sock")))
        holder = subprocess.Popen(
            [os.path.join(bin_dir, "devmem_test_client"), "hold", run_dir, "1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(holder)
        line = holder.stdout.readline().strip()
        assert line.startswith("BOUND "), f"holder said {line!r}"
        print("holder:", line)

        scrape = urllib.request.urlopen(
            f"http://127.0.0.1:{mport}/metrics", timeout=10).read()
        chk = subprocess.run([promtool, "check", "metrics"], input=scrape,
                             capture_output=True)
        print("promtool check metrics:", chk.returncode,
              chk.stdout.decode(), chk.stderr.decode())
        assert chk.returncode == 0, "promtool check metrics rejected the scrape"

        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "scrape_configs:\n"
                    "  - job_name: devmemd\n"
                    "    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{mport}']\n")
        prom = subprocess.Popen(
            [prom_bin, "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
             f"--web.listen-address=127.0.0.1:{pport}"],
            stdout=plog, stderr=subprocess.STDOUT)
        procs.append(prom)

        def bound_bytes():
            r = query(pport, "devmem_bound_bytes")
            res = r.get("data", {}).get("result", [])
            return res[0] if res else None
        sample = wait_for("devmem_bound_bytes in Prometheus", bound_bytes)
        assert float(sample["value"][1]) == BOUND, sample
        print("devmem_bound_bytes =", sample["value"][1])
        # rate() over [1m] needs two samples of the counters: wait for them.
        wait_for("two scrapes", lambda: query(
            pport, "count_over_time(devmem_sessions[1m])")["data"]["result"]
            and float(query(pport, "count_over_time(devmem_sessions[1m])")
                      ["data"]["result"][0]["value"][1]) >= 2)

        dash, exprs = dashboard_exprs(
            os.path.join(src, "deploy/grafana/devmemd.json"))
        assert dash.get("uid"), "dashboard has no uid"
        names = [v["name"] for v in dash["templating"]["list"]]
        for n in ("datasource", "device", "pod"):
            assert n in names, f"dashboard lacks variable {n}"
        must_have_data = ("Bindings by state", "Bound bytes",
                          "RX queues in use and free, per device", "Sessions")
        errors, empty = [], []
        for title, e in exprs:
            r = query(pport, e)
            if r.get("status") != "success":
                errors.append(f"{title}: {e}: {r.get('error')}")
                continue
            n = len(r["data"]["result"])
            print(f"  {n:3d} series  {title}: {e}")
            if title in must_have_data and n == 0:
                empty.append(f"{title}: {e}")
        for t in must_have_data:
            assert any(title == t for title, _ in exprs), f"no panel {t}"
        assert not errors, "queries failed:\n" + "\n".join(errors)
        assert not empty, "panels without data:\n" + "\n".join(empty)
        holder.stdin.close()
        holder.wait(timeout=30)
        ok = True
        print("PASS")
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        if not ok:
            for n in ("devmemd.log", "prometheus.log"):
                print(f"--- {n}")
                print(open(os.path.join(work, n)).read()[-4000:])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
