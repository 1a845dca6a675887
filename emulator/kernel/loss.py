"""Random frame loss from a tiny eBPF classifier, for kernels without netem.

netem is the usual way to drop frames at a bit-error rate; where the kernel lacks it (this
development machine) a classifier on the receiving interface does the same job: for each
frame it draws bpf_get_prandom_u32() and drops the frame (TC_ACT_SHOT) when the draw falls
below p * 2^32. It sits on the ingress of the far end, so a lost frame has still used the
wire, as a frame corrupted in flight does. Eight instructions, loaded with bpf(2) directly.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct

from emulator.kernel import nlbatch

SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine(), 321)
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SCHED_CLS = 3
CLSACT_INGRESS = 0xFFFFFFF2  # parent ffff:fff2
PRIORITY = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def instructions(probability: float) -> bytes:
    """The program: drop when a 32-bit random draw is below probability * 2^32."""
    threshold = min(int(probability * 2**32), 2**32 - 1)
    low = threshold & 0xFFFFFFFF
    return b"".join([
        _insn(0x85, imm=7),  # call bpf_get_prandom_u32 -> r0
        _insn(0x18, dst=1, imm=low - (1 << 32) if low >= 1 << 31 else low),  # r1 = threshold
        _insn(0x00, imm=threshold >> 32),  # (second half of the 64-bit load)
        _insn(0x3D, dst=0, src=1, off=2),  # if r0 >= r1 goto pass
        _insn(0xB7, dst=0, imm=2),  # r0 = TC_ACT_SHOT
        _insn(0x95),  # exit
        _insn(0xB7, dst=0, imm=0),  # pass: r0 = TC_ACT_OK
        _insn(0x95),  # exit
    ])


def load(probability: float) -> int:
    """Load the program; returns its file descriptor (the caller closes it)."""
    code = ctypes.create_string_buffer(instructions(probability))
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack("<IIQQIIQI", BPF_PROG_TYPE_SCHED_CLS, len(code.raw) // 8,
                       ctypes.addressof(code), ctypes.addressof(license_), 0, 0, 0, 0)
    attr_buf = ctypes.create_string_buffer(attr.ljust(128, b"\0"), 128)
    fd = _libc.syscall(SYS_BPF, BPF_PROG_LOAD, attr_buf, 128)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf(BPF_PROG_LOAD): {os.strerror(err)}")
    return fd


def first_filter(fd: int) -> bytes:
    """The requests that give a fresh interface its loss filter (program `fd`), compiled for
    nlbatch.stamp: a clsact qdisc, then the classifier on its ingress."""
    def requests(ipr) -> None:
        ipr.tc("add", "clsact", nlbatch.PLACEHOLDER)
        _replace_filter(ipr, nlbatch.PLACEHOLDER, fd)

    return nlbatch.compile_requests(requests)


def attach(ipr, index: int, probability: float) -> None:
    """Drop a fraction `probability` (0 to 1) of the frames arriving on interface `index`,
    replacing any earlier loss filter there in one atomic swap: taking a filter away and
    adding another would drop frames in between, on a live link. (A network's first filters
    go in bulk: first_filter.)"""
    fd = load(probability)
    try:
        with contextlib.suppress(Exception):  # clsact may be there already
            ipr.tc("add", "clsact", index)
        _replace_filter(ipr, index, fd)
    finally:
        os.close(fd)


def _replace_filter(ipr, index: int, fd: int) -> None:
    # A fixed priority makes "replace" find the filter it replaces.
    ipr.tc("replace-filter", "bpf", index, ":1", fd=fd, name="netwall-loss",
           parent=CLSACT_INGRESS, direct_action=True, prio=PRIORITY)
