"""Issue 12 item 11, per-tenant backup credentials where the store allows.

On a DigitalOcean cluster whose backup bucket Ladder creates, each tenant backs up to a bucket
of its own with a Spaces key limited to it: no tenant namespace holds a key that reaches another
tenant's backups, nor the user's key. The app's own tenant keeps `ladder:backups.bucket`.
Hetzner and buckets the user made keep the shared bucket and the user's key.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.backup_buckets import tenant_backup_bucket
from components.render import backup
from components.render import k8s_extras as x
from components.settings import ConfigError, parse_settings
from tests.cluster_helpers import (
    BACKUP_SECRETS,
    BACKUPS,
    HETZNER,
    SPACES_KEY,
    TENANT_KEYS,
    TENANTS3,
    manifests,
    production,
    tenant_keys,
)
from tests.helpers import CRYPT_KEY, SECRET_KEYS, cluster_config
from tests.test_secret_flow import _plain_strings
from tools.harness import ProgramResult, Registration, is_secret, run_program, unwrap

BUCKET = "digitalocean:index/spacesBucket:SpacesBucket"
USER_KEYS = (BACKUP_SECRETS["ladder:backups.accessKeyId"], BACKUP_SECRETS["ladder:backups.secretAccessKey"])
# The app's own tenant (`shop`, namespace `shop`) beside two others.
WITH_PRIMARY = ("shop", "acme", "globex")
EXPECTED_BUCKETS = {"shop": "shop-backups", "acme": "shop-backups-acme", "globex": "shop-backups-globex"}


def _secret(result: ProgramResult, name: str, namespace: str) -> Registration:
    (reg,) = [
        reg
        for reg in result.of_type("kubernetes:core/v1:Secret")
        if unwrap(reg.inputs["metadata"])["name"] == name and unwrap(reg.inputs["metadata"])["namespace"] == namespace
    ]
    return reg


def _backup_keys(result: ProgramResult) -> list[Registration]:
    """The Spaces keys minted for backups (the app's `ladder:buckets` have keys of their own)."""
    return [k for k in result.of_type(SPACES_KEY) if "-backup-key-" in k.name]


def _minted(result: ProgramResult) -> dict[str, tuple[str, str]]:
    """The bucket each backup key is granted on -> the (id, secret) MintedKeyMocks gave that key."""
    keys: dict[str, tuple[str, str]] = {}
    for key in _backup_keys(result):
        grants = unwrap(key.inputs["grants"])
        assert grants == [{"bucket": grants[0]["bucket"], "permission": "readwrite"}], key.name
        keys[grants[0]["bucket"]] = (f"MINTED-ID-{key.name}", f"MINTED-SECRET-{key.name}")
    return keys


def _namespace(tenant: str) -> str:
    return "shop" if tenant == "shop" else f"shop-{tenant}"


def test_one_key_per_tenant_with_one_grant_on_its_own_bucket() -> None:
    result = tenant_keys(tenants=WITH_PRIMARY)
    keys = _minted(result)
    assert sorted(keys) == sorted(EXPECTED_BUCKETS.values())
    assert len(_backup_keys(result)) == len(WITH_PRIMARY)
    buckets = {b.inputs["name"]: b for b in result.of_type(BUCKET)}
    primary = buckets["shop-backups"]
    for name in EXPECTED_BUCKETS.values():
        b = buckets[name]
        # The same bucket definition: versioned, the retention rule, private, protected.
        assert b.inputs["versioning"] == primary.inputs["versioning"] == {"enabled": True}
        assert b.inputs["lifecycleRules"] == primary.inputs["lifecycleRules"]
        assert b.inputs["lifecycleRules"][0]["noncurrentVersionExpiration"] == {"days": BACKUPS["retentionDays"]}
        assert b.inputs["acl"] == "private" and b.protect
    # Each key depends on exactly its own bucket (the grant names the bucket's output).
    for key in _backup_keys(result):
        (bucket,) = [n for n, b in buckets.items() if b.urn in key.dependencies]
        assert unwrap(key.inputs["grants"])[0]["bucket"] == bucket


def test_the_primary_tenants_bucket_does_not_move() -> None:
    keyed = tenant_keys(tenants=WITH_PRIMARY)
    # A stack without tenants (only the app's own) and without keys: the bucket as it always was.
    plain = run_program(
        "production",
        overrides={"ladder:backups": {**BACKUPS, "create": True}},
        secrets={"digitalocean:token": "t"},
    )
    assert plain.error is None, plain.error
    before = plain.one(BUCKET)
    after = keyed.one(BUCKET, before.name)
    assert after.urn == before.urn and after.inputs["name"] == before.inputs["name"] == "shop-backups"
    store = _object_store(keyed, "shop")
    assert store["configuration"]["destinationPath"] == "s3://shop-backups/production/shop"


def _object_store(result: ProgramResult, namespace: str) -> dict[str, Any]:
    (store,) = [m for m in manifests(result, "ObjectStore") if m["metadata"]["namespace"] == namespace]
    spec: dict[str, Any] = store["spec"]
    return spec


@pytest.mark.parametrize("tenants", [WITH_PRIMARY, ()])
def test_every_tenant_secret_holds_its_own_key_only(tenants: tuple[str, ...]) -> None:
    result = tenant_keys(tenants=tenants)
    names = tenants or ("acme", "globex")
    keys = _minted(result)
    assert len(keys) == len(names)
    all_values = {v for pair in keys.values() for v in pair} | set(USER_KEYS)
    for tenant in names:
        ns = _namespace(tenant)
        bucket = EXPECTED_BUCKETS[tenant]
        key_id, secret_key = keys[bucket]
        cnpg = _secret(result, backup.CNPG_CREDENTIALS_SECRET, ns).inputs["stringData"]
        volumes = _secret(result, x.BACKUP_CREDENTIALS, ns).inputs["stringData"]
        assert is_secret(cnpg) and is_secret(volumes)
        assert unwrap(cnpg) == {"ACCESS_KEY_ID": key_id, "ACCESS_SECRET_KEY": secret_key, "ACCESS_REGION": "fra1"}
        assert unwrap(volumes) == x.backup_secret_data(key_id, secret_key, CRYPT_KEY)
        # No other key (another tenant's, the user's) anywhere in the namespace's Secrets.
        foreign = all_values - {key_id, secret_key}
        for reg in result.of_type("kubernetes:core/v1:Secret"):
            if unwrap(reg.inputs["metadata"])["namespace"] == ns:
                text = str(unwrap(reg.inputs))
                assert not [v for v in foreign if v in text], (ns, unwrap(reg.inputs["metadata"])["name"])
        # Where they write: the tenant's bucket, its namespace's prefix.
        assert _object_store(result, ns)["configuration"]["destinationPath"] == f"s3://{bucket}/production/{ns}"
        for job in manifests(result, "CronJob"):
            if job["metadata"]["namespace"] == ns and job["metadata"]["name"].startswith("backup-"):
                (upload,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
                env = {e["name"]: e["value"] for e in upload["env"]}
                assert env["RCLONE_CONFIG_SEALED_REMOTE"] == f"BACKUP:{bucket}", (ns, job["metadata"]["name"])


def test_the_users_key_reaches_no_cluster_secret_on_digitalocean() -> None:
    result = tenant_keys(tenants=WITH_PRIMARY)
    for reg in result.resources:
        if reg.type.startswith("kubernetes:"):
            text = str(unwrap(reg.inputs))
            assert not [v for v in USER_KEYS if v in text], (reg.type, reg.name)


def test_minted_keys_stay_secret_end_to_end() -> None:
    """Neither half of a minted key appears in a plain input of any resource or a plain output."""
    result = tenant_keys(tenants=WITH_PRIMARY)
    minted = [v for pair in _minted(result).values() for v in pair]
    assert minted
    leaks = [
        (r.type, r.name, where)
        for r in result.resources
        for where, text in _plain_strings(r.inputs)
        if any(v in text for v in minted)
    ]
    assert not leaks, leaks[:5]
    plain = {k: v for k, v in result.outputs.items() if k not in result.secret_outputs}
    assert not [w for w, text in _plain_strings(plain) if any(v in text for v in minted)]
    # ...and the walk does see them where they are (as secrets).
    secrets = [str(unwrap(r.inputs)) for r in result.of_type("kubernetes:core/v1:Secret")]
    assert all(any(v in text for text in secrets) for v in minted)


def test_a_preview_of_a_new_stack_evaluates() -> None:
    """Ids and the keys unknown: the tenants' Secrets still register (their data computed later)."""
    result = tenant_keys(preview=True, tenants=WITH_PRIMARY)
    assert len(_backup_keys(result)) == 3
    assert len([r for r in result.of_type("kubernetes:core/v1:Secret")]) > 6


# --- where the store does not allow it --------------------------------------------------


def test_hetzner_and_user_buckets_share_the_bucket_and_the_users_key() -> None:
    hetzner = run_program(
        "production",
        overrides={
            **HETZNER,
            **TENANT_KEYS,
            "ladder:backups": BACKUPS,
            "ladder:tenants": TENANTS3,
            "ladder:buckets": None,
        },
        secrets={**BACKUP_SECRETS, "ladder:secrets.MONGO_INITDB_ROOT_PASSWORD": "m"},
    )
    assert hetzner.error is None, hetzner.error
    for result in (hetzner, production("extras")):  # extras: DigitalOcean, a bucket the user made
        assert not _backup_keys(result)
        assert [b.inputs["name"] for b in result.of_type(BUCKET) if "backups" in b.inputs["name"]] == []
        namespaces = {m["metadata"]["namespace"] for m in manifests(result, "ObjectStore")}
        assert len(namespaces) >= 2
        for ns in namespaces:
            assert _object_store(result, ns)["configuration"]["destinationPath"] == f"s3://shop-backups/production/{ns}"
            data = unwrap(_secret(result, backup.CNPG_CREDENTIALS_SECRET, ns).inputs["stringData"])
            assert (data["ACCESS_KEY_ID"], data["ACCESS_SECRET_KEY"]) == USER_KEYS


# --- config contract ----------------------------------------------------------------------


def _do_config(bucket: str, tenants: list[str], create: bool = True) -> dict[str, Any]:
    raw = cluster_config(
        backups={**BACKUPS, "bucket": bucket, "create": create, "accessKeyId": "AK", "secretAccessKey": "SK"}
    )
    raw["provider"] = "digitalocean"
    raw["tenants"] = [{"name": n, "domain": f"{n}.example.com"} for n in tenants]
    return raw


def test_derived_bucket_names_are_checked_before_any_resource() -> None:
    long_tenant = "t" * 30
    bucket = "b" * 33  # 33 + 1 + 30 = 64 characters
    with pytest.raises(ConfigError) as info:
        parse_settings(_do_config(bucket, ["acme", long_tenant]), SECRET_KEYS)
    problems = dict(info.value.problems)
    message = problems["ladder:backups.bucket"]
    assert long_tenant in message and "64 characters" in message and "acme" not in message
    # A reserved suffix made by the join: refused by the same grammar.
    with pytest.raises(ConfigError) as info:
        parse_settings(_do_config("shop-backups", ["x-s3alias"]), SECRET_KEYS)
    assert "x-s3alias" in dict(info.value.problems)["ladder:backups.bucket"]
    # Fits: 63 characters. A bucket the user made derives nothing, so nothing to refuse.
    parse_settings(_do_config("b" * 32, ["acme", long_tenant]), SECRET_KEYS)
    parse_settings(_do_config(bucket, ["acme", long_tenant], create=False), SECRET_KEYS)
    # The whole program: an error naming the key, and no resource registered.
    result = run_program(
        "production",
        overrides={
            **TENANT_KEYS,
            "ladder:backups": {**BACKUPS, "bucket": bucket, "create": True},
            "ladder:tenants": [{"name": long_tenant, "domain": "long.example.com"}],
        },
        secrets={"digitalocean:token": "t", **BACKUP_SECRETS, "ladder:secrets.MONGO_INITDB_ROOT_PASSWORD": "m"},
    )
    assert result.error is not None and "ladder:backups.bucket" in str(result.error)
    assert result.resources == []


def test_tenant_backup_bucket_follows_the_rule() -> None:
    keyed = parse_settings(_do_config("shop-backups", ["shop", "acme"]), SECRET_KEYS)
    assert tenant_backup_bucket(keyed, "shop") == "shop-backups"
    assert tenant_backup_bucket(keyed, "acme") == "shop-backups-acme"
    shared = parse_settings(_do_config("shop-backups", ["shop", "acme"], create=False), SECRET_KEYS)
    assert tenant_backup_bucket(shared, "acme") == "shop-backups"


def test_the_restore_plan_names_each_tenants_bucket() -> None:
    """The plan holds no secrets, so the bucket rule must follow from the config alone; the
    file steps' round trip is run in test_cluster_backup_crypt (bucket-per-tenant)."""
    import copy

    from tools import restore

    overrides = copy.deepcopy(TENANT_KEYS)
    overrides["ladder:tenants"] = [{"name": n, "domain": f"{n}.example.com"} for n in WITH_PRIMARY]
    del overrides["ladder:accessories"]["mongo"]["secretEnv"]
    steps = restore.restore_steps(restore.load_stack_settings("production", overrides), "production")
    for tenant, bucket in EXPECTED_BUCKETS.items():
        ns = _namespace(tenant)
        assert f"#   {ns}: s3://{bucket}/production/{ns}/ (ObjectStore postgres-store)" in steps
    # The sealed Postgres dumps' steps, then the file steps: each section switches buckets per tenant.
    dumps = next(i for i, line in enumerate(steps) if line.startswith("# postgres dumps:"))
    files = next(i for i, line in enumerate(steps) if line.startswith("# files:"))
    for section in (steps[dumps:files], steps[files:]):
        exports = [line for line in section if line.startswith("export RCLONE_CONFIG_SEALED_REMOTE=")]
        assert exports == [
            "export RCLONE_CONFIG_SEALED_REMOTE=BACKUP:shop-backups",
            "export RCLONE_CONFIG_SEALED_REMOTE=BACKUP:shop-backups-acme  # shop-acme's bucket",
            "export RCLONE_CONFIG_SEALED_REMOTE=BACKUP:shop-backups-globex  # shop-globex's bucket",
        ]
