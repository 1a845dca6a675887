"""The per-GPU agent: one process inside each Mininet host, moving a rank's share of a collective.

Started once per emulation (`python -m traffic.agent`), it speaks JSON lines on stdin/stdout:

    -> {"rank": 0, "peers": {"1": {"iface": ..., "src_mac": ..., "dst_mac": ..., ...}}, ...}
    <- {"ready": true}
    -> {"cmd": "run", "op": 0, "iters": 5, "start": <CLOCK_MONOTONIC>, "size": ..., "moves": [...]}
    <- {"ok": true, "ends": [...], ...}   or   {"ok": false, "error": "..."}

Frames go out as bytes on one reused AF_PACKET socket per egress interface, so they pass the
interface's qdisc (the link shaping) like any other traffic; the Ether/IP/UDP prefix comes
from scapy once per peer and payload length. They arrive on a UDP socket: the kernel routes
them hop by hop (GPU hosts forward in ring and mesh topologies) and hands this process only
its own. A step's sends start once everything the rank receives in earlier steps has arrived.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time
from dataclasses import dataclass, field, replace

import numpy as np

from traffic.header import DATA, HEADER, MAGIC, PORT, VERSION, FrameTemplate, frame_payload
from traffic.schedule import ELEMENT, expected_result, initial_buffer

SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
RCVBUF = 256 << 20


@dataclass
class Send:
    """A move this rank sends: the frames still to hand to the kernel."""

    step: int
    peer: int
    src_offset: int
    dst_offset: int
    length: int
    sent: int = 0  # payload bytes handed to the kernel so far
    seq: int = 0


@dataclass
class Expect:
    """What this rank waits for in one step: bytes still to arrive, per sending rank."""

    remaining: dict[int, int] = field(default_factory=dict)
    reduce: dict[int, bool] = field(default_factory=dict)


class Agent:
    def __init__(self, config: dict) -> None:
        self.rank: int = config["rank"]
        self.payload = frame_payload(config["mtu"]) // ELEMENT * ELEMENT
        self.peers: dict[int, dict] = {int(k): v for k, v in config["peers"].items()}
        self.templates = {
            peer: FrameTemplate(p["src_mac"], p["dst_mac"], p["src_ip"], p["dst_ip"])
            for peer, p in self.peers.items()
        }
        self.tx: dict[str, socket.socket] = {}
        for iface in sorted({p["iface"] for p in self.peers.values()}):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: send only
            s.bind((iface, 0))
            # A small send buffer makes the qdisc push back (EAGAIN) instead of dropping.
            s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 4 * config["mtu"])
            s.setblocking(False)
            self.tx[iface] = s
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        self.rx.bind(("0.0.0.0", PORT))
        self.rx.setblocking(False)
        self.staging = bytearray(65536)
        self.header = bytearray(HEADER.size)
        self.stash: list[tuple[tuple, bytes]] = []  # frames of later steps or ops
        self.frames_sent = 0
        self.frames_received = 0

    # -- one collective call -------------------------------------------------------------
    def run(self, cmd: dict) -> dict:
        self.timeout = cmd["timeout"]
        size = cmd["size"]
        steps = cmd["steps"]
        sends: list[list[Send]] = [[] for _ in range(steps)]
        expects = [Expect() for _ in range(steps)]
        for step, src, dst, src_off, dst_off, length, reduce in cmd["moves"]:
            if src == self.rank:
                sends[step].append(Send(step, dst, src_off, dst_off, length))
            if dst == self.rank:
                expects[step].remaining[src] = expects[step].remaining.get(src, 0) + length
                expects[step].reduce[src] = bool(reduce)
        initial = initial_buffer(self.rank, size)
        self.buf = np.empty_like(initial)
        self.bytes = self.buf.view(np.uint8)
        ends = []
        _sleep_until(cmd["start"])
        for i in range(cmd["iters"]):
            op = cmd["op"] + i
            self.buf[:] = initial
            for s in range(steps):
                pending = [replace(m) for m in sends[s]]
                expect = Expect(dict(expects[s].remaining), expects[s].reduce)
                self._step(op, s, pending, expect)
            ends.append(time.monotonic())
        result: dict = {"ok": True, "ends": ends, "frames_sent": self.frames_sent,
                        "frames_received": self.frames_received}
        if cmd.get("check"):
            expected = expected_result(cmd["collective"], cmd["ranks"], size, self.rank)
            result["check"] = bool(np.array_equal(self.buf, expected))
        return result

    def _step(self, op: int, step: int, pending: list[Send], expect: Expect) -> None:
        self._replay_stash(op, step, expect)
        last_progress = time.monotonic()
        while pending or any(expect.remaining.values()):
            progress = self._send_some(op, pending) | self._receive_some(op, step, expect)
            now = time.monotonic()
            if progress:
                last_progress = now
                continue
            if now - last_progress > self.timeout:
                waiting = {src: n for src, n in expect.remaining.items() if n}
                raise TimeoutError(
                    f"rank {self.rank}: no progress for {self.timeout:g} s in op {op} step {step}"
                    f" (waiting for bytes {waiting} by sending rank, {len(pending)} sends pending)"
                )
            self._wait(pending)

    def _send_some(self, op: int, pending: list[Send]) -> bool:
        """Hand frames to the kernel, round-robin over this step's sends, until it pushes back."""
        progress = False
        while pending:
            for move in list(pending):
                length = min(self.payload, move.length - move.sent)
                peer = self.peers[move.peer]
                HEADER.pack_into(self.header, 0, MAGIC, VERSION, DATA, 0, move.step, op,
                                 self.rank, move.peer, move.dst_offset + move.sent, length,
                                 move.seq)
                start = move.src_offset + move.sent
                try:
                    self.tx[peer["iface"]].sendmsg([
                        self.templates[move.peer].prefix(length),
                        self.header,
                        self.bytes[start:start + length],
                    ])
                except BlockingIOError:
                    return progress
                progress = True
                self.frames_sent += 1
                move.sent += length
                move.seq += 1
                if move.sent == move.length:
                    pending.remove(move)
        return progress

    def _receive_some(self, op: int, step: int, expect: Expect) -> bool:
        progress = False
        while True:
            try:
                n = self.rx.recv_into(self.staging)
            except BlockingIOError:
                return progress
            progress = True
            if n < HEADER.size:
                continue
            fields = HEADER.unpack_from(self.staging, 0)
            magic, version, _kind, _comm, f_step, f_op, src, _dst, offset, length, _seq = fields
            if magic != MAGIC or version != VERSION or n != HEADER.size + length:
                continue
            self.frames_received += 1
            if (f_op, f_step) == (op, step):
                self._apply(expect, src, offset, memoryview(self.staging)[HEADER.size:n])
            elif (f_op, f_step) > (op, step):
                self.stash.append(((f_op, f_step, src, offset),
                                   bytes(self.staging[HEADER.size:n])))

    def _replay_stash(self, op: int, step: int, expect: Expect) -> None:
        keep = []
        for key, data in self.stash:
            if key[:2] == (op, step):
                self._apply(expect, key[2], key[3], memoryview(data))
            else:
                keep.append((key, data))
        self.stash = keep

    def _apply(self, expect: Expect, src: int, offset: int, data: memoryview) -> None:
        if expect.remaining.get(src, 0) < len(data):
            return  # a duplicate or a frame this step does not expect
        expect.remaining[src] -= len(data)
        target = self.buf[offset // ELEMENT: (offset + len(data)) // ELEMENT]
        incoming = np.frombuffer(data, dtype=np.float32)
        if expect.reduce[src]:
            target += incoming
        else:
            target[:] = incoming

    def _wait(self, pending: list[Send]) -> None:
        writers = list({self.tx[self.peers[m.peer]["iface"]] for m in pending})
        select.select([self.rx], writers, [], 0.05)


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _reply(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    agent = Agent(json.loads(sys.stdin.readline()))
    _reply({"ready": True, "rank": agent.rank})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "exit":
            break
        try:
            _reply(agent.run(cmd))
        except TimeoutError as e:
            _reply({"ok": False, "error": str(e)})


if __name__ == "__main__":
    main()
