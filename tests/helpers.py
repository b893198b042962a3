"""Small builders shared by the tests."""

from __future__ import annotations

import copy
from typing import Any

from tools.attack import AGE_RECIPIENT as AGE_RECIPIENT  # the tests' age key is the attack's
from tools.attack import CRYPT_KEY as CRYPT_KEY

MINIMAL_APP: dict[str, Any] = {
    "name": "shop",
    "services": {"web": {"image": "ghcr.io/acme/web:1.4.2", "port": 3000}},
}

FULL_APP: dict[str, Any] = {
    "name": "shop",
    "env": {"LOG_LEVEL": "info"},
    "secretEnv": ["STRIPE_KEY"],
    "release": {"service": "api", "command": ["python", "manage.py", "migrate"]},
    "services": {
        "web": {"image": "ghcr.io/acme/web:1.4.2", "port": 3000, "path": "/", "replicas": 2, "health": "/healthz"},
        "api": {
            "image": "ghcr.io/acme/api:1.4.2",
            "port": 8000,
            "path": "/api",
            "health": "/health",
            "autoscale": {"min": 3, "max": 10, "cpu": 70, "memory": 80},
            "resources": {"cpu": "250m", "memory": "256Mi"},
        },
        "worker": {"image": "ghcr.io/acme/api:1.4.2", "command": ["node", "worker.js"]},
    },
}

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyExampleKeyExampleKeyExample00 dev@laptop"
# A real age public key (`age-keygen`; its private half was not kept): VPS backups encrypt to it.


def local_config(**extra: Any) -> dict[str, Any]:
    """A minimal valid local config (keys without the `ladder:` namespace)."""
    return {"phase": "local", "app": copy.deepcopy(MINIMAL_APP), **extra}


def vps_config(**extra: Any) -> dict[str, Any]:
    return {
        "phase": "vps",
        "provider": "hetzner",
        "domain": "shop.example.com",
        "acmeEmail": "ops@example.com",
        "vps": {"sshKeys": [SSH_KEY], "sshAllowFrom": ["203.0.113.7/32"]},
        "app": copy.deepcopy(MINIMAL_APP),
        **extra,
    }


def cluster_config(**extra: Any) -> dict[str, Any]:
    return {
        "phase": "cluster",
        "provider": "digitalocean",
        "domain": "shop.example.com",
        "acmeEmail": "ops@example.com",
        "app": copy.deepcopy(MINIMAL_APP),
        **extra,
    }


def namespaced(raw: dict[str, Any]) -> dict[str, Any]:
    """The same config as a stack file holds it (`ladder:` keys)."""
    return {f"ladder:{k}": v for k, v in raw.items()}


# What `pulumi config set --secret --path` marks secret when a test sets a secret field:
# the top-level key that holds it.
SECRET_KEYS = [
    "ladder:secrets",
    "ladder:vps",
    "ladder:cluster",
    "ladder:backups",
    "ladder:monitoring",
    "ladder:buckets",
]


def extras_app() -> dict[str, Any]:
    """seed 003's shape: an API keeping uploads on a volume, a nightly cleanup job."""
    app = copy.deepcopy(MINIMAL_APP)
    app["services"]["api"] = {
        "image": "ghcr.io/acme/api:1.4.2",
        "port": 8000,
        "path": "/api",
        "volumes": {"/app/uploads": {"sizeGb": 5}},
    }
    app["jobs"] = {
        "cleanup": {"service": "api", "command": ["python", "-c", "print('50% done, $HOME')"], "schedule": "0 3 * * *"}
    }
    return app


# MongoDB as an accessory (seed 003), backed up by its own dump command.
MONGO: dict[str, Any] = {
    "image": "mongo:8.0.4",
    "port": 27017,
    "env": {"MONGO_INITDB_ROOT_USERNAME": "root"},
    "secretEnv": ["MONGO_INITDB_ROOT_PASSWORD"],
    "volumes": {"/data/db": {"sizeGb": 10}},
    "health": ["mongosh", "--quiet", "--eval", "db.adminCommand('ping')"],
    "backup": {"command": ["sh", "-c", 'mongodump --archive --gzip -u root -p "$MONGO_INITDB_ROOT_PASSWORD"']},
}
MEILI: dict[str, Any] = {
    "image": "getmeili/meilisearch:v1.12.8",
    "port": 7700,
    "volumes": {"/meili_data": {"sizeGb": 2}},
    "backup": {"paths": ["/meili_data"]},
}


def extras_config(base: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """`base` (a *_config) with volumes, accessories, a bucket and a job."""
    out = {**base, "app": extras_app(), "accessories": {"mongo": copy.deepcopy(MONGO), "search": copy.deepcopy(MEILI)}}
    out["secrets"] = {"MONGO_INITDB_ROOT_PASSWORD": "mongo-secret-value"}
    out["buckets"] = {"media": {"public": True, "corsOrigins": ["https://shop.example.com"], "expireDays": 365}}
    if out.get("phase") == "vps":  # every volume is a directory on the data volume
        out["vps"] = {**out.get("vps", {}), "volumeGb": 20}
    out.update(extra)
    return out
