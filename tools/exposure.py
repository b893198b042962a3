"""What a stack exposes to the network, read from the resources it registers.

One extractor per resource type that opens something; the plan prints the union.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tools.harness import ProgramResult, Registration


@dataclass(frozen=True)
class Exposure:
    what: str
    port: str
    source: str


def port_text(value: Any) -> str:
    """Ports come back from the engine as floats (JSON numbers): print 8080, not 8080.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _docker_container(r: Registration) -> Iterable[Exposure]:
    for port in r.inputs.get("ports") or []:
        yield Exposure(
            r.inputs.get("name", r.name),
            f"{port_text(port.get('external'))}->{port_text(port.get('internal'))}/{port.get('protocol', 'tcp')}",
            port.get("ip", "0.0.0.0"),
        )


EXTRACTORS: dict[str, Callable[[Registration], Iterable[Exposure]]] = {
    "docker:index/container:Container": _docker_container,
}


def exposures(result: ProgramResult) -> list[Exposure]:
    found: list[Exposure] = []
    for r in result.resources:
        extractor = EXTRACTORS.get(r.type)
        if extractor:
            found.extend(extractor(r))
    return found


def as_rows(items: Iterable[Exposure]) -> list[dict[str, Any]]:
    return [{"what": e.what, "port": e.port, "from": e.source} for e in items]
