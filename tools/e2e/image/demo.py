#!/usr/bin/env python3
"""The bench's demo app: web, api, worker and release command in one small program.

It answers every path with JSON naming its service (LADDER_SERVICE, set by the compose
file) and its version (DEMO_VERSION, baked into each image tag), so the load generator can
tell a misrouted or an old/new answer apart. DEMO_MODE makes broken releases on purpose:
`500` listens and fails every request, `deaf` never listens.
"""

import base64
import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = os.environ.get("LADDER_SERVICE", "unknown")
VERSION = os.environ.get("DEMO_VERSION", "0")
MODE = os.environ.get("DEMO_MODE", "ok")
PORT = int(os.environ.get("PORT", "8080"))


def digest(name: str) -> str:
    value = os.environ.get(name)
    return "" if value is None else hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def db_check() -> str:
    import psycopg2  # type: ignore[import-untyped]

    with psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=3) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM ladder_releases")
        return str(cur.fetchone()[0])


def redis_check() -> str:
    import redis  # type: ignore[import-not-found]

    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=3)
    return str(client.incr("ladder:demo:hits"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if MODE == "500":
            return self.reply(500, {"service": SERVICE, "version": VERSION, "error": "broken on purpose"})
        body: dict[str, object] = {
            "service": SERVICE,
            "version": VERSION,
            "path": self.path,
            "host": os.uname().nodename,
        }
        if self.path.endswith("/deep"):
            try:
                body["releases"] = db_check()
                body["hits"] = redis_check()
            except Exception as exc:  # noqa: BLE001 - reported to the bench
                return self.reply(503, {**body, "error": repr(exc)})
        if self.path.endswith("/env-digests"):
            names = os.environ.get("DEMO_DIGEST_VARS", "").split(",")
            body["digests"] = {n: digest(n) for n in names if n}
        self.reply(200, body)

    def reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def websocket(self) -> None:
        """An echo WebSocket (RFC 6455, text frames): each message comes back with the service and
        version that answered it. On SIGTERM the app says goodbye with a close frame (1001)."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        sock = self.connection
        with SOCKETS_LOCK:
            SOCKETS.add(sock)
        try:
            while True:
                opcode, payload = read_frame(self.rfile)
                if opcode == 8:  # close: answer it and stop
                    send_frame(sock, 8, payload[:2])
                    return
                if opcode == 9:
                    send_frame(sock, 10, payload)
                elif opcode == 1:
                    answer = {"service": SERVICE, "version": VERSION, "echo": payload.decode()}
                    send_frame(sock, 1, json.dumps(answer).encode())
        except (ConnectionError, OSError, ValueError):
            return
        finally:
            with SOCKETS_LOCK:
                SOCKETS.discard(sock)
            self.close_connection = True


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SOCKETS: set[socket.socket] = set()
SOCKETS_LOCK = threading.Lock()


def read_frame(stream) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    head = stream.read(2)
    if len(head) < 2:
        raise ConnectionError("closed")
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", stream.read(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", stream.read(8))[0]
    mask = stream.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = stream.read(length)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def send_frame(sock: socket.socket, opcode: int, payload: bytes) -> None:
    """A server frame: final, unmasked, short (the demo's messages are small)."""
    sock.sendall(bytes([0x80 | opcode, len(payload)]) + payload)


def going_away(*_: object) -> None:
    """SIGTERM: close every WebSocket with 1001 (going away) and exit, as a well-behaved app
    does when its container stops; plain requests in flight are given a moment to finish."""
    with SOCKETS_LOCK:
        for sock in list(SOCKETS):
            with contextlib.suppress(OSError):
                send_frame(sock, 8, struct.pack("!H", 1001) + b"deploy")
    threading.Timer(1.0, lambda: os._exit(0)).start()


def release() -> None:
    """The release command: a migration that records each run (the bench counts them)."""
    import psycopg2

    with psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS ladder_releases "
            "(id serial PRIMARY KEY, version text, at timestamptz DEFAULT now())"
        )
        cur.execute("INSERT INTO ladder_releases (version) VALUES (%s)", (VERSION,))
    print(f"release {VERSION}: migrations applied")
    if MODE == "failrelease":
        sys.exit(3)


def marker(path: str | None) -> None:
    """A scheduled job's run (`ladder:app.jobs`): a row in Postgres and, given a path in a
    volume, a line there (the bench counts both)."""
    import psycopg2

    with psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS ladder_job_marks (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
        cur.execute("INSERT INTO ladder_job_marks DEFAULT VALUES")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{time.time():.0f}\n")
    print(f"marker {VERSION}: recorded", flush=True)


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if role == "release":
        return release()
    if role == "marker":
        return marker(sys.argv[2] if len(sys.argv) > 2 else None)
    if role == "worker":
        while True:
            print(f"worker {VERSION}: tick", flush=True)
            time.sleep(30)
    if MODE == "deaf":
        while True:
            time.sleep(3600)
    signal.signal(signal.SIGTERM, going_away)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
