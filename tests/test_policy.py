"""The CrossGuard pack: each rule with a passing and a violating resource, plus a real dev run."""

from __future__ import annotations

import runpy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from policy import ladder_policies as lp
from tools.harness import PlainMocks, run_program

ROOT = Path(__file__).resolve().parent.parent
PROTECTED = {"protect": True}
UNPROTECTED = {"protect": False}

# (policy, resource type, props, options) — shaped like harness registrations (camelCase inputs).
Case = tuple[str, str, Mapping[str, Any], Mapping[str, Any]]


def _hcloud_fw(port: str, sources: list[str]) -> dict[str, Any]:
    return {"rules": [{"direction": "in", "protocol": "tcp", "port": port, "sourceIps": sources}]}


def _do_fw(port: str, sources: list[str]) -> dict[str, Any]:
    return {"inboundRules": [{"protocol": "tcp", "portRange": port, "sourceAddresses": sources}]}


def _deployment(
    security: dict[str, Any], resources: dict[str, Any], image: str = "ghcr.io/acme/api:1.4.2"
) -> dict[str, Any]:
    container = {"name": "api", "image": image, "securityContext": security, "resources": resources}
    return {"spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": True}, "containers": [container]}}}}


GOOD_RES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
GOOD_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}

PASSING: list[Case] = [
    ("no-public-data-ports", lp.HCLOUD_FIREWALL, _hcloud_fw("443", ["0.0.0.0/0", "::/0"]), PROTECTED),
    ("no-public-data-ports", lp.DO_FIREWALL, _do_fw("5432", ["10.110.0.0/20"]), PROTECTED),
    (
        "no-public-data-ports",
        lp.DOCKER_CONTAINER,
        {"ports": [{"internal": 5432, "external": 5432, "ip": "127.0.0.1"}]},
        {},
    ),
    ("no-public-data-ports", lp.K8S_SERVICE, {"spec": {"type": "ClusterIP", "ports": [{"port": 5432}]}}, {}),
    ("no-public-data-ports", lp.DO_DB_FIREWALL, {"rules": [{"type": "k8s", "value": "abc-123"}]}, {}),
    ("admin-ports-from-allowlist", lp.HCLOUD_FIREWALL, _hcloud_fw("22", ["203.0.113.7/32"]), {}),
    ("admin-ports-from-allowlist", lp.DO_FIREWALL, _do_fw("22", ["203.0.113.7/32"]), {}),
    ("admin-ports-from-allowlist", lp.HCLOUD_FIREWALL, _hcloud_fw("6443", ["198.51.100.0/24", "10.0.0.0/8"]), {}),
    ("admin-ports-from-allowlist", lp.HCLOUD_FIREWALL, _hcloud_fw("22", ["203.0.0.0/16", "2001:db8::/48"]), {}),
    ("admin-ports-from-allowlist", lp.HCLOUD_FIREWALL, _hcloud_fw("2222", ["0.0.0.0/0"]), {}),
    (
        "admin-ports-from-allowlist",
        lp.DOKS,
        {"controlPlaneFirewall": {"enabled": True, "allowedAddresses": ["203.0.113.7/32"]}},
        {},
    ),
    ("stateful-resources-protected", "hcloud:index/volume:Volume", {"size": 10}, PROTECTED),
    ("stateful-resources-protected", "digitalocean:index/databaseCluster:DatabaseCluster", {"engine": "pg"}, PROTECTED),
    ("stateful-resources-protected", "kubernetes:apps/v1:StatefulSet", {"spec": {"replicas": 1}}, UNPROTECTED),
    ("containers-nonroot-with-limits", "kubernetes:apps/v1:Deployment", _deployment(GOOD_SC, GOOD_RES), {}),
    ("containers-nonroot-with-limits", lp.DOCKER_CONTAINER, {"user": "65534:65534", "memory": 256}, {}),
    ("no-latest-image-tags", "kubernetes:apps/v1:Deployment", _deployment(GOOD_SC, GOOD_RES), {}),
    ("no-latest-image-tags", lp.DOCKER_IMAGE, {"name": "localhost:5000/postgres@sha256:" + "a" * 64}, {}),
    ("no-latest-image-tags", lp.DOCKER_CONTAINER, {"image": "localhost:5000/app:1.2"}, {}),
]

