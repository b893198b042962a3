"""The stand-ins' own digests in place of the upstream ones the program pins.

Ladder pins the images it chooses by tag and digest (`components/versions.py`), and Docker
pulls such a reference by digest. The bench cannot serve upstream digests: it builds
stand-ins and pushes them under the same names and tags to its loopback registry (the
servers' docker.io mirror). So after the push the bench asks that registry for each
stand-in's digest (`Docker-Content-Digest` of `HEAD /v2/<name>/manifests/<tag>`) and
rewrites the pins in `components.versions` to `name:tag@<stand-in digest>` before it
evaluates the program. Every renderer reads `components.versions` when it is called, so
the rewrite reaches every compose file and script; nothing in the product knows about it.
Pins whose tag the bench did not push (MinIO, CloudNativePG, busybox, the exporter) are
left as they are. Listed in README.md's deviations.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from components import versions
from components.image_ref import parse_image
from tools.e2e.proc import BenchError

# What `docker push` stores (schema 2 or OCI manifests, or an index for multi-platform
# builds): asked for all of them, the registry answers with the digest of the stored one
# instead of converting it to schema 1.
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)


def repository_path(reference: str) -> tuple[str, str]:
    """(repository path on a docker.io mirror, tag) of a Docker Hub reference: `library/` for official images."""
    ref = parse_image(reference)
    name = ref.name.removeprefix("docker.io/")
    return (name if "/" in name else f"library/{name}"), ref.tag


def manifest_digest(registry: str, reference: str, timeout: float = 10) -> str:
    """The digest a plain-HTTP registry (`host:port`) serves for the reference's tag."""
    repository, tag = repository_path(reference)
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        digest = str(answer.headers.get("Docker-Content-Digest", ""))
    # Checked by the reference grammar: it goes into every compose file the bench deploys.
    try:
        return parse_image(f"{repository}@{digest}").digest
    except ValueError:
        raise BenchError(f"registry {registry} gave no usable digest for {repository}:{tag}: {digest!r}") from None


def stand_in_digests(registry: str, pushed: Iterable[str]) -> dict[str, str]:
    """Tagged reference (`caddy:2.11.4-alpine`) -> the stand-in's digest, for each pushed image Ladder pins."""
    pinned = {parse_image(ref).tagged for ref in versions.chosen_images().values()}
    tagged = {parse_image(ref).tagged for ref in pushed} & pinned
    return {ref: manifest_digest(registry, ref) for ref in sorted(tagged)}


def _replaced(reference: str, digests: Mapping[str, str]) -> str:
    ref = parse_image(reference)
    return ref.with_digest(digests[ref.tagged]) if ref.tagged in digests else reference


def replace_pins(digests: Mapping[str, str]) -> dict[str, object]:
    """Rewrite the pins of `components.versions` whose tag is in `digests`; return the originals."""
    originals: dict[str, object] = {}
    for name in {key.partition("[")[0] for key in versions.chosen_images()}:
        value = getattr(versions, name)
        originals[name] = value
        if isinstance(value, str):
            setattr(versions, name, _replaced(value, digests))
        else:
            setattr(versions, name, {key: _replaced(ref, digests) for key, ref in value.items()})
    return originals


@contextmanager
def stand_in_pins(digests: Mapping[str, str]) -> Iterator[None]:
    """`replace_pins` for the duration of a block (the tests'); the bench keeps them for its run."""
    originals = replace_pins(digests)
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(versions, name, value)
