"""Batched netlink on real interfaces: a compiled tree stamped onto two veth ends in a fresh
network namespace shapes both, and the kernel's refusal is an error (root)."""

from __future__ import annotations

import subprocess

import pytest

from emulator.kernel import nlbatch, shaping
from emulator.models.plan import FRAME_BYTES


@pytest.mark.root
def test_a_batch_shapes_real_interfaces_and_a_refusal_is_an_error(copper_shape):
    holder = subprocess.Popen(["unshare", "--net", "sh", "-c",
                               "ip link add name va type veth peer name vb; echo up; sleep 60"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "up"
        links = subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "ip", "-o", "link"],
                               capture_output=True, text=True, check=True).stdout
        index = {line.split(": ")[1].split("@")[0]: int(line.split(":")[0])
                 for line in links.splitlines()}
        tree = shaping.compiled(copper_shape, False, FRAME_BYTES)
        nlbatch.send(holder.pid, nlbatch.stamp(tree, index["va"]) +
                     nlbatch.stamp(tree, index["vb"]), "test")
        classes = subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "tc", "class",
                                  "show", "dev", "vb"], capture_output=True, text=True).stdout
        assert f"rate {copper_shape.rate_bps // 1_000_000}Mbit" in classes
        qdiscs = subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "tc", "qdisc",
                                 "show", "dev", "va"], capture_output=True, text=True).stdout
        assert "limit 77p" in qdiscs
        with pytest.raises(OSError, match="again: File exists"):
            nlbatch.send(holder.pid, nlbatch.stamp(tree, index["va"]), "again")
    finally:
        holder.kill()
        holder.wait()
