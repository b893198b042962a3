"""A WebSocket client small enough to read (RFC 6455, text frames), over TLS to a server's
address with the site's name: what a browser tab holding a live connection does."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import struct
from pathlib import Path

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE = 8


class WebSocket:
    def __init__(self, address: str, host: str, path: str, ca: Path, timeout: float = 10) -> None:
        context = ssl.create_default_context(cafile=str(ca))
        self.sock = context.wrap_socket(socket.create_connection((address, 443), timeout), server_hostname=host)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += self._exactly(1)
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if not head.startswith(b"HTTP/1.1 101") or accept.encode() not in head:
            raise ConnectionError(f"no WebSocket upgrade: {head[:200]!r}")

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the connection closed without a close frame")
            data += chunk
        return data

    def send(self, text: str) -> None:
        """A client frame: final, text, masked (clients must mask), short."""
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def receive(self, timeout: float = 10) -> tuple[int, bytes]:
        """The next frame as (opcode, payload); a reset raises ConnectionResetError."""
        self.sock.settimeout(timeout)
        head = self._exactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._exactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._exactly(8))[0]
        return head[0] & 0x0F, self._exactly(length)

    def ask(self, text: str) -> dict[str, object]:
        self.send(text)
        opcode, payload = self.receive()
        if opcode != 1:
            raise ConnectionError(f"expected a text frame, got opcode {opcode}")
        answer = json.loads(payload)
        return answer if isinstance(answer, dict) else {}

    def close(self) -> None:
        self.sock.close()
