"""Plain-Python views of the daemon's answers (devmem/v1/devmem.proto): one
frozen dataclass per message, field names as in the proto, enums as their
names ("BINDING_STATE_ACTIVE")."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import List


def _build(cls, d: dict):
    """`cls` from the dict the compiled module made of a proto message."""
    hints = typing.get_type_hints(cls)
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        t = hints[f.name]
        sub = typing.get_args(t)[0] if typing.get_origin(t) is list else t
        if dataclasses.is_dataclass(sub):
            v = [_build(sub, x) for x in v] if isinstance(v, list) \
                else _build(sub, v)
        kw[f.name] = v
    return cls(**kw)


@dataclass(frozen=True)
class Queue:
    id: int = 0
    rx: bool = False
    bound: bool = False
    binding_id: int = 0
    napi_id: int = 0


@dataclass(frozen=True)
class Device:
    name: str = ""
    ifindex: int = 0
    rx_queues: int = 0
    tx_queues: int = 0
    numa_node: int = 0
    up: bool = False
    header_split: str = ""
    hds_thresh: int = 0
    rx_capability: str = ""
    rx_capability_reason: str = ""
    tx_capability: str = ""
    tx_capability_reason: str = ""
    queues: List[Queue] = field(default_factory=list)
    free_rx_queues: int = 0


@dataclass(frozen=True)
class Devices:
    """client.devices(): the node's devices and the provider's name."""
    devices: List[Device] = field(default_factory=list)
    provider: str = ""


@dataclass(frozen=True)
class Flow:
    """A flow steered to an RX binding's first queue (bind_rx(flows=...))."""
    ipv6: bool = False
    src_ip: str = ""
    dst_ip: str = ""
    src_port: int = 0
    dst_port: int = 0


@dataclass(frozen=True)
class BindingInfo:
    """One binding as the daemon describes it (v1.Binding)."""
    id: int = 0
    dmabuf_id: int = 0
    device: str = ""
    direction: str = ""
    queues: List[int] = field(default_factory=list)
    chunk_size: int = 0
    state: str = ""
    size_bytes: int = 0
    endpoint: str = ""
    session_id: int = 0
    uid: int = 0
    pid: int = 0
    flows: List[Flow] = field(default_factory=list)
    bound_at_unix_ns: int = 0
    released_at_unix_ns: int = 0
    release_reason: str = ""
    redacted: bool = False


@dataclass(frozen=True)
class Bindings:
    """client.bindings(): this uid's bindings and counts of others'."""
    bindings: List[BindingInfo] = field(default_factory=list)
    other_active: int = 0
    other_draining: int = 0


@dataclass(frozen=True)
class PoolStats:
    alloc_fast: int = 0
    alloc_slow: int = 0
    alloc_empty: int = 0
    alloc_refill: int = 0
    alloc_failed: int = 0
    recycle_cached: int = 0
    recycle_cache_full: int = 0
    recycle_ring: int = 0
    recycle_ring_full: int = 0
    recycle_released: int = 0
    token_errors: int = 0
    ref_errors: int = 0
    inflight_chunks: int = 0
    inflight_bytes: int = 0
    lent_tokens: int = 0
    capacity_chunks: int = 0
    chunk_size: int = 0


@dataclass(frozen=True)
class BindingStats:
    binding_id: int = 0
    device: str = ""
    state: str = ""
    bound_bytes: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    frags: int = 0
    alloc_fail: int = 0
    pool: PoolStats = field(default_factory=PoolStats)


@dataclass(frozen=True)
class DeviceStats:
    name: str = ""
    queues_in_use: int = 0
    bindings: int = 0
    bound_bytes: int = 0


@dataclass(frozen=True)
class Stats:
    """client.stats(): the daemon's counters (v1.GetStatsResponse)."""
    sessions: int = 0
    bindings_active: int = 0
    bindings_draining: int = 0
    bound_bytes: int = 0
    tickets_outstanding: int = 0
    devices: List[DeviceStats] = field(default_factory=list)
    bindings: List[BindingStats] = field(default_factory=list)


@dataclass(frozen=True)
class RxStats:
    """Receiver.stats(): the receive socket's counters (RxStats)."""
    bytes: int = 0
    frags: int = 0
    batches: int = 0
    tokens_outstanding: int = 0
    tokens_returned: int = 0
    return_calls: int = 0
    tokens_rejected: int = 0
    control_grows: int = 0


@dataclass(frozen=True)
class TxStats:
    """Sender.stats(): the sender's counters (TxStats)."""
    sends: int = 0
    bytes: int = 0
    completed: int = 0
    in_flight: int = 0
    transport_calls: int = 0
