"""devmem: Python client of devmem-broker (devmemd), over libdevmem_client.

A Client is one session with the per-node daemon devmemd, which binds a
job's dma-buf to NIC RX queues (or for TX) for device-memory TCP. Every
binding belongs to the session: closing the Client, or the process dying
(even by SIGKILL), releases them all.

    import devmem
    with devmem.Client() as client:                 # $DEVMEM_SOCKET or /run/devmemd
        buf = devmem.Buffer.memfd(64 << 20)         # the job's dma-buf
        with client.bind_rx(buf, "sim0", num_queues=2) as binding:
            rx = binding.receiver()
            for batch in rx:                        # until end of stream
                for frag in batch:                  # offset, size, token, view
                    consume(frag.view)              # zero-copy memoryview
                rx.release(batch)                   # give the chunks back
        # leaving the `with` unbinds

Errors are devmem.Error (with .code and .message) or one of its
subclasses, one per code a caller acts on: InvalidArgument, NotFound,
AlreadyExists, PermissionDenied, ResourceExhausted, FailedPrecondition,
Unavailable, DeadlineExceeded. Bad arguments raise TypeError/ValueError
before anything is sent.

Threads: blocking calls release the GIL; distinct bindings may receive in
parallel threads. A Receiver or Sender is used by one thread at a time.
See docs/PYTHON.md.
"""

from __future__ import annotations

import operator
import os
from typing import Iterable, Iterator, List, Optional, Sequence

from . import _devmem
from ._errors import (AlreadyExists, DeadlineExceeded, Error,
                      FailedPrecondition, InvalidArgument, NotFound,
                      PermissionDenied, ResourceExhausted, Unavailable)
from ._types import (BindingInfo, BindingStats, Bindings, Device, DeviceStats,
                     Devices, Flow, PoolStats, Queue, RxStats, Stats, TxStats,
                     _build)

Frag = _devmem.Frag
verify_pattern = _devmem.verify_pattern
fill_pattern = _devmem.fill_pattern

__all__ = [
    "Client", "Buffer", "Binding", "Receiver", "Batch", "Sender", "Frag",
    "Flow", "from_env", "default_run_dir", "Error", "InvalidArgument",
    "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted",
    "FailedPrecondition", "Unavailable", "DeadlineExceeded", "Device",
    "Devices", "Queue", "BindingInfo", "Bindings", "Stats", "BindingStats",
    "DeviceStats", "PoolStats", "RxStats", "TxStats", "verify_pattern",
    "fill_pattern",
]


def _uint(name: str, value, *, positive: bool = False, bits: int = 64) -> int:
    """`value` as a non-negative int (TypeError / ValueError otherwise)."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = operator.index(value)
    if v < 0 or (positive and v == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, "
                         f"got {v}")
    if v >= 1 << bits:
        raise ValueError(f"{name} must be < 2**{bits}, got {v}")
    return v


def _str(name: str, value, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value and not empty_ok:
        raise ValueError(f"{name} must not be empty")
    return value


def _timeout(value) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout must be seconds (a number) or None, not "
                        f"{type(value).__name__}")
    if value < 0:
        raise ValueError(f"timeout must be >= 0, got {value}")
    return float(value)


def default_run_dir() -> str:
    """$DEVMEM_SOCKET's directory when set (it may name the directory
    itself), else /run/devmemd (Client::DefaultRunDir)."""
    return _devmem.default_run_dir()


class Buffer:
    """The job's dma-buf (Dmabuf) with its CPU mapping.

    Buffer.memfd(size): a sealed memfd (what the sim provider accepts).
    Buffer.udmabuf(size): a real dma-buf over host memory via /dev/udmabuf
    (FailedPrecondition where /dev/udmabuf is missing; size a multiple of
    the page size). Both are host memory: view() maps them zero-copy.
    """

    def __init__(self, impl: "_devmem.Buffer"):
        self._impl = impl
        self._mv = memoryview(impl) if impl.host else None

    @classmethod
    def memfd(cls, size: int, name: str = "devmem-py") -> "Buffer":
        """A zero-filled sealed memfd of `size` bytes."""
        size = _uint("size", size, positive=True)
        return cls(_devmem.Buffer.memfd(_str("name", name), size))

    @classmethod
    def udmabuf(cls, size: int, name: str = "devmem-py") -> "Buffer":
        """A udmabuf of `size` bytes (a multiple of the page size)."""
        size = _uint("size", size, positive=True)
        return cls(_devmem.Buffer.udmabuf(_str("name", name), size))

    @staticmethod
    def udmabuf_available() -> bool:
        """True when /dev/udmabuf exists (it may still refuse: EACCES)."""
        return _devmem.udmabuf_available()

    @property
    def size(self) -> int:
        return self._impl.size

    @property
    def kind(self) -> str:
        """"memfd" or "udmabuf"."""
        return self._impl.kind

    @property
    def fd(self) -> int:
        """The buffer's fd (owned by the Buffer)."""
        return self._impl.fd

    @property
    def host(self) -> bool:
        """True when the buffer is CPU-mappable host memory."""
        return self._mv is not None

    def view(self, offset: int = 0, size: Optional[int] = None) -> memoryview:
        """A writable zero-copy memoryview of [offset, offset + size).

        Raises FailedPrecondition for device memory, ValueError for a range
        outside the buffer."""
        offset = _uint("offset", offset)
        size = self.size - offset if size is None else _uint("size", size)
        if offset + size > self.size:
            raise ValueError(f"range [{offset}, {offset + size}) is outside "
                             f"the {self.size}-byte buffer")
        if self._mv is None:
            raise FailedPrecondition("FAILED_PRECONDITION",
                                     "the buffer is device memory: no CPU "
                                     "mapping", 9)
        return self._mv[offset:offset + size]

    def __repr__(self) -> str:
        return f"Buffer({self.kind}, size={self.size})"


