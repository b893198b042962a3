"""The files a stack renders (proxy config, compose file, cloud-init), by phase, for `make plan` and tests.

Each rung registers a pure function here; the components call the same functions, so
what the plan writes under build/<stack>/ is exactly what gets deployed.
"""

from __future__ import annotations

from collections.abc import Callable

from components.settings import Settings


def _local(settings: Settings) -> dict[str, str]:
    from components.render.caddy import local_caddyfile

    return {"Caddyfile": local_caddyfile(settings.app)}


RENDERERS: dict[str, Callable[[Settings], dict[str, str]]] = {
    "local": _local,
}


def rendered_files(settings: Settings) -> dict[str, str]:
    """Relative path -> content of every file the stack's rung renders from its settings."""
    renderer = RENDERERS.get(settings.phase)
    return renderer(settings) if renderer else {}
