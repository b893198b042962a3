"""WebSockets and long requests (issue 14, item 6): `services.<name>.sticky` on every rung and
the cluster's drain before a routed pod stops."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.render.caddy import local_caddyfile, vps_caddyfile
from components.render.drain import LB_COOKIE, LB_COOKIE_TTL_SECONDS, PRESTOP_SLEEP_SECONDS
from components.settings import ConfigError, parse_settings
from tests.cluster_helpers import manifests, pod_spec, production
from tests.helpers import cluster_config, local_config, vps_config
from tools.harness import run_program

API = {"image": "ghcr.io/acme/chat-api:1.0.0", "port": 3000, "path": "/api", "replicas": 3, "health": "/api/health"}
WORKER = {"image": "ghcr.io/acme/chat-api:1.0.0", "command": ["node", "worker.js"]}


def _app(raw: dict[str, Any], **services: dict[str, Any]) -> dict[str, Any]:
    raw["app"]["services"].update(services)
    return raw


def _problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    return dict(info.value.problems)


# --- the config contract ---------------------------------------------------------------------


def test_sticky_defaults_off_and_is_accepted_on_every_rung() -> None:
    for raw in (local_config(), vps_config(), cluster_config()):
        assert parse_settings(raw).app.services["web"].sticky is False
        sticky = parse_settings(_app(raw, api={**API, "sticky": True}))
        assert sticky.app.services["api"].sticky is True


def test_sticky_needs_a_port() -> None:
    problems = _problems(_app(vps_config(), worker={**WORKER, "sticky": True}))
    assert "ladder:app.services.worker.sticky" in problems
    assert "port" in problems["ladder:app.services.worker.sticky"]


def test_sticky_must_be_a_bool() -> None:
    assert "ladder:app.services.api.sticky" in _problems(_app(vps_config(), api={**API, "sticky": "cookie"}))


def test_sticky_is_refused_with_ingress_nginx() -> None:
    raw = _app(cluster_config(cluster={"ingress": "ingress-nginx"}), api={**API, "sticky": True})
    assert "Traefik" in _problems(raw)["ladder:app.services.api.sticky"]
    parse_settings(_app(cluster_config(cluster={"ingress": "ingress-nginx"}), api=API))  # not sticky: fine


def test_a_cluster_older_than_the_preStop_sleep_action_is_refused() -> None:
    assert "ladder:cluster.version" in _problems(cluster_config(cluster={"version": "1.29"}))
    parse_settings(cluster_config(cluster={"version": "1.30"}))


def test_a_bad_sticky_stops_the_program_before_any_resource() -> None:
    raw = _app(vps_config(), worker={**WORKER, "sticky": True})
    result = run_program("staging", overrides={"ladder:app.services.worker": raw["app"]["services"]["worker"]})
    assert result.error is not None and "ladder:app.services.worker.sticky" in str(result.error)
    assert result.resources == []


# --- VPS rung: Caddy -----------------------------------------------------------------------------


def _selection_policies(caddyfile: str, caddy_bin: str, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Caddy's own JSON for the Caddyfile: each route's matcher path -> its selection policy."""
    path = tmp_path / "Caddyfile"
    path.write_text(caddyfile)
    proc = subprocess.run(
        [caddy_bin, "adapt", "--config", str(path), "--adapter", "caddyfile"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("handler") == "reverse_proxy":
                found[node["dynamic_upstreams"]["name"]] = node["load_balancing"]["selection_policy"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(proc.stdout))
    return found


@pytest.mark.parametrize("count", [1, 2])
def test_caddy_pins_a_sticky_service_with_its_own_cookie(count: int, caddy_bin: str, tmp_path: Path) -> None:
    raw = _app(vps_config(vps={**vps_config()["vps"], "count": count}), api={**API, "sticky": True})
    policies = _selection_policies(
        vps_caddyfile(parse_settings(raw), behind_load_balancer=count > 1), caddy_bin, tmp_path
    )
    assert policies["api"] == {"policy": "cookie", "name": "ladder_api", "fallback": {"policy": "round_robin"}}
    assert policies["web"] == {"policy": "round_robin"}


def test_caddy_round_robins_when_nothing_is_sticky(caddy_bin: str, tmp_path: Path) -> None:
    policies = _selection_policies(vps_caddyfile(parse_settings(_app(vps_config(), api=API))), caddy_bin, tmp_path)
    assert policies == {"api": {"policy": "round_robin"}, "web": {"policy": "round_robin"}}


def test_local_proxy_is_unchanged_by_sticky() -> None:
    # Local runs one container per service: there is no replica to pin a client to.
    plain = local_caddyfile(parse_settings(_app(local_config(), api=API)).app)
    assert local_caddyfile(parse_settings(_app(local_config(), api={**API, "sticky": True})).app) == plain


# --- VPS rung: provider load balancers --------------------------------------------------------

# With vps.count > 1 on DigitalOcean the stores are managed (settings refuse containers there).
DO: dict[str, Any] = {
    "ladder:provider": "digitalocean",
    "ladder:vps.size": "s-1vcpu-2gb",
    "ladder:vps.region": "fra1",
    "ladder:postgres": {"mode": "managed", "version": "17"},
    "ladder:redis": {"mode": "managed"},
}


def _staging(sticky: bool, **extra: Any) -> Any:
    result = run_program(
        "staging", overrides={"ladder:vps.count": 2, "ladder:app.services.api.sticky": sticky, **extra}
    )
    assert result.error is None, result.error
    return result


def test_hetzner_load_balancer_is_sticky_when_a_service_is() -> None:
    http = _staging(True).one("hcloud:index/loadBalancerService:LoadBalancerService").inputs["http"]
    assert http["stickySessions"] is True
    assert (http["cookieName"], http["cookieLifetime"]) == (LB_COOKIE, LB_COOKIE_TTL_SECONDS)
    assert http["redirectHttp"] is True and http["certificates"]
    plain = _staging(False).one("hcloud:index/loadBalancerService:LoadBalancerService").inputs["http"]
    assert "stickySessions" not in plain and "cookieName" not in plain


def test_digitalocean_load_balancer_is_sticky_when_a_service_is() -> None:
    lb = _staging(True, **DO).one("digitalocean:index/loadBalancer:LoadBalancer").inputs
    assert lb["stickySessions"] == {
        "type": "cookies",
        "cookieName": LB_COOKIE,
        "cookieTtlSeconds": LB_COOKIE_TTL_SECONDS,
    }
    assert "stickySessions" not in _staging(False, **DO).one("digitalocean:index/loadBalancer:LoadBalancer").inputs


# --- cluster rung --------------------------------------------------------------------------------


def test_traefik_pins_only_the_sticky_service() -> None:
    services = {
        (m["metadata"]["namespace"], m["metadata"]["name"]): m for m in manifests(production("three"), "Service")
    }
    apis = [m for (_, name), m in services.items() if name == "api"]
    assert len(apis) == 3
    for api in apis:
        annotations = api["metadata"]["annotations"]
        assert annotations["traefik.ingress.kubernetes.io/service.sticky.cookie"] == "true"
        assert annotations["traefik.ingress.kubernetes.io/service.sticky.cookie.name"] == "ladder_api"
        assert annotations["traefik.ingress.kubernetes.io/service.sticky.cookie.secure"] == "true"
    webs = [m for (_, name), m in services.items() if name == "web"]
    assert webs and all("annotations" not in m["metadata"] for m in webs)
    # The default production stack has no sticky service.
    assert all(
        "annotations" not in m["metadata"]
        for m in manifests(production("doks"), "Service")
        if m["metadata"]["name"] == "api"
    )


@pytest.mark.parametrize("variant", ["doks", "three", "k3s", "nginx", "existing"])
def test_routed_pods_drain_before_they_stop(variant: str) -> None:
    deployments = {m["metadata"]["name"]: m for m in manifests(production(variant), "Deployment")}
    routed = {"web", "api"}
    assert routed <= set(deployments)
    for name, deployment in deployments.items():
        spec = pod_spec(deployment)
        container = spec["containers"][0]
        if name in routed:
            assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}}, name
            # The grace period counts from the start of preStop: the app still gets time after it.
            assert spec["terminationGracePeriodSeconds"] >= PRESTOP_SLEEP_SECONDS + 20, name
        else:
            assert "lifecycle" not in container, name
