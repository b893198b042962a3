"""An image reference split into its parts, by Docker's own grammar.

Ladder pins the images it chooses as `name:tag@sha256:<digest>` (components/versions.py).
A few places need one part of such a pin rather than the whole: a Helm chart that takes
`tag` and `sha` as separate values, the tests that check each pin against its recorded
evidence, the bench that pushes its stand-ins under the tag. They all split here, with
the reference grammar the settings already validate user images with, instead of
`split(":")` (which breaks on a registry port or a digest).
"""

from __future__ import annotations

from typing import NamedTuple

from components.settings import _IMAGE_RE

DIGEST_PREFIX = "sha256:"


class ImageRef(NamedTuple):
    """`name[:tag][@digest]`; `tag` and `digest` are empty when the reference has none."""

    name: str
    tag: str
    digest: str  # `sha256:<64 hex>` or ""

    @property
    def tagged(self) -> str:
        """The reference without its digest (what a registry lists under the tag)."""
        return f"{self.name}:{self.tag}" if self.tag else self.name

    @property
    def digest_hex(self) -> str:
        """The digest without its algorithm, as charts with a separate `sha` value take it."""
        return self.digest.removeprefix(DIGEST_PREFIX)

    def with_digest(self, digest: str) -> str:
        """The same name and tag pinned to another digest."""
        return f"{self.tagged}@{parse_image(f'{self.name}@{digest}').digest}"


def parse_image(reference: str) -> ImageRef:
    """Split a reference; raise ValueError for anything Docker would not pull."""
    match = _IMAGE_RE.fullmatch(reference) if len(reference) <= 255 else None
    if match is None:
        raise ValueError(f"not an image reference: {reference!r}")
    return ImageRef(match.group("name"), match.group("tag") or "", match.group("digest") or "")
