"""netwall's wire header, declared once as a scapy layer.

Frames are Ether / IPv4 / UDP(dport=PORT) / Netwall / payload. scapy builds each distinct
frame header once (see FrameTemplate); the agents' hot path only patches the few fields that
change per frame with a struct derived from the same `fields_desc`, so the layer stays the
single definition of the format and scapy can still dissect captures.
"""

from __future__ import annotations

import struct

from scapy.fields import ByteEnumField, ByteField, IntField, LongField, ShortField, XShortField
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, bind_layers

from traffic.collectives.base import WIDEST

PORT = 47000
MAGIC = 0x4E57  # "NW"
VERSION = 2  # 2: `sent`, when each frame was due to leave
DATA, ACK, NACK = 1, 2, 3  # a payload frame; "transfer complete"; "resend these frames"
KINDS = {DATA: "data", ACK: "ack", NACK: "nack"}


class Netwall(Packet):
    """One frame's worth of a collective: which operation, step and buffer bytes it carries."""

    name = "Netwall"
    fields_desc = [
        XShortField("magic", MAGIC),
        ByteField("version", VERSION),
        ByteEnumField("kind", DATA, KINDS),
        ShortField("comm", 0),  # communicator
        ShortField("step", 0),  # step of the schedule this frame belongs to
        IntField("op", 0),  # operation number within the run (iterations count up)
        ShortField("src", 0),  # sending rank
        ShortField("dst", 0),  # receiving rank
        LongField("offset", 0),  # byte offset of the payload in the receiver's buffer
        IntField("length", 0),  # payload bytes in this frame
        IntField("seq", 0),  # frame number within (op, step, src -> dst)
        # When the frame was due to leave its sender, ns after the program's start (see
        # traffic.pacing.Wire): late senders' frames carry the time they were due.
        LongField("sent", 0),
    ]


bind_layers(UDP, Netwall, dport=PORT)

#: The header as a struct, derived from fields_desc so the two can never disagree.
HEADER = struct.Struct("!" + "".join(f.fmt.lstrip("!<>=") for f in Netwall.fields_desc))
FIELD_NAMES = tuple(f.name for f in Netwall.fields_desc)
ETHER_IP_UDP = 14 + 20 + 8
#: Bytes a frame adds on the wire (as the kernel counts them on veth) beyond its payload.
FRAME_OVERHEAD = ETHER_IP_UDP + HEADER.size


def frame_payload(mtu: int) -> int:
    """Largest payload per frame on a link of this MTU (IP packet at most MTU bytes), in whole
    elements of the widest datatype (WIDEST bytes), so no element is cut between two frames
    and every frame reduces whole elements."""
    return (mtu - 20 - 8 - HEADER.size) // WIDEST * WIDEST


def frame_data(payload: int, efficiency: float = 1.0) -> int:
    """Data bytes one frame of `payload` bytes carries when a protocol of this efficiency
    (data bytes per wire byte) pads it: the padding and the data together fill it."""
    if efficiency >= 1:
        return payload
    return max(WIDEST, int(payload * efficiency) // WIDEST * WIDEST)


def padding(length: int, efficiency: float) -> int:
    """Bytes a protocol adds after `length` data bytes in one frame (LL, at 0.5, doubles
    them: its flags travel on real GPUs' links too)."""
    return round(length * (1 / efficiency - 1)) if efficiency < 1 else 0


def frames_for(length: int, payload: int) -> int:
    """Frames needed to carry `length` payload bytes."""
    return -(-length // payload)


def wire_bytes(length: int, payload: int, efficiency: float = 1.0) -> int:
    """Bytes a transfer of `length` data bytes puts on each link it crosses, in frames of
    `payload` bytes at most, padded by a protocol of this efficiency."""
    data = frame_data(payload, efficiency)
    full, tail = divmod(length, data)
    frames = full + bool(tail)
    return (length + full * padding(data, efficiency) + padding(tail, efficiency)
            + frames * FRAME_OVERHEAD)


class FrameTemplate:
    """The Ether/IP/UDP part of every frame from one rank to one peer, built once by scapy.

    Only the payload length changes IP/UDP length fields and the IP checksum, so a template
    caches one prefix per payload length (a transfer uses at most two: full frames and the tail).
    """

    def __init__(self, src_mac: str, dst_mac: str, src_ip: str, dst_ip: str) -> None:
        self._addrs = (src_mac, dst_mac, src_ip, dst_ip)
        self._prefix: dict[int, bytes] = {}

    def prefix(self, payload_len: int) -> bytes:
        """Ether+IP+UDP bytes for a frame carrying `payload_len` bytes after the Netwall header."""
        cached = self._prefix.get(payload_len)
        if cached is None:
            src_mac, dst_mac, src_ip, dst_ip = self._addrs
            frame = (
                Ether(src=src_mac, dst=dst_mac)
                / IP(src=src_ip, dst=dst_ip, id=0, flags="DF", ttl=64)
                / UDP(sport=PORT, dport=PORT, chksum=0)
                / Netwall()
                / bytes(payload_len)
            )
            cached = bytes(frame)[:ETHER_IP_UDP]
            self._prefix[payload_len] = cached
        return cached
