#!/usr/bin/env python3
"""A tiny Chrome DevTools Protocol client for the lab's dashboard test
(tests/cluster/test_metrics.sh), on the standard library alone: it talks to
a headless Chromium started with --remote-debugging-port=PORT.

  cdp.py PORT eval EXPR [W H]       prints EXPR's value (JSON) in the first page
                                    (with W H: evaluated in a W x H viewport)
  cdp.py PORT screenshot FILE W H   saves a W x H PNG of the first page (a
                                    width under 600 is emulated as a phone)

Exit 0, or 1 with the reason on stderr (no page, an exception in EXPR, ...).
"""
import base64
import json
import os
import socket
import struct
import sys
import urllib.request


class Socket:
    """One WebSocket connection (RFC 6455): client frames masked, text only."""

    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.s = socket.create_connection((host, int(port)), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.s.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(1)
            if not chunk:
                raise OSError("the browser closed the connection during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise OSError("handshake refused: " + head.split(b"\r\n", 1)[0].decode(errors="replace"))

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise OSError("the browser closed the connection")
            buf += chunk
        return buf

    def send(self, text):
        data = text.encode()
        head = bytes([0x81])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise OSError("the browser closed the connection")
            if opcode in (0, 1, 2):
                message += payload
                if b0 & 0x80:
                    return message.decode()


class Page:
    def __init__(self, port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=20) as r:
            targets = [t for t in json.load(r) if t.get("type") == "page"]
        if not targets:
            raise OSError("no page open in the browser")
        self.ws = Socket(targets[0]["webSocketDebuggerUrl"])
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise OSError(f"{method}: {msg['error'].get('message')}")
                return msg["result"]


def emulate(page, w, h):
    """A W x H viewport; under 600 px wide, a phone's."""
    page.call("Emulation.setDeviceMetricsOverride", width=w, height=h, deviceScaleFactor=1, mobile=w < 600)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    page = Page(int(argv[1]))
    if argv[2] == "eval" and len(argv) in (4, 6):
        if len(argv) == 6:
            emulate(page, int(argv[4]), int(argv[5]))
        r = page.call("Runtime.evaluate", expression=argv[3], returnByValue=True)
        if len(argv) == 6:
            page.call("Emulation.clearDeviceMetricsOverride")
        if "exceptionDetails" in r:
            raise OSError("exception: " + json.dumps(r["exceptionDetails"].get("exception", {}).get("description")))
        print(json.dumps(r["result"].get("value")))
        return 0
    if argv[2] == "screenshot" and len(argv) == 6:
        emulate(page, int(argv[4]), int(argv[5]))
        shot = page.call("Page.captureScreenshot", format="png")
        with open(argv[3], "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        page.call("Emulation.clearDeviceMetricsOverride")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError, KeyError) as e:
        print(f"cdp.py: {e}", file=sys.stderr)
        sys.exit(1)
