"""Headless Chromium (Debian's package) driven over the DevTools protocol on a pipe, for the
tests that load netwall's pages as a user's browser would: what the console and the network
said, what the page shows, a screenshot and a PDF print.

`--remote-debugging-pipe` reads commands on fd 3 and writes replies on fd 4, each a JSON
object ended by a NUL byte: no port, no extra library, nothing listening.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe")


def binary() -> str | None:
    return shutil.which("chromium")


class Browser:
    """One headless Chromium with one page; `problems` collects console errors, uncaught
    exceptions and failed loads as they arrive."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 900) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        to_child, self._out = os.pipe()  # our writes -> its fd 3
        self._in, from_child = os.pipe()  # its fd 4 -> our reads

        def plumb() -> None:  # in the child: its ends to fds 3 and 4, whatever they were
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
            for fd, target in zip(high, (3, 4), strict=True):
                os.dup2(fd, target)  # inheritable, unlike os.pipe()'s (CLOEXEC)

        self.proc = subprocess.Popen(
            [binary(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "about:blank"], close_fds=False, preexec_fn=plumb,  # only 0-4 survive exec
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._id, self.events = b"", 0, []
        self.problems: list[str] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width,
                  height=height, deviceScaleFactor=1, mobile=False)

    def close(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):  # it may be gone
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- the protocol --------------------------------------------------------------------

    def call(self, method: str, session: bool = False, timeout: float = 60, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        """The first event `method` not seen yet (events that arrived before count)."""
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event["method"] == method:
                return self.events.pop(i)
        while True:
            event = self._next(deadline)
            self._event(event)
            if event.get("method") == method:
                self.events.remove(event)
                return event

    def _next(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _event(self, event: dict) -> None:
        if "method" not in event:
            return
        self.events.append(event)
        params = event.get("params", {})
        if event["method"] == "Runtime.consoleAPICalled" and params["type"] in ("error",
                                                                                "assert"):
            self.problems.append("console: " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif event["method"] == "Runtime.exceptionThrown":
            self.problems.append("exception: " + params["exceptionDetails"]["text"])
        elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.problems.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}")

    # -- what a test asks ----------------------------------------------------------------

    def load(self, url: str, settle: float = 0.5) -> None:
        """Open `url` and wait for its load event (and `settle` seconds for late errors)."""
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")
        end = time.monotonic() + settle
        while time.monotonic() < end:
            try:
                self._event(self._next(end))
            except TimeoutError:
                break

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", session=True, expression=expression,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']['text']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, height: int | None = None) -> Path:
        """The page from its top, `height` CSS pixels of it (default: the whole page)."""
        width = self.evaluate("document.documentElement.scrollWidth")
        full = self.evaluate("document.documentElement.scrollHeight")
        clip = {"x": 0, "y": 0, "width": width, "height": min(full, height or full),
                "scale": 1}
        data = self.call("Page.captureScreenshot", session=True, format="png", clip=clip,
                         captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def pdf(self, path: Path) -> Path:
        """The page printed as a user's Print to PDF would (its print CSS applies)."""
        data = self.call("Page.printToPDF", session=True, preferCSSPageSize=True,
                         printBackground=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path
