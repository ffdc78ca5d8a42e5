"""The devmem Python package against a real devmemd (sim provider)."""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import devmem
from conftest import Daemon, python_env, start_sender, wait_until


def receive_verified(rx, nbytes, timeout=30.0):
    """Receives the demo stream until end of stream, verifying each frag
    against the pattern at its stream offset; returns the bytes seen."""
    pos = 0
    while True:
        batch = rx.receive(timeout)
        assert batch is not None or pos == nbytes, f"short stream at {pos}"
        if batch is None:
            return pos
        assert len(batch) > 0, f"nothing arrived for {timeout}s at {pos}"
        for f in batch:
            assert f.is_dmabuf
            bad = devmem.verify_pattern(pos, f.view)
            assert bad is None, f"mismatch at stream offset {bad}"
            pos += f.size
        rx.release(batch)


def active_ids(client):
    return {b.id for b in client.bindings().bindings
            if b.state == "BINDING_STATE_ACTIVE"}


def test_whole_flow(client):
    devs = client.devices()
    assert devs.provider == "sim"
    names = [d.name for d in devs.devices]
    assert "sim0" in names and isinstance(devs.devices[0], devmem.Device)
    buf = devmem.Buffer.memfd(8 << 20)
    with client.bind_rx(buf, "sim0", num_queues=2) as b:
        assert b.device == "sim0" and len(b.queues) == 2
        assert b.endpoint.startswith("127.0.0.1:")
        assert active_ids(client) == {b.id}
        rx = b.receiver()
        sender = start_sender(b.endpoint, 16 << 20)
        assert receive_verified(rx, 16 << 20) == 16 << 20
        assert sender.wait(timeout=60) == 0
        st = rx.stats()
        assert st.bytes == 16 << 20 and st.tokens_outstanding == 0
        assert st.tokens_returned == st.frags
        stats = client.stats()
        assert isinstance(stats, devmem.Stats)
        assert any(s.binding_id == b.id and s.bytes_received == 16 << 20
                   for s in stats.bindings)
    assert active_ids(client) == set()


def test_zero_copy_numpy_view(client):
    buf = devmem.Buffer.memfd(1 << 20)
    v = buf.view(4096, 8192)
    a = np.frombuffer(v, dtype=np.uint8)
    a[:] = 7                       # writes land in the mapping itself
    assert bytes(buf.view(4096, 4)) == b"\x07" * 4
    assert bytes(buf.view(0, 4)) == b"\0" * 4
    with pytest.raises(ValueError):
        buf.view(1 << 20, 1)


def test_recv_into(client):
    buf = devmem.Buffer.memfd(4 << 20)
    with client.bind_rx(buf, "sim1", queue_ids=[1]) as b:
        assert b.queues == [1]
        rx = b.receiver()
        sender = start_sender(b.endpoint, 1 << 20)
        out = np.zeros(1 << 20, dtype=np.uint8)
        got = 0
        while got < out.size:
            n = rx.recv_into(out[got:], timeout=30)
            assert n > 0
            got += n
        assert rx.recv_into(out, timeout=30) == 0   # end of stream
        assert devmem.verify_pattern(0, out) is None
        assert rx.stats().tokens_outstanding == 0
        assert sender.wait(timeout=60) == 0


def test_tx_send_and_complete(client):
    import socket
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    peer = "%s:%d" % lsock.getsockname()
    buf = devmem.Buffer.memfd(1 << 20)
    received = bytearray()

    def serve():
        conn, _ = lsock.accept()
        with conn:
            while len(received) < 64 << 10:
                d = conn.recv(1 << 16)
                if not d:
                    break
                received.extend(d)

    t = threading.Thread(target=serve)
    t.start()
    with client.bind_tx(buf, "sim0") as b:
        assert not b.rx
        tx = b.sender(peer)
        off, n = tx.allocate(64 << 10)
        devmem.fill_pattern(0, buf.view(off, n))
        tx.send(off, n)
        tx.flush(timeout=30)
        assert tx.stats().completed == 1
        with pytest.raises(ValueError):
            tx.send(off, n)          # not allocated any more
    t.join(timeout=30)
    lsock.close()
    assert devmem.verify_pattern(0, bytes(received)) is None
    assert len(received) == 64 << 10


# --- exceptions from real daemon answers ---------------------------------

def test_unknown_device_is_not_found(client):
    buf = devmem.Buffer.memfd(1 << 20)
    with pytest.raises(devmem.NotFound) as e:      # the daemon's answer
        client.bind_rx(buf, "nosuch0", num_queues=1)
    assert e.value.code == "NOT_FOUND" and "nosuch0" in e.value.message
    assert isinstance(e.value, devmem.Error)


