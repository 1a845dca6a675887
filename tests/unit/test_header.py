"""Tests for traffic.header: the scapy layer, the struct derived from it and frame templates."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from traffic.header import (
    DATA,
    ETHER_IP_UDP,
    FIELD_NAMES,
    FRAME_OVERHEAD,
    HEADER,
    MAGIC,
    PORT,
    VERSION,
    FrameTemplate,
    Netwall,
    frame_payload,
    frames_for,
    wire_bytes,
)

ADDRS = ("02:4e:00:00:00:00", "02:4e:00:01:00:00", "10.77.0.1", "10.77.0.2")

# One header's worth of distinct values, each near the top of its field's range.
VALUES = {
    "magic": MAGIC,
    "version": VERSION,
    "kind": DATA,
    "comm": 0xBEEF,
    "step": 65534,
    "op": 0xFFFF_FFF0,
    "src": 513,
    "dst": 1027,
    "offset": (1 << 40) + 12,
    "length": 64940,
    "seq": 0x7FFF_0001,
    "sent": (1 << 62) + 7,
}


def test_header_is_40_bytes_of_the_declared_fields():
    # magic, version, kind, comm, step, op, src, dst, offset, length, seq, sent by field width.
    assert HEADER.size == 2 + 1 + 1 + 2 + 2 + 4 + 2 + 2 + 8 + 4 + 4 + 8
    assert HEADER.size == len(bytes(Netwall()))
    assert tuple(f.name for f in Netwall.fields_desc) == FIELD_NAMES
    assert tuple(VALUES) == FIELD_NAMES
    assert HEADER.format.startswith("!")  # network byte order, no padding


def test_struct_and_scapy_agree_on_field_order():
    packed = HEADER.pack(*(VALUES[name] for name in FIELD_NAMES))
    assert packed == bytes(Netwall(**VALUES))
    layer = Netwall(packed)
    for name, value in VALUES.items():
        assert layer.getfieldval(name) == value
    assert HEADER.unpack(bytes(Netwall(**VALUES))) == tuple(VALUES.values())


def test_defaults_carry_magic_and_version():
    magic, version, kind, *rest = HEADER.unpack(bytes(Netwall()))
    assert (magic, version, kind) == (0x4E57, VERSION, 1)
    assert VERSION == 2  # 2 added `sent`: an agent of version 1 must drop these frames
    assert rest == [0] * (len(FIELD_NAMES) - 3)
    assert bytes(Netwall())[:2] == b"NW"


def test_struct_rejects_out_of_range_values():
    values = dict(VALUES, step=1 << 16)  # step is a 16-bit field
    with pytest.raises(struct.error):
        HEADER.pack(*(values[name] for name in FIELD_NAMES))


def test_overhead_constants():
    assert ETHER_IP_UDP == 14 + 20 + 8
    assert FRAME_OVERHEAD - HEADER.size == 14 + 20 + 8


@pytest.mark.parametrize("payload_len", [0, 1, 100, 1400, 8960, 64940])
def test_template_frame_dissects_with_scapy(payload_len):
    template = FrameTemplate(*ADDRS)
    prefix = template.prefix(payload_len)
    assert len(prefix) == ETHER_IP_UDP
    payload = bytes(range(256)) * (payload_len // 256) + bytes(range(payload_len % 256))
    wire = prefix + HEADER.pack(*(VALUES[name] for name in FIELD_NAMES)) + payload
    frame = Ether(wire)

    assert frame[Ether].src == ADDRS[0]
    assert frame[Ether].dst == ADDRS[1]
    assert frame[IP].src == ADDRS[2]
    assert frame[IP].dst == ADDRS[3]
    assert frame[IP].len == 20 + 8 + HEADER.size + payload_len
    assert frame[IP].proto == 17
    assert frame[IP].flags == "DF"
    assert frame[IP].ttl == 64
    assert frame[UDP].len == 8 + HEADER.size + payload_len
    assert frame[UDP].sport == PORT and frame[UDP].dport == PORT
    assert frame[UDP].chksum == 0  # "no checksum": the prefix stays valid for any header

    assert frame.haslayer(Netwall), "UDP dport 47000 must bind the Netwall layer"
    for name, value in VALUES.items():
        assert frame[Netwall].getfieldval(name) == value
    assert bytes(frame[Netwall].payload) == payload


@pytest.mark.parametrize("payload_len", [0, 77, 1400, 64940])
def test_template_ip_checksum_is_valid(payload_len):
    prefix = FrameTemplate(*ADDRS).prefix(payload_len)
    ip = Ether(prefix + bytes(HEADER.size + payload_len))[IP]
    shipped = ip.chksum
    fresh = ip.copy()
    del fresh.chksum
    assert IP(bytes(fresh)).chksum == shipped
    # And by RFC 1071: the one's complement sum over the 20-byte header is 0xffff.
    header = prefix[14:34]
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, 20, 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF


def test_other_udp_ports_do_not_bind_the_layer():
    frame = Ether(bytes(Ether() / IP() / UDP(sport=PORT, dport=PORT + 1) / bytes(Netwall())))
    assert not frame.haslayer(Netwall)


def test_prefix_is_cached_per_length():
    template = FrameTemplate(*ADDRS)
    first = template.prefix(1000)
    assert template.prefix(1000) is first
    other = template.prefix(1001)
    assert other is not first
    assert other != first  # lengths and checksum differ
    assert template.prefix(1001) is other
    assert template.prefix(1000) is first


def test_templates_for_different_peers_differ():
    a = FrameTemplate(*ADDRS).prefix(500)
    b = FrameTemplate(ADDRS[0], "02:4e:00:02:00:00", ADDRS[2], "10.77.0.3").prefix(500)
    assert a != b
    assert Ether(b + bytes(HEADER.size + 500))[IP].dst == "10.77.0.3"


@pytest.mark.parametrize("mtu", [1500, 9000, 65000])
def test_frame_payload_fills_the_mtu_in_whole_widest_elements(mtu):
    payload = frame_payload(mtu)
    assert payload % 8 == 0 and mtu - 8 < payload + 20 + 8 + HEADER.size <= mtu
    prefix = FrameTemplate(*ADDRS).prefix(payload)
    assert mtu - 8 < Ether(prefix + bytes(HEADER.size + payload))[IP].len <= mtu


@pytest.mark.parametrize(
    "length,payload,frames",
    [(0, 100, 0), (1, 100, 1), (99, 100, 1), (100, 100, 1), (101, 100, 2), (1000, 100, 10),
     (1001, 100, 11), (1 << 20, 64940, 17)],
)
def test_frames_for_is_a_ceiling(length, payload, frames):
    assert frames_for(length, payload) == frames


@pytest.mark.parametrize("length,payload", [(0, 100), (1, 100), (100, 100), (101, 100),
                                            (1 << 20, 64940), (12345, 1440)])
def test_wire_bytes_adds_one_overhead_per_frame(length, payload):
    frames = (length + payload - 1) // payload
    assert wire_bytes(length, payload) == length + frames * (14 + 20 + 8 + HEADER.size)


def test_wire_bytes_matches_the_frames_actually_built():
    length, payload = 2500, 1000  # two full frames and a 500-byte tail
    template = FrameTemplate(*ADDRS)
    header = bytes(HEADER.size)
    sizes = [1000, 1000, 500]
    built = sum(len(template.prefix(n) + header + bytes(n)) for n in sizes)
    assert built == wire_bytes(length, payload)
