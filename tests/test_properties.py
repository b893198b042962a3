"""Property tests: any config, however mangled, gives a valid evaluation or a clear error, never a traceback."""

from __future__ import annotations

import copy
from typing import Any

import pulumi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.settings import ConfigError, Settings, parse_settings
from tests.helpers import FULL_APP, cluster_config, local_config, namespaced, vps_config
from tools.harness import run_program

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["local", "vps", "cluster", "hetzner", "digitalocean", "existing", "docker", "/", "/api", "1.34"]),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=2),
)

PATHS = [
    "phase",
    "provider",
    "domain",
    "acmeEmail",
    "protect",
    "tenants",
    "app.name",
    "app.env",
    "app.secretEnv",
    "app.release.service",
    "app.services.web.image",
    "app.services.web.port",
    "app.services.web.path",
    "app.services.web.replicas",
    "app.services.web.health",
    "app.services.web.autoscale",
    "app.services.web.resources.cpu",
    "app.services.api.port",
    "app.services.api.autoscale.min",
    "postgres.mode",
    "postgres.version",
    "postgres.instances",
    "redis.mode",
    "redis.maxMemoryMb",
    "vps.count",
    "vps.sshAllowFrom",
    "vps.hosts",
    "cluster.version",
    "cluster.minNodes",
    "cluster.ingress",
    "monitoring.enabled",
    "backups.schedule",
    "secrets.STRIPE_KEY",
    "typo",
]


def _bases() -> list[dict[str, Any]]:
    full = {"app": copy.deepcopy(FULL_APP), "secrets": {"STRIPE_KEY": "sk_test_1"}}
    return [local_config(**full), vps_config(**full), cluster_config(**full)]


@st.composite
def mangled_configs(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(_bases())))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        node = raw
        parts = draw(st.sampled_from(PATHS)).split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = draw(junk)
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_configs())
def test_settings_either_validate_or_name_a_key(raw: dict[str, Any]) -> None:
    try:
        result = parse_settings(raw)
    except ConfigError as exc:
        assert exc.problems
        for path, what in exc.problems:
            assert path.startswith("ladder:") and what
        return
    assert isinstance(result, Settings)
    assert result.provider is not None and result.protect is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_configs())
def test_program_either_evaluates_or_fails_with_a_config_error(raw: dict[str, Any]) -> None:
    result = run_program("dev", base=namespaced(raw), with_placeholders=False)
    if result.error is None:
        assert {"url", "phase", "provider", "monthlyCost"} <= set(result.outputs)
    else:
        assert isinstance(result.error, pulumi.RunError), repr(result.error)
        assert "invalid Ladder configuration" in str(result.error)
        assert result.resources == []
