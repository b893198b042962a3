"""Issue 12: on every rung variant, no secret value appears in a plain (non-secret) resource
input, a plain stack output, or a file `make plan` writes under build/."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from components.render import envfile
from tests.helpers import AGE_RECIPIENT
from tools.harness import ProgramResult, is_secret, run_program, unwrap
from tools.plan import write_build

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyExampleKeyExampleKeyExample00 dev@laptop"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://10.0.0.1:6443", certificate-authority-data: bW9jaw==}
users:
- name: admin
  user: {token: S3CR3T-kubeconfig-token}
contexts:
- name: prod
  context: {cluster: prod, user: admin}
current-context: prod
"""
SECRETS: dict[str, str] = {
    "digitalocean:token": "S3CR3T-digitalocean-token",
    "hcloud:token": "S3CR3T-hcloud-token",
    "ladder:secrets.SESSION_SECRET": "S3CR3T-session p@ss$word 'q\"",
}
BACKUP_SECRETS = {
    "ladder:backups.accessKeyId": "S3CR3TACCESSKEY",
    "ladder:backups.secretAccessKey": "S3CR3T-secret-key",
}
BACKUPS = {
    "bucket": "shop-backups",
    "endpoint": "https://fra1.digitaloceanspaces.com",
    "region": "fra1",
    "ageRecipient": AGE_RECIPIENT,
}
MONITORING = {
    "enabled": True,
    "alertEmail": "ops@example.com",
    "smtpHost": "smtp.example.com:587",
    "smtpFrom": "alerts@example.com",
    "smtpUser": "apikey",
}
SMTP = {"ladder:monitoring.smtpPassword": "S3CR3T-smtp-password"}
HETZNER_NODES = {"sshKeys": [SSH_KEY], "sshAllowFrom": ["203.0.113.7/32"]}
# A private registry: its token is a secret the VPS deploy script and the build provider carry.
REGISTRY = {"ladder:registries": [{"server": "ghcr.io", "username": "acme-bot", "password": "S3CR3T-registry-token"}]}
PRIVATE_BUILD = {
    "ladder:app.defaultRepo": "ghcr.io/acme",
    "ladder:app.services.api": {"build": {"context": "tests/fixtures/build"}, "port": 8080, "path": "/api"},
    "ladder:app.services.worker": {"image": "ghcr.io/acme/worker:1.0.0"},
}

# name -> (stack, overrides, extra secrets)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "local": ("dev", {"ladder:app.secretEnv": ["SESSION_SECRET"]}, {}),
    "vps-hetzner": (
        "staging",
        {"ladder:backups": BACKUPS, "ladder:monitoring": MONITORING},
        {**BACKUP_SECRETS, **SMTP},
    ),
    "vps-private-build": ("staging", PRIVATE_BUILD, REGISTRY),
    "vps-hetzner-3": ("staging", {"ladder:vps.count": 3, "ladder:backups": BACKUPS}, BACKUP_SECRETS),
    "vps-do": ("staging", {"ladder:provider": "digitalocean", "ladder:vps": HETZNER_NODES}, {}),
    "vps-do-2-managed": (
        "staging",
        {
            "ladder:provider": "digitalocean",
            "ladder:vps": {**HETZNER_NODES, "count": 2},
            "ladder:postgres": {"mode": "managed"},
            "ladder:redis": {"mode": "managed"},
            "ladder:backups": {**BACKUPS, "create": True},
        },
        BACKUP_SECRETS,
    ),
    "vps-existing": (
        "staging",
        {
            "ladder:provider": "existing",
            "ladder:vps": {
                "hosts": [
                    {
                        "address": "192.0.2.10",
                        "user": "deploy",
                        "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGqNSkWkxGwC56GIK0Ntfe+k+WiXf2BCIxu5hqwvV/g",
                    }
                ],
                "sshAllowFrom": ["203.0.113.7/32"],
            },
            "ladder:monitoring": MONITORING,
        },
        {"ladder:vps.sshPrivateKey": "S3CR3T-ssh-private-key", **SMTP},
    ),
    "doks": ("production", {}, {}),
    "doks-managed": (
        "production",
        {"ladder:postgres": {"mode": "managed"}, "ladder:redis": {"mode": "managed"}, "ladder:backups": BACKUPS},
        BACKUP_SECRETS,
    ),
    "doks-monitoring": (
        "production",
        {"ladder:monitoring": MONITORING, "ladder:backups": BACKUPS},
        {**SMTP, **BACKUP_SECRETS},
    ),
    # Ladder creates the backup bucket: each tenant its own bucket and minted Spaces key (issue 12 item 11).
    "doks-tenant-keys": (
        "production",
        {
            "ladder:tenants": [
                {"name": "shop", "domain": "shop.example.com"},
                {"name": "acme", "domain": "acme.example.com"},
            ],
            "ladder:backups": {**BACKUPS, "create": True},
        },
        BACKUP_SECRETS,
    ),
    "k3s": (
        "production",
        {"ladder:provider": "hetzner", "ladder:vps": HETZNER_NODES, "ladder:cluster.nodeSize": "cx33"},
        {"ladder:cluster.hcloudToken": "S3CR3T-hcloud-ccm-token"},
    ),
    "existing-cluster": ("production", {"ladder:provider": "existing"}, {"ladder:cluster.kubeconfig": KUBECONFIG}),
}


