"""Start agents by forking one ready process, not by running Python once per GPU.

An agent started from scratch costs ~0.4 s of CPU and ~60 MB (Python, numpy, scapy). At
hundreds of GPUs on two cores that is most of the start-up and most of the memory. A fork
server (`python -m traffic.agent --fork-server FD`, in the controller's namespace) pays it
once; each agent is then a fork of it that enters its host's network namespace, takes the
pipes it is handed as stdin/stdout/stderr, and shares the imported code copy-on-write.

The server also makes the agents' shared clock (traffic.gaps) before it forks, so every
agent of the emulation inherits the same page and lock, with which they skip compute gaps
together; and it maps the progress board the controller made and handed it (traffic.board),
which every agent inherits too and the controller reads.

The controller talks to the server on a Unix socket pair: one message per agent carrying
the host's pid and, as SCM_RIGHTS, the agent's three pipe ends; the answer is the agent's
pid and, as SCM_RIGHTS, a pidfd of the agent, through which the controller watches it. The
server opens that pidfd before it reaps anything, so it names the agent even if the agent
has already exited (a bad namespace ends it at once); opened by pid in the controller, it
could find the pid gone or, worse, reused. The server exits when the controller's end
closes.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from emulator.kernel.netns import enter
from traffic import scheduling
from traffic.board import Board
from traffic.gaps import SharedClock

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class AgentProcess:
    """One forked agent, as much of subprocess.Popen as the launcher uses."""

    def __init__(self, pid: int, pidfd: int, stdin: int, stdout: int, stderr: int) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self.stdin = open(stdin, "w")  # noqa: SIM115 - closed by close()
        self.stdout = open(stdout)  # noqa: SIM115
        self.stderr = open(stderr)  # noqa: SIM115
        self.exited = False

    def poll(self) -> bool | None:
        """True once the agent has exited, None while it runs (as Popen.poll's None)."""
        return True if self.wait(0) else None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the agent to exit (at most `timeout` s): did it?"""
        if not self.exited:
            waiter = select.poll()  # a pidfd turns readable when its process exits
            waiter.register(self._pidfd, select.POLLIN)
            self.exited = bool(waiter.poll(None if timeout is None else timeout * 1000))
        return self.exited

    def kill(self) -> None:
        if not self.wait(0):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def close(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            if not stream.closed:
                with contextlib.suppress(BrokenPipeError):  # unread "exit": it is gone anyway
                    stream.close()
        os.close(self._pidfd)


class ForkServer:
    """The controller's handle on a running fork server."""

    def __init__(self, env: dict[str, str], board: Board | None = None) -> None:
        """`board`: the progress board its agents write to (None: none)."""
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        passed = [theirs.fileno()] + ([board.fd] if board is not None else [])
        shape = [str(board.fd), str(board.ranks)] if board is not None else []
        # A process group of its own, which its agents inherit: a terminal's Ctrl-C or hang-up
        # signals the foreground group, and only the controller may act on it (it stops the
        # agents and removes the network); a server or agent interrupted mid-message would
        # print a traceback over the controller's one line.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "traffic.agent", "--fork-server", str(theirs.fileno()),
             *shape], pass_fds=passed, env=env, cwd=str(PROJECT_ROOT),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, process_group=0)
        theirs.close()

    def spawn(self, netns_pid: int) -> AgentProcess:
        """An agent in the network namespace of process `netns_pid` (a Mininet host)."""
        pipes = [os.pipe() for _ in range(3)]
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]  # the agent reads 0, writes 1 and 2
        try:
            socket.send_fds(self._sock, [str(netns_pid).encode()], theirs)
            answer, pidfds, _, _ = socket.recv_fds(self._sock, 64, 1)
        finally:
            for fd in theirs:
                os.close(fd)
        if not answer or len(pidfds) != 1:
            for fd in pidfds:
                os.close(fd)
            raise OSError(f"the agent fork server died (exit code {self.proc.wait()})")
        return AgentProcess(int(answer), pidfds[0], pipes[0][1], pipes[1][0], pipes[2][0])

    def close(self) -> None:
        """End the server (its agents live on until their own stdin closes)."""
        self._sock.close()
        self.proc.wait()


def serve(fd: int, main: Callable[[SharedClock, Board | None], None],
          board_fd: int | None = None, ranks: int = 0) -> None:
    """The fork server's loop: `python -m traffic.agent --fork-server FD [BOARD RANKS]`
    calls it with the agent's main, so every agent shares the modules the server imported
    (and the board of `ranks` rows on descriptor `board_fd`, if given)."""
    # Finished agents stay zombies until _reap: the pidfd is opened first (module docstring).
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # Keep the garbage collector off the server's objects in every child: its passes write
    # to each object they visit, which would copy every shared page into every agent.
    gc.freeze()
    policy = scheduling.wanted()  # the agents' scheduling (traffic.scheduling), decided once
    shared = SharedClock()  # one per emulation on this host: every agent forks from here
    board = Board(ranks, board_fd) if board_fd is not None else None
    sock = socket.socket(fileno=fd)
    while True:
        message, fds, _, _ = socket.recv_fds(sock, 64, 3)
        if not message:
            return  # the controller closed its end; init reaps the agents from here
        pid = os.fork()
        if pid == 0:
            _become_agent(int(message), fds, lambda: main(shared, board), policy)
        for received in fds:
            os.close(received)
        pidfd = os.pidfd_open(pid)  # the agent is alive or a zombie: its pid is still its own
        try:
            socket.send_fds(sock, [str(pid).encode()], [pidfd])
        except OSError:
            return  # the controller went away mid-request (e.g. interrupted)
        finally:
            os.close(pidfd)
        _reap()


def _reap() -> None:
    """Collect the agents that have exited (their pidfds, sent already, still tell it)."""
    with contextlib.suppress(ChildProcessError):  # no children left
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _become_agent(netns_pid: int, fds: list[int], main: Callable[[], None],
                  policy: scheduling.Policy) -> None:
    """In the forked child: enter the host's namespace, take the pipes, take the agents'
    scheduling policy (a refusal leaves it normal; the controller reports what it got), run
    the agent."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the server's socket, the pipes' copies
        enter(netns_pid)
        scheduling.apply(policy)
        main()
        code = 0
    except BaseException:  # noqa: BLE001 - the child must never return into the server
        with contextlib.suppress(OSError):  # a controller that is gone reads no traceback
            traceback.print_exc()
    finally:
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
