"""Issue 12 item 11: VPS backups are encrypted with age before they leave the host.

The rendered scripts are checked as text (the pipe through `age -r`, nothing plain
uploaded, the restore reads a decrypted dump) and then run for real with the `age` binary
against a stand-in `docker` (a compose exec that prints a dump, an aws-cli that copies to a
directory standing for the bucket): the object in the "bucket" is age ciphertext, only the
private key opens it, and what the restore pipes into `pg_restore` is the dump byte for byte.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from components.grammar import age_recipient
from components.render import backup as b
from components.settings import ConfigError, parse_settings
from tests.conftest import require_tool
from tests.helpers import AGE_RECIPIENT, SECRET_KEYS, vps_config

ARGS = b.VpsBackupArgs(
    project="shop",
    compose_file="/opt/ladder/shop/compose.yaml",
    database="shop",
    db_user="shop",
    bucket="shop-backups",
    prefix="shop/staging/postgres",
    age_recipient=AGE_RECIPIENT,
    app_services=("api", "web"),
)


# --- the grammar of a recipient ----------------------------------------------------------------


def test_a_real_recipient_passes() -> None:
    assert age_recipient(AGE_RECIPIENT) == AGE_RECIPIENT


@pytest.mark.parametrize(
    "value",
    [
        AGE_RECIPIENT[:-1] + ("q" if AGE_RECIPIENT[-1] != "q" else "p"),  # checksum broken
        AGE_RECIPIENT[:10] + AGE_RECIPIENT[11:] + "q",  # a character dropped, one added
        AGE_RECIPIENT.upper(),  # bech32 allows all-caps; age prints lower case and so does the grammar
        AGE_RECIPIENT + "\n",
        AGE_RECIPIENT + "; reboot",
        "AGE-SECRET-KEY-1" + "Q" * 58,  # the private key pasted by mistake
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyExampleKeyExampleKeyExample00",
        "age1yubikey1" + "q" * 50,
        "age1" + "b" * 58,  # 'b' is not in the bech32 alphabet
        "",
    ],
)
def test_a_wrong_recipient_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        age_recipient(value)


def test_the_vps_rung_requires_a_recipient() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(vps_config(backups={"bucket": "shop-backups"}), SECRET_KEYS)
    problems = dict(info.value.problems)
    assert "age-keygen" in problems["ladder:backups.ageRecipient"]


def test_a_private_key_in_the_recipient_is_refused_without_echo() -> None:
    secret = "AGE-SECRET-KEY-1" + "Q" * 58
    with pytest.raises(ConfigError) as info:
        parse_settings(vps_config(backups={"bucket": "shop-backups", "ageRecipient": secret}), SECRET_KEYS)
    assert "ladder:backups.ageRecipient" in dict(info.value.problems)
    assert secret not in str(info.value)


# --- the rendered scripts ------------------------------------------------------------------------


def test_the_dump_is_piped_through_age_and_never_written_plain() -> None:
    s = b.vps_backup_script(ARGS)
    assert f"AGE_RECIPIENT={AGE_RECIPIENT}" in s
    dumps = [line.strip() for line in s.splitlines() if "| gzip -6" in line]
    assert dumps and all("| gzip -6 | seal " in line for line in dumps), dumps
    # every archive (the database, volumes, accessories) goes through `seal` (age) into the work dir
    assert 'tar -C "$root" -czf - -- "$@" | seal "$out"' in s
    assert 'age -r "$AGE_RECIPIENT" > "$WORK_DIR/$1" || return 1' in s
    assert 'upload "$stamp.dump.gz.age" "$PREFIX"' in s
    # the only upload is of sealed files, from the work dir
    uploads = [line.strip() for line in s.splitlines() if "s3 cp" in line]
    assert uploads == ['aws s3 cp --only-show-errors "/backup/$1" "s3://$BUCKET/$2/$1"']
    assert "age-encryption.org/v1" in s  # the header is checked before the upload


def test_without_a_recipient_no_script_is_rendered() -> None:
    with pytest.raises(ValueError, match="ageRecipient"):
        b.vps_backup_script(b.VpsBackupArgs(**{**ARGS.__dict__, "age_recipient": ""}))


def test_the_restore_script_holds_no_key_and_reads_a_decrypted_dump() -> None:
    s = b.vps_restore_script(ARGS)
    # decryption is the operator's, not the host's: no line of code runs age (comments and
    # log messages may name it)
    code = [ln for ln in s.splitlines() if not ln.lstrip().startswith("#") and 'log "' not in ln]
    assert not [ln for ln in code if re.search(r"(?:^|[|;&])\s*age\s", ln)]
    assert "AGE-SECRET-KEY" not in s
    assert "--fetch)" in s and "--stdin) ;;" in s
    assert "stdin is still encrypted" in s


def test_the_deploy_installs_age_before_the_backup_script() -> None:
    from components.render.deploy import DeployPlan, deploy_script

    plan = DeployPlan(app="shop", files={}, data_services=["postgres"], backup=ARGS)
    script = deploy_script(plan, {"backup.env": "AWS_ACCESS_KEY_ID=a\n"})
    assert b.INSTALL_AGE in script
    assert script.index(b.INSTALL_AGE) < script.index(b.BACKUP_SCRIPT_PATH)


# --- a real round trip with the age binary ---------------------------------------------------------

# Stands in for `docker`: `compose ... exec -T postgres pg_dump` prints $STUB/dump,
# `pg_restore` stores its stdin in $STUB/restored, and the aws-cli image copies between
# the mounted work dir and $STUB/bucket.
DOCKER_STUB = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    import os, shutil, sys
    stub, args = os.environ["STUB"], sys.argv[1:]
    if args[0] == "compose":
        if "pg_dump" in args:
            sys.stdout.buffer.write(open(os.path.join(stub, "dump"), "rb").read())
        elif "pg_restore" in args:
            open(os.path.join(stub, "restored"), "wb").write(sys.stdin.buffer.read())
        sys.exit(0)
    assert args[0] == "run", args
    work = next(a.split(":")[0] for a in args if a.endswith(":/backup"))
    def local(path):
        if path.startswith("s3://"):
            return os.path.join(stub, "bucket", path[5:])
        return os.path.join(work, path[len("/backup/"):])
    rest = args[args.index("s3") if "s3" in args else args.index("s3api"):]
    if rest[:2] == ["s3", "cp"]:
        src, dst = [local(a) for a in rest[2:] if not a.startswith("--")]
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
    elif rest[:2] == ["s3api", "list-objects-v2"]:
        found = []
        for root, _, names in os.walk(os.path.join(stub, "bucket")):
            rel = os.path.relpath(root, os.path.join(stub, "bucket"))
            found += [os.path.join(rel, n).split("/", 1)[1] for n in names]
        query = rest[rest.index("--query") + 1]
        print(sorted(found)[-1] if "sort_by" in query and found else "None")
    """
)


