#!/usr/bin/env python3
"""Records raw netdev generic-netlink replies from the running kernel and
prints them as C++ byte arrays (tests/providers_kernel/recorded_replies.inc).

Run as root on the machine whose replies you want: python3 capture_netlink.py
"""
import os, socket, struct, sys

NETLINK_GENERIC = 16
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 1, 4, 0x300
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11
seq = 100

def attr(t, data):
    l = 4 + len(data)
    return struct.pack("HH", l, t) + data + b"\0" * ((4 - l % 4) % 4)

def msg(family, flags, cmd, attrs):
    global seq
    seq += 1
    payload = struct.pack("BBH", cmd, 1, 0) + attrs
    return struct.pack("IHHII", 16 + len(payload), family, flags, seq, 0) + payload

def sock():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    s.bind((0, 0))
    return s

def exchange(s, m, dump):
    s.send(m)
    out = []
    while True:
        d = s.recv(65536)
        out.append(d)
        # stop at DONE or ERROR
        off, stop = 0, False
        while off + 16 <= len(d):
            l, t, f, sq, pid = struct.unpack_from("IHHII", d, off)
            if t in (2, 3):
                stop = True
            if not dump and t not in (2, 3):
                pass
            off += (l + 3) & ~3
        if stop:
            return out

def carr(name, datagrams, note):
    print(f"// {note}")
    for i, d in enumerate(datagrams):
        d = bytearray(d)
        # Zero port ids so the arrays do not depend on the capturing socket.
        off = 0
        while off + 16 <= len(d):
            l = struct.unpack_from("I", d, off)[0]
            struct.pack_into("I", d, off + 12, 0)
            off += (l + 3) & ~3
        print(f"inline constexpr uint8_t {name}{i}[] = {{")
        for j in range(0, len(d), 12):
            print("    " + ", ".join(f"0x{b:02x}" for b in d[j:j+12]) + ",")
        print("};")

print("// Recorded by tests/providers_kernel/testdata/capture_netlink.py on Linux "
      + os.uname().release + " (x86-64, virtio_net eth0, lo, ifb0, ifb1 down).")
print("// Raw datagrams as the kernel sent them (port ids zeroed); each request's")
print("// seq is 101, 102, ... in the order below.  Do not edit by hand.")
s = sock()
fam = msg(0x10, NLM_F_REQUEST | NLM_F_ACK, 3, attr(2, b"netdev\0"))
r = exchange(s, fam, False)
carr("kGetFamilyNetdev", r, "CTRL_CMD_GETFAMILY \"netdev\" reply + ACK")
# parse family id
d = r[0]; off = 20
fid = None
while off + 4 <= struct.unpack_from("I", d, 0)[0]:
    l, t = struct.unpack_from("HH", d, off)
    if t == 1: fid = struct.unpack_from("H", d, off + 4)[0]
    off += (l + 3) & ~3
print(f"inline constexpr uint16_t kRecordedNetdevFamilyId = {fid};")
carr("kDevGetDump", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_DUMP, 1, b""), True), "dev-get dump")
carr("kQueueGetDump", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_DUMP, 10, b""), True), "queue-get dump")
carr("kNapiGetDump", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_DUMP, 11, b""), True), "napi-get dump")
carr("kQstatsGetDump", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_DUMP, 12, attr(4, struct.pack("I", 1))), True), "qstats-get dump, scope queue")
carr("kQueueGetDumpEnodev", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_DUMP, 10, attr(2, struct.pack("I", 9999))), True), "queue-get dump ifindex 9999: ENODEV in NLMSG_DONE")
carr("kQstatsGetLoEopnotsupp", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_DUMP, 12, attr(1, struct.pack("I", 1))), True), "qstats-get dump ifindex lo: EOPNOTSUPP in NLMSG_DONE")
q = attr(2 | 0x8000, attr(1, struct.pack("I", 0)) + attr(3, struct.pack("I", 0)))
carr("kBindRxLoEopnotsupp", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_ACK, 13, attr(1, struct.pack("I", 1)) + attr(3, struct.pack("I", 0)) + q), False), "bind-rx lo queue 0 fd 0: EOPNOTSUPP, bad-attr ifindex")
carr("kBindRxMissingQueues", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_ACK, 13, attr(1, struct.pack("I", 1)) + attr(3, struct.pack("I", 0))), False), "bind-rx without queues: EINVAL, MISS_TYPE 2")
qn = attr(2, attr(1, struct.pack("I", 0)) + attr(3, struct.pack("I", 0)))
carr("kBindRxNotNested", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_ACK, 13, attr(1, struct.pack("I", 1)) + attr(3, struct.pack("I", 0)) + qn), False), "bind-rx, queues without NLA_F_NESTED: EINVAL text + offset")
carr("kBindRxUnknownAttr", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_ACK, 13, attr(1, struct.pack("I", 1)) + attr(3, struct.pack("I", 0)) + q + attr(4, struct.pack("I", 1))), False), "bind-rx with id (4): EINVAL Unknown attribute type")
carr("kBindRxEnodev", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_ACK, 13, attr(1, struct.pack("I", 9999)) + attr(3, struct.pack("I", 0)) + q), False), "bind-rx ifindex 9999: ENODEV")
carr("kBindTxLo", exchange(s, msg(fid, NLM_F_REQUEST | NLM_F_ACK, 15, attr(1, struct.pack("I", 1)) + attr(3, struct.pack("I", 0))), False), "bind-tx lo: EOPNOTSUPP Driver does not support netmem TX")
