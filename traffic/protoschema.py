"""Protobuf message classes built at run time from a .proto file kept in the repository.

netwall reads Chakra execution traces with the protobuf library against Chakra's published
schema (traffic/schemas/chakra_et_def.proto). Generated _pb2 modules need protoc and pin the
protobuf runtime they were generated for; instead, this reads the .proto's plain proto3
subset (messages of scalar, enum and message fields, `repeated`, `oneof`, top-level enums)
into a FileDescriptorProto and lets the protobuf library make the classes. Anything outside
that subset is refused, so a changed schema fails loudly rather than parsing wrongly.
"""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from foundation.errors import NetwallError

F = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "double": F.TYPE_DOUBLE, "float": F.TYPE_FLOAT, "int32": F.TYPE_INT32,
    "int64": F.TYPE_INT64, "uint32": F.TYPE_UINT32, "uint64": F.TYPE_UINT64,
    "sint32": F.TYPE_SINT32, "sint64": F.TYPE_SINT64, "fixed32": F.TYPE_FIXED32,
    "fixed64": F.TYPE_FIXED64, "sfixed32": F.TYPE_SFIXED32, "sfixed64": F.TYPE_SFIXED64,
    "bool": F.TYPE_BOOL, "string": F.TYPE_STRING, "bytes": F.TYPE_BYTES,
}
_TOKEN = re.compile(r'"[^"]*"|[A-Za-z_][\w.]*|\d+|[{}=;]')
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def message_classes(path: Path) -> dict[str, type]:
    """Message name -> class, for every message of the .proto at `path`."""
    tokens = _TOKEN.findall(_COMMENT.sub(" ", path.read_text()))
    proto = descriptor_pb2.FileDescriptorProto(name=path.name, syntax="proto3")
    enums: set[str] = set()
    messages: list[tuple[descriptor_pb2.DescriptorProto, list[tuple]]] = []
    i = 0
    while i < len(tokens):
        word = tokens[i]
        if word == "syntax":
            i += 4  # syntax = "proto3" ;
        elif word == "package":
            proto.package = tokens[i + 1]
            i += 3
        elif word == "enum":
            enum = proto.enum_type.add(name=tokens[i + 1])
            enums.add(enum.name)
            i += 3
            while tokens[i] != "}":  # NAME = N ;
                enum.value.add(name=tokens[i], number=int(tokens[i + 2]))
                i += 4
            i += 1
        elif word == "message":
            message = proto.message_type.add(name=tokens[i + 1])
            fields: list[tuple] = []
            i = _fields(tokens, i + 3, fields, None)
            messages.append((message, fields))
        else:
            raise NetwallError(f"{path.name}: unsupported .proto construct {word!r}")
    names = {m.name for m, _ in messages}
    prefix = f".{proto.package}." if proto.package else "."
    for message, fields in messages:
        for label, kind, name, number, oneof in fields:
            field = message.field.add(name=name, number=number, label=label)
            if kind in SCALARS:
                field.type = SCALARS[kind]
            elif kind in enums or kind in names:
                field.type = F.TYPE_ENUM if kind in enums else F.TYPE_MESSAGE
                field.type_name = prefix + kind
            else:
                raise NetwallError(f"{path.name}: unknown type {kind!r} of {message.name}.{name}")
            if oneof is not None:
                index = [o.name for o in message.oneof_decl]
                if oneof not in index:
                    message.oneof_decl.add(name=oneof)
                    index.append(oneof)
                field.oneof_index = index.index(oneof)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"{proto.package}.{name}" if proto.package else name)) for name in names}


def _fields(tokens: list[str], i: int, out: list[tuple], oneof: str | None) -> int:
    """Read fields up to the closing brace from tokens[i]; return the index after it."""
    while tokens[i] != "}":
        if tokens[i] == "oneof":
            i = _fields(tokens, i + 3, out, tokens[i + 1])
            continue
        label = F.LABEL_OPTIONAL
        if tokens[i] == "repeated":
            label = F.LABEL_REPEATED
            i += 1
        kind, name, number = tokens[i], tokens[i + 1], int(tokens[i + 3])
        out.append((label, kind, name, number, oneof))
        i += 5  # kind name = N ;
    return i + 1
