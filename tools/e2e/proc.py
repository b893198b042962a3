"""Running commands with bounded waits: every wait in the bench ends."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")


class BenchError(RuntimeError):
    """A step of the bench failed; the message says which and why."""


def run(
    argv: Sequence[str],
    *,
    input: bytes | str | None = None,
    timeout: float = 300,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[str]:
    data = input.encode() if isinstance(input, str) else input
    try:
        done = subprocess.run(
            list(argv), input=data, capture_output=True, timeout=timeout, check=False, env=env, cwd=cwd
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"timed out after {timeout:.0f}s: {' '.join(argv)[:200]}") from exc
    result = subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )
    if check and result.returncode != 0:
        raise BenchError(
            f"exit {result.returncode}: {' '.join(argv)[:200]}\n{result.stderr[-3000:]}{result.stdout[-2000:]}"
        )
    return result


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        time.sleep(interval)
    raise BenchError(f"{what}: not within {timeout:.0f}s" + (f" (last error: {last})" if last else ""))
