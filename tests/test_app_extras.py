"""Volumes, accessories, buckets, jobs and egress: the contract and the pure helpers every rung shares."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.render import appenv, compose, vps_extras
from components.settings import ConfigError, Settings, cron_values, injected_env_names, parse_settings
from tests.conftest import require_tool
from tests.helpers import MEILI, SECRET_KEYS, SSH_KEY, cluster_config, extras_config, local_config, vps_config


def settings(base: dict[str, Any], **extra: Any) -> Any:
    return parse_settings(extras_config(base, **extra), SECRET_KEYS)


def vps_settings(**extra: Any) -> Settings:
    """The extras on a DigitalOcean vps stack (one server; Spaces for the bucket)."""
    return parse_settings(extras_config(vps_config(provider="digitalocean"), **extra), SECRET_KEYS)


def problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, SECRET_KEYS)
    return dict(err.value.problems)


# --- the contract ------------------------------------------------------------------------


def test_good_configs_parse_on_every_rung() -> None:
    for base in (local_config(), cluster_config()):
        s = settings(base)
        assert s.app.services["api"].volumes["/app/uploads"].size_gb == 5
        assert s.accessories["mongo"].port == 27017
        assert s.app.jobs["cleanup"].timeout == 3600


def _set(raw: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


BASE = extras_config(local_config())
BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "volume with replicas",
        _set(BASE, ["app", "services", "api", "replicas"], 3),
        "ladder:app.services.api.volumes",
    ),
    (
        "volume with autoscale",
        _set(BASE, ["app", "services", "api", "autoscale"], {"min": 1, "max": 3}),
        "ladder:app.services.api.volumes",
    ),
    (
        "volume with vps.count > 1",
        extras_config(vps_config(vps={**vps_config()["vps"], "count": 2})),
        "ladder:app.services.api.volumes",
    ),
    (
        "relative mount path",
        _set(BASE, ["app", "services", "api", "volumes"], {"data": {}}),
        "ladder:app.services.api.volumes",
    ),
    (
        "dot-dot mount path",
        _set(BASE, ["app", "services", "api", "volumes"], {"/a/../etc": {}}),
        "ladder:app.services.api.volumes",
    ),
    (
        "reserved mount path",
        _set(BASE, ["app", "services", "api", "volumes"], {"/tmp": {}}),
        "ladder:app.services.api.volumes",
    ),
    (
        "zero size",
        _set(BASE, ["app", "services", "api", "volumes", "/app/uploads", "sizeGb"], 0),
        "ladder:app.services.api.volumes./app/uploads.sizeGb",
    ),
    (
        "job on a missing service",
        _set(BASE, ["app", "jobs", "cleanup", "service"], "nope"),
        "ladder:app.jobs.cleanup.service",
    ),
    (
        "job schedule out of range",
        _set(BASE, ["app", "jobs", "cleanup", "schedule"], "61 * * * *"),
        "ladder:app.jobs.cleanup.schedule",
    ),
    (
        "job schedule of 6 fields",
        _set(BASE, ["app", "jobs", "cleanup", "schedule"], "0 0 3 * * *"),
        "ladder:app.jobs.cleanup.schedule",
    ),
    (
        "job command with a Unicode line separator",
        _set(BASE, ["app", "jobs", "cleanup", "command"], ["a\u2028b"]),
        "ladder:app.jobs.cleanup.command[0]",
    ),
    ("job timeout too short", _set(BASE, ["app", "jobs", "cleanup", "timeout"], 1), "ladder:app.jobs.cleanup.timeout"),
    (
        "job command with a newline",
        _set(BASE, ["app", "jobs", "cleanup", "command"], ["a\nb"]),
        "ladder:app.jobs.cleanup.command[0]",
    ),
    (
        "job name not a label",
        _set(BASE, ["app", "jobs"], {"Clean_Up": BASE["app"]["jobs"]["cleanup"]}),
        "ladder:app.jobs",
    ),
    (
        "accessory image unpinned",
        _set(BASE, ["accessories", "mongo", "image"], "mongo"),
        "ladder:accessories.mongo.image",
    ),
    (
        "accessory image latest",
        _set(BASE, ["accessories", "mongo", "image"], "mongo:latest"),
        "ladder:accessories.mongo.image",
    ),
    (
        "accessory named like a service",
        _set(BASE, ["accessories", "api"], copy.deepcopy(MEILI)),
        "ladder:accessories.api",
    ),
    (
        "accessory named postgres",
        _set(BASE, ["accessories", "postgres"], copy.deepcopy(MEILI)),
        "ladder:accessories.postgres",
    ),
    (
        "accessory name not a label",
        _set(BASE, ["accessories", "Mongo"], copy.deepcopy(MEILI)),
        "ladder:accessories",
    ),
    ("accessory without port", _set(BASE, ["accessories", "mongo", "port"], ...), "ladder:accessories.mongo.port"),
    ("accessory secret unset", _set(BASE, ["secrets"], {}), "ladder:secrets.MONGO_INITDB_ROOT_PASSWORD"),
    ("accessory unknown key", _set(BASE, ["accessories", "mongo", "ports"], [1]), "ladder:accessories.mongo.ports"),
    (
        "backup both ways",
        _set(BASE, ["accessories", "mongo", "backup", "paths"], ["/data/db"]),
        "ladder:accessories.mongo.backup",
    ),
    (
        "backup path outside volumes",
        _set(BASE, ["accessories", "search", "backup", "paths"], ["/srv"]),
        "ladder:accessories.search.backup.paths[0]",
    ),
    ("bucket name not a label", _set(BASE, ["buckets", "Media"], {}), "ladder:buckets"),
    (
        "bucket keys without endpoint",
        _set(BASE, ["buckets", "media", "accessKeyId"], "AK"),
        "ladder:buckets.media.accessKeyId",
    ),
    (
        "bucket endpoint http",
        _set(BASE, ["buckets", "media"], {"endpoint": "http://x.example.com"}),
        "ladder:buckets.media.endpoint",
    ),
    (
        "bucket cors origin",
        _set(BASE, ["buckets", "media", "corsOrigins"], ["shop.example.com"]),
        "ladder:buckets.media.corsOrigins",
    ),
    (
        "volumes larger than the VPS data volume",
        _set(extras_config(vps_config(provider="digitalocean")), ["vps", "volumeGb"], 10),
        "ladder:vps.volumeGb",
    ),
    ("egress off the cluster", {**BASE, "egress": [{"to": "10.0.0.0/8", "ports": [5432]}]}, "ladder:egress"),
    ("env shadowing an accessory", _set(BASE, ["app", "env"], {"MONGO_HOST": "x"}), "ladder:app.env.MONGO_HOST"),
    ("env shadowing a bucket", _set(BASE, ["app", "env"], {"S3_BUCKET": "x"}), "ladder:app.env.S3_BUCKET"),
]


@pytest.mark.parametrize(("why", "raw", "path"), BAD, ids=[b[0] for b in BAD])
def test_bad_configs_name_their_key(why: str, raw: dict[str, Any], path: str) -> None:
    found = problems(raw)
    assert any(p == path or p.startswith(path + ".") or p.startswith(path + "[") for p in found), (why, found)


EXTRAS: list[tuple[str, list[str | int]]] = [
    ("ladder:app.services.api.volumes", ["app", "services", "api", "volumes"]),
    ("ladder:app.jobs", ["app", "jobs"]),
    ("ladder:accessories", ["accessories"]),
    ("ladder:buckets", ["buckets"]),
]


@pytest.mark.parametrize(("path", "key"), EXTRAS, ids=[g[0] for g in EXTRAS])
def test_vps_takes_each_extra(path: str, key: list[str | int]) -> None:
    """Each of the four keys alone parses on vps (the rung deploys them), with its values kept."""
    raw = copy.deepcopy(extras_config(vps_config(provider="digitalocean")))
    for _, other in EXTRAS:  # drop every extra but this one
        if other != key:
            raw = _set(raw, other, ... if other[-1] != "volumes" else {})
    if key[-1] != "accessories":
        raw = _set(raw, ["secrets"], ...)
    s = parse_settings(raw, SECRET_KEYS)
    node: Any = s.model_dump(by_alias=True)
    for part in key:
        node = node[part]
    assert node, path


def test_vps_refuses_what_would_not_be_shared() -> None:
    """Several servers: a service volume would be one copy per app server; DigitalOcean's
    several-server shape has no data server for accessories. Both name their key."""
    found = problems(extras_config(vps_config(vps={**vps_config()["vps"], "count": 2}, provider="digitalocean")))
    assert "a copy on every server" in found["ladder:app.services.api.volumes"]
    assert "no data server" in found["ladder:accessories"]
    raw = extras_config(vps_config(vps={**vps_config()["vps"], "count": 3}))
    raw["app"]["services"]["api"].pop("volumes")
    raw["buckets"] = {}
    s = parse_settings(raw, SECRET_KEYS)  # Hetzner: accessories on the data server, jobs on app-0
    assert s.accessories and s.app.jobs


def test_the_extras_parse_on_every_rung_with_the_same_values() -> None:
    raw = extras_config(vps_config(provider="digitalocean"))
    vps = parse_settings(raw, SECRET_KEYS)
    cluster = parse_settings({**raw, **cluster_config(), "app": raw["app"], "vps": {}}, SECRET_KEYS)
    assert cluster.accessories == vps.accessories and cluster.app.jobs == vps.app.jobs
    assert cluster.buckets == vps.buckets


def test_volume_error_points_at_buckets() -> None:
    found = problems(_set(BASE, ["app", "services", "api", "replicas"], 3))
    assert "ladder:buckets" in found["ladder:app.services.api.volumes"]


def test_hetzner_buckets_need_an_endpoint_and_secret_keys() -> None:
    k3s = {"sshKeys": [SSH_KEY], "sshAllowFrom": ["10.0.0.0/8"]}
    raw = extras_config(cluster_config(provider="hetzner", vps=k3s, cluster={"hcloudToken": "ccm-token"}))
    assert "ladder:buckets.media.endpoint" in problems(raw)
    raw["buckets"] = {"media": {"endpoint": "https://fsn1.your-objectstorage.com", "region": "fsn1"}}
    found = problems(raw)
    assert {
        "ladder:buckets.media.bucket",
        "ladder:buckets.media.accessKeyId",
        "ladder:buckets.media.secretAccessKey",
    } <= set(found)
    raw["buckets"]["media"].update(bucket="shop-media", accessKeyId="AK", secretAccessKey="SK")
    with pytest.raises(ConfigError) as err:  # plain-text keys are refused, and never echoed
        parse_settings(raw, [k for k in SECRET_KEYS if k != "ladder:buckets"])
    plain = dict(err.value.problems)
    assert {"ladder:buckets.media.accessKeyId", "ladder:buckets.media.secretAccessKey"} <= set(plain)
    assert "--secret" in plain["ladder:buckets.media.accessKeyId"] and "'AK'" not in str(err.value)
    s = parse_settings(raw, SECRET_KEYS)
    (access,) = appenv.bucket_access(s, "staging")
    assert access == appenv.BucketAccess("media", "https://fsn1.your-objectstorage.com", "fsn1", "shop-media")


def test_egress_accepts_cidrs_and_hosts() -> None:
    s = settings(
        cluster_config(), egress=[{"to": "203.0.113.9", "ports": [27017]}, {"to": "SMTP.example.com", "ports": [587]}]
    )
    assert [(e.to, e.is_cidr) for e in s.egress] == [("203.0.113.9/32", True), ("smtp.example.com", False)]
    assert "ladder:egress[0].to" in problems(
        extras_config(cluster_config(), egress=[{"to": "not a host", "ports": [1]}])
    )


def test_cron_values() -> None:
    assert cron_values("*/20 1-3 * * 7") == [[0, 20, 40], [1, 2, 3], None, None, [0]]
    for bad in ("60 * * * *", "* * 0 * *", "* * * * 8", "1-0 * * * *", "x * * * *"):
        with pytest.raises(ValueError):
            cron_values(bad)


# --- env every rung injects ----------------------------------------------------------------


def test_env_names_and_values() -> None:
    s = settings(cluster_config())
    env = appenv.extra_env(s, "production", lambda name: f"{name}.shop.svc.cluster.local")
    assert env["MONGO_HOST"] == "mongo.shop.svc.cluster.local" and env["MONGO_PORT"] == "27017"
    assert env["SEARCH_PORT"] == "7700"
    assert env["S3_ENDPOINT"] == env["S3_MEDIA_ENDPOINT"] == "https://fra1.digitaloceanspaces.com"
    assert env["S3_BUCKET"] == "shop-production-media"
    secret = appenv.bucket_secret_env(s, {"media": ("id", "key")})
    assert secret == {
        "S3_MEDIA_ACCESS_KEY_ID": "id",
        "S3_ACCESS_KEY_ID": "id",
        "S3_MEDIA_SECRET_ACCESS_KEY": "key",
        "S3_SECRET_ACCESS_KEY": "key",
    }
    assert set(env) | set(secret) <= set(injected_env_names(s))


def test_two_buckets_get_prefixed_names_only() -> None:
    s = settings(local_config(), buckets={"media": {}, "exports": {}})
    env = appenv.extra_env(s, "dev", lambda n: n)
    assert "S3_BUCKET" not in env and env["S3_EXPORTS_BUCKET"] == "exports"
    assert env["S3_MEDIA_ENDPOINT"] == "http://minio:9000"


def test_bucket_names_fit_s3() -> None:
    long = appenv.bucket_name("a" * 40, "production-eu-west", "media")
    assert len(long) <= 63 and long != appenv.bucket_name("a" * 40, "production-eu-wesT", "media2")
    assert appenv.bucket_name("shop", "prod", "media") == "shop-prod-media"


# --- VPS helpers ---------------------------------------------------------------------------


def test_volume_paths_live_on_the_data_volume() -> None:
    s = vps_settings()
    paths = vps_extras.volume_paths(s)
    assert paths["api"] == {"/app/uploads": "/srv/ladder-data/volumes/api/app-uploads"}
    assert paths["mongo"] == {"/data/db": "/srv/ladder-data/volumes/mongo/data-db"}
    assert all(h.startswith(compose.DATA_DIR + "/volumes/") for v in paths.values() for h in v.values())


def test_accessory_services_are_internal_and_hardened() -> None:
    s = vps_settings()
    services = vps_extras.accessory_services(s)
    mongo = services["mongo"]
    assert mongo["networks"] == ["data"] and "ports" not in mongo
    assert mongo["cap_drop"] == ["ALL"] and mongo["security_opt"] == ["no-new-privileges:true"]
    assert mongo["env_file"] == ["accessory-mongo.env"]
    assert "MONGO_INITDB_ROOT_PASSWORD" not in str(mongo)  # secrets only in the env file
    assert mongo["volumes"] == ["/srv/ladder-data/volumes/mongo/data-db:/data/db"]
    assert mongo["healthcheck"]["test"][0] == "CMD"
    assert "env_file" not in services["search"]


def test_accessory_compose_passes_compose_config(tmp_path: Path, compose_bin: str) -> None:
    """The real compose document with the accessories merged in: `docker compose config` accepts it
    and reads `$` in values literally."""
    accessories = extras_config(local_config())["accessories"]
    accessories["mongo"]["env"]["WEIRD"] = "a$b ${c}"
    s = vps_settings(accessories=accessories)
    doc = compose.compose_document(s, compose.Role())
    doc["services"].update(vps_extras.accessory_services(s))
    for name in s.accessories:
        (tmp_path / vps_extras.accessory_env_file(name)).write_text("X=1\n")
    for env in (compose.APP_ENV, compose.POSTGRES_ENV, compose.VALKEY_ENV):
        (tmp_path / env).write_text("X=1\n")
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(doc))
    proc = subprocess.run(
        [compose_bin, "-f", str(tmp_path / "compose.yaml"), "config"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    # `config` prints the literal re-escaped; an interpolated value would have lost `${c}`
    assert resolved["services"]["mongo"]["environment"]["WEIRD"] == "a$$b $${c}"
    assert resolved["services"]["mongo"]["volumes"][0]["source"] == "/srv/ladder-data/volumes/mongo/data-db"


def test_accessory_env_files_hold_only_secret_env() -> None:
    s = vps_settings()
    assert vps_extras.accessory_env_files(s) == {
        "accessory-mongo.env": {"MONGO_INITDB_ROOT_PASSWORD": "mongo-secret-value"}
    }


def test_bad_mount_path_names_the_key() -> None:
    found = problems(_set(BASE, ["app", "services", "api", "volumes"], {"data": {}}))
    # A bad map key names the map; the key itself is shown quoted in the message (issue 12).
    assert "'data'" in found["ladder:app.services.api.volumes"]


def test_job_units(tmp_path: Path) -> None:
    s = vps_settings()
    units = vps_extras.job_units(s)
    service = units["/etc/systemd/system/ladder-job-cleanup.service"]
    timer = units["/etc/systemd/system/ladder-job-cleanup.timer"]
    assert "OnFailure" not in service  # no monitoring mail configured: no alert unit to start
    assert (
        "OnFailure=ladder-alert@%n.service"
        in vps_extras.job_units(s, alert=True)["/etc/systemd/system/ladder-job-cleanup.service"]
    )
    assert '"/usr/bin/flock" "--shared" "--wait" "900" "/run/lock/ladder-deploy.lock"' in service
    assert '"--rm" "--no-deps" "-T" "--name" "ladder-job-cleanup" "api" "python" "-c"' in service
    # `%` and `$` reach the command literally (systemd would expand them otherwise)
    assert "\"print('50%% done, $$HOME')\"" in service
    assert '"/usr/bin/timeout" "--kill-after=30" "3600"' in service
    assert "OnCalendar=*-*-* 03:00:00 UTC" in timer and "Unit=ladder-job-cleanup.service" in timer


def test_job_units_pass_systemd(tmp_path: Path) -> None:
    tool = require_tool(shutil.which("systemd-analyze"), "systemd-analyze (systemd)")
    s = vps_settings()
    for path, text in vps_extras.job_units(s).items():
        (tmp_path / Path(path).name).write_text(text)
        for line in text.splitlines():
            if line.startswith("OnCalendar="):
                proc = subprocess.run([tool, "calendar", line.split("=", 1)[1]], capture_output=True, text=True)
                assert proc.returncode == 0, proc.stderr
    (tmp_path / "ladder-alert@.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    proc = subprocess.run(
        [tool, "verify", *(str(p) for p in sorted(tmp_path.glob("ladder-job-*")))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    # Only the binaries this test machine lacks (docker, flock in a container) may be reported.
    errors = [
        line
        for line in proc.stderr.splitlines()
        if line.strip() and "is not executable" not in line and "No such file" not in line
    ]
    assert not errors, proc.stderr
    # and the check can fail: a bad directive is reported
    broken = tmp_path / "ladder-job-cleanup.service"
    broken.write_text(broken.read_text().replace("Type=oneshot", "Type=bogus"))
    proc = subprocess.run([tool, "verify", str(broken)], capture_output=True, text=True, cwd=tmp_path)
    assert "bogus" in proc.stderr


def test_systemd_quote_refuses_control_characters() -> None:
    assert vps_extras.systemd_quote('a"b\\c') == '"a\\"b\\\\c"'
    with pytest.raises(ValueError):
        vps_extras.systemd_quote("a\nb")


def test_a_bad_bucket_key_is_never_echoed() -> None:
    """Issue 12's rule for issue 14's secret fields: a malformed key's value stays out of the error."""
    k3s = {"sshKeys": [SSH_KEY], "sshAllowFrom": ["10.0.0.0/8"]}
    raw = extras_config(cluster_config(provider="hetzner", vps=k3s, cluster={"hcloudToken": "ccm-token"}))
    leaked = "SK with spaces\nand a line"
    raw["buckets"] = {
        "media": {
            "endpoint": "https://fsn1.your-objectstorage.com",
            "bucket": "shop-media",
            "accessKeyId": "AK",
            "secretAccessKey": leaked,
        }
    }
    for secret_keys in (SECRET_KEYS, [k for k in SECRET_KEYS if k != "ladder:buckets"]):
        with pytest.raises(ConfigError) as err:
            parse_settings(raw, secret_keys)
        assert "ladder:buckets.media.secretAccessKey" in dict(err.value.problems)
        assert "SK with" not in str(err.value) and "SK with" not in repr(err.value.problems)


def test_a_dev_mount_on_a_volume_path_is_refused() -> None:
    raw = _set(BASE, ["app", "services", "api", "dev"], {"mounts": [{"source": ".", "target": "/app/uploads/"}]})
    assert "dev.mounts[0]" in problems(raw)["ladder:app.services.api.volumes./app/uploads"]
    ok = _set(BASE, ["app", "services", "api", "dev"], {"mounts": [{"source": ".", "target": "/app/src"}]})
    assert parse_settings(ok, SECRET_KEYS).app.services["api"].dev is not None