def test_bad_queue_id_is_invalid_argument(client):
    buf = devmem.Buffer.memfd(1 << 20)
    with pytest.raises(devmem.InvalidArgument):
        client.bind_rx(buf, "sim1", queue_ids=[99])


def test_too_many_queues_is_resource_exhausted(client):
    buf = devmem.Buffer.memfd(1 << 20)
    with pytest.raises(devmem.ResourceExhausted) as e:
        client.bind_rx(buf, "sim1", num_queues=5)
    assert e.value.code == "RESOURCE_EXHAUSTED"


def test_bound_queue_is_already_exists(client):
    a = devmem.Buffer.memfd(1 << 20)
    b = devmem.Buffer.memfd(1 << 20)
    with client.bind_rx(a, "sim1", queue_ids=[2]):
        with pytest.raises(devmem.AlreadyExists):
            client.bind_rx(b, "sim1", queue_ids=[2])


def test_unknown_binding_is_not_found(client):
    with pytest.raises(devmem.NotFound) as e:
        client.binding(999999)
    assert e.value.code == "NOT_FOUND"


def test_no_devmem_device_is_unimplemented(client):
    buf = devmem.Buffer.memfd(1 << 20)
    with pytest.raises(devmem.Error) as e:       # the daemon: EOPNOTSUPP
        client.bind_rx(buf, "nodm", num_queues=1)
    assert e.value.code == "UNIMPLEMENTED" and "nodm" in e.value.message


def test_link_down_is_unavailable(client):
    buf = devmem.Buffer.memfd(1 << 20)
    with pytest.raises(devmem.Unavailable) as e:
        client.bind_rx(buf, "down0", num_queues=1)
    assert "down" in e.value.message


def test_unbind_released_is_failed_precondition(client):
    buf = devmem.Buffer.memfd(1 << 20)
    b = client.bind_rx(buf, "sim0", num_queues=1)
    b.unbind()
    with pytest.raises(devmem.FailedPrecondition) as e:   # the daemon's
        client.unbind(b.id)
    assert str(b.id) in e.value.message


def test_no_daemon_is_unavailable(tmp_path):
    with pytest.raises(devmem.Unavailable) as e:
        devmem.Client(run_dir=str(tmp_path))
    assert str(tmp_path) in e.value.message


def test_uid_not_allowed_is_permission_denied():
    d = Daemon(["--socket_mode=0666"])      # no --allow_all: only root
    try:
        code = textwrap.dedent(f"""
            import os, devmem
            os.setgid(65534); os.setuid(65534)
            try:
                devmem.Client(run_dir={d.run_dir!r})
            except devmem.PermissionDenied as e:
                print("denied", e.code)
        """)
        out = subprocess.run([sys.executable, "-c", code], env=python_env(),
                             capture_output=True, text=True, timeout=60)
        assert "denied PERMISSION_DENIED" in out.stdout, out.stderr
    finally:
        d.stop()


def test_udmabuf_missing_is_failed_precondition():
    if devmem.Buffer.udmabuf_available():
        pytest.skip("/dev/udmabuf exists here")
    with pytest.raises(devmem.FailedPrecondition) as e:
        devmem.Buffer.udmabuf(1 << 20)
    assert "udmabuf" in e.value.message


def test_double_unbind_is_not_active(client):
    buf = devmem.Buffer.memfd(1 << 20)
    b = client.bind_rx(buf, "sim0", num_queues=1)
    b.unbind()
    with pytest.raises(devmem.FailedPrecondition):
        b.unbind()


# --- context managers ------------------------------------------------------

def test_binding_context_releases_on_error(client):
    buf = devmem.Buffer.memfd(1 << 20)
    with pytest.raises(RuntimeError):
        with client.bind_rx(buf, "sim0", num_queues=1) as b:
            assert active_ids(client) == {b.id}
            raise RuntimeError("training step failed")
    assert active_ids(client) == set()


def test_client_context_releases_on_error(daemon):
    buf = devmem.Buffer.memfd(1 << 20)
    with pytest.raises(RuntimeError):
        with devmem.Client(run_dir=daemon.run_dir) as c:
            c.bind_rx(buf, "sim0", num_queues=1)
            raise RuntimeError("boom")
    with devmem.Client(run_dir=daemon.run_dir) as c:
        wait_until(lambda: active_ids(c) == set(), timeout=10,
                   what="the session's binding to be released")
    with pytest.raises(devmem.FailedPrecondition):
        c.devices()


