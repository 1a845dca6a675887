"""Many netlink requests in one write: pyroute2 encodes them, one socket sends them all.

A pyroute2 call costs a few hundred microseconds of encoding and event-loop work plus a
round trip, and building a 256-GPU star takes thousands: a bridge port's four requests, a
link end's three shaping requests. So pyroute2's IPBatch (its own encoder, sending nothing)
compiles the requests, and `send` writes a namespace's whole batch at once and checks the
kernel's answer to every request. Requests that differ only in the interface (and a MAC)
are compiled once, for PLACEHOLDER and PLACEHOLDER_MAC, and `stamp` writes the real ones
into a copy.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator

from emulator.kernel.netns import inside

NLMSG = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
NLMSG_ERROR = 2
NLM_F_ACK = 0x4
# Links (RTM_*LINK), neighbours and forwarding entries (RTM_*NEIGH), traffic control
# (RTM_*QDISC/TCLASS/TFILTER): their ifinfomsg, ndmsg and tcmsg all start with a byte of
# family, three of padding or type, then the interface index.
INDEXED = (*range(16, 20), *range(28, 31), *range(36, 48))
IFINDEX = struct.Struct("=i")
IFINDEX_AT = 4
PLACEHOLDER = 0x7EAD0001  # an interface index no kernel hands out this early
PLACEHOLDER_MAC = "02:ba:d0:00:00:01"  # outside netwall's 02:4e: addresses


def compile_requests(build: Callable[[object], None]) -> bytes:
    """The requests `build(batch)` makes through pyroute2's API, as bytes: nothing is sent.
    Requests built for interface PLACEHOLDER (and PLACEHOLDER_MAC) are templates for stamp."""
    from pyroute2.iproute.linux import IPBatch

    batch = IPBatch()
    try:
        build(batch)
        return bytes(batch.batch)
    finally:
        batch.close()


def messages(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, length, type) of each netlink message in `data`."""
    out, offset = [], 0
    while offset < len(data):
        length, kind, _, _, _ = NLMSG.unpack_from(data, offset)
        out.append((offset, length, kind))
        offset += (length + 3) & ~3
    return out


def stamp(template: bytes, index: int, mac: str | None = None) -> bytes:
    """A copy of compiled requests aimed at interface `index` (and, if given, at `mac` where
    they name PLACEHOLDER_MAC)."""
    data = bytearray(template)
    for offset, _, kind in messages(data):
        at = offset + NLMSG.size + IFINDEX_AT
        if kind not in INDEXED or IFINDEX.unpack_from(data, at)[0] != PLACEHOLDER:
            raise ValueError(f"netlink message of type {kind} is no request for the placeholder")
        IFINDEX.pack_into(data, at, index)
    if mac is not None:
        old, new = _mac_bytes(PLACEHOLDER_MAC), _mac_bytes(mac)
        if old not in data:
            raise ValueError("the requests name no placeholder MAC")
        data = data.replace(old, new)
    return bytes(data)


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def send(pid: int | None, data: bytes, what: str) -> None:
    """Send requests in the namespace of process `pid` (None: ours); raise on any refusal.

    The kernel handles a write's messages in order and answers each (NLM_F_ACK); writes are
    cut at message boundaries to fit the socket buffer.
    """
    with inside(pid):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((0, 0))
        for chunk, answers in _writes(data):
            sock.sendto(chunk, (0, 0))
            _read_answers(sock, answers, what)


def _writes(data: bytes, most: int = 128 << 10) -> Iterator[tuple[bytes, int]]:
    """`data` cut at message boundaries into writes of at most `most` bytes (or one
    message), each with the number of answers it asks for."""
    start = end = answers = 0
    for offset, length, _ in messages(data):
        if end > start and offset + length - start > most:
            yield data[start:end], answers
            start, answers = offset, 0
        end = offset + ((length + 3) & ~3)
        answers += bool(NLMSG.unpack_from(data, offset)[2] & NLM_F_ACK)
    if end > start:
        yield data[start:end], answers


def _read_answers(sock: socket.socket, pending: int, what: str) -> None:
    while pending:
        data = sock.recv(1 << 20)
        for offset, _, kind in messages(data):
            if kind != NLMSG_ERROR:
                continue
            pending -= 1
            code = -struct.unpack_from("=i", data, offset + NLMSG.size)[0]
            if code:
                raise OSError(code, f"{what}: {os.strerror(code)} "
                                    f"({errno.errorcode.get(code, code)})")
