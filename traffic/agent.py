"""The per-GPU agent: one process inside each Mininet host, moving a rank's share of collectives.

Started once per emulation (`python -m traffic.agent`), it speaks the messages of
traffic.protocol, one JSON line each, on stdin/stdout:

    -> Setup (its rank and peers)           <- Ready
    -> Load (a program)                     <- Loaded
    -> Go (start at a CLOCK_MONOTONIC time)  <- Report, or Failure
    -> Exit

What a rank does (calls, steps, streams, groups, reliable delivery, the GPU's costs, the
wire's pacing) is traffic.machine's, a state machine with no I/O; this module is the thin
loop around it: sockets, the wait, kernel timestamps and the launcher's pipe. One
CLOCK_MONOTONIC serves every namespace; the machine's clock is it plus the compute gaps the
agents of this host skipped together (traffic.gaps), which a jump's SIGUSR1 makes an agent
read again.

Frames go out as bytes on one reused AF_PACKET socket per egress interface, so they pass the
interface's qdisc (the link shaping); the Ether/IP/UDP prefix comes from scapy once per peer
and payload length. They arrive on a UDP socket (the kernel routes them hop by hop), each
with the kernel's receive time (SO_TIMESTAMPNS), from which the machine paces it.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import gc
import os
import select
import signal
import socket
import struct
import sys
import time

import numpy as np

from traffic.board import Board
from traffic.gaps import RankClock, SharedClock
from traffic.header import ETHER_IP_UDP, HEADER, PORT, FrameTemplate
from traffic.machine import LINK_DOWN, PUSHBACK, QUEUE_FULL, SENT, Machine
from traffic.protocol import (
    Exit,
    Failure,
    Go,
    Load,
    Loaded,
    Message,
    Ready,
    Report,
    Setup,
    decode,
    encode,
)

SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
#: Linux's socket option (and control message) for a receive timestamp in nanoseconds,
#: CLOCK_REALTIME as two 64-bit integers; Python's socket module does not name it.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("=qq")
RCVBUF = 256 << 20
SOL_PACKET, PACKET_VNET_HDR = 263, 15
# A virtio-net header with no offloads and hdr_len = the frame's headers: AF_PACKET then puts
# only the headers in the skb's linear part and the payload in page fragments, sparing the
# kernel a 128 KB high-order allocation per 65 KB frame.
VNET_HDR = struct.pack("<BBHHHH", 0, 0, ETHER_IP_UDP + HEADER.size, 0, 0, 0)
DOWN_ERRNOS = (errno.ENETDOWN, errno.ENXIO)  # the interface is down or gone
PR_SET_TIMERSLACK = 29  # prctl(2)


class Agent:
    """A Machine and its sockets: the frames it sends go out on them, the datagrams that
    arrive go in, and the waits between are select's."""

    def __init__(self, setup: Setup, shared: SharedClock | None = None,
                 board: Board | None = None) -> None:
        self.rank = setup.rank
        # The data sockets' send buffer makes the qdisc push back (EAGAIN) before its queue
        # overflows; ACKs and NACKs have sockets of their own so data never crowds them out.
        ifaces = sorted({p.iface for p in setup.peers.values()})
        tx = {iface: _packet_socket(iface, setup.send_buffer(iface), vnet=True)
              for iface in ifaces}
        ctl = {iface: _packet_socket(iface, 1 << 20) for iface in ifaces}
        # By peer: (data socket, control socket, the Ether/IP/UDP prefix toward it).
        self.links = {peer: (tx[p.iface], ctl[p.iface],
                             FrameTemplate(p.src_mac, p.dst_mac, p.src_ip, p.dst_ip))
                      for peer, p in setup.peers.items()}
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        self.rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.rx.bind(("0.0.0.0", PORT))
        self.rx.setblocking(False)
        self.stamp_space = socket.CMSG_SPACE(TIMESPEC.size)
        # CLOCK_REALTIME - CLOCK_MONOTONIC, read again when each program starts. Read here
        # too: a frame can arrive before this rank's first program starts (a rank started
        # late), and its stamp less 0 is 56 years ahead of the monotonic clock.
        self.realtime_ns = _realtime_offset_ns()
        # A jump elsewhere wakes this agent with SIGUSR1, which writes to `woken`.
        self.woken, waker = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGUSR1, lambda *_: None)
        signal.set_wakeup_fd(waker, warn_on_full_buffer=False)
        self.clock = RankClock(shared, setup.rank, setup.ranks, wake=_wake)
        row = board.row(setup.rank) if board is not None and setup.rank < board.ranks else None
        self.machine = Machine(setup, self.clock.now, self, self.clock, row)
        self.zeros = bytes(self.machine.payload)  # protocol padding

    def go(self, go: Go) -> Report:
        """Run the loaded program. The garbage collector is off while it runs: a pass over
        an agent's young objects took 0.7-1.5 ms on this 2-core host (read with
        gc.callbacks during a dp-tp replay), a late wake-up the program's timeline keeps;
        the program's objects form no cycles per frame, and the collector runs between
        programs."""
        machine = self.machine
        self.realtime_ns = _realtime_offset_ns()
        self.clock.begin(go.start, go.skip)
        machine.go(go)  # before the start: the agents wake there at once, on few cores
        gc.disable()
        try:
            _sleep_until(go.start)
            with np.errstate(over="ignore", invalid="ignore"):  # timed repeats may overflow
                while machine.unfinished:
                    now = self.clock.now()
                    if not machine.tick(now, self._receive_some()):
                        self._wait(machine.deadline(now))
        finally:
            gc.enable()
        return dataclasses.replace(machine.report(), skipped_s=self.clock.skipped_s)

    def idle(self) -> None:
        """Between commands: answer NACKs and ACKs, and keep early frames of the next program."""
        self._receive_some()
        self.machine.idle()

    # -- the machine's port --------------------------------------------------------------------
    def data(self, peer: int, header: bytearray, data: memoryview, pad: int) -> int:
        sock, _, template = self.links[peer]
        try:
            sock.sendmsg([VNET_HDR, template.prefix(len(data) + pad), header, data,
                          self.zeros[:pad]])
        except BlockingIOError:
            return PUSHBACK
        except OSError as e:
            if e.errno == errno.ENOBUFS:  # the qdisc's queue was full: offer it again
                return QUEUE_FULL
            if e.errno not in DOWN_ERRNOS:
                raise
            return LINK_DOWN
        return SENT

    def control(self, peer: int, header: bytearray, body: bytes) -> bool:
        _, sock, template = self.links[peer]
        try:
            sock.sendmsg([template.prefix(len(body)), header, body])
        except OSError as e:  # pushback, a full queue or a dead link: lost like any control
            if e.errno not in (errno.EAGAIN, errno.ENOBUFS, *DOWN_ERRNOS):  # frame; the timers
                raise  # ask again
            return False
        return True

    # -- receiving and waiting -----------------------------------------------------------------
    def _receive_some(self) -> bool:
        machine = self.machine
        progress = False
        while True:
            try:
                n, stamps, _flags, _addr = self.rx.recvmsg_into([machine.staging],
                                                                self.stamp_space)
            except BlockingIOError:
                return progress
            progress = True
            machine.datagram(n, self._arrival(stamps))

    def _arrival(self, stamps: list) -> float:
        """When the kernel received the frame (CLOCK_MONOTONIC), not when this loop got to it."""
        for level, kind, data in stamps:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = TIMESPEC.unpack_from(data)
                return (sec * 1_000_000_000 + nsec - self.realtime_ns) / 1e9 + \
                    self.clock.shift
        return self.clock.now()

    def _wait(self, until: float) -> None:
        now = self.clock.now()
        writers = list({self.links[peer][0] for peer in self.machine.ready_peers(now)})
        readable = select.select([self.rx, self.woken], writers, [], max(0.0, until - now))[0]
        if self.woken in readable:  # another rank jumped the clock
            with contextlib.suppress(BlockingIOError):
                os.read(self.woken, 4096)
            self.clock.refresh()