def _plain_strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string leaf not under a secret wrapper, with where it is."""
    if is_secret(value):
        return []
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _plain_strings(v, f"{path}.{k}")]
    if isinstance(value, (list, tuple)):
        return [s for i, v in enumerate(value) for s in _plain_strings(v, f"{path}[{i}]")]
    return [(path, str(value))]


def _secret_values(secrets: dict[str, Any]) -> list[str]:
    """The values as set, and as a Kubernetes Secret's `data` carries them (base64)."""
    # A registry list is secret as a whole; its tokens are what must never show.
    values: list[str] = []
    for value in secrets.values():
        values += [value] if isinstance(value, str) else [r["password"] for r in value]
    if any("kubeconfig" in k for k in secrets):
        values.append("S3CR3T-kubeconfig-token")  # the part of the kubeconfig that matters
    return values + [base64.b64encode(v.encode()).decode() for v in values]


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> tuple[str, ProgramResult, list[str]]:
    stack, overrides, extra = VARIANTS[request.param]
    secrets = {**SECRETS, **extra}
    result = run_program(stack, overrides=overrides, secrets=secrets, with_placeholders=False)
    assert result.error is None, f"{request.param}: {result.error!r}"
    return request.param, result, _secret_values(secrets)


def test_no_secret_in_plain_inputs(variant: tuple[str, ProgramResult, list[str]]) -> None:
    name, result, secrets = variant
    # The secrets do reach the program's resources (as secrets), so the check below sees them.
    leaves = [text for r in result.resources for _, text in _plain_strings(unwrap(r.inputs))]
    session = SECRETS["ladder:secrets.SESSION_SECRET"]
    encoded = base64.b64encode(session.encode()).decode()
    quoted = envfile.quote(session)  # as the VPS env file holds it (Compose reads it back byte for byte)
    assert any(session in text or encoded in text or quoted in text for text in leaves), name
    leaks = [
        (r.type, r.name, where)
        for r in result.resources
        for where, text in _plain_strings(r.inputs)
        if any(secret in text or envfile.quote(secret)[1:-1] in text for secret in secrets)
    ]
    assert not leaks, f"{name}: {leaks[:5]}"


def test_no_secret_in_plain_outputs(variant: tuple[str, ProgramResult, list[str]]) -> None:
    name, result, secrets = variant
    plain = {k: v for k, v in result.outputs.items() if k not in result.secret_outputs}
    leaks = [where for where, text in _plain_strings(plain) if any(secret in text for secret in secrets)]
    assert not leaks, f"{name}: {leaks}"
    if "kubeconfig" in result.outputs:
        assert "kubeconfig" in result.secret_outputs


def test_no_secret_in_build_files(variant: tuple[str, ProgramResult, list[str]], tmp_path: Path) -> None:
    name, result, secrets = variant
    written = write_build(result, tmp_path / name)
    assert written
    leaks = [
        str(p.relative_to(tmp_path))
        for p in written
        if any(secret in p.read_text(errors="replace") for secret in secrets)
    ]
    assert not leaks, f"{name}: {leaks}"


def test_the_walk_sees_plain_leaks() -> None:
    wrapped = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "S3CR3T"}
    assert _plain_strings({"a": wrapped, "b": ["x"]}) == [(".b[0]", "x")]
    assert _plain_strings({"a": {"b": "S3CR3T"}}) == [(".a.b", "S3CR3T")]
