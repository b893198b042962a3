"""The bench's digest substitution (tools/e2e/digests.py), without the bench.

The bench pushes stand-ins under the program's names and tags, asks its registry for their
digests and pins those instead of upstream's. Here a tiny HTTP server plays the registry,
and the program is evaluated under mocks with a substituted pin.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from components import versions
from components.image_ref import parse_image
from tools.e2e import digests
from tools.e2e.images import _library
from tools.e2e.proc import BenchError
from tools.harness import run_program, unwrap

STAND_IN = "sha256:" + "ab" * 32
CADDY_TAGGED = parse_image(versions.CADDY_IMAGE).tagged


class FakeRegistry(BaseHTTPRequestHandler):
    """Answers `HEAD /v2/<name>/manifests/<tag>` as distribution does, for the manifests it holds."""

    manifests: ClassVar[dict[str, str]] = {}
    accepts: ClassVar[list[str]] = []

    def do_HEAD(self) -> None:
        self.accepts.append(self.headers.get("Accept", ""))
        digest = self.manifests.get(self.path)
        self.send_response(200 if digest is not None else 404)
        if digest:
            self.send_header("Docker-Content-Digest", digest)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def registry() -> Iterator[tuple[str, type[FakeRegistry]]]:
    handler = type("Handler", (FakeRegistry,), {"manifests": {}, "accepts": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_reads_the_digest_the_registry_serves(registry: tuple[str, type[FakeRegistry]]) -> None:
    address, handler = registry
    handler.manifests["/v2/library/caddy/manifests/2.11.4-alpine"] = STAND_IN
    assert digests.manifest_digest(address, versions.CADDY_IMAGE) == STAND_IN
    # Asked for schema 2 and OCI manifests: without them a registry may answer a schema 1 conversion.
    assert "application/vnd.docker.distribution.manifest.v2+json" in handler.accepts[0]
    assert "application/vnd.oci.image.manifest.v1+json" in handler.accepts[0]


def test_only_ladders_pins_are_looked_up(registry: tuple[str, type[FakeRegistry]]) -> None:
    address, handler = registry
    handler.manifests["/v2/library/caddy/manifests/2.11.4-alpine"] = STAND_IN
    # The demo image is pushed too but pinned by nothing: asking for it would 404 here.
    found = digests.stand_in_digests(address, [versions.CADDY_IMAGE, "ladderbench/demo:1.0.0"])
    assert found == {CADDY_TAGGED: STAND_IN}


@pytest.mark.parametrize("answer", ["", "sha256:not-hex", "md5:" + "0" * 32])
def test_a_registry_without_a_usable_digest_stops_the_bench(
    registry: tuple[str, type[FakeRegistry]], answer: str
) -> None:
    address, handler = registry
    handler.manifests["/v2/valkey/valkey/manifests/9.1.1-alpine"] = answer
    with pytest.raises(BenchError, match="no usable digest"):
        digests.manifest_digest(address, versions.VALKEY_IMAGES["9.1"])


def test_stand_ins_are_pushed_under_the_tag_only() -> None:
    assert _library(versions.CADDY_IMAGE) == "library/caddy:2.11.4-alpine"
    assert _library(versions.VALKEY_IMAGES["9.1"]) == "valkey/valkey:9.1.1-alpine"
    assert _library("ladderbench/demo:1.0.0") == "ladderbench/demo:1.0.0"


def test_the_substituted_digest_reaches_the_deploy_and_is_undone() -> None:
    upstream = versions.CADDY_IMAGE
    substituted = f"{CADDY_TAGGED}@{STAND_IN}"
    with digests.stand_in_pins({CADDY_TAGGED: STAND_IN}):
        assert substituted == versions.CADDY_IMAGE
        result = run_program("staging")
    assert upstream == versions.CADDY_IMAGE
    assert result.error is None, result.error
    deploys = [str(unwrap(r.inputs.get("stdin"))) for r in result.resources if r.name.endswith("-deploy")]
    assert deploys and any(f"image: {substituted}" in d for d in deploys)
    assert not any(upstream in d for d in deploys)
    # Pins the bench did not push keep upstream's digest.
    assert any(versions.POSTGRES_IMAGES["17"] in d for d in deploys)


def test_maps_of_pins_are_substituted_per_entry() -> None:
    valkey = parse_image(versions.VALKEY_IMAGES["9.1"]).tagged
    before = dict(versions.VALKEY_IMAGES)
    with digests.stand_in_pins({valkey: STAND_IN}):
        assert versions.VALKEY_IMAGES["9.1"] == f"{valkey}@{STAND_IN}"
        assert versions.VALKEY_IMAGES["8.1"] == before["8.1"]
    assert before == versions.VALKEY_IMAGES
