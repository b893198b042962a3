"""Shared helpers for the cluster-rung tests: run a stack variant once, find objects in it."""

from __future__ import annotations

from functools import cache
from typing import Any

from tests.helpers import CRYPT_KEY, SSH_KEY
from tools.harness import LadderMocks, ProgramResult, Registration, run_program
from tools.manifests import manifests_from

TENANTS3 = [
    {"name": "acme", "domain": "acme.example.com"},
    {"name": "globex", "domain": "shop.globex.example"},
    {"name": "initech", "domain": "initech.example.org"},
]
USER_TOKEN = "dop_v1_user_controlled_token"
EXISTING_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://10.0.0.1:6443", certificate-authority-data: bW9jaw==}
users:
- name: admin
  user: {token: abc}
contexts:
- name: prod
  context: {cluster: prod, user: admin}
current-context: prod
"""

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")

MONITORING = {
    "enabled": True,
    "alertEmail": "ops@shop.example.com",
    "smtpHost": "smtp.example.com:587",
    "smtpFrom": "alerts@shop.example.com",
    "smtpUser": "apikey",
}
# Set as `pulumi config set --secret --path` sets it (a plain smtpPassword is refused).
SMTP_PASSWORD = {"ladder:monitoring.smtpPassword": "smtp-secret-value"}
BACKUPS = {
    "bucket": "shop-backups",
    "endpoint": "https://fra1.digitaloceanspaces.com",
    "region": "fra1",
    "schedule": "0 */6 * * *",
    "retentionDays": 14,
}
# The backup keys and the archives' passphrase, each set with `--secret --path`.
BACKUP_SECRETS = {
    "ladder:backups.accessKeyId": "AKIAEXAMPLE",
    "ladder:backups.secretAccessKey": "secret-example",
    "ladder:backups.encryptionKey": CRYPT_KEY,
}
HETZNER: dict[str, Any] = {
    "ladder:provider": "hetzner",
    "ladder:vps": {"sshKeys": [SSH_KEY], "sshAllowFrom": ["203.0.113.7/32"]},
    "ladder:cluster": {"version": "1.34", "minNodes": 2, "maxNodes": 3},
}
# Every variant of the production stack the cluster tests evaluate.
VARIANTS = (
    "doks",
    "three",
    "managed",
    "backups",
    "existing",
    "existing3",
    "nginx",
    "bumped",
    "monitoring",
    "k3s",
    "registry",
    "extras",
)
# Service volumes, accessories, a bucket, a job and egress rules (issue 14), two tenants, backups on.
EXTRAS: dict[str, Any] = {
    "ladder:tenants": [
        {"name": "acme", "domain": "acme.example.com"},
        {"name": "globex", "domain": "shop.globex.example"},
    ],
    "ladder:backups": BACKUPS,
    "ladder:app.services.files": {
        "image": "mendhak/http-https-echo:37",
        "port": 8080,
        "path": "/files",
        "health": "/files/health",
        "volumes": {"/data/uploads": {"sizeGb": 5}},
        "resources": {"cpu": "100m", "memory": "128Mi"},
    },
    "ladder:app.jobs": {
        "cleanup": {
            "service": "worker",
            "command": ["node", "-e", "console.log(1)"],
            "schedule": "30 3 * * *",
            "timeout": 600,
        }
    },
    "ladder:accessories": {
        "mongo": {
            "image": "mongo:8.0.4",
            "port": 27017,
            "env": {"MONGO_INITDB_ROOT_USERNAME": "root"},
            "secretEnv": ["MONGO_INITDB_ROOT_PASSWORD"],
            "volumes": {"/data/db": {"sizeGb": 10}},
            "health": ["mongosh", "--quiet", "--eval", "db.adminCommand('ping')"],
            "backup": {
                "command": [
                    "sh",
                    "-c",
                    'mongodump --host "$MONGO_HOST" --archive --gzip -u root -p "$MONGO_INITDB_ROOT_PASSWORD"',
                ]
            },
            "resources": {"cpu": "250m", "memory": "512Mi"},
        },
        "search": {
            "image": "getmeili/meilisearch:v1.12.8",
            "port": 7700,
            "volumes": {"/meili_data": {"sizeGb": 2}},
            "backup": {"paths": ["/meili_data"]},
        },
    },
    "ladder:buckets": {"media": {"public": True, "corsOrigins": ["https://shop.example.com"], "expireDays": 365}},
    "ladder:egress": [{"to": "203.0.113.0/24", "ports": [27017]}, {"to": "smtp.example.com", "ports": [587]}],
}


def tenants(n: int) -> list[dict[str, str]]:
    return [{"name": f"t{i:03d}", "domain": f"t{i:03d}.example.com"} for i in range(n)]


@cache
def production(variant: str = "doks") -> ProgramResult:
    """Named variants of the production stack, evaluated once per test worker."""
    overrides: dict[str, Any] = {}
    secrets: dict[str, Any] = {"digitalocean:token": USER_TOKEN}
    if variant in ("existing", "existing3"):
        overrides["ladder:provider"] = "existing"
        secrets = {"ladder:cluster.kubeconfig": EXISTING_KUBECONFIG}
    if variant in ("three", "existing3"):
        overrides["ladder:tenants"] = TENANTS3
    if variant == "three":
        # Seed 000: the API's replicas hold WebSockets, each client stays on one (issue 14).
        overrides["ladder:app.services.api.sticky"] = True
    if variant in ("managed", "managed-valkey"):
        overrides["ladder:postgres"] = {"mode": "managed", "version": "17", "instances": 2}
    if variant == "managed":
        # Managed Valkey is refused with more than one tenant (one shared admin user).
        overrides["ladder:tenants"] = TENANTS3[:2]
    if variant == "managed-valkey":
        overrides["ladder:redis"] = {"mode": "managed"}
    if variant in ("backups", "monitoring", "k3s"):
        overrides["ladder:backups"] = BACKUPS
        secrets.update(BACKUP_SECRETS)
    if variant == "nginx":
        overrides["ladder:cluster.ingress"] = "ingress-nginx"
    if variant == "monitoring":
        overrides["ladder:monitoring"] = MONITORING
        secrets.update(SMTP_PASSWORD)
    if variant == "k3s":
        overrides.update(HETZNER)
        secrets = {**BACKUP_SECRETS, **SMTP_PASSWORD}
        overrides["ladder:monitoring"] = MONITORING
    if variant == "extras":
        overrides.update(EXTRAS)
        secrets.update(BACKUP_SECRETS)
        secrets["ladder:secrets.MONGO_INITDB_ROOT_PASSWORD"] = "mongo-secret-value"
    if variant == "bumped":
        overrides["ladder:app.services.api.image"] = "mendhak/http-https-echo:38"
    if variant == "registry":
        # A private registry and a service built from source (tests/fixtures/build), two tenants.
        overrides["ladder:tenants"] = TENANTS3[:2]
        overrides["ladder:app.defaultRepo"] = "ghcr.io/acme"
        overrides["ladder:app.services.web"] = {
            "build": {"context": "tests/fixtures/build", "target": "app"},
            "port": 8000,
            "path": "/",
            "replicas": 2,
        }
        secrets["ladder:registries"] = [{"server": "ghcr.io", "username": "acme-bot", "password": "ghp_example"}]
    result = run_program("production", overrides=overrides, secrets=secrets)
    if result.error is not None:
        raise AssertionError(f"variant {variant} failed: {result.error!r}")
    return result


def manifests(result: ProgramResult, kind: str | None = None) -> list[dict[str, Any]]:
    return [m for m in manifests_from(result) if kind is None or m["kind"] == kind]


def by_kind(result: ProgramResult, kind: str) -> list[Registration]:
    return [r for r in result.resources if r.type.startswith("kubernetes:") and r.type.endswith(f":{kind}")]


def urn_of(result: ProgramResult, name: str, type_suffix: str) -> str:
    found = [r.urn for r in result.resources if r.name == name and r.type.endswith(type_suffix)]
    assert len(found) == 1, (name, type_suffix, found)
    return found[0]


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


SPACES_KEY = "digitalocean:index/spacesKey:SpacesKey"


class MintedKeyMocks(LadderMocks):
    """A Spaces key answers with an access key and secret of its own (named after the resource),
    so a test can see which key reaches which tenant's Secret."""

    def computed(self, typ: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
        if typ == SPACES_KEY:
            return {"accessKey": f"MINTED-ID-{name}", "secretKey": f"MINTED-SECRET-{name}"}
        return super().computed(typ, name, state)


# EXTRAS with a backup bucket Ladder creates: each tenant its own bucket and key (issue 12 item 11).
TENANT_KEYS: dict[str, Any] = {**EXTRAS, "ladder:backups": {**BACKUPS, "create": True}}


@cache
def tenant_keys(preview: bool = False, tenants: tuple[str, ...] = ()) -> ProgramResult:
    """The extras stack with `backups.create` under `MintedKeyMocks`; `tenants` replaces the tenant
    names (the app's own tenant is `shop`)."""
    overrides = dict(TENANT_KEYS)
    if tenants:
        overrides["ladder:tenants"] = [{"name": n, "domain": f"{n}.example.com"} for n in tenants]
    secrets = {
        "digitalocean:token": USER_TOKEN,
        **BACKUP_SECRETS,
        "ladder:secrets.MONGO_INITDB_ROOT_PASSWORD": "mongo-secret-value",
    }
    result = run_program("production", overrides=overrides, secrets=secrets, mocks=MintedKeyMocks(), preview=preview)
    if result.error is not None:
        raise AssertionError(f"tenant keys failed: {result.error!r}")
    return result
