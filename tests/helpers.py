"""Small builders shared by the tests."""

from __future__ import annotations

import copy
from typing import Any

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
SECRET_KEYS = ["ladder:secrets", "ladder:vps", "ladder:cluster", "ladder:backups", "ladder:monitoring"]
