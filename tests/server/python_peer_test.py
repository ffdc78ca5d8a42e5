#!/usr/bin/python3
"""A gRPC peer in another language: Python (Debian's python3-grpcio) talks to
a real devmemd over its Unix socket.

  python_peer_test.py BIN_DIR PROTO_DIR

Starts bin/devmemd (sim provider) in a temp run dir, generates Python stubs
from proto/devmem/v1/devmem.proto with protoc + grpc_python_plugin, then
checks: the standard health service answers SERVING, reflection lists
devmem.v1.Devmem, ListDevices returns sim0 with 16 RX queues, and a mutating
call without a session is refused with PERMISSION_DENIED or UNAUTHENTICATED.
Exits 77 (skipped) when python3-grpcio or the plugin is missing.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def main():
    bin_dir, proto_dir = sys.argv[1], sys.argv[2]
    try:
        import grpc  # noqa: F401
    except ImportError:
        print("SKIP: python3-grpcio is not installed")
        return 77
    plugin = shutil.which("grpc_python_plugin")
    if plugin is None or shutil.which("protoc") is None:
        print("SKIP: protoc or grpc_python_plugin missing")
        return 77

    work = tempfile.mkdtemp(prefix="devmem-pypeer.")
    gen = os.path.join(work, "gen")
    run_dir = os.path.join(work, "run")
    os.makedirs(gen)
    os.makedirs(run_dir)
    subprocess.run(
        ["protoc", "-I", proto_dir, "--python_out", gen,
         "--grpc_python_out", gen, "--plugin=protoc-gen-grpc_python=" + plugin,
         "devmem/v1/devmem.proto"], check=True)
    sys.path.insert(0, gen)
    import grpc
    from devmem.v1 import devmem_pb2, devmem_pb2_grpc

    log = open(os.path.join(work, "devmemd.log"), "w")
    daemon = subprocess.Popen(
        [os.path.join(bin_dir, "devmemd"), "--run_dir=" + run_dir,
         "--metrics_address=127.0.0.1:0", "--allow_all"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        sock = os.path.join(run_dir, "api.sock")
        channel = grpc.insecure_channel("unix:" + sock)
        # Ready when the channel connects (the daemon creates the socket).
        grpc.channel_ready_future(channel).result(timeout=30)

        # grpc.health.v1.Health/Check with an empty request; the reply's
        # field 1 (status) is a varint: 1 = SERVING.
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b)
        reply = check(b"", timeout=10)
        assert reply == b"\x08\x01", "health reply %r is not SERVING" % reply

        stub = devmem_pb2_grpc.DevmemStub(channel)
        devices = stub.ListDevices(devmem_pb2.ListDevicesRequest(), timeout=10)
        assert devices.provider == "sim", devices.provider
        names = {d.name: d for d in devices.devices}
        assert "sim0" in names, names.keys()
        assert names["sim0"].rx_queues == 16, names["sim0"].rx_queues
        assert names["sim0"].tx_queues == 16, names["sim0"].tx_queues

        try:
            stub.Unbind(devmem_pb2.UnbindRequest(binding_id=1), timeout=10)
            raise AssertionError("Unbind without a session was accepted")
        except grpc.RpcError as e:
            assert e.code() in (grpc.StatusCode.PERMISSION_DENIED,
                                grpc.StatusCode.UNAUTHENTICATED), e.code()
            print("unbind without a session:", e.code(), e.details())
        print("python peer: health SERVING, ListDevices sim0 16/16, "
              "unauthenticated Unbind refused")
        return 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(timeout=30)
        log.close()
        if rc != 0:
            print(open(os.path.join(work, "devmemd.log")).read())
            print("devmemd exited with", rc)
            sys.exit(1)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
