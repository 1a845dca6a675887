"""Batched netlink: requests compiled once, stamped per interface, sent in one write."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest

from emulator.kernel import nlbatch, shaping
from emulator.models.dilation import link_shape
from emulator.models.plan import FRAME_BYTES


def test_the_compiled_tree_is_three_requests_for_the_placeholder(copper_shape):
    data = shaping.compiled(copper_shape, False, FRAME_BYTES)
    kinds = [kind for _, _, kind in nlbatch.messages(data)]
    assert kinds == [36, 40, 36]  # new qdisc (htb), new class, new qdisc (pfifo)
    assert shaping.compiled(copper_shape, False, FRAME_BYTES) is data  # encoded once per shape


def test_stamp_aims_every_request_and_changes_nothing_else(copper_shape):
    data = shaping.compiled(copper_shape, False, FRAME_BYTES)
    stamped = nlbatch.stamp(data, 4242)
    assert len(stamped) == len(data)
    for offset, _, _ in nlbatch.messages(stamped):
        assert nlbatch.IFINDEX.unpack_from(
            stamped, offset + nlbatch.NLMSG.size + nlbatch.IFINDEX_AT)[0] == 4242
    changed = [i for i, (a, b) in enumerate(zip(data, stamped, strict=True)) if a != b]
    assert len(changed) <= 3 * 4  # only the index fields
    with pytest.raises(ValueError, match="placeholder"):
        nlbatch.stamp(stamped, 1)  # already aimed somewhere


def test_stamp_writes_index_and_mac_and_keeps_the_family():
    entry = nlbatch.compile_requests(
        lambda b: b.fdb("add", ifindex=nlbatch.PLACEHOLDER, lladdr=nlbatch.PLACEHOLDER_MAC,
                        state=0x40, flags=0x04))
    stamped = nlbatch.stamp(entry, 7, "02:4e:00:00:01:02")
    family, index = struct.unpack_from("=B3xi", stamped, nlbatch.NLMSG.size)
    assert (family, index) == (7, 7)  # AF_BRIDGE: a forwarding entry, not a neighbour
    assert bytes.fromhex("024e00000102") in stamped
    assert bytes.fromhex("02bad0000001") not in stamped
    with pytest.raises(ValueError, match="placeholder MAC"):
        nlbatch.stamp(shaping.compiled(replace(link_shape(1, 0, 0, 10 ** 6, dilation=1,
                                                          frame_bytes=FRAME_BYTES)),
                                       False, FRAME_BYTES), 3, "02:4e:00:00:00:01")


def test_writes_cut_at_message_boundaries_and_count_the_answers(copper_shape):
    tree = shaping.compiled(copper_shape, False, FRAME_BYTES)  # three requests, each answered
    data = b"".join(nlbatch.stamp(tree, i) for i in range(1, 41))
    writes = list(nlbatch._writes(data, most=len(tree) * 4))
    assert b"".join(chunk for chunk, _ in writes) == data
    assert all(len(chunk) <= len(tree) * 4 for chunk, _ in writes)
    assert sum(answers for _, answers in writes) == 3 * 40
    assert all(answers == len(nlbatch.messages(chunk)) for chunk, answers in writes)
    assert list(nlbatch._writes(b"")) == []