VIOLATING: list[Case] = [
    ("no-public-data-ports", lp.HCLOUD_FIREWALL, _hcloud_fw("5432", ["0.0.0.0/0"]), PROTECTED),
    ("no-public-data-ports", lp.DO_FIREWALL, _do_fw("all", ["::/0"]), PROTECTED),
    ("no-public-data-ports", lp.DOCKER_CONTAINER, {"ports": [{"internal": 6379, "external": 6379}]}, {}),
    ("no-public-data-ports", lp.K8S_SERVICE, {"spec": {"type": "LoadBalancer", "ports": [{"port": 5432}]}}, {}),
    ("no-public-data-ports", lp.DO_DB_FIREWALL, {"rules": [{"type": "ip_addr", "value": "0.0.0.0/0"}]}, {}),
    ("admin-ports-from-allowlist", lp.HCLOUD_FIREWALL, _hcloud_fw("22", ["0.0.0.0/0", "::/0"]), {}),
    ("admin-ports-from-allowlist", lp.DO_FIREWALL, _do_fw("1-65535", ["0.0.0.0/0"]), {}),
    # the internet in two halves, and in many adjacent pieces that merge
    ("admin-ports-from-allowlist", lp.HCLOUD_FIREWALL, _hcloud_fw("22", ["0.0.0.0/1", "128.0.0.0/1"]), {}),
    ("admin-ports-from-allowlist", lp.HCLOUD_FIREWALL, _hcloud_fw("22", [f"203.{i}.0.0/17" for i in range(3)]), {}),
    ("admin-ports-from-allowlist", lp.HCLOUD_FIREWALL, _hcloud_fw("22", ["203.0.0.0/16", "198.51.0.0/16"]), {}),
    ("admin-ports-from-allowlist", lp.HCLOUD_FIREWALL, _hcloud_fw("6443", ["1.0.0.0/8"]), {}),
    ("admin-ports-from-allowlist", lp.DO_FIREWALL, _do_fw("22", ["2000::/3"]), {}),
    ("admin-ports-from-allowlist", lp.DO_FIREWALL, _do_fw("22", ["not-a-cidr"]), {}),
    ("admin-ports-from-allowlist", lp.DOKS, {}, {}),
    ("admin-ports-from-allowlist", lp.DOKS, {"controlPlaneFirewall": {"enabled": False, "allowedAddresses": []}}, {}),
    (
        "admin-ports-from-allowlist",
        lp.DOKS,
        {"controlPlaneFirewall": {"enabled": True, "allowedAddresses": ["0.0.0.0/0"]}},
        {},
    ),
    # an existing host's SSH port, configured in the pack
    (
        "admin-ports-from-allowlist",
        lp.HCLOUD_FIREWALL,
        _hcloud_fw("2222", ["0.0.0.0/0"]),
        {"config": {"adminPorts": [2222]}},
    ),
    # a narrower limit by configuration
    (
        "admin-ports-from-allowlist",
        lp.HCLOUD_FIREWALL,
        _hcloud_fw("22", ["8.8.8.0/24"]),
        {"config": {"maxIpv4Prefix": 28}},
    ),
    ("stateful-resources-protected", "hcloud:index/volume:Volume", {"size": 10}, UNPROTECTED),
    ("stateful-resources-protected", "kubernetes:postgresql.cnpg.io/v1:Cluster", {"spec": {}}, UNPROTECTED),
    ("stateful-resources-protected", "kubernetes:apps/v1:StatefulSet", {"spec": {"volumeClaimTemplates": [{}]}}, {}),
    ("containers-nonroot-with-limits", "kubernetes:apps/v1:Deployment", _deployment(GOOD_SC, {}), {}),
    (
        "containers-nonroot-with-limits",
        "kubernetes:batch/v1:CronJob",
        {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "a:1"}]}}}}}},
        {},
    ),
    ("containers-nonroot-with-limits", lp.DOCKER_CONTAINER, {"user": "root", "memory": 256}, {}),
    ("no-latest-image-tags", "kubernetes:apps/v1:Deployment", _deployment(GOOD_SC, GOOD_RES, "ghcr.io/acme/api"), {}),
    ("no-latest-image-tags", lp.DOCKER_IMAGE, {"name": "postgres:latest"}, {}),
    ("no-latest-image-tags", lp.DOCKER_CONTAINER, {"image": "localhost:5000/app"}, {}),
]


