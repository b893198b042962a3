"""Ladder's CrossGuard policy pack: `pulumi preview --policy-pack policy`.

The rules are pure functions in `ladder_policies.py` (unit-tested in tests/test_policy.py);
this file only adapts them to `pulumi_policy`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ladder_policies import CONFIG_SCHEMAS, POLICIES, Check


def _adapt(check: Check) -> object:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        options = {
            "protect": bool(args.opts.protect) if args.opts is not None else False,
            "config": dict(args.get_config() or {}),
        }
        for message in check(args.resource_type, args.props, options):
            report_violation(message, None)

    return validate


PolicyPack(
    name="ladder",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name=name,
            description=description,
            validate=_adapt(check),  # type: ignore[arg-type]
            config_schema=PolicyConfigSchema(CONFIG_SCHEMAS[name]) if name in CONFIG_SCHEMAS else None,
        )
        for name, (description, check) in POLICIES.items()
    ],
)
