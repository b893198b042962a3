"""Quoting for systemd unit files (systemd.unit(5), systemd.service(5) "Command lines").

A value in a unit file ends at the newline (a trailing backslash continues it), and `%`
starts a specifier in most settings, including `Description=`. Command lines add their own
word splitting; Ladder's units take no config value on a command line (they run fixed
scripts), so only free text is quoted here: `text` returns what systemd reads back as
exactly the given value, or refuses a value it cannot carry (control characters).
"""

from __future__ import annotations

import re

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _checked(value: str) -> str:
    if _CONTROL_RE.search(value):
        raise ValueError(f"a systemd unit value cannot hold control characters: {value!r}")
    return value


def text(value: str) -> str:
    """A free-text setting (`Description=`): specifiers escaped, no line break, no continuation.

    Such settings take backslashes literally except at the end of a line, where one joins
    the next line to the value.
    """
    if value.endswith("\\"):
        raise ValueError(f"a systemd unit value cannot end with a backslash: {value!r}")
    return _checked(value).replace("%", "%%")
