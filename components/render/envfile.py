"""Env files that Docker Compose reads back byte for byte.

Compose's env_file parser interpolates `$VAR` in unquoted and double-quoted values, strips
unquoted values at ` #`, and ends a value at a newline. Every value is therefore written
double-quoted with `\\`, `"`, `$` and newlines escaped, which Compose turns back into the
exact bytes (checked against the Compose binary in the tests and on the live bench).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quote(value: str) -> str:
    if "\0" in value or "\r" in value:
        raise ValueError("an env file value cannot hold NUL or carriage return")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\n", "\\n")
    return f'"{escaped}"'


def render(values: Mapping[str, str]) -> str:
    for name in values:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name")
    return "".join(f"{name}={quote(values[name])}\n" for name in sorted(values))
