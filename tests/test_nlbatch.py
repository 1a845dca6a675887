"""Batched netlink: requests compiled once, stamped per interface, sent in one write."""

from __future__ import annotations

import struct
import subprocess
from dataclasses import replace

import pytest

from emulator.kernel import nlbatch, shaping
from emulator.models.dilation import link_shape
from emulator.models.plan import FRAME_BYTES
from emulator.models.profiles import catalogue


@pytest.fixture
def shape():
    profile = catalogue()["copper-800g"]
    return replace(link_shape(profile.rate_gbps, 0, 0, profile.queue_bytes, dilation=2000,
                              frame_bytes=FRAME_BYTES), limit_packets=77)


def test_the_compiled_tree_is_three_requests_for_the_placeholder(shape):
    data = shaping.compiled(shape, False, FRAME_BYTES)
    kinds = [kind for _, _, kind in nlbatch.messages(data)]
    assert kinds == [36, 40, 36]  # new qdisc (htb), new class, new qdisc (pfifo)
    assert shaping.compiled(shape, False, FRAME_BYTES) is data  # encoded once per shape


def test_stamp_aims_every_request_and_changes_nothing_else(shape):
    data = shaping.compiled(shape, False, FRAME_BYTES)
    stamped = nlbatch.stamp(data, 4242)
    assert len(stamped) == len(data)
    for offset, _, _ in nlbatch.messages(stamped):
        assert nlbatch.IFINDEX.unpack_from(
            stamped, offset + nlbatch.NLMSG.size + nlbatch.IFINDEX_AT)[0] == 4242
    changed = [i for i, (a, b) in enumerate(zip(data, stamped, strict=True)) if a != b]
    assert len(changed) <= 3 * 4  # only the index fields
    with pytest.raises(ValueError, match="placeholder"):
        nlbatch.stamp(stamped, 1)  # already aimed somewhere


@pytest.mark.root
def test_a_batch_shapes_real_interfaces_and_a_refusal_is_an_error(shape):
    holder = subprocess.Popen(["unshare", "--net", "sh", "-c",
                               "ip link add name va type veth peer name vb; echo up; sleep 60"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "up"
        links = subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "ip", "-o", "link"],
                               capture_output=True, text=True, check=True).stdout
        index = {line.split(": ")[1].split("@")[0]: int(line.split(":")[0])
                 for line in links.splitlines()}
        tree = shaping.compiled(shape, False, FRAME_BYTES)
        nlbatch.send(holder.pid, nlbatch.stamp(tree, index["va"]) +
                     nlbatch.stamp(tree, index["vb"]), "test")
        classes = subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "tc", "class",
                                  "show", "dev", "vb"], capture_output=True, text=True).stdout
        assert f"rate {shape.rate_bps // 1_000_000}Mbit" in classes
        qdiscs = subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "tc", "qdisc",
                                 "show", "dev", "va"], capture_output=True, text=True).stdout
        assert "limit 77p" in qdiscs
        with pytest.raises(OSError, match="again: File exists"):
            nlbatch.send(holder.pid, nlbatch.stamp(tree, index["va"]), "again")
    finally:
        holder.kill()
        holder.wait()


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


def test_writes_cut_at_message_boundaries_and_count_the_answers(shape):
    tree = shaping.compiled(shape, False, FRAME_BYTES)  # three requests, each asking an answer
    data = b"".join(nlbatch.stamp(tree, i) for i in range(1, 41))
    writes = list(nlbatch._writes(data, most=len(tree) * 4))
    assert b"".join(chunk for chunk, _ in writes) == data
    assert all(len(chunk) <= len(tree) * 4 for chunk, _ in writes)
    assert sum(answers for _, answers in writes) == 3 * 40
    assert all(answers == len(nlbatch.messages(chunk)) for chunk, answers in writes)
    assert list(nlbatch._writes(b"")) == []
