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


def _cluster(settings: Settings) -> dict[str, str]:
    import yaml

    from components.render import helm_values

    ingress = (
        ("traefik", helm_values.traefik_values)
        if settings.cluster.ingress == "traefik"
        else ("ingress-nginx", helm_values.ingress_nginx_values)
    )
    files = {
        f"helm/{ingress[0]}.values.yaml": ingress[1](None),
        "helm/cert-manager.values.yaml": helm_values.cert_manager_values(),
    }
    if settings.postgres.mode == "operator":
        files["helm/cloudnative-pg.values.yaml"] = helm_values.cloudnative_pg_values()
    return {path: yaml.safe_dump(values, sort_keys=False) for path, values in files.items()}


RENDERERS: dict[str, Callable[[Settings], dict[str, str]]] = {
    "local": _local,
    "cluster": _cluster,
}


def rendered_files(settings: Settings) -> dict[str, str]:
    """Relative path -> content of every file the stack's rung renders from its settings."""
    renderer = RENDERERS.get(settings.phase)
    return renderer(settings) if renderer else {}
