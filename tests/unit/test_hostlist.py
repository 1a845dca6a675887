"""Host lists from a flag, a file or the environment: one line for every mistake."""

from __future__ import annotations

import pytest

from foundation.errors import NetwallError
from foundation.hostlist import MAX_HOSTS, Host, parse_host, parse_hosts, resolve_hosts


@pytest.mark.parametrize(("text", "host"), [
    ("node1", Host("node1")),
    ("root@10.0.0.2", Host("10.0.0.2", "root")),
    ("me@node-3.example.org:2222", Host("node-3.example.org", "me", 2222)),
    ("[fd00::2]:22", Host("fd00::2", None, 22)),
])
def test_hosts_parse(text, host):
    assert parse_host(text) == host
    assert parse_host(str(host)).address == host.address


@pytest.mark.parametrize(("text", "message"), [
    ("a b", "bad host 'a b'"),
    ("@node", "bad host"),
    ("node:0", "port 0 is not between"),
    ("node:99999", "port 99999 is not between"),
    ("-oProxyCommand=x", "bad host"),
])
def test_bad_hosts_are_one_line(text, message):
    with pytest.raises(NetwallError, match=message):
        parse_host(text)


def test_lists_take_commas_lines_and_comments():
    assert parse_hosts("a, b\n# spare\nc # rack 3\n") == [Host("a"), Host("b"), Host("c")]


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"), ("# none\n", "empty"), ("a,b,a", "host a is named twice"),
    (",".join(f"n{i}" for i in range(MAX_HOSTS + 1)), f"at most {MAX_HOSTS}"),
])
def test_bad_lists_are_one_line(text, message):
    with pytest.raises(NetwallError, match=message):
        parse_hosts(text)


def test_the_flag_wins_over_the_environment_and_reads_files(tmp_path):
    env = {"NETWALL_HOSTS": "x,y"}
    assert resolve_hosts(None, env) == [Host("x"), Host("y")]
    assert resolve_hosts("z", env) == [Host("z")]
    assert resolve_hosts(None, {}) is None
    listed = tmp_path / "hosts"
    listed.write_text("root@n1\nroot@n2\n")
    assert resolve_hosts(f"@{listed}", {}) == [Host("n1", "root"), Host("n2", "root")]
    with pytest.raises(NetwallError, match="not found"):
        resolve_hosts(f"@{tmp_path / 'none'}", {})


def test_the_console_refuses_a_host_list_in_one_line(capsys):
    from emulator.cli.main import main

    assert main(["cli", "--hosts", "a,b"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "netwall cli builds on this machine only" in err