@pytest.fixture
def age_bin() -> str:
    return require_tool(shutil.which("age"), "age (Debian/Ubuntu package `age`)")


def _localised(script: str, tmp: Path) -> str:
    """The rendered script with its two fixed host paths moved under `tmp`."""
    assert script.count(f"ENV_FILE={b.ENV_FILE_PATH}\n") == 1 and script.count(f"WORK_DIR={b.WORK_DIR}\n") == 1
    return script.replace(f"ENV_FILE={b.ENV_FILE_PATH}\n", f"ENV_FILE={tmp}/backup.env\n").replace(
        f"WORK_DIR={b.WORK_DIR}\n", f"WORK_DIR={tmp}/work\n"
    )


def test_round_trip_with_the_real_age_binary(tmp_path: Path, age_bin: str) -> None:
    keygen = require_tool(shutil.which("age-keygen"), "age-keygen (Debian/Ubuntu package `age`)")
    key = tmp_path / "operator.key"  # stays on "the operator's machine": never given to a script
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run([keygen, "-y", str(key)], check=True, capture_output=True, text=True).stdout.strip()
    assert age_recipient(recipient) == recipient

    stub = tmp_path / "stub"
    (stub / "bin").mkdir(parents=True)
    docker = stub / "bin" / "docker"
    docker.write_text(DOCKER_STUB)
    docker.chmod(0o755)
    dump = b"PGDMP" + os.urandom(4096) + b"row that must come back: kept"
    (stub / "dump").write_bytes(dump)
    (tmp_path / "backup.env").write_text("AWS_ACCESS_KEY_ID=a\n")
    (tmp_path / "backup.env").chmod(0o600)
    env = {**os.environ, "STUB": str(stub), "PATH": f"{stub / 'bin'}:{os.environ['PATH']}"}
    args = b.VpsBackupArgs(**{**ARGS.__dict__, "age_recipient": recipient})

    backup = tmp_path / "ladder-backup"
    backup.write_text(_localised(b.vps_backup_script(args), tmp_path))
    done = subprocess.run(["bash", str(backup)], env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()

    objects = sorted((stub / "bucket" / "shop-backups" / "shop/staging/postgres").iterdir())
    assert len(objects) == 1 and objects[0].name.endswith(".dump.gz.age")
    stored = objects[0].read_bytes()
    assert stored.startswith(b"age-encryption.org/v1\n")
    assert b"kept" not in stored and dump[5:64] not in stored  # nothing of the dump is readable
    assert list((tmp_path / "work").iterdir()) == []  # no copy left on the host either

    # A second key cannot open it; the operator's key can.
    other = tmp_path / "other.key"
    subprocess.run([keygen, "-o", str(other)], check=True, capture_output=True)
    wrong = subprocess.run([age_bin, "-d", "-i", str(other)], input=stored, capture_output=True, check=False)
    assert wrong.returncode != 0

    restore = tmp_path / "ladder-restore"
    restore.write_text(_localised(b.vps_restore_script(args), tmp_path))
    fetched = subprocess.run(
        ["bash", str(restore), "--fetch", "latest"], env=env, capture_output=True, timeout=60, check=False
    )
    assert fetched.returncode == 0, fetched.stderr.decode()
    assert fetched.stdout == stored

    refused = subprocess.run(
        ["bash", str(restore), "--stdin"], input=stored, env=env, capture_output=True, timeout=60, check=False
    )
    assert refused.returncode == 2 and b"still encrypted" in refused.stderr
    assert not (stub / "restored").exists()

    plain = subprocess.run([age_bin, "-d", "-i", str(key)], input=fetched.stdout, capture_output=True, check=True)
    assert gzip.decompress(plain.stdout) == dump
    done = subprocess.run(
        ["bash", str(restore), "--stdin"], input=plain.stdout, env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert (stub / "restored").read_bytes() == dump
