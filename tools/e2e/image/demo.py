#!/usr/bin/env python3
"""The bench's demo app: web, api, worker and release command in one small program.

It answers every path with JSON naming its service (LADDER_SERVICE, set by the compose
file) and its version (DEMO_VERSION, baked into each image tag), so the load generator can
tell a misrouted or an old/new answer apart. DEMO_MODE makes broken releases on purpose:
`500` listens and fails every request, `deaf` never listens.
"""

import hashlib
import json
import os
import sys
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
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
