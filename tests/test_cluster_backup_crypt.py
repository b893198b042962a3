"""Issue 12 item 11 on the cluster rung: volume and accessory archives are sealed in the pod.

Render checks (the passphrase and bucket keys only in the tenant's Secret, read by envFrom;
the uploader restricted like every pod), the config contract (`ladder:backups.encryptionKey`
required and secret), and a real round trip with Debian's rclone: the rendered command and
environment, with a local-directory remote in place of the s3 one, store ciphertext that
the operator's rclone decrypts back to the archive byte for byte, and a wrong key fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components import versions
from components.grammar import crypt_key
from components.render import k8s_extras as x
from components.settings import ConfigError, parse_settings
from tests.cluster_helpers import BACKUP_SECRETS, BACKUPS, manifests, production
from tests.conftest import require_tool
from tests.helpers import CRYPT_KEY, SECRET_KEYS, cluster_config
from tests.test_cluster_tenants import _assert_restricted
from tools.harness import ProgramResult, is_secret, unwrap

NAMESPACE = "shop-acme"
MARKER = b"LADDER-PLAINTEXT-MARKER-7f3a"


def _backup_jobs(result: ProgramResult) -> list[dict[str, Any]]:
    jobs = [m for m in manifests(result, "CronJob") if m["metadata"]["name"].startswith("backup-")]
    assert jobs
    return jobs


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def _secret_data(result: ProgramResult, namespace: str) -> dict[str, Any]:
    (reg,) = [
        reg
        for reg in result.of_type("kubernetes:core/v1:Secret")
        if unwrap(reg.inputs["metadata"]) == {**unwrap(reg.inputs["metadata"]), "name": x.BACKUP_CREDENTIALS}
        and unwrap(reg.inputs["metadata"]).get("namespace") == namespace
    ]
    data: dict[str, Any] = reg.inputs["stringData"]
    return data


def test_the_uploader_is_rclone_by_digest_and_restricted() -> None:
    for job in _backup_jobs(production("extras")):
        pod = _pod(job)
        (upload,) = pod["containers"]
        assert upload["image"] == versions.RCLONE_IMAGE
        assert "@sha256:" in upload["image"] and len(upload["image"].rsplit(":", 1)[1]) == 64
        assert upload["command"] == ["/bin/sh", "-c", x.UPLOAD_SCRIPT]
        # The archive/dump init container needs no /tmp (the helper's convention): its
        # securityContext is the same restricted one.
        _assert_restricted({**pod, "initContainers": []}, job["metadata"]["name"])
        assert pod["initContainers"][0]["securityContext"] == upload["securityContext"]


def test_no_key_material_in_any_plain_field() -> None:
    """Neither the passphrase nor the bucket keys appear anywhere but the Secret's stringData."""
    result = production("extras")
    plain = json.dumps([m for m in manifests(result) if m["kind"] != "Secret"])
    for value in BACKUP_SECRETS.values():
        assert value not in plain
    for job in _backup_jobs(result):
        (upload,) = _pod(job)["containers"]
        names = {e["name"] for e in upload["env"]}
        assert not names & {"LADDER_BACKUP_KEY", "RCLONE_CONFIG_SEALED_PASSWORD", "RCLONE_CONFIG_SEALED_PASSWORD2"}
        assert not any("ACCESS_KEY" in n for n in names), names
        assert all("valueFrom" not in e for e in upload["env"])
        assert upload["envFrom"] == [{"secretRef": {"name": x.BACKUP_CREDENTIALS}}]
        assert "LADDER_BACKUP_KEY" not in json.dumps(job["metadata"])


def test_the_secret_holds_the_keys_as_pulumi_secrets() -> None:
    result = production("extras")
    for ns in ("shop-acme", "shop-globex"):
        data = _secret_data(result, ns)
        assert is_secret(data)
        assert unwrap(data) == {
            "RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "RCLONE_CONFIG_BACKUP_SECRET_ACCESS_KEY": "secret-example",
            "LADDER_BACKUP_KEY": CRYPT_KEY,
        }


