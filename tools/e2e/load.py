"""A bounded HTTPS load on one server (loopback-range test hosts only): a fixed request rate
for as long as it runs, every answer checked for status, service and version."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path


class _Connection(http.client.HTTPSConnection):
    """HTTPS to an address with the site's name for SNI and verification (no DNS needed)."""

    def __init__(self, address: str, host: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, 443, context=context, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, 443), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def get(address: str, host: str, path: str, ca: Path, timeout: float = 10) -> tuple[int, dict[str, object]]:
    conn = _Connection(address, host, ssl.create_default_context(cafile=str(ca)), timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = {"raw": body[:200].decode(errors="replace")}
        return resp.status, data if isinstance(data, dict) else {"raw": data}
    finally:
        conn.close()


@dataclass
class Result:
    sent: int = 0
    failed: int = 0
    misrouted: int = 0
    max_latency: float = 0.0
    versions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        errors = f", errors {dict(self.errors)}" if self.errors else ""
        return (
            f"{self.sent} requests, {self.failed} failed, {self.misrouted} misrouted, "
            f"max latency {self.max_latency * 1000:.0f} ms, versions {dict(self.versions)}{errors}"
        )


class Load:
    """`rate` requests a second, alternating over `routes` (path -> the service that must answer)."""

    def __init__(
        self, address: str, host: str, ca: Path, routes: dict[str, str], rate: float = 25, limit_s: float = 900
    ) -> None:
        self.address, self.host, self.ca, self.routes = address, host, ca, routes
        self.rate, self.limit_s = rate, limit_s
        self.result = Result()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _one(self, path: str, service: str) -> None:
        started = time.monotonic()
        try:
            status, body = get(self.address, self.host, path, self.ca)
            error = None if status == 200 else f"HTTP {status} at {time.strftime('%H:%M:%S')}"
        except Exception as exc:  # noqa: BLE001 - counted as a failed request
            status, body, error = 0, {}, f"{type(exc).__name__}: {exc} at {time.strftime('%H:%M:%S')}"
        latency = time.monotonic() - started
        with self._lock:
            r = self.result
            r.max_latency = max(r.max_latency, latency)
            if error:
                r.failed += 1
                r.errors[error] += 1
            elif body.get("service") != service:
                r.misrouted += 1
            r.versions[f"{body.get('service')}@{body.get('version')}"] += 1

    def _run(self) -> None:
        paths = list(self.routes.items())
        deadline = time.monotonic() + self.limit_s
        with ThreadPoolExecutor(max_workers=32) as pool:
            i = 0
            next_at = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < deadline:
                path, service = paths[i % len(paths)]
                with self._lock:
                    self.result.sent += 1
                pool.submit(self._one, path, service)
                i += 1
                next_at += 1 / self.rate
                time.sleep(max(0.0, next_at - time.monotonic()))
