"""The files a stack renders (proxy config, compose file, cloud-init), by phase, for `make plan` and tests.

Each rung registers a pure function here; the components call the same functions, so
what the plan writes under build/<stack>/ is exactly what gets deployed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

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
    if settings.provider_name == "digitalocean":
        files["helm/metrics-server.values.yaml"] = helm_values.metrics_server_values()
    return {path: yaml.safe_dump(values, sort_keys=False) for path, values in files.items()}


# Stands in for the per-stack deploy key (a tls.PrivateKey) in the rendered user data.
DEPLOY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGeneratedPerStackByPulumiTlsPrivateKey000 ladder-deploy"
HOST_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n(generated per server by Pulumi; secret)\n"
    "-----END OPENSSH PRIVATE KEY-----\n",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGeneratedPerServerByPulumiTlsPrivateKey00 host",
)


def _vps(settings: Settings) -> dict[str, str]:
    """The first app server's files (with placeholder secrets) and its user data.

    A service built from source shows its planned tag (the deploy runs the pushed digest)."""
    from pathlib import Path

    from components import images
    from components.render import hardening, registry_login
    from components.render.caddy import vps_caddyfile
    from components.render.compose import DATABASE_CA, Role, render_compose
    from components.render.deploy import deploy_script
    from components.render.vps import host_plan
    from components.vps.hosts import server_hardening
    from components.vps.topology import topology

    topo = topology(settings)
    role = Role(app=True, data=topo.data_on_app_server, behind_load_balancer=topo.load_balancer)
    builds = images.plan_builds(settings, "stack", Path.cwd())
    built = {svc: p.reference for p in builds for svc in p.services}
    plan = host_plan(settings, role, True, "/dev/disk/by-id/<data-volume>", images=built)
    placeholders = {
        name: "# written by the deploy from Pulumi secrets\n"
        for name in [*plan.secret_files, "backup.env", "watch.env"]
    }
    # The managed database's CA is a provider answer, not known before `pulumi up`.
    placeholders[DATABASE_CA] = "-----BEGIN CERTIFICATE-----\n(the managed database's CA)\n-----END CERTIFICATE-----\n"
    placeholders.update({registry_login.secret_key(server): "<token>" for server, _ in plan.registries})
    web = not topo.load_balancer and settings.provider_name != "existing"
    files = {
        "compose.yaml": render_compose(settings, role, built),
        "Caddyfile": vps_caddyfile(settings, role.behind_load_balancer),
        "deploy.sh": deploy_script(plan, placeholders),
        # As a server gets it, with stand-ins for the per-stack deploy key and the per-server
        # host key that Pulumi generates (tls.PrivateKey).
        "cloud-init.yaml": hardening.render(
            hardening.cloud_config(
                replace(server_hardening(settings, topo, web, bootstrap=True), ssh_keys=[DEPLOY_KEY]),
                host_key=HOST_KEY,
            )
        ),
    }
    if topo.data_server:
        files["data-server/compose.yaml"] = render_compose(
            settings, Role(app=False, data=True, data_bind_ip="10.0.1.5")
        )
    return files


RENDERERS: dict[str, Callable[[Settings], dict[str, str]]] = {
    "local": _local,
    "vps": _vps,
    "cluster": _cluster,
}


def rendered_files(settings: Settings) -> dict[str, str]:
    """Relative path -> content of every file the stack's rung renders from its settings."""
    renderer = RENDERERS.get(settings.phase)
    return renderer(settings) if renderer else {}