def _wake(pids: list[int]) -> None:
    """Tell the agents of these pids that the shared clock jumped."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)


def _packet_socket(iface: str, sndbuf: int, vnet: bool = False) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: send only
    if vnet:
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, sndbuf)
    s.setblocking(False)
    return s


def _realtime_offset_ns() -> int:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, read as tightly as the two calls allow (the
    closest of a few tries), to turn the kernel's receive timestamps into monotonic time."""
    best = None
    for _ in range(5):
        before = time.monotonic_ns()
        real = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, real - (before + after) // 2)
    return best[1]


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _reply(message: Message) -> None:
    sys.stdout.write(encode(message) + "\n")
    sys.stdout.flush()


def _sharp_timers() -> None:
    """Ask the kernel to wake this process on time: by default a sleeping thread's timeout may
    run 50 us late (timer slack, to batch wake-ups), and the agent's timed waits (endpoint
    latency, held link delays) are a few hundred microseconds of wall time each."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: coarser timing, which
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)  # the proof sees


def main(shared: SharedClock | None = None, board: Board | None = None) -> None:
    """The agent's command loop; `shared`: the clock the fork server made for the agents of
    this host (None: started alone, it skips nothing); `board`: where the controller reads
    how far it has got (None: nowhere)."""
    _sharp_timers()
    agent = Agent(decode(sys.stdin.readline(), Setup), shared, board)
    _reply(Ready(rank=agent.rank))
    commands = sys.stdin.buffer.raw if hasattr(sys.stdin.buffer, "raw") else sys.stdin.buffer
    pending = b""
    while True:
        readable = select.select([commands, agent.rx], [], [], agent.machine.rto)[0]
        if agent.rx in readable or not readable:
            agent.idle()
        if commands not in readable:
            continue
        chunk = commands.read(65536)
        if not chunk:
            return  # the controller is gone
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            command = decode(line, Load, Go, Exit)
            if isinstance(command, Exit):
                return
            try:
                if isinstance(command, Load):
                    agent.machine.load(command)
                    _reply(Loaded())
                else:
                    _reply(agent.go(command))
            except TimeoutError as e:
                _reply(Failure(error=str(e)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fork-server"]:
        from traffic.forkserver import serve

        serve(int(sys.argv[2]), main, *map(int, sys.argv[3:5]))
    else:
        main()
