"""Quoted heredocs whose end marker cannot occur in their content.

A fixed marker (`LADDER_EOF`) let a config value holding that line end the file early and run
the rest as commands; a marker derived from the content, lengthened until it is absent,
cannot be forged by the content.
"""

from __future__ import annotations

import hashlib
import shlex


def marker(content: str) -> str:
    digest = hashlib.sha256(content.encode()).hexdigest()
    for size in range(12, len(digest) + 1, 4):
        candidate = f"LADDER_EOF_{digest[:size]}"
        if candidate not in content:
            return candidate
    raise ValueError("no heredoc marker fits this content")  # a sha256 prefix inside its own input: never


def heredoc(command: str, content: str) -> str:
    """`command <<'MARKER'` followed by `content` and the marker line (no expansion inside)."""
    end = marker(content)
    return f"{command} <<'{end}'\n{content.rstrip(chr(10))}\n{end}"


def write_file(target: str, content: str, mode: str, parent_mode: str = "0755") -> str:
    """Write `content` to the absolute path `target` atomically (a `.new` file renamed over it:
    a reader never sees half a file, e.g. a half-written entry point every later command runs).

    A missing parent is created with `parent_mode`; an existing one (`/etc/systemd/system`,
    `/usr/local/sbin`) keeps its mode (`install -d -m` would change it)."""
    new = shlex.quote(target + ".new")
    parent = shlex.quote(target.rsplit("/", 1)[0])
    return (
        f"[ -d {parent} ] || install -d -m {parent_mode} {parent}\n"
        f"{heredoc('cat > ' + new, content)}\n"
        f"chmod {mode} {new}\n"
        f"mv -f {new} {shlex.quote(target)}\n"
    )