Batch = _devmem.Batch
Batch.__doc__ = """One receive's frags: a sequence of Frag in stream order
(len(), indexing, iteration). Each Frag has offset and size (where the
payload is in the buffer), token (the chunk held until released),
is_dmabuf, and view: a zero-copy memoryview of the payload (host memory).
`bytes` is the payload total; runs() merges frags adjacent in the buffer
into (offset, size) pairs. Pass the whole batch to Receiver.release()."""


class Receiver:
    """The receive socket of an RX binding (RxSocket).

    Iterating yields Batch objects until the sender closes the stream.
    Release every batch's tokens soon (release()): a binding whose chunks
    are all held stops receiving. Not thread-safe: one thread receives.
    """

    def __init__(self, binding: "Binding", impl: "_devmem.RxSocket"):
        self._binding = binding
        self._impl = impl
        self._eos = False

    def receive(self, timeout: Optional[float] = None) -> Optional[Batch]:
        """The next batch, waiting up to `timeout` seconds (None: forever).

        Returns an empty Batch on timeout, None at end of stream. Ctrl-C
        while waiting raises KeyboardInterrupt within ~0.1 s."""
        timeout = _timeout(timeout)
        if self._eos:
            return None
        batch, eos = self._impl.receive(timeout)
        if eos:
            self._eos = True
            return None
        return batch

    def __iter__(self) -> Iterator[Batch]:
        while True:
            batch = self.receive()
            if batch is None:
                return
            yield batch

    def release(self, frags: Iterable["Frag"]) -> None:
        """Returns the tokens of `frags` (SO_DEVMEM_DONTNEED semantics:
        consecutive tokens coalesced, batched like the C++ RxSocket::Return).
        InvalidArgument when some were not outstanding."""
        if isinstance(frags, Frag):
            frags = (frags,)
        self._impl.release(frags)     # a Batch goes through without copies

    def recv_into(self, out, timeout: Optional[float] = None) -> int:
        """Copies the next payload into the writable buffer `out` (a numpy
        array, bytearray, memoryview...) and releases its tokens. Returns
        the bytes copied: 0 at end of stream. A batch larger than `out` is
        copied up to len(out); the rest stays for the next call. Raises
        DeadlineExceeded when nothing arrives within `timeout` seconds."""
        dst = memoryview(out).cast("B")
        if dst.readonly:
            raise TypeError("recv_into needs a writable buffer")
        pending = getattr(self, "_pending", None)
        if not pending:
            batch = self.receive(timeout)
            if batch is None:
                return 0
            if not batch:
                raise DeadlineExceeded("DEADLINE_EXCEEDED",
                                       f"nothing arrived in {timeout} s", 4)
            pending = [(f, 0) for f in batch]
        n = 0
        done = []
        while pending and n < len(dst):
            f, skip = pending[0]
            take = min(f.size - skip, len(dst) - n)
            dst[n:n + take] = f.view[skip:skip + take]
            n += take
            if skip + take == f.size:
                done.append(f)
                pending.pop(0)
            else:
                pending[0] = (f, skip + take)
        self._pending = pending
        if done:
            self.release(done)
        return n

    def stats(self) -> RxStats:
        return RxStats(**self._impl.stats())


