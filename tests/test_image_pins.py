"""Every image Ladder itself chooses is pinned by tag and digest, and each digest has its evidence.

`components/versions.py` pins the images Ladder picks (Postgres, Valkey, Caddy, ...) as
`name:tag@sha256:<digest>`; `tests/contracts/images.json` records where each digest was
found. A tag bumped without its digest, a digest without a record, or a record left behind
by a removed pin fails here. The renderers are checked to carry the pins as they are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import versions
from components.image_ref import parse_image
from components.render import k8s_extras, monitoring

CONTRACT = Path(__file__).parent / "contracts" / "images.json"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# A digest seen in shortened form is recorded as seen: at least 8 hex digits.
SEEN_DIGEST = re.compile(r"^sha256:[0-9a-f]{8,64}$")


def evidence() -> dict[str, Any]:
    pins: dict[str, Any] = json.loads(CONTRACT.read_text())["pins"]
    return pins


def test_the_listing_sees_every_kind_of_pin() -> None:
    """`chosen_images` finds the constants and the per-version maps (it is what the rest relies on)."""
    listed = versions.chosen_images()
    for name in ("CADDY_IMAGE", "AWS_CLI_IMAGE", "BUSYBOX_IMAGE", "MINIO_IMAGE", "VALKEY_EXPORTER_IMAGE"):
        assert listed[name] == getattr(versions, name)
    for table in ("POSTGRES_IMAGES", "VALKEY_IMAGES", "CNPG_POSTGRES_IMAGES"):
        for key, ref in getattr(versions, table).items():
            assert listed[f"{table}[{key!r}]"] == ref


@pytest.mark.parametrize(("where", "reference"), sorted(versions.chosen_images().items()))
def test_pinned_by_tag_and_digest(where: str, reference: str) -> None:
    ref = parse_image(reference)
    assert ref.tag and ref.tag != "latest", f"{where}: {reference} has no version tag"
    assert DIGEST.match(ref.digest), f"{where}: {reference} is not pinned by digest (name:tag@sha256:<64 hex>)"


@pytest.mark.parametrize(("where", "reference"), sorted(versions.chosen_images().items()))
def test_digest_matches_its_evidence(where: str, reference: str) -> None:
    ref = parse_image(reference)
    record = evidence().get(ref.tagged)
    assert record is not None, f"{where}: no evidence for {ref.tagged} in {CONTRACT.name}"
    assert record["digest"] == ref.digest, f"{where}: pinned {ref.digest}, evidence has {record['digest']}"
    assert record["independent_repositories"] >= 1 and record["examples"], f"{ref.tagged}: evidence without a source"
    assert ref.digest not in record["competing"], f"{ref.tagged}: the chosen digest is also listed as competing"
    assert all(SEEN_DIGEST.match(d) and n >= 0 for d, n in record["competing"].items()), ref.tagged


def test_no_evidence_without_its_pin() -> None:
    """A record whose pin was bumped or removed is stale: it would vouch for nothing."""
    pinned = {parse_image(ref).tagged for ref in versions.chosen_images().values()}
    assert set(evidence()) == pinned


def test_the_chart_busybox_renders_the_digest() -> None:
    """kube-prometheus-stack renders busybox's `@sha256:` only when `upgradeJob.image.sha` is set."""
    values = monitoring.kube_prometheus_stack_values(grafana_admin_password="x", alert_email=None)
    image = values["crds"]["upgradeJob"]["image"]
    busybox = parse_image(versions.BUSYBOX_IMAGE)
    assert image["sha"] and image["sha"] == image["busybox"]["sha"] == busybox.digest_hex
    assert image["busybox"]["tag"] == busybox.tag
    # What the chart's template then writes (registry and repository are the chart's defaults).
    rendered = f"docker.io/busybox:{image['busybox']['tag']}@sha256:{image['busybox']['sha']}"
    assert parse_image(rendered).digest == busybox.digest


def test_compose_files_pull_ladders_images_by_digest() -> None:
    """Every image of the rendered compose file that is not the app's own is a pin, digest included."""
    from components.artifacts import rendered_files
    from tests.test_vps import staging_settings

    s = staging_settings()
    app_images = {svc.image for svc in s.app.services.values()}
    pins = set(versions.chosen_images().values())
    seen = set()
    for rel, content in rendered_files(s).items():
        if rel.endswith("compose.yaml"):
            for svc in yaml.safe_load(content)["services"].values():
                if svc["image"] not in app_images:
                    assert svc["image"] in pins, svc["image"]
                    seen.add(svc["image"])
    assert {versions.CADDY_IMAGE, versions.POSTGRES_IMAGES[s.postgres.version]} <= seen


def test_volume_backups_run_the_pinned_busybox_and_rclone() -> None:
    target = k8s_extras.BackupTarget(bucket="b", region="eu", prefix="shop/production/shop")
    assert k8s_extras._tar(["/data"], [])["image"] == versions.BUSYBOX_IMAGE
    assert k8s_extras._uploader(target, "vol", "tar.gz")["image"] == versions.RCLONE_IMAGE