def _ids(cases: list[Case]) -> list[str]:
    return [f"{policy}:{typ.rsplit(':', 1)[-1]}" for policy, typ, _p, _o in cases]


@pytest.mark.parametrize(("policy", "typ", "props", "options"), PASSING, ids=_ids(PASSING))
def test_passing(policy: str, typ: str, props: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    _description, check = lp.POLICIES[policy]
    assert check(typ, props, options) == []


@pytest.mark.parametrize(("policy", "typ", "props", "options"), VIOLATING, ids=_ids(VIOLATING))
def test_violating(policy: str, typ: str, props: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    _description, check = lp.POLICIES[policy]
    assert check(typ, props, options), f"{policy} should flag {typ} {props}"


def test_every_policy_has_both_cases() -> None:
    for cases in (PASSING, VIOLATING):
        assert {c[0] for c in cases} == set(lp.POLICIES)


@pytest.mark.parametrize(
    ("image", "latest"),
    [
        ("postgres", True),
        ("postgres:latest", True),
        ("localhost:5000/pg", True),
        ("postgres:17.6-alpine", False),
        ("ghcr.io/a/b@sha256:" + "0" * 64, False),
        (None, False),
    ],
)
def test_image_uses_latest(image: str | None, latest: bool) -> None:
    assert lp.image_uses_latest(image) is latest


def test_dev_stack_from_the_harness() -> None:
    """The local rung as registered: compliant except state protection (off on `local` by design)."""
    result = run_program("dev", mocks=PlainMocks())
    assert result.error is None
    findings = {r.name: lp.evaluate(r.type, r.inputs, {"protect": r.protect}) for r in result.resources}
    flagged = {name: f for name, f in findings.items() if f}
    assert set(flagged) == {"postgres-data", "redis-data"}
    assert all(set(f) == {"stateful-resources-protected"} for f in flagged.values())
    # with ladder:protect the same stack passes every rule
    protected = run_program("dev", overrides={"ladder:protect": True}, mocks=PlainMocks())
    assert protected.error is None
    assert [r.name for r in protected.resources if lp.evaluate(r.type, r.inputs, {"protect": r.protect})] == []


def test_dev_registrations_feed_the_checks() -> None:
    """Real registrations as violating cases: the Caddy container with its port moved to 5432 on 0.0.0.0."""
    result = run_program("dev", mocks=PlainMocks())
    proxy = result.one("docker:index/container:Container", "shop-proxy")
    assert lp.no_public_data_ports(proxy.type, proxy.inputs, {}) == []
    exposed = dict(proxy.inputs, ports=[{"internal": 5432, "external": 5432, "ip": "0.0.0.0"}])
    assert lp.no_public_data_ports(proxy.type, exposed, {})
    rooted = dict(proxy.inputs, user="0:0")
    assert lp.nonroot_with_limits(proxy.type, rooted, {})


def test_pack_wires_every_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load policy/__main__.py with PolicyPack captured, and drive one policy through the SDK types."""
    import pulumi_policy

    captured: dict[str, Any] = {}

    def fake_pack(**kwargs: Any) -> None:
        captured.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake_pack)
    runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="policy_main")
    policies = {p.name: p for p in captured["policies"]}
    assert set(policies) == set(lp.POLICIES)
    assert captured["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY

    args = pulumi_policy.ResourceValidationArgs(
        resource_type="hcloud:index/volume:Volume",
        props={"size": 10},
        urn="urn:pulumi:staging::ladder::hcloud:index/volume:Volume::data",
        name="data",
        opts=pulumi_policy.PolicyResourceOptions(
            protect=False,
            ignore_changes=[],
            delete_before_replace=None,
            aliases=[],
            custom_timeouts=pulumi_policy.PolicyCustomTimeouts(0, 0, 0),
            additional_secret_outputs=[],
            parent=None,
        ),
        provider=None,
    )
    assert policies["admin-ports-from-allowlist"].config_schema is not None
    assert policies["admin-ports-from-allowlist"].config_schema.properties["maxIpv4Prefix"]["default"] == 16
    messages: list[str] = []
    validate = policies["stateful-resources-protected"]._ResourceValidationPolicy__validate
    validate(args, lambda message, urn: messages.append(message))
    assert messages and "not protected" in messages[0]
