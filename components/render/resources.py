"""Container resource sizing shared by every rung (Docker limits, Compose limits, Kubernetes requests/limits)."""

from __future__ import annotations

import re

from components.settings import Resources

_MEMORY_UNITS = {
    "": 1,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}

# Limits as multiples of requests: memory gets head-room for spikes without letting one
# service starve the host; CPU is burstable so latency stays low under short peaks.
MEMORY_LIMIT_FACTOR = 2
CPU_LIMIT_FACTOR = 4


def memory_bytes(quantity: str) -> int:
    match = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|Ti|K|M|G|T)?", quantity)
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""]


def memory_mb(quantity: str) -> int:
    return max(1, memory_bytes(quantity) // 1024**2)


def cpu_millis(quantity: str) -> int:
    if quantity.endswith("m"):
        return int(quantity[:-1])
    return round(float(quantity) * 1000)


def limits(resources: Resources) -> Resources:
    """The limits that go with a service's requests."""
    return Resources(
        cpu=f"{cpu_millis(resources.cpu) * CPU_LIMIT_FACTOR}m",
        memory=f"{memory_mb(resources.memory) * MEMORY_LIMIT_FACTOR}Mi",
    )
