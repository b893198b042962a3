"""Reads the `ladder:` keys from the Pulumi runtime and hands them to `parse_settings`.

Kept apart from `settings` so validation stays a pure function of a dict: this module is
the only place that knows how Pulumi passes config to a Python program (a flat map of
`namespace:key` to strings, structured values as JSON, plus a list of secret keys).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components.settings import NAMESPACE, ConfigError, Settings, parse_settings


def _all_keys() -> set[str]:
    keys = set(runtime_config.CONFIG.get())
    keys.update(runtime_config.get_config_env())
    return keys


def _decode(key: str, value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError([(key, f"is not valid structured config: {exc.msg}")]) from None
    return value


def read_raw_config() -> tuple[dict[str, Any], set[str]]:
    """Every `ladder:` key (without the namespace) with its decoded value, and the secret keys."""
    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {}
    secret: set[str] = set()
    for key in sorted(_all_keys()):
        if not key.startswith(prefix):
            continue
        raw[key[len(prefix) :]] = _decode(key, runtime_config.get_config(key))
        if runtime_config.is_config_secret(key) or key in runtime_config.get_config_secret_keys_env():
            secret.add(key)
    return raw, secret


def _provider_tokens(settings: Settings) -> Iterable[tuple[str, str]]:
    """Tokens that must stay with Pulumi compared with the ones Ladder hands to a cluster."""
    ccm = settings.cluster.hcloud_token
    if ccm is None:
        return
    pulumi_token = runtime_config.get_config("hcloud:token") or os.environ.get("HCLOUD_TOKEN")
    if pulumi_token and pulumi_token == ccm.get_secret_value():
        yield (
            f"{NAMESPACE}:cluster.hcloudToken",
            "is the same token as hcloud:token (Pulumi's); create a separate token in the Hetzner Cloud "
            "console for the cloud controller manager and CSI driver, so either can be revoked alone",
        )


def load_settings() -> Settings:
    """Validated settings, or a `RunError` that the CLI prints without a traceback."""
    try:
        raw, secret_keys = read_raw_config()
        if "app" not in raw:
            raise ConfigError([(f"{NAMESPACE}:app", "required: the app description (see README)")])
        settings = parse_settings(raw, secret_keys)
        problems = list(_provider_tokens(settings))
        if problems:
            raise ConfigError(problems)
        return settings
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None
