"""Quoted heredocs whose end marker cannot occur in their content.

A fixed marker (`LADDER_EOF`) let a config value holding that line end the file early and run
the rest as commands; a marker derived from the content, lengthened until it is absent,
cannot be forged by the content.
"""

from __future__ import annotations

import hashlib


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