class Sender:
    """The sender of a TX binding (TxSender).

        r_off, r_len = tx.allocate(64 << 10)    # space in the buffer
        buf.view(r_off, r_len)[:] = payload     # fill it
        tx.send(r_off, r_len)
        tx.flush(timeout=5)                     # all completed

    Not thread-safe."""

    def __init__(self, binding: "Binding", impl: "_devmem.TxSender"):
        self._binding = binding
        self._impl = impl

    def allocate(self, length: int):
        """Reserves `length` bytes of the buffer: (offset, length).
        Unavailable while the space is in flight (poll() and retry)."""
        return self._impl.allocate(_uint("length", length, positive=True))

    def send(self, offset: int, length: int) -> None:
        """Sends the allocated range at `offset` of `length` bytes."""
        self._impl.send(_uint("offset", offset),
                        _uint("length", length, positive=True))

    def poll(self, timeout: Optional[float] = 0) -> int:
        """Processes completions, waiting up to `timeout` s for the first;
        how many sends completed."""
        return self._impl.poll(_timeout(timeout))

    def flush(self, timeout: Optional[float] = 10) -> None:
        """Waits until every send completed (DeadlineExceeded after
        `timeout` seconds)."""
        self._impl.flush(_timeout(timeout))

    def stats(self) -> TxStats:
        return TxStats(**self._impl.stats())


class Binding:
    """A bound buffer (RX queues or TX) on a device (the C++ Binding).

    A context manager: leaving the `with` block unbinds (also on an
    exception or KeyboardInterrupt). id, device, queues, endpoint,
    chunk_size, size_bytes as the daemon answered at bind time."""

    def __init__(self, client: "Client", buf: Buffer,
                 impl: "_devmem.Binding"):
        self._client = client
        self._buf = buf
        self._impl = impl
        self.info: BindingInfo = _build(BindingInfo, impl.info())

    id = property(lambda self: self.info.id)
    device = property(lambda self: self.info.device)
    queues = property(lambda self: list(self.info.queues))
    endpoint = property(lambda self: self.info.endpoint,
                        doc="sim RX: 127.0.0.1:PORT a sender connects to")
    chunk_size = property(lambda self: self.info.chunk_size)
    size_bytes = property(lambda self: self.info.size_bytes)
    rx = property(lambda self: self.info.direction == "DIRECTION_RX")

    @property
    def active(self) -> bool:
        """True until unbind()."""
        return self._impl.active

    def receiver(self) -> Receiver:
        """The receive socket of this RX binding (sim provider)."""
        return Receiver(self, self._client._core().open_rx(
            self._impl, self._buf._mv if self._buf.host else None))

    def sender(self, peer: str) -> Sender:
        """The sender of this TX binding; sim: the daemon connects to
        `peer` ("127.0.0.1:PORT")."""
        return Sender(self, self._client._core().open_tx(
            self._impl, _str("peer", peer)))

    def unbind(self) -> None:
        """Unbinds now (the daemon's errors raise; FailedPrecondition if not
        active)."""
        self._impl.unbind()

    def __enter__(self) -> "Binding":
        return self

    def __exit__(self, *exc) -> None:
        if self._impl.active and not self._client.closed:
            try:
                self._impl.unbind()
            except Error:
                if exc[0] is None:
                    raise
        self._impl.reset()

    def __repr__(self) -> str:
        return (f"Binding(id={self.id}, device={self.device!r}, "
                f"queues={self.queues}, endpoint={self.endpoint!r})")