@pytest.mark.parametrize(
    ("endpoint", "provider"),
    [
        (None, "AWS"),
        ("https://fra1.digitaloceanspaces.com", "DigitalOcean"),
        ("https://fsn1.your-objectstorage.com", "Hetzner"),
        ("https://minio.example.com", "Other"),
        ("https://digitaloceanspaces.com.evil.example", "Other"),
    ],
)
def test_s3_provider_follows_the_endpoint(endpoint: str | None, provider: str) -> None:
    env = x.rclone_env(x.BackupTarget("b", "r", "p", endpoint))
    assert env["RCLONE_CONFIG_BACKUP_PROVIDER"] == provider
    assert ("RCLONE_CONFIG_BACKUP_ENDPOINT" in env) is (endpoint is not None)


# --- config contract --------------------------------------------------------------------


def _cluster_with_volume(backups: dict[str, Any]) -> dict[str, Any]:
    raw = cluster_config(backups=backups)
    raw["app"]["services"]["web"]["volumes"] = {"/data/uploads": {"sizeGb": 1}}
    return raw


def _problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, SECRET_KEYS)
    return dict(info.value.problems)


def test_cluster_archives_need_the_key() -> None:
    creds = {"accessKeyId": "AK", "secretAccessKey": "SK"}
    problems = _problems(_cluster_with_volume({**BACKUPS, **creds}))
    assert "openssl rand" in problems["ladder:backups.encryptionKey"]
    parse_settings(_cluster_with_volume({**BACKUPS, **creds, "encryptionKey": CRYPT_KEY}), SECRET_KEYS)


def test_the_key_must_be_a_secret_and_long() -> None:
    raw = _cluster_with_volume({**BACKUPS, "encryptionKey": CRYPT_KEY})
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, [k for k in SECRET_KEYS if k != "ladder:backups"])
    problems = dict(info.value.problems)
    assert "--secret" in problems["ladder:backups.encryptionKey"]
    assert CRYPT_KEY not in str(info.value)
    for weak in ("short-key", "x" * 31, "has spaces " * 4, "line\nbreak" * 4):
        problems = _problems(_cluster_with_volume({**BACKUPS, "encryptionKey": weak}))
        assert "32 to 1024" in problems["ladder:backups.encryptionKey"], weak


# --- the real round trip ------------------------------------------------------------------


def _rclone() -> str:
    return require_tool(shutil.which("rclone"), "rclone (Debian/Ubuntu package `rclone`)")


def _operator_env(rclone: str, target: x.BackupTarget, key: str, home: Path) -> dict[str, str]:
    """What the restore runbook sets on the operator's machine: the same remotes, the
    passphrase obscured by `rclone obscure -` from stdin."""
    obscured = subprocess.run(
        [rclone, "obscure", "-"], input=key + "\n", capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        **x.rclone_env(target),
        "RCLONE_CONFIG_BACKUP_TYPE": "local",
        "RCLONE_CONFIG_SEALED_PASSWORD": obscured,
    }


