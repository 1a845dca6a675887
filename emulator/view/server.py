"""The live view's web server: the page, its files, the drawing and a stream of frames.

aiohttp serves them from a thread of its own, with its own event loop, so the controller's
thread (which owns the netlink sockets and drives the agents) only hands it finished
frames: `publish` keeps the newest and wakes every stream. Frames flow one way, as
Server-Sent Events (one JSON frame per event), which a browser's EventSource reads and
reconnects by itself. Everything is served from the package (static/, with the drawing
library vendored there), so the page needs no internet.

It listens on 127.0.0.1 unless told another address: the emulated cluster's state is no
one else's business, and an SSH port forward reaches it from another machine
(docs/view.md).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from importlib import resources
from typing import Any

from aiohttp import web

from foundation.errors import NetwallError

#: The files the page is made of, with their types: nothing else is served.
FILES = {"index.html": "text/html", "view.js": "text/javascript", "view.css": "text/css",
         "cytoscape.min.js": "text/javascript", "LICENSE.cytoscape": "text/plain"}
#: How long a stream waits for a frame before it sends a comment to keep the line open.
KEEPALIVE_S = 5.0


def static_file(name: str) -> bytes:
    """One of the page's files, from the installed package."""
    return (resources.files("emulator.view") / "static" / name).read_bytes()


class Server:
    """One live view's server; start() returns its address, stop() ends it."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0) -> None:
        self.address, self.port = address, port
        self.drawing: dict[str, Any] = {}
        self.frame: dict[str, Any] = {}
        self._loop = asyncio.new_event_loop()
        self._changed: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._closing = False

    def start(self) -> str:
        """Listen (an ephemeral free port when port is 0) and serve; the page's URL."""
        try:
            info = socket.getaddrinfo(self.address, self.port, type=socket.SOCK_STREAM,
                                      flags=socket.AI_PASSIVE)[0]
            sock = socket.socket(info[0], socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(info[4])
            sock.listen(16)
        except OSError as e:
            raise NetwallError(f"--view: cannot listen on {self.address} port {self.port}: "
                               f"{e.strerror or e}") from None
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(sock, ready),
                                        name="netwall-view", daemon=True)
        self._thread.start()
        ready.wait(10)
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/"

    def publish(self, frame: dict[str, Any], drawing: dict[str, Any] | None = None) -> None:
        """The newest frame (and drawing, when it changed), to every page; from any thread."""
        if drawing is not None:
            self.drawing = drawing
        self.frame = frame
        if not self._closing:
            self._loop.call_soon_threadsafe(self._wake)

    def stop(self) -> None:
        """Close every stream and stop listening."""
        if self._thread is None:
            return
        self._closing = True
        self._loop.call_soon_threadsafe(self._wake)
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    # -- in the server's thread ------------------------------------------------------------
    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._changed = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/drawing.json", self._drawing)
        app.router.add_get("/frame.json", self._frame)
        app.router.add_get("/events", self._events)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.SockSite(self._runner, sock).start())
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    def _wake(self) -> None:
        """Wake every stream waiting for a frame (a new event for the next wait)."""
        changed, self._changed = self._changed, asyncio.Event()
        if changed is not None:
            changed.set()

    async def _page(self, _request: web.Request) -> web.Response:
        return web.Response(body=static_file("index.html"), content_type="text/html",
                            charset="utf-8")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in FILES:
            raise web.HTTPNotFound()
        return web.Response(body=static_file(name), content_type=FILES[name], charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    async def _drawing(self, _request: web.Request) -> web.Response:
        return web.json_response(self.drawing)

    async def _frame(self, _request: web.Request) -> web.Response:
        return web.json_response(self.frame)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """The frames as Server-Sent Events: the newest at once, then each new one."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        sent = None
        try:
            while not self._closing:
                frame = self.frame
                if frame and frame is not sent:
                    await response.write(f"data: {json.dumps(frame)}\n\n".encode())
                    sent = frame
                    continue
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": still here\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response