CHILD = """
import sys, devmem
c = devmem.Client(run_dir=sys.argv[1])
buf = devmem.Buffer.memfd(1 << 20)
try:
    with c.bind_rx(buf, "sim0", num_queues=1) as b:
        print(b.id, flush=True)
        rx = b.receiver()
        rx.receive()                 # blocks: no sender
except KeyboardInterrupt:
    print("interrupted", len([x for x in c.bindings().bindings
                              if x.state == "BINDING_STATE_ACTIVE"]),
          flush=True)
    sys.exit(3)
"""


def _child(daemon):
    p = subprocess.Popen([sys.executable, "-c", CHILD, daemon.run_dir],
                         env=python_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.strip().isdigit(), p.stderr.read()
    return p, int(line)


def test_sigint_during_receive(daemon, client):
    p, bid = _child(daemon)
    assert bid in active_ids(client)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 3, err
    assert "interrupted 0" in out       # unbound by the `with` block
    assert bid not in active_ids(client)


def test_sigkill_releases_within_1s(daemon, client):
    import time
    p, bid = _child(daemon)
    assert bid in active_ids(client)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    t0 = time.monotonic()
    wait_until(lambda: bid not in active_ids(client), timeout=1.0,
               what="the killed job's binding to be released")
    assert time.monotonic() - t0 <= 1.0


def test_two_threads_two_bindings(client):
    n = 8 << 20
    results = {}

    def loop(key, rx):
        try:
            results[key] = receive_verified(rx, n)
        except BaseException as e:  # noqa: BLE001 (reported below)
            results[key] = e

    bufs = [devmem.Buffer.memfd(4 << 20) for _ in range(2)]
    with client.bind_rx(bufs[0], "sim0", num_queues=1) as a, \
            client.bind_rx(bufs[1], "sim1", num_queues=1) as b:
        threads = [threading.Thread(target=loop, args=(k, x.receiver()))
                   for k, x in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        senders = [start_sender(x.endpoint, n) for x in (a, b)]
        for t in threads:
            t.join(timeout=120)
        for s in senders:
            assert s.wait(timeout=60) == 0
    assert results == {"a": n, "b": n}


# --- bad arguments: TypeError/ValueError before any RPC -------------------

def test_bad_arguments(daemon, client):
    buf = devmem.Buffer.memfd(1 << 20)
    before = client.stats()
    with pytest.raises(ValueError):
        devmem.Buffer.memfd(-1)
    with pytest.raises(ValueError):
        devmem.Buffer.memfd(0)
    with pytest.raises(TypeError):
        devmem.Buffer.memfd("1M")
    with pytest.raises(TypeError):
        devmem.Buffer.memfd(1.5)
    with pytest.raises(ValueError):
        client.bind_rx(buf, "sim0", num_queues=1, queue_ids=[0])
    with pytest.raises(ValueError):
        client.bind_rx(buf, "sim0")
    with pytest.raises(ValueError):
        client.bind_rx(buf, "sim0", num_queues=-2)
    with pytest.raises(ValueError):
        client.bind_rx(buf, "sim0", queue_ids=[-1])
    with pytest.raises(TypeError):
        client.bind_rx(buf, "sim0", queue_ids="01")
    with pytest.raises(TypeError):
        client.bind_rx(b"not a buffer", "sim0", num_queues=1)
    with pytest.raises(TypeError):
        client.bind_rx(buf, 0, num_queues=1)
    with pytest.raises(TypeError):
        client.bind_rx(buf, "sim0", num_queues=1, flows=[("x",)])
    with pytest.raises(ValueError):
        buf.view(-1, 4)
    with pytest.raises(TypeError):
        devmem.Client(run_dir=5)
    # Nothing reached the daemon: no binding, and its log has no Bind.
    after = client.stats()
    assert after.bindings_active == before.bindings_active == 0
    assert "event=bind" not in daemon.log().lower()


def test_from_env(client, daemon):
    buf = devmem.Buffer.memfd(1 << 20)
    env = {"DEVMEM_IFNAME": "sim0", "DEVMEM_RX_QUEUES": "5,6"}
    with devmem.from_env(buf, client=client, env=env) as b:
        assert b.device == "sim0" and b.queues == [5, 6]
    with pytest.raises(ValueError):
        devmem.from_env(buf, client=client, env={"DEVMEM_IFNAME": "sim0"})
    with pytest.raises(ValueError):
        devmem.from_env(buf, client=client,
                        env={"DEVMEM_IFNAME": "sim0",
                             "DEVMEM_RX_QUEUES": "5,x"})


def test_help_reads_like_the_headers():
    import pydoc
    text = pydoc.render_doc(devmem, renderer=pydoc.plaintext)
    for name in ("Client", "bind_rx", "Receiver", "release", "from_env",
                 "session"):
        assert name in text
