"""A page opened as a person would: Debian's headless Chromium, driven through the
DevTools protocol (a small client over `websockets`, a Prefect dependency) so that a
test sees every console message, every exception and every network request, and gets
a PNG screenshot. Chromium missing is a failure, never a skip: CI installs it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]


@dataclass
class Visit:
    """What opening a page did: console errors and exceptions, every URL requested,
    and the screenshot (PNG bytes)."""
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    png: bytes = b""


def require_chromium() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    assert path, "headless Chromium is missing: install Debian's package (apt-get install chromium)"
    return path


def visit(page: Path, width: int = 1280, height: int = 2400, timeout: float = 60) -> Visit:
    """Opens `page` (a local file) in a fresh profile, waits for it to load, and returns
    what it did with a full-width screenshot of `width` x `height` CSS pixels."""
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="redress-chromium-") as profile:
        # Its temporary files (org.chromium.Chromium.*) inside the profile's folder: killed,
        # it never removes them, and they piled up in /tmp at every visit.
        scratch = Path(profile) / "tmp"
        scratch.mkdir()
        proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                                 "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "TMPDIR": str(scratch)},
                                start_new_session=True)  # its own group: renderers and helpers go with it
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                assert time.monotonic() < deadline and proc.poll() is None, "Chromium did not start"
                time.sleep(0.1)
            port, path = port_file.read_text().splitlines()[:2]  # the port, then /devtools/browser/<id>
            return _drive(f"ws://127.0.0.1:{port}{path}", page.resolve().as_uri(), width, height, deadline)
        finally:
            # The whole group this function started: Chromium's child processes otherwise
            # keep writing the profile while it is removed ("Directory not empty").
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _drive(browser_ws: str, url: str, width: int, height: int, deadline: float) -> Visit:
    seen = Visit()
    with connect(browser_ws, max_size=None, open_timeout=30) as ws:
        ids = iter(range(1, 10_000))

        def call(method: str, session: str | None = None, **params) -> dict:
            msg_id = next(ids)
            message = {"id": msg_id, "method": method, "params": params}
            if session:
                message["sessionId"] = session
            ws.send(json.dumps(message))
            while True:
                reply = json.loads(ws.recv(timeout=max(1.0, deadline - time.monotonic())))
                if reply.get("id") == msg_id:
                    assert "error" not in reply, reply["error"]
                    return reply.get("result", {})
                _note(seen, reply)

        target = call("Target.createTarget", url="about:blank")["targetId"]
        session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            call(f"{domain}.enable", session)
        call("Emulation.setDeviceMetricsOverride", session, width=width, height=height, deviceScaleFactor=1,
             mobile=False)
        call("Page.navigate", session, url=url)
        while True:  # until the page has loaded
            event = json.loads(ws.recv(timeout=max(1.0, deadline - time.monotonic())))
            _note(seen, event)
            if event.get("method") == "Page.loadEventFired":
                break
        shot = call("Page.captureScreenshot", session, format="png")
        seen.png = base64.b64decode(shot["data"])
    return seen


def _note(seen: Visit, event: dict) -> None:
    method, params = event.get("method"), event.get("params", {})
    if method == "Network.requestWillBeSent":
        seen.requests.append(params["request"]["url"])
    elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
        seen.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
    elif method == "Runtime.exceptionThrown":
        seen.errors.append(params["exceptionDetails"].get("text", "exception"))
    elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
        seen.errors.append(params["entry"].get("text", ""))


def png_pixels(png: bytes) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct pixel values of an 8-bit RGB/RGBA PNG, decoded with
    zlib alone (no imaging library in the lock)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, data, header = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            data += chunk
        pos += 12 + length
    width, height, depth, colour, *_ = header
    assert depth == 8 and colour in (2, 6), f"unexpected PNG format {depth=} {colour=}"
    size = 3 if colour == 2 else 4
    raw, stride, prev, colours = zlib.decompress(data), width * size, bytearray(width * size), set()
    for y in range(height):
        filt, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - size] if i >= size else 0
            b, c = prev[i], prev[i - size] if i >= size else 0
            if filt == 1:
                line[i] = (line[i] + a) & 255
            elif filt == 2:
                line[i] = (line[i] + b) & 255
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 8 == 0:  # every 8th line is plenty to tell a page from a blank one
            colours.update(bytes(line[i:i + size]) for i in range(0, stride, size * 4))
        prev = line
    return width, height, colours
