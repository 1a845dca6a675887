"""The safe writer (foundation.outputs): regular files replaced atomically, devices and
FIFOs written in place and never replaced, links to anything else refused, and names from
data that can never leave the directory the user gave."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foundation.errors import NetwallError
from foundation.outputs import MAX_NAME, inside, safe_name, write_file


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_a_safe_name_is_one_harmless_component(text):
    name = safe_name(text)
    assert name and len(name) <= MAX_NAME and "/" not in name and "\0" not in name
    assert not name.startswith(".") and name not in (".", "..")
    assert name.isascii() and safe_name(name) == name  # stable: safe names stay as they are


@given(st.lists(st.text(max_size=40), min_size=1, max_size=4))
@settings(max_examples=200, deadline=None)
def test_inside_never_leaves_the_directory(names):
    root = Path("/tmp/netwall-out")
    path = inside(root, *names)
    assert path.parent == root or root in path.parents
    assert ".." not in path.relative_to(root).parts


def test_names_that_climb_are_kept_in_and_distinct():
    assert safe_name("x/../../../..") != safe_name("x_.._.._.._..")
    assert inside("/out", "busbw-x/../../../..-ring.png").parent == Path("/out")
    assert safe_name("allreduce") == "allreduce"


def test_a_regular_file_is_replaced_and_a_link_to_one_refused(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep me")
    link = tmp_path / "out.csv"
    link.symlink_to(target)
    with pytest.raises(NetwallError, match=r"out.csv: it is a symbolic link"):
        write_file(link, "new")
    assert target.read_text() == "keep me" and link.is_symlink()
    assert write_file(tmp_path / "plain", "one").read_text() == "one"
    assert write_file(tmp_path / "plain", "two").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "plain", "precious"]


def test_a_character_device_is_written_in_place_never_replaced():
    before = os.stat("/dev/null")
    write_file("/dev/null", "nothing")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino
    with pytest.raises(NetwallError, match=r"^cannot write /dev/full: No space left on device$"):
        write_file("/dev/full", "x")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_fifo_is_written_in_place_and_one_nobody_reads_is_one_line(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NetwallError, match="pipe: no process reads it"):
        write_file(fifo, "x")
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is there now
    try:
        write_file(fifo, "through the pipe")
        got = [os.read(reader, 100).decode()]
    finally:
        os.close(reader)
    assert got == ["through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_link_to_a_device_is_written_through_and_kept(tmp_path):
    link = tmp_path / "sink"
    link.symlink_to("/dev/null")
    write_file(link, "gone")
    assert link.is_symlink() and os.readlink(link) == "/dev/null"


def test_a_socket_and_a_directory_are_refused(tmp_path):
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(NetwallError, match="not a regular file, a character device"):
            write_file(tmp_path / "sock", "x")
    with pytest.raises(NetwallError, match="it is a directory"):
        write_file(tmp_path, "x")
