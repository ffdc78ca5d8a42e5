#!/usr/bin/env python3
"""A data loader over devmem-broker: what devmem-demo-job does, in Python.

Binds RX queues of a device, receives the stream devmem-demo-sender sends,
verifies every byte against the demo pattern (client/demo/pattern.h) at its
stream offset, hands each batch to a "training step" as numpy arrays that
are views of the dma-buf (no copy), returns the tokens, and prints a
progress line and a summary.

    loader.py --run-dir DIR --queues 2 --bytes 1G --endpoint-file EP
    devmem-demo-sender --to $(cat EP) --bytes 1G

Kubernetes: with --from-env the queues are DEVMEM_IFNAME/DEVMEM_RX_QUEUES.
"""

import argparse
import os
import sys
import time

import numpy as np

import devmem

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_size(text):
    """"64M" -> 67108864 (K/M/G/T are powers of 1024, as base/byte_size.h)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS and not t[-1:].isdigit() else ""
    num = t[:-1] if unit else t
    if not num.isdigit():
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(num) * _UNITS[unit]


class TrainingStep:
    """Stands for the model's step: consumes arrays without copying them."""

    def __init__(self):
        self.steps = 0
        self.checksum = 0

    def __call__(self, arrays):
        self.steps += 1
        for a in arrays:
            self.checksum ^= int(a[0]) ^ int(a[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default=None,
                   help="devmemd's socket directory (default: "
                        "$DEVMEM_SOCKET's, else /run/devmemd)")
    p.add_argument("--device", default="sim0")
    p.add_argument("--queues", type=int, default=1)
    p.add_argument("--from-env", action="store_true",
                   help="bind DEVMEM_IFNAME / DEVMEM_RX_QUEUES")
    p.add_argument("--buffer-size", type=byte_size, default=64 << 20)
    p.add_argument("--bytes", type=byte_size, default=0,
                   help="expect exactly N bytes (default: until EOF)")
    p.add_argument("--endpoint-file", help="write HOST:PORT to send to")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the pattern check (measure the loop alone)")
    p.add_argument("--idle-timeout", type=float, default=60)
    a = p.parse_args(argv)

    buf = devmem.Buffer.memfd(a.buffer_size, name="loader")
    with devmem.Client(run_dir=a.run_dir, name="python loader") as client:
        print(f"loader: session {client.session_id} with devmemd "
              f"({client.provider} provider) in {client.run_dir}", flush=True)
        if a.from_env:
            binding = devmem.from_env(buf, client=client)
        else:
            binding = client.bind_rx(buf, a.device, num_queues=a.queues)
        with binding:
            print(f"loader: binding {binding.id} on {binding.device}: rx "
                  f"queues {binding.queues}, chunk {binding.chunk_size} B",
                  flush=True)
            print(f"loader: send to {binding.endpoint}", flush=True)
            if a.endpoint_file:
                tmp = a.endpoint_file + ".tmp"
                with open(tmp, "w") as f:
                    f.write(binding.endpoint)
                os.replace(tmp, a.endpoint_file)
            rx = binding.receiver()
            step = TrainingStep()
            pos = 0
            t0 = last = time.monotonic()
            tty = sys.stderr.isatty()
            while True:
                batch = rx.receive(timeout=a.idle_timeout)
                if batch is None:
                    break
                if not batch:
                    raise SystemExit(f"loader: nothing arrived for "
                                     f"{a.idle_timeout} s at {pos}")
                arrays = []
                for off, size in batch.runs():
                    view = buf.view(off, size)
                    if not a.no_verify:
                        bad = devmem.verify_pattern(pos, view)
                        if bad is not None:
                            raise SystemExit(
                                f"loader: payload mismatch at stream offset "
                                f"{bad} (dmabuf offset {off + bad - pos})")
                    arrays.append(np.frombuffer(view, dtype=np.uint8))
                    pos += size
                step(arrays)
                del arrays          # the step is done with the chunks
                rx.release(batch)
                now = time.monotonic()
                if now - last >= 1:
                    last = now
                    cr, pad = ("\r", "   ") if tty else ("", "")
                    print(f"{cr}loader: {pos / 1e6:.0f} MB received, "
                          f"{pos / (now - t0) / 1e9:.2f} GB/s, "
                          f"{rx.stats().tokens_outstanding} tokens "
                          f"outstanding{pad}", end="" if tty else "\n",
                          file=sys.stderr, flush=True)
                if a.bytes and pos > a.bytes:
                    raise SystemExit(f"loader: {pos} bytes, more than the "
                                     f"{a.bytes} expected")
            secs = time.monotonic() - t0
            if tty:
                print(file=sys.stderr)
            if a.bytes and pos != a.bytes:
                raise SystemExit(f"loader: stream ended after {pos} bytes, "
                                 f"expected {a.bytes}")
            st = rx.stats()
            print(f"loader: verified {pos} bytes in {secs:.3f} s "
                  f"({pos / secs / 1e9 if secs else 0:.2f} GB/s): "
                  f"{st.frags} frags in {st.batches} batches, "
                  f"{step.steps} training steps, {st.tokens_returned} tokens "
                  f"returned in {st.return_calls} calls, "
                  f"{st.tokens_outstanding} outstanding", flush=True)
        print(f"loader: binding {binding.id} unbound", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
