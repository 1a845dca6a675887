"""Chakra execution trace files written as Chakra's protolib writes them (a varint length
before each message, a GlobalMetadata first, then Nodes), from the schema netwall reads, for
the tests and benchmarks of traffic.chakra."""

from __future__ import annotations

import zlib
from pathlib import Path

from traffic.chakra import COLL, COMP, SCHEMA
from traffic.protoschema import message_classes

PB = message_classes(SCHEMA)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def attr(name: str, value: object) -> object:
    kind = {int: "int64_val", str: "string_val", bool: "bool_val"}[type(value)]
    if kind == "int64_val" and value >= 2**63:
        kind = "uint64_val"
    return PB["AttributeProto"](name=name, **{kind: value})


def node(nid: int, kind: int, deps=(), micros: int = 0, name: str = "", **attrs) -> object:
    return PB["Node"](id=nid, name=name or f"n{nid}", type=kind, ctrl_deps=list(deps),
                      duration_micros=micros, attr=[attr(k, v) for k, v in attrs.items()])


def allreduce(nid: int, deps=(), size: int = 4096, pg: str = "dp", **attrs) -> object:
    return node(nid, COLL, deps, comm_type=0, comm_size=size, pg_name=pg, **attrs)


def et_bytes(nodes: list, version: str = "0.0.4") -> bytes:
    data = bytearray()
    for message in [PB["GlobalMetadata"](version=version), *nodes]:
        body = message.SerializeToString()
        data += varint(len(body)) + body
    return bytes(data)


def chain(n: int) -> list:
    """n collectives, each followed by compute that waits for it and for the compute before:
    the set of calls the compute waits for grows by one per step."""
    graph = []
    for i in range(n):
        graph.append(allreduce(2 * i + 1, size=64, pg="p"))
        graph.append(node(2 * i + 2, COMP, [2 * i, 2 * i + 1] if i else [1], micros=1))
    return graph


def bomb(path: Path, mib: int) -> Path:
    """A small gzip file that inflates to `mib` MiB of valid messages (1 MiB each)."""
    big = node(1, COMP, micros=1, name="a" * (1 << 20))
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = packer.compress(et_bytes([]))
    for i in range(mib):
        big.id = i + 1
        body = big.SerializeToString()
        data += packer.compress(varint(len(body)) + body)
    path.write_bytes(data + packer.flush())
    return path
