"""Fixtures: a real devmemd (sim provider) in a private run dir per test.

DEVMEM_BIN_DIR names the directory with devmemd and the demo programs (ctest
sets it; default: build/rel/bin of this checkout)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
BIN = os.environ.get("DEVMEM_BIN_DIR", os.path.join(ROOT, "build/rel/bin"))
SIM_DEVICES = "sim0:rx=8,tx=4;sim1:rx=4,tx=2;nodm:rx=2,tx=2,devmem=no;down0:rx=2,link=down"


def wait_until(pred, timeout=30.0, what="condition"):
    """Polls pred() (bounded) until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what}")
        time.sleep(0.01)


class Daemon:
    def __init__(self, extra=()):
        self.run_dir = tempfile.mkdtemp(prefix="devmem-py-")
        os.chmod(self.run_dir, 0o755)
        self.log_path = os.path.join(self.run_dir, "devmemd.log")
        self._log = open(self.log_path, "wb")
        args = [os.path.join(BIN, "devmemd"), f"--run_dir={self.run_dir}",
                "--provider=sim", "--metrics_address=none",
                f"--sim_devices={SIM_DEVICES}", *extra]
        self.proc = subprocess.Popen(args, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        wait_until(self._started, what="devmemd to start")

    def _started(self):
        if self.proc.poll() is not None:
            raise AssertionError("devmemd exited:\n" + self.log())
        return "event=devmemd_started" in self.log()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)


@pytest.fixture
def daemon():
    d = Daemon(["--allow_all"])
    yield d
    d.stop()


@pytest.fixture
def client(daemon):
    import devmem
    with devmem.Client(run_dir=daemon.run_dir, name="pytest") as c:
        yield c


def start_sender(endpoint, nbytes):
    return subprocess.Popen([os.path.join(BIN, "devmem-demo-sender"), "--to",
                             endpoint, "--bytes", str(nbytes)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def python_env():
    """The environment for a child interpreter that imports devmem."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env