class Client:
    """A session with devmemd (devmem::Client).

    run_dir: the directory with api.sock and fd.sock; None: default_run_dir().
    name: shown in the daemon's logs. Unavailable when no daemon answers,
    PermissionDenied when it refuses this uid. A context manager; close()
    ends the session and the daemon releases every binding of it."""

    def __init__(self, run_dir: Optional[str] = None,
                 name: Optional[str] = None):
        run_dir = "" if run_dir is None else _str("run_dir", os.fspath(run_dir))
        name = "" if name is None else _str("name", name, empty_ok=True)
        self._impl = _devmem.Client(run_dir, name)

    def _core(self) -> "_devmem.Client":
        if self._impl.closed:
            raise FailedPrecondition("FAILED_PRECONDITION", "client closed", 9)
        return self._impl

    @property
    def closed(self) -> bool:
        return self._impl.closed

    @property
    def run_dir(self) -> str:
        return self._core().run_dir

    @property
    def session_id(self) -> int:
        return self._core().session_id

    @property
    def provider(self) -> str:
        """"sim" or "kernel"."""
        return self._core().provider

    def devices(self) -> Devices:
        """The node's devices with queues, capability and header split."""
        return _build(Devices, self._core().devices())

    def bindings(self, include_released: bool = False) -> Bindings:
        """This uid's bindings (with released ones if asked)."""
        if not isinstance(include_released, bool):
            raise TypeError("include_released must be a bool")
        return _build(Bindings, self._core().bindings(include_released))

    def binding(self, binding_id: int) -> BindingInfo:
        """One binding by id (NotFound when unknown)."""
        return _build(BindingInfo, self._core().get_binding(
            _uint("binding_id", binding_id, bits=32)))

    def stats(self) -> Stats:
        """The daemon's counters (sessions, bindings, pool stats)."""
        return _build(Stats, self._core().stats())

    def unbind(self, binding_id: int) -> None:
        """Unbinds a binding of this session by id (prefer Binding.unbind()
        or its `with` block). The daemon's errors: NotFound (not of this
        session), FailedPrecondition (already released)."""
        self._core().unbind(_uint("binding_id", binding_id, bits=32))

    def bind_rx(self, buf: Buffer, device: str,
                num_queues: Optional[int] = None,
                queue_ids: Optional[Sequence[int]] = None,
                flows: Iterable[Flow] = (), chunk_size: int = 0,
                name: str = "") -> Binding:
        """Binds `buf` to RX queues of `device`: exactly one of num_queues
        (the daemon picks) or queue_ids (these). Daemon errors (what
        devmemd answers, tests/python): NotFound (unknown device),
        InvalidArgument (unknown queue), AlreadyExists (queue bound),
        ResourceExhausted (quota, not enough free queues), Unavailable
        (link down), Error with code UNIMPLEMENTED (no devmem or header
        split on the device)."""
        if not isinstance(buf, Buffer):
            raise TypeError(f"buf must be a devmem.Buffer, not "
                            f"{type(buf).__name__}")
        device = _str("device", device)
        if (num_queues is None) == (queue_ids is None):
            raise ValueError("give exactly one of num_queues or queue_ids")
        nq = 0
        ids: List[int] = []
        if num_queues is not None:
            nq = _uint("num_queues", num_queues, positive=True, bits=32)
        else:
            if isinstance(queue_ids, (str, bytes)):
                raise TypeError("queue_ids must be a sequence of ints")
            ids = [_uint("queue id", q, bits=32) for q in queue_ids]
            if not ids:
                raise ValueError("queue_ids must not be empty")
        fl = []
        for f in flows:
            if not isinstance(f, Flow):
                raise TypeError(f"flows must be devmem.Flow, not "
                                f"{type(f).__name__}")
            fl.append((f.ipv6, f.src_ip, f.dst_ip,
                       _uint("src_port", f.src_port, bits=16),
                       _uint("dst_port", f.dst_port, bits=16)))
        impl = self._core().bind_rx(
            buf._impl, device, nq, ids, fl,
            _uint("chunk_size", chunk_size, bits=32),
            _str("name", name, empty_ok=True))
        return Binding(self, buf, impl)

    def bind_tx(self, buf: Buffer, device: str, name: str = "") -> Binding:
        """Binds `buf` for TX on `device`. Errors as bind_rx."""
        if not isinstance(buf, Buffer):
            raise TypeError(f"buf must be a devmem.Buffer, not "
                            f"{type(buf).__name__}")
        impl = self._core().bind_tx(buf._impl, _str("device", device),
                                    _str("name", name, empty_ok=True))
        return Binding(self, buf, impl)

    def close(self) -> None:
        """Ends the session: the daemon releases all its bindings."""
        self._impl.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "Client(closed)"
        return f"Client(run_dir={self.run_dir!r}, session={self.session_id})"


def parse_queues(text: str) -> List[int]:
    """"14,15" -> [14, 15] (DEVMEM_RX_QUEUES); ValueError names a bad item."""
    out = []
    for item in _str("DEVMEM_RX_QUEUES", text).split(","):
        item = item.strip()
        if not item.isdigit():
            raise ValueError(f"DEVMEM_RX_QUEUES: {item!r} is not a queue id")
        out.append(int(item))
    return out


def from_env(buf: Buffer, client: Optional[Client] = None,
             env=None) -> Binding:
    """Binds `buf` to exactly the queues the Kubernetes device plugin
    allocated: DEVMEM_IFNAME (device) and DEVMEM_RX_QUEUES ("14,15").

    Uses `client` or a new Client (run_dir from DEVMEM_SOCKET); the binding
    keeps it. ValueError when a variable is missing or malformed."""
    env = os.environ if env is None else env
    dev = env.get("DEVMEM_IFNAME")
    qs = env.get("DEVMEM_RX_QUEUES")
    if not dev:
        raise ValueError("DEVMEM_IFNAME is not set (no devmem allocation)")
    if not qs:
        raise ValueError("DEVMEM_RX_QUEUES is not set (no devmem allocation)")
    queues = parse_queues(qs)
    if client is None:
        client = Client(name=env.get("HOSTNAME", ""))
    return client.bind_rx(buf, dev, queue_ids=queues)
