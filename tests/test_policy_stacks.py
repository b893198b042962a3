"""Ladder's own policy pack passes on what the remote rungs register (dev's unprotected volumes are by design)."""

from __future__ import annotations

from typing import Any

import pytest

from policy import ladder_policies as lp
from tests.helpers import SSH_KEY
from tools.harness import run_program, unwrap

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "staging": ("staging", {}),
    "staging-3-servers": ("staging", {"ladder:vps.count": 3}),
    "doks": ("production", {}),
    "doks-managed-data": (
        "production",
        {"ladder:postgres": {"mode": "managed", "version": "17"}, "ladder:redis": {"mode": "managed"}},
    ),
    "k3s-hetzner": (
        "production",
        {
            "ladder:provider": "hetzner",
            "ladder:vps": {"sshKeys": [SSH_KEY], "sshAllowFrom": ["203.0.113.7/32"]},
            "ladder:cluster": {"version": "1.34", "minNodes": 2, "maxNodes": 2},
        },
    ),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_stack_passes_the_policy_pack(variant: str) -> None:
    stack, overrides = VARIANTS[variant]
    result = run_program(stack, overrides=overrides)
    assert result.error is None, result.error
    violations = {}
    for r in result.resources:
        found = {k: v for k, v in lp.evaluate(r.type, unwrap(r.inputs), {"protect": r.protect}).items() if v}
        if found:
            violations[f"{r.type} {r.name}"] = found
    assert violations == {}


def test_dev_flags_only_its_unprotected_volumes() -> None:
    result = run_program("dev")
    flagged = {
        r.name for r in result.resources if any(lp.evaluate(r.type, unwrap(r.inputs), {"protect": r.protect}).values())
    }
    assert flagged == {"postgres-data", "redis-data"}