def test_round_trip_through_the_rendered_uploader(tmp_path: Path) -> None:
    rclone = _rclone()
    result = production("extras")
    (job,) = [
        m
        for m in _backup_jobs(result)
        if m["metadata"]["name"] == "backup-files" and m["metadata"]["namespace"] == NAMESPACE
    ]
    (upload,) = _pod(job)["containers"]
    secret = unwrap(_secret_data(result, NAMESPACE))
    archive = tmp_path / "archive"
    # A gzip'd tar with a known marker, as the archive init container leaves it.
    src = tmp_path / "src" / "data" / "uploads"
    src.mkdir(parents=True)
    (src / "note.txt").write_bytes(MARKER * 100)
    subprocess.run(["tar", "czf", str(archive), "-C", str(tmp_path / "src"), "data"], check=True)
    # ...but gzip hides the marker: check the ciphertext against the raw tar too.
    plain_tar = subprocess.run(["gzip", "-dc", str(archive)], capture_output=True, check=True).stdout
    assert MARKER in plain_tar
    store, home = tmp_path / "store", tmp_path / "home"
    store.mkdir()
    home.mkdir()
    # Exactly the container's env (plain values, then envFrom's Secret), with the s3 remote
    # swapped for a local directory and the pod's paths for the test's.
    env = {e["name"]: e["value"] for e in upload["env"]}
    env.update(secret)
    env.update(
        RCLONE_CONFIG_BACKUP_TYPE="local",
        ARCHIVE=str(archive),
        HOME=str(home),
        XDG_CONFIG_HOME=str(home),
        PATH=os.environ["PATH"],
    )
    run = subprocess.run(upload["command"], env=env, cwd=store, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    (stored,) = [p for p in store.rglob("*") if p.is_file()]
    rel = stored.relative_to(store / "shop-backups").as_posix()
    owner_dir = f"production/{NAMESPACE}/volumes/files/"
    assert rel.startswith(owner_dir) and rel.endswith(".tar.gz" + x.SEALED_SUFFIX), rel
    sealed = stored.read_bytes()
    assert sealed.startswith(b"RCLONE\x00\x00")  # rclone crypt's file header (docs: File formats)
    assert MARKER not in sealed and plain_tar[:512] not in sealed
    assert sealed[32:] != archive.read_bytes()[: len(sealed) - 32]

    target = x.BackupTarget("shop-backups", "fra1", f"production/{NAMESPACE}/volumes", str(BACKUPS["endpoint"]))
    name = owner_dir + rel[len(owner_dir) : -len(x.SEALED_SUFFIX)]
    out = tmp_path / "restored.tar.gz"
    good = _operator_env(rclone, target, CRYPT_KEY, home)
    got = subprocess.run(
        [rclone, "copyto", f"SEALED:{name}", str(out)], env=good, cwd=store, capture_output=True, text=True, timeout=120
    )
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == archive.read_bytes()

    wrong = tmp_path / "wrong.tar.gz"
    bad = _operator_env(rclone, target, "W" + CRYPT_KEY[1:], home)
    failed = subprocess.run(
        [rclone, "copyto", f"SEALED:{name}", str(wrong)], env=bad, cwd=store, capture_output=True, timeout=120
    )
    assert failed.returncode != 0
    assert not wrong.exists() or wrong.read_bytes() != archive.read_bytes()


def test_the_uploader_refuses_an_empty_key(tmp_path: Path) -> None:
    """No key, no upload: the script stops before rclone could obscure an empty line."""
    _rclone()
    env = {"PATH": os.environ["PATH"], "LADDER_BACKUP_KEY": "", "ARCHIVE": str(tmp_path / "a")}
    run = subprocess.run(["/bin/sh", "-c", x.UPLOAD_SCRIPT], env=env, cwd=tmp_path, capture_output=True, timeout=30)
    assert run.returncode != 0 and not list(tmp_path.iterdir())


def test_a_hostile_passphrase_is_data_to_the_script(tmp_path: Path) -> None:
    """Any key the grammar admits reaches rclone as one line through a quoted expansion:
    quotes, `$(...)` and globs in it run nothing, and the operator decrypts with the same text."""
    rclone = _rclone()
    key = "';$(touch${IFS}pwned)`touch${IFS}pwned`\"*?[x]&|<>#~!%" + "A" * 8
    assert crypt_key(key) == key
    target = x.BackupTarget("bkt", "fra1", "p", None)
    (tmp_path / "archive").write_bytes(MARKER)
    env = {
        **x.rclone_env(target),
        **x.backup_secret_data("id", "secret", key),
        "RCLONE_CONFIG_BACKUP_TYPE": "local",
        "ARCHIVE": str(tmp_path / "archive"),
        "PREFIX": "p/owner",
        "EXT": "dump",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
        "PATH": os.environ["PATH"],
    }
    run = subprocess.run(["/bin/sh", "-c", x.UPLOAD_SCRIPT], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "pwned").exists()
    (stored,) = (tmp_path / "bkt" / "p" / "owner").iterdir()
    name = "p/owner/" + stored.name[: -len(x.SEALED_SUFFIX)]
    out = tmp_path / "out"
    got = subprocess.run(
        [rclone, "copyto", f"SEALED:{name}", str(out)],
        env=_operator_env(rclone, target, key, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == MARKER


# --- the printed restore plan, run ----------------------------------------------------------


def _stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.mark.parametrize("keyed", [False, True], ids=["shared-bucket", "bucket-per-tenant"])
def test_the_printed_restore_plan_gets_every_archive_back(tmp_path: Path, keyed: bool) -> None:
    """Every backup CronJob of the extras stack uploads (its rendered command and env, local
    remote); then `python -m tools.restore`'s file steps run in bash with stand-ins for
    `pulumi` (answers the config the stack holds) and `kubectl` (keeps what it is fed): each
    archive comes back byte for byte, and the tar archives are fed to the owner's pod.
    `keyed`: Ladder creates the bucket on DigitalOcean, so each tenant uploads to its own
    bucket with its own key, and the plan must read each from the right one."""
    import copy

    from tests.cluster_helpers import EXTRAS, TENANT_KEYS, tenant_keys
    from tools import restore

    _rclone()
    result = tenant_keys() if keyed else production("extras")
    store, home, bin_dir, work = (tmp_path / d for d in ("store", "home", "bin", "work"))
    for d in (store, home, bin_dir, work):
        d.mkdir()
    sent: dict[str, bytes] = {}
    for job in _backup_jobs(result):
        ns, owner = job["metadata"]["namespace"], job["metadata"]["name"].removeprefix("backup-")
        (upload,) = _pod(job)["containers"]
        archive = tmp_path / f"{ns}-{owner}.in"
        archive.write_bytes(MARKER + f"{ns}/{owner}".encode())
        sent[f"{ns}-{owner}"] = archive.read_bytes()
        env = {e["name"]: e["value"] for e in upload["env"]}
        env.update(unwrap(_secret_data(result, ns)))
        env.update(RCLONE_CONFIG_BACKUP_TYPE="local", ARCHIVE=str(archive), HOME=str(home), PATH=os.environ["PATH"])
        env["XDG_CONFIG_HOME"] = str(home)
        run = subprocess.run(upload["command"], env=env, cwd=store, capture_output=True, timeout=120)
        assert run.returncode == 0, run.stderr
    assert len(sent) == 6

    if keyed:  # the uploads landed in one directory (bucket) per tenant
        assert sorted(p.name for p in store.iterdir()) == ["shop-backups-acme", "shop-backups-globex"]
    overrides = copy.deepcopy(TENANT_KEYS if keyed else EXTRAS)
    del overrides["ladder:accessories"]["mongo"]["secretEnv"]  # no placeholder for it; not a file step
    steps = restore.restore_steps(restore.load_stack_settings("production", overrides), "production")
    start = next(i for i, line in enumerate(steps) if line.startswith("# files:"))
    files = steps[start:]
    assert "export RCLONE_CONFIG_BACKUP_TYPE=s3" in files
    # The bucket becomes a directory: the one line that names the backend changes.
    script = ["set -euo pipefail", *("export RCLONE_CONFIG_BACKUP_TYPE=local" if "TYPE=s3" in s else s for s in files)]
    values = {k.rsplit(".", 1)[1]: v for k, v in BACKUP_SECRETS.items()}
    _stub(
        bin_dir / "pulumi",
        'case "$*" in\n'
        + "".join(f"  *ladder:backups.{k}*) printf '%s\\n' '{v}' ;;\n" for k, v in values.items())
        + "  *'stack output kubeconfig'*) echo kubeconfig ;;\n  *) exit 3 ;;\nesac\n",
    )
    _stub(
        bin_dir / "kubectl",
        f'n=$(ls {work}/kubectl.* 2>/dev/null | wc -l); echo "$*" > {work}/args.$n; cat > {work}/kubectl.$n\n',
    )
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    (tmp_path / "plan.sh").write_text("\n".join(script) + "\n")
    # The bucket directory is found relative to the working directory: run from the store.
    plan = subprocess.run(
        ["bash", str(tmp_path / "plan.sh")], env=env, cwd=store, capture_output=True, text=True, timeout=300
    )
    assert plan.returncode == 0, plan.stderr
    for name, data in sent.items():
        ext = "dump" if name.endswith("mongo") else "tar.gz"
        assert (store / f"{name}.{ext}").read_bytes() == data, name
    fed = sorted(p.read_bytes() for p in work.glob("kubectl.*"))
    assert fed == sorted(v for k, v in sent.items() if not k.endswith("mongo"))
    args = {p.read_text().strip() for p in work.glob("args.*")}
    assert "--kubeconfig kubeconfig-production -n shop-acme exec -i deployment/files -c files -- tar xzf - -C /" in args
    assert (
        "--kubeconfig kubeconfig-production -n shop-globex exec -i statefulset/search -c search -- tar xzf - -C /"
        in args
    )
    assert "unset RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID" in files[-1]
    assert CRYPT_KEY not in "\n".join(steps)
