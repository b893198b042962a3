"""Every argument the program sends exists in the installed provider SDK: nothing invented.

For each registered resource type, find the SDK module that registers that type token and
check each recorded input against the properties the SDK sets (`__props__.__dict__[...]`).
CRD instances (cert-manager, CloudNativePG) take free-form bodies and are skipped.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_helpers import EXTRAS
from tests.helpers import AGE_RECIPIENT, CRYPT_KEY, MEILI, MONGO, SSH_KEY, extras_app
from tools.harness import ProgramResult, run_program

SITE = Path(pytest.__file__).resolve().parent.parent
PACKAGES = {
    "docker": "pulumi_docker",
    "docker-build": "pulumi_docker_build",
    "random": "pulumi_random",
    "hcloud": "pulumi_hcloud",
    "digitalocean": "pulumi_digitalocean",
    "kubernetes": "pulumi_kubernetes",
    "command": "pulumi_command",
    "tls": "pulumi_tls",
}
# Images built from source and a private registry (tests/fixtures/build).
BUILT = {
    "ladder:app.defaultRepo": "ghcr.io/acme",
    "ladder:app.services.web": {
        "build": {
            "context": "tests/fixtures/build",
            "target": "app",
            "args": {"BASE": "python:3.13-slim"},
            "platform": "linux/amd64",
        },
        "port": 8080,
        "dev": {"mounts": [{"source": "tests/fixtures/build/src", "target": "/app"}]},
    },
    "ladder:postgres.publishPort": 15432,
}
REGISTRY = {"ladder:registries": [{"server": "ghcr.io", "username": "bot", "password": "token"}]}
HETZNER_KEYS = {"ladder:vps": {"sshKeys": [SSH_KEY], "sshAllowFrom": ["203.0.113.7/32"]}}
RUNS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("dev", {}, {}),
    ("dev", BUILT, REGISTRY),
    ("production", {k: v for k, v in BUILT.items() if "publishPort" not in k}, REGISTRY),
    ("staging", {}, {}),
    # The VPS rung builds and pushes too (and logs in on the servers).
    ("staging", {k: v for k, v in BUILT.items() if "publishPort" not in k}, REGISTRY),
    (
        "staging",
        {"ladder:vps.count": 3, "ladder:backups": {"bucket": "b-backups", "ageRecipient": AGE_RECIPIENT}},
        {"ladder:backups.accessKeyId": "id", "ladder:backups.secretAccessKey": "key"},
    ),
    (
        "staging",
        {
            "ladder:provider": "digitalocean",
            "ladder:vps.size": "s-1vcpu-2gb",
            "ladder:vps.count": 3,
            "ladder:postgres": {"mode": "managed", "version": "17"},
            "ladder:redis": {"mode": "managed"},
            "ladder:backups": {"bucket": "b-backups", "create": True, "ageRecipient": AGE_RECIPIENT},
            "ladder:monitoring": {"enabled": True, "alertEmail": "ops@example.com"},
        },
        {},
    ),
    (
        "staging",
        {
            "ladder:provider": "existing",
            "ladder:vps": {
                "hosts": [
                    {
                        "address": "192.0.2.1",
                        "user": "deploy",
                        "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGqNSkWkxGwC56GIK0Ntfe+k+WiXf2BCIxu5hqwvV/g",
                    }
                ],
                "sshAllowFrom": ["10.0.0.0/8"],
            },
        },
        {},
    ),
    (
        "production",
        {
            "ladder:monitoring": {
                "enabled": True,
                "alertEmail": "ops@example.com",
                "smtpHost": "smtp.example.com:587",
                "smtpFrom": "alerts@example.com",
            }
        },
        {},
    ),
    (
        "production",
        {
            "ladder:postgres": {"mode": "managed", "version": "17"},
            "ladder:redis": {"mode": "managed"},
            "ladder:backups": {"bucket": "b-backups", "ageRecipient": AGE_RECIPIENT},
        },
        {},
    ),
    (
        "production",
        {"ladder:backups": {"bucket": "b-backups", "ageRecipient": AGE_RECIPIENT}},
        {"ladder:backups.accessKeyId": "id", "ladder:backups.secretAccessKey": "key"},
    ),
    (
        "production",
        {
            "ladder:provider": "hetzner",
            **HETZNER_KEYS,
            "ladder:cluster": {"version": "1.34", "minNodes": 1, "maxNodes": 1},
        },
        {},
    ),
    # issue 14: volumes, accessories, MinIO / Spaces buckets, jobs, egress, their backups
    (
        "dev",
        {
            "ladder:app": extras_app(),
            "ladder:accessories": {"mongo": MONGO, "search": MEILI},
            "ladder:buckets": {"media": {"public": True}},
        },
        {"ladder:secrets.MONGO_INITDB_ROOT_PASSWORD": "x"},
    ),
    (
        "production",
        EXTRAS,
        {
            "ladder:backups.accessKeyId": "id",
            "ladder:backups.secretAccessKey": "key",
            "ladder:backups.encryptionKey": CRYPT_KEY,
            "ladder:secrets.MONGO_INITDB_ROOT_PASSWORD": "x",
        },
    ),
    # the vps rung's extras on DigitalOcean: a Spaces bucket and key, the data volume for them
    (
        "staging",
        {
            "ladder:provider": "digitalocean",
            "ladder:vps.size": "s-1vcpu-2gb",
            "ladder:vps.region": "fra1",
            "ladder:vps.volumeGb": 20,
            "ladder:app": extras_app(),
            "ladder:accessories": {"mongo": MONGO, "search": MEILI},
            "ladder:buckets": {"media": {"public": True, "corsOrigins": ["https://shop.example.com"]}},
        },
        {"ladder:secrets.MONGO_INITDB_ROOT_PASSWORD": "x"},
    ),
]


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@functools.cache
def sdk_properties(token: str) -> set[str] | None:
    """The property names the SDK module registering `token` sets, or None for CRDs."""
    if token.startswith("pulumi:providers:"):
        package = PACKAGES[token.rsplit(":", 1)[1]]
        text = (SITE / package / "provider.py").read_text()
    else:
        package = PACKAGES[token.split(":", 1)[0]]
        literal = f"'{token}'"
        files = [p for p in (SITE / package).rglob("*.py") if p.name != "__init__.py" and literal in p.read_text()]
        if not files:
            return None
        text = files[0].read_text()
    return set(re.findall(r'__props__\.__dict__\["(\w+)"\]', text))


@functools.cache
def collected() -> dict[str, set[str]]:
    inputs: dict[str, set[str]] = {}
    for stack, overrides, secrets in RUNS:
        result: ProgramResult = run_program(stack, overrides=overrides, secrets=secrets)
        assert result.error is None, (stack, overrides, result.error)
        for r in result.resources:
            if r.custom:
                inputs.setdefault(r.type, set()).update(r.inputs)
    return inputs


def test_the_runs_cover_every_provider() -> None:
    packages = {t.split(":")[0] if not t.startswith("pulumi:") else t for t in collected()}
    assert {"docker", "docker-build", "random", "hcloud", "digitalocean", "kubernetes", "command", "tls"} <= packages
    assert "pulumi:providers:docker" in collected()
    assert {
        "digitalocean:index/spacesKey:SpacesKey",
        "digitalocean:index/spacesBucketCorsConfiguration:SpacesBucketCorsConfiguration",
        "kubernetes:batch/v1:CronJob",
        "kubernetes:core/v1:PersistentVolumeClaim",
    } <= set(collected())


def test_every_input_is_a_real_sdk_argument() -> None:
    invented: dict[str, list[str]] = {}
    for token, keys in sorted(collected().items()):
        known = sdk_properties(token)
        if known is None:
            assert token.startswith("kubernetes:") and "." in token.split(":")[1], f"no SDK module for {token}"
            continue
        unknown = sorted(k for k in keys if snake(k) not in known and k not in ("apiVersion", "kind"))
        if unknown:
            invented[token] = unknown
    assert invented == {}
