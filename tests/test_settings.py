"""The config contract: good configs resolve with the defaults a reader expects, bad ones name their key path."""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest

from components.settings import ConfigError, Settings, parse_settings
from tests.helpers import FULL_APP, SECRET_KEYS, SSH_KEY, cluster_config, local_config, namespaced, vps_config
from tools.harness import run_program


def _with(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Copy `raw` with `a.b.c` set (or deleted when value is ...)."""
    out = copy.deepcopy(raw)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is ...:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return out


def full_local() -> dict[str, Any]:
    return local_config(app=copy.deepcopy(FULL_APP), secrets={"STRIPE_KEY": "sk_test_123"})


BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown phase", local_config(phase="prod"), "ladder:phase"),
    ("unknown provider", vps_config(provider="aws"), "ladder:provider"),
    ("vps needs a provider", _with(vps_config(), "provider", ...), "ladder:provider"),
    ("hetzner cannot run local", local_config(provider="hetzner"), "ladder:provider"),
    ("docker cannot run vps", vps_config(provider="docker"), "ladder:provider"),
    ("cluster needs a domain", _with(cluster_config(), "domain", ...), "ladder:domain"),
    ("vps needs an ACME email", _with(vps_config(), "acmeEmail", ...), "ladder:acmeEmail"),
    ("malformed ACME email", vps_config(acmeEmail="ops-at-example"), "ladder:acmeEmail"),
    ("malformed domain", vps_config(domain="shop_example"), "ladder:domain"),
    ("misspelled top-level key", local_config(domian="x.example.com"), "ladder:domian"),
    ("misspelled service key", _with(local_config(), "app.services.web.prot", 3000), "ladder:app.services.web.prot"),
    ("port out of range", _with(local_config(), "app.services.web.port", 70000), "ladder:app.services.web.port"),
    ("port zero", _with(local_config(), "app.services.web.port", 0), "ladder:app.services.web.port"),
    (
        "latest tag",
        _with(local_config(), "app.services.web.image", "ghcr.io/acme/web:latest"),
        "ladder:app.services.web.image",
    ),
    (
        "untagged image",
        _with(local_config(), "app.services.web.image", "ghcr.io/acme/web"),
        "ladder:app.services.web.image",
    ),
    (
        "malformed image",
        _with(local_config(), "app.services.web.image", "ghcr.io/ACME/web:1"),
        "ladder:app.services.web.image",
    ),
    (
        "duplicate routed path",
        _with(local_config(), "app.services.api", {"image": "ghcr.io/acme/api:1.0.0", "port": 8000, "path": "/"}),
        "ladder:app.services.api.path",
    ),
    ("no routed service", _with(local_config(), "app.services.web.port", ...), "ladder:app.services"),
    (
        "release names a missing service",
        _with(full_local(), "app.release.service", "migrator"),
        "ladder:app.release.service",
    ),
    ("secretEnv without a secret value", _with(full_local(), "secrets", ...), "ladder:secrets.STRIPE_KEY"),
    ("unused secret", _with(local_config(), "secrets", {"STRIPE_KEY": "x"}), "ladder:secrets.STRIPE_KEY"),
    (
        "env shadows an injected URL",
        _with(local_config(), "app.env", {"DATABASE_URL": "x"}),
        "ladder:app.env.DATABASE_URL",
    ),
    ("managed Postgres on Hetzner", vps_config(postgres={"mode": "managed"}), "ladder:postgres.mode"),
    ("container Postgres on a cluster", cluster_config(postgres={"mode": "container"}), "ladder:postgres.mode"),
    ("unknown Redis mode", local_config(redis={"mode": "memcached"}), "ladder:redis.mode"),
    ("unknown Postgres version", local_config(postgres={"version": "9"}), "ladder:postgres.version"),
    ("minNodes above maxNodes", cluster_config(cluster={"minNodes": 5, "maxNodes": 3}), "ladder:cluster.minNodes"),
    ("unquoted Kubernetes version", cluster_config(cluster={"version": 1.3}), "ladder:cluster.version"),
    (
        "tenant name not DNS-1123",
        cluster_config(tenants=[{"name": "Acme_Corp", "domain": "acme.example.com"}]),
        "ladder:tenants[0].name",
    ),
    (
        "duplicate tenant",
        cluster_config(
            tenants=[{"name": "acme", "domain": "a.example.com"}, {"name": "acme", "domain": "b.example.com"}]
        ),
        "ladder:tenants[1].name",
    ),
    ("tenants off the cluster", vps_config(tenants=[{"name": "acme", "domain": "a.example.com"}]), "ladder:tenants"),
    (
        "SSH allowlist entry not a CIDR",
        _with(vps_config(), "vps.sshAllowFrom", ["office"]),
        "ladder:vps.sshAllowFrom[0]",
    ),
    ("empty SSH allowlist", _with(vps_config(), "vps.sshAllowFrom", []), "ladder:vps.sshAllowFrom"),
    ("no SSH keys", _with(vps_config(), "vps.sshKeys", []), "ladder:vps.sshKeys"),
    ("malformed SSH key", _with(vps_config(), "vps.sshKeys", ["ssh-dss AAAA"]), "ladder:vps.sshKeys[0]"),
    (
        "existing without hosts",
        vps_config(provider="existing", vps={"sshAllowFrom": ["10.0.0.0/8"]}),
        "ladder:vps.hosts",
    ),
    (
        "several existing hosts",
        vps_config(
            provider="existing",
            vps={
                "hosts": [
                    {
                        "address": "192.0.2.1",
                        "user": "ops",
                        "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGqNSkWkxGwC56GIK0Ntfe+k+WiXf2BCIxu5hqwvV/g",
                    },
                    {
                        "address": "192.0.2.2",
                        "user": "ops",
                        "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGqNSkWkxGwC56GIK0Ntfe+k+WiXf2BCIxu5hqwvV/g",
                    },
                ],
                "sshAllowFrom": ["10.0.0.0/8"],
            },
        ),
        "ladder:vps.hosts",
    ),
    (
        "container data on several droplets",
        vps_config(provider="digitalocean", vps={**vps_config()["vps"], "count": 2, "size": "s-1vcpu-2gb"}),
        "ladder:postgres.mode",
    ),
    ("droplet size on Hetzner", _with(vps_config(), "vps.size", "s-1vcpu-2gb"), "ladder:vps.size"),
    ("server count zero", _with(vps_config(), "vps.count", 0), "ladder:vps.count"),
    (
        "autoscale min above max",
        _with(full_local(), "app.services.api.autoscale", {"min": 5, "max": 2}),
        "ladder:app.services.api.autoscale.min",
    ),
    ("app name not DNS-1123", _with(local_config(), "app.name", "Shop"), "ladder:app.name"),
    (
        "memory not a quantity",
        _with(local_config(), "app.services.web.resources", {"memory": "lots"}),
        "ladder:app.services.web.resources.memory",
    ),
    (
        "health without a port",
        _with(full_local(), "app.services.worker.health", "/up"),
        "ladder:app.services.worker.health",
    ),
    (
        "half the backup credentials",
        vps_config(backups={"bucket": "shop-backups", "accessKeyId": "AKIA"}),
        "ladder:backups.secretAccessKey",
    ),
    ("monitoring without an email", vps_config(monitoring={"enabled": True}), "ladder:monitoring.alertEmail"),
    ("existing cluster without kubeconfig", cluster_config(provider="existing"), "ladder:cluster.kubeconfig"),
    ("no app", {"phase": "local"}, "ladder:app"),
    ("protect not a boolean", local_config(protect="maybe"), "ladder:protect"),
    (
        "backup schedule not cron",
        vps_config(backups={"bucket": "shop-backups", "schedule": "hourly"}),
        "ladder:backups.schedule",
    ),
]


@pytest.mark.parametrize(("why", "raw", "path"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_its_key_path(why: str, raw: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    paths = [p for p, _ in info.value.problems]
    assert path in paths, f"{why}: expected {path} in {paths}"
    assert path in str(info.value)


def test_there_are_at_least_25_distinct_bad_configs() -> None:
    assert len({path for _, _, path in BAD_CONFIGS}) >= 25


@pytest.mark.parametrize(("why", "raw", "path"), BAD_CONFIGS[::3], ids=[c[0] for c in BAD_CONFIGS[::3]])
def test_bad_config_stops_the_program_before_any_resource(why: str, raw: dict[str, Any], path: str) -> None:
    result = run_program("dev", base=namespaced(raw), with_placeholders=False)
    assert isinstance(result.error, pulumi.RunError), f"{why}: {result.error!r}"
    assert path in str(result.error)
    assert result.resources == []


def test_all_problems_are_reported_at_once() -> None:
    raw = _with(local_config(phase="local", typo=1), "app.services.web.port", 0)
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    assert {p for p, _ in info.value.problems} == {"ladder:typo", "ladder:app.services.web.port"}


def test_secret_values_never_appear_in_errors() -> None:
    raw = local_config(secrets={"bad-name": "hunter2-very-secret"})
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, secret_keys=["ladder:secrets"])
    assert "hunter2" not in str(info.value)
    kubeconfig = cluster_config(provider="existing", cluster={"kubeconfig": 42})
    with pytest.raises(ConfigError) as info:
        parse_settings(kubeconfig, secret_keys=["ladder:cluster"])
    assert "ladder:cluster.kubeconfig" in str(info.value)
    assert "42" not in str(info.value)


def test_local_defaults() -> None:
    s = parse_settings(local_config())
    assert (s.provider, s.protect, s.postgres.mode, s.redis.mode) == ("docker", False, "container", "container")
    web = s.app.services["web"]
    assert (web.route, web.health_path, web.replica_count) == ("/", "/", 1)
    assert s.effective_tenants[0].name == "shop"


def test_vps_defaults_depend_on_provider() -> None:
    hetzner = parse_settings(vps_config())
    assert (hetzner.vps.size, hetzner.vps.region, hetzner.vps.image, hetzner.vps.count) == (
        "cx23",
        "nbg1",
        "ubuntu-24.04",
        1,
    )
    assert hetzner.protect is True
    do = parse_settings(vps_config(provider="digitalocean", postgres={"mode": "managed"}))
    assert (do.vps.size, do.vps.image, do.postgres.size) == ("s-1vcpu-2gb", "ubuntu-24-04-x64", "db-s-1vcpu-1gb")


def test_cluster_defaults_and_replicas_from_autoscale() -> None:
    s = parse_settings(cluster_config(app=copy.deepcopy(FULL_APP), secrets={"STRIPE_KEY": "x"}), SECRET_KEYS)
    assert (s.postgres.mode, s.cluster.node_size, s.cluster.version) == ("operator", "s-2vcpu-4gb", "1.34")
    assert s.app.services["api"].replica_count == 3
    assert s.effective_tenants[0].domain == "shop.example.com"


def test_existing_vps_counts_its_hosts_and_keeps_the_key_secret() -> None:
    raw = vps_config(
        provider="existing",
        vps={
            "hosts": [
                {
                    "address": "192.0.2.10",
                    "user": "deploy",
                    "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGqNSkWkxGwC56GIK0Ntfe+k+WiXf2BCIxu5hqwvV/g",
                }
            ],
            "sshAllowFrom": ["203.0.113.7/32"],
            "sshPrivateKey": "PRIVATE",
        },
    )
    s = parse_settings(raw, SECRET_KEYS)
    assert s.vps.count == 1
    assert s.vps.ssh_private_key is not None and "PRIVATE" not in repr(s)


def test_env_values_become_strings() -> None:
    s = parse_settings(_with(local_config(), "app.env", {"DEBUG": True, "WORKERS": 4}))
    assert s.app.env == {"DEBUG": "true", "WORKERS": "4"}


def test_cidrs_are_normalised() -> None:
    s = parse_settings(_with(vps_config(), "vps.sshAllowFrom", ["203.0.113.7", "2001:db8::/32"]))
    assert s.vps.ssh_allow_from == ["203.0.113.7/32", "2001:db8::/32"]


def test_settings_are_frozen() -> None:
    s: Settings = parse_settings(local_config())
    with pytest.raises(Exception, match="frozen"):
        s.phase = "vps"


def test_ssh_key_fixture_is_valid() -> None:
    assert parse_settings(vps_config()).vps.ssh_keys == [SSH_KEY]


def test_a_registry_host_with_a_trailing_newline_is_refused() -> None:
    # `re.match` with `$` accepts "ghcr.io\n"; the host must match whole.
    raw = {**local_config(), "registries": [{"server": "ghcr.io\n", "username": "u"}]}
    with pytest.raises(ConfigError, match=r"ladder:registries\[0\]\.server"):
        parse_settings(raw, ["ladder:registries"])


def test_a_default_repo_with_a_trailing_newline_is_refused() -> None:
    raw = copy.deepcopy(local_config())
    raw["app"]["defaultRepo"] = "ghcr.io/acme\n"
    with pytest.raises(ConfigError, match=r"ladder:app\.defaultRepo"):
        parse_settings(raw)
