"""The VPS rung (issue 4): servers, firewall, data, Compose deploys over SSH, 1..N servers."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.artifacts import rendered_files
from components.render.deploy import STEPS
from components.render.sudo import AS_ROOT
from components.settings import parse_settings
from tests.conftest import check_shell_script
from tests.helpers import AGE_RECIPIENT, SECRET_KEYS
from tests.test_cloud_init_keys import assert_known_top_level_keys
from tools.harness import PlainMocks, ProgramResult, is_secret, run_program, stack_config, unwrap

HCLOUD_SERVER = "hcloud:index/server:Server"
SSH_KEY_STAGING = stack_config("staging")["ladder:vps"]["sshKeys"][0]
DROPLET = "digitalocean:index/droplet:Droplet"
COMMAND = "command:remote:Command"
DO: dict[str, Any] = {"ladder:provider": "digitalocean", "ladder:vps.size": "s-1vcpu-2gb", "ladder:vps.region": "fra1"}
DO_MANAGED: dict[str, Any] = {
    **DO,
    "ladder:postgres": {"mode": "managed", "version": "17"},
    "ladder:redis": {"mode": "managed"},
}
EXISTING: dict[str, Any] = {
    "ladder:provider": "existing",
    "ladder:vps": {
        "hosts": [
            {
                "address": "192.0.2.10",
                "user": "ops",
                "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGqNSkWkxGwC56GIK0Ntfe+k+WiXf2BCIxu5hqwvV/g",
            }
        ],
        "sshAllowFrom": ["203.0.113.7/32"],
    },
}
VARIANTS: dict[str, dict[str, Any]] = {
    "hetzner-1": {},
    "hetzner-3": {"ladder:vps.count": 3},
    "digitalocean-1": DO,
    "digitalocean-3": {**DO_MANAGED, "ladder:vps.count": 3},
    "existing-1": EXISTING,
}
# Mock values of every secret the stack holds: none may appear in plain text anywhere.
SECRETS = ("mock-postgres-password-Zx81", "mock-redis-password-Zx81", "plan-placeholder-secret", "PRIVATE KEY")


def assert_only_in_secrets(result: ProgramResult, value: str) -> None:
    """`value` may appear in recorded inputs only inside values sent as secrets."""
    for r in result.resources:
        for key, field in r.inputs.items():
            assert is_secret(field) or value not in str(field), f"{r.type} {r.name}.{key}"


def run(variant: str, **extra: Any) -> ProgramResult:
    result = run_program("staging", overrides={**VARIANTS[variant], **extra})
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> tuple[str, ProgramResult]:
    return request.param, run(request.param)


def servers(result: ProgramResult) -> list[Any]:
    return result.of_type(HCLOUD_SERVER) + result.of_type(DROPLET)


def test_server_count_and_shape(variant: tuple[str, ProgramResult]) -> None:
    name, result = variant
    expected = {"hetzner-1": 1, "hetzner-3": 4, "digitalocean-1": 1, "digitalocean-3": 3, "existing-1": 0}[name]
    assert len(servers(result)) == expected
    for srv in servers(result):
        assert srv.inputs["image"] in ("ubuntu-24.04", "ubuntu-24-04-x64")
        assert srv.ignore_changes == ["sshKeys"] and srv.delete_before_replace
    assert result.one("ladder:index:VpsStack")
    assert {"ladder:index:App", "ladder:index:Postgres", "ladder:index:Redis"} <= result.types()


def test_no_secret_in_user_data_or_plain_inputs(variant: tuple[str, ProgramResult]) -> None:
    _, result = variant
    for srv in servers(result):
        text = str(unwrap(srv.inputs.get("userData")))
        assert text.startswith("#cloud-config\n")
        # The one secret user data holds is the server's own SSH host key, so it is sent as a secret.
        assert is_secret(srv.inputs["userData"]), srv.name
        config = yaml.safe_load(text)
        assert "PRIVATE KEY" in config["ssh_keys"]["ed25519_private"]
        assert config["ssh_genkeytypes"] == ["ed25519"]
        del config["ssh_keys"]
        assert not any(secret in yaml.safe_dump(config) for secret in SECRETS), srv.name
    for secret in SECRETS:
        assert_only_in_secrets(result, secret)
    assert not any(secret in str(result.outputs) for secret in SECRETS)


def test_every_connection_checks_the_host_key(variant: tuple[str, ProgramResult]) -> None:
    """The host key each connection pins is the one the server was given (or the configured one)."""
    _, result = variant
    given = {
        srv.name: yaml.safe_load(str(unwrap(srv.inputs["userData"])))["ssh_keys"]["ed25519_public"]
        for srv in servers(result)
    }
    for cmd in result.of_type(COMMAND):
        key = unwrap(cmd.inputs["connection"]).get("hostKey")
        assert key and key.startswith("ssh-ed25519 "), cmd.name
        if given:
            assert key.strip() in {k.strip() for k in given.values()}, cmd.name


def test_deploys_carry_secrets_only_as_secrets(variant: tuple[str, ProgramResult]) -> None:
    _, result = variant
    deploys = [c for c in result.of_type(COMMAND) if c.name.endswith("-deploy")]
    assert deploys
    for deploy in deploys:
        assert deploy.inputs["create"] == AS_ROOT
        assert is_secret(deploy.inputs["stdin"])
        connection = deploy.inputs["connection"]
        assert is_secret(connection) or is_secret(connection["privateKey"])
        script = unwrap(deploy.inputs["stdin"])
        assert "chmod 0600 /srv/ladder/app.env.new" in script or "app.env" not in script


def test_hetzner_single_server_firewall_is_exactly_web_and_ssh() -> None:
    rules = run("hetzner-1").one("hcloud:index/firewall:Firewall").inputs["rules"]
    assert {(r["port"], r["protocol"], tuple(r["sourceIps"])) for r in rules} == {
        ("22", "tcp", ("203.0.113.7/32",)),
        ("80", "tcp", ("0.0.0.0/0", "::/0")),
        ("443", "tcp", ("0.0.0.0/0", "::/0")),
    }
    assert all(r["direction"] == "in" for r in rules)


def test_load_balanced_servers_open_only_ssh() -> None:
    result = run("hetzner-3")
    rules = result.one("hcloud:index/firewall:Firewall").inputs["rules"]
    assert {(r["port"], tuple(r["sourceIps"])) for r in rules} == {("22", ("203.0.113.7/32",))}
    service = result.one("hcloud:index/loadBalancerService:LoadBalancerService").inputs
    assert (service["protocol"], service["listenPort"], service["destinationPort"]) == ("https", 443, 80)
    assert service["http"]["redirectHttp"] is True
    targets = result.of_type("hcloud:index/loadBalancerTarget:LoadBalancerTarget")
    assert len(targets) == 3 and all(t.inputs["usePrivateIp"] for t in targets)
    assert result.one("hcloud:index/managedCertificate:ManagedCertificate").inputs["domainNames"] == [
        "staging.shop.example.com"
    ]


def test_digitalocean_firewall() -> None:
    single = run("digitalocean-1").one("digitalocean:index/firewall:Firewall").inputs["inboundRules"]
    assert {(r["portRange"], tuple(r.get("sourceAddresses") or [])) for r in single} == {
        ("22", ("203.0.113.7/32",)),
        ("80", ("0.0.0.0/0", "::/0")),
        ("443", ("0.0.0.0/0", "::/0")),
    }
    multi = run("digitalocean-3").one("digitalocean:index/firewall:Firewall").inputs["inboundRules"]
    assert {r["portRange"] for r in multi} == {"22", "80"}
    assert next(r for r in multi if r["portRange"] == "80").get("sourceLoadBalancerUids")


def test_data_leaves_the_app_servers_when_there_are_several() -> None:
    hetzner = run("hetzner-3")
    roles = {s.inputs["labels"]["role"] for s in hetzner.of_type(HCLOUD_SERVER)}
    assert roles == {"app", "data"}
    data_server = next(s for s in hetzner.of_type(HCLOUD_SERVER) if s.inputs["labels"]["role"] == "data")
    assert data_server.protect and data_server.inputs["networks"][0]["ip"] == "10.0.1.5"
    data_deploy = unwrap(hetzner.one(COMMAND, "app-data-deploy").inputs["stdin"])
    assert "10.0.1.5:5432:5432" in data_deploy and "proxy" not in data_deploy.split("# 5.")[0].split("compose.yaml")[1]
    app_deploy = hetzner.one(COMMAND, "app-app-0-deploy")
    assert hetzner.one(COMMAND, "app-data-deploy").urn in app_deploy.dependencies
    do = run("digitalocean-3")
    clusters = do.of_type("digitalocean:index/databaseCluster:DatabaseCluster")
    assert {c.inputs["engine"] for c in clusters} == {"pg", "valkey"}
    assert all(c.protect and c.inputs["privateNetworkUuid"] for c in clusters)
    assert len(do.of_type("digitalocean:index/databaseFirewall:DatabaseFirewall")) == 2


def test_stateful_resources_are_protected() -> None:
    result = run("hetzner-1")
    for typ in ("hcloud:index/volume:Volume", "hcloud:index/primaryIp:PrimaryIp"):
        assert all(r.protect for r in result.of_type(typ)), typ
    assert result.one(HCLOUD_SERVER).protect  # it holds the data on one server
    do = run("digitalocean-1")
    for typ in ("digitalocean:index/volume:Volume", "digitalocean:index/reservedIp:ReservedIp"):
        assert all(r.protect for r in do.of_type(typ)), typ
    unprotected = run("hetzner-1", **{"ladder:protect": False})
    assert not any(r.protect for r in unprotected.resources)


def test_image_bump_changes_only_the_deploy() -> None:
    before = run("hetzner-1")
    after = run("hetzner-1", **{"ladder:app.services.api.image": "mendhak/http-https-echo:38"})
    changed = {
        (r.type, r.name)
        for r in after.resources
        if unwrap(r.inputs) != unwrap(before.one(r.type, r.name).inputs if r.custom else before.named(r.name).inputs)
    }
    assert changed == {(COMMAND, "app-app-0-deploy")}
    old, new = before.one(COMMAND, "app-app-0-deploy"), after.one(COMMAND, "app-app-0-deploy")
    assert old.inputs["triggers"] != new.inputs["triggers"]


def test_existing_hosts_are_hardened_and_deployed_not_provisioned() -> None:
    result = run("existing-1")
    assert not [r for r in result.resources if r.type.startswith(("hcloud:", "digitalocean:"))]
    harden = result.one(COMMAND, "app-host-0-harden")
    assert unwrap(harden.inputs["connection"])["user"] == "ops"
    script = unwrap(harden.inputs["stdin"])
    assert "AllowUsers ops" in script and "ufw --force enable" in script
    deploy = result.one(COMMAND, "app-host-0-deploy")
    assert harden.urn in deploy.dependencies


def test_deploy_order() -> None:
    script = unwrap(run("hetzner-1").one(COMMAND, "app-app-0-deploy").inputs["stdin"])
    positions = [script.index(f"# {i}. {step}") for i, step in enumerate(STEPS, 1)]
    assert positions == sorted(positions)
    assert script.index("docker compose run --rm --no-deps -T api") < script.index("start_new web")
    assert "start_new api 3 " in script and "start_new web 2 " in script
    # The body runs as one function with stdin from /dev/null: nothing inside can read the
    # rest of the script from `bash -s` (a `docker compose run` once swallowed it).
    assert script.rstrip().endswith('main "$@" </dev/null')
    assert "fail 'the release command failed; the previous version keeps serving'" in script


def test_plainest_mock() -> None:
    for overrides in VARIANTS.values():
        result = run_program("staging", overrides=overrides, mocks=PlainMocks())
        assert result.error is None, result.error


def test_cost_covers_every_billed_item() -> None:
    names = " ".join(i["name"] for i in run("hetzner-3").outputs["monthlyCost"]["items"])
    for word in ("app server", "data server", "IPv4", "volume", "load balancer"):
        assert word in names
    managed = " ".join(i["name"] for i in run("digitalocean-3").outputs["monthlyCost"]["items"])
    assert "managed Postgres" in managed and "managed Valkey" in managed and "load balancer" in managed


# --- the rendered files pass their real validators --------------------------------------


def staging_settings(**overrides: Any) -> Any:
    raw = {k.split(":", 1)[1]: v for k, v in stack_config("staging").items() if k.startswith("ladder:")}
    raw["secrets"] = {"SESSION_SECRET": "x"}
    raw.update(overrides)
    return parse_settings(raw, SECRET_KEYS)


@pytest.fixture(scope="module", params=["single", "load-balanced"])
def files(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    vps = dict(stack_config("staging")["ladder:vps"])
    if request.param == "load-balanced":
        vps["count"] = 3
    out = tmp_path_factory.mktemp(request.param)
    for rel, content in rendered_files(staging_settings(vps=vps)).items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return out


def test_cloud_init_is_valid(files: Path, cloud_init_bin: str) -> None:
    assert_known_top_level_keys(yaml.safe_load((files / "cloud-init.yaml").read_text()))
    run_ = subprocess.run(
        [cloud_init_bin, "schema", "--config-file", str(files / "cloud-init.yaml")], capture_output=True, text=True
    )
    assert run_.returncode == 0, run_.stdout + run_.stderr
    text = (files / "cloud-init.yaml").read_text()
    assert "ssh_pwauth: false" in text and "PermitRootLogin no" in text and "01-ladder-hardening.conf" in text


def test_compose_is_valid(files: Path, compose_bin: str, check_jsonschema_bin: str) -> None:
    for compose in files.rglob("compose.yaml"):
        for env in ("app.env", "postgres.env", "valkey.env"):
            (compose.parent / env).write_text("")
        (compose.parent / "caddy").mkdir(exist_ok=True)
        run_ = subprocess.run([compose_bin, "-f", str(compose), "config", "-q"], capture_output=True, text=True)
        assert run_.returncode == 0, run_.stderr
        run_ = subprocess.run(
            [check_jsonschema_bin, "--builtin-schema", "vendor.compose-spec", str(compose)],
            capture_output=True,
            text=True,
        )
        assert run_.returncode == 0, run_.stdout
        doc = yaml.safe_load(compose.read_text())
        for name, svc in doc["services"].items():
            if name != "proxy":
                assert "ports" not in svc or all(p.startswith("10.0.1.5:") for p in svc["ports"]), name
            assert svc["security_opt"] == ["no-new-privileges:true"] and "ALL" in svc["cap_drop"]
            assert svc["logging"]["options"]["max-size"] == "10m"


def test_caddyfile_is_valid(files: Path, caddy_bin: str) -> None:
    run_ = subprocess.run(
        [caddy_bin, "validate", "--config", str(files / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
    )
    assert run_.returncode == 0, run_.stderr


def test_deploy_script_is_valid(files: Path, shellcheck_bin: str) -> None:
    check_shell_script(files / "deploy.sh", shellcheck_bin)


BACKUPS = {
    "ladder:backups": {
        "bucket": "shop-backups",
        "endpoint": "https://fsn1.your-objectstorage.com",
        "region": "fsn1",
        "schedule": "0 */6 * * *",
        "retentionDays": 30,
        "ageRecipient": AGE_RECIPIENT,
    }
}
CREDENTIALS = {"ladder:backups.accessKeyId": "AKIA-TEST-ID", "ladder:backups.secretAccessKey": "very-secret-key"}


def test_backups_install_a_timer_on_the_data_host(tmp_path: Path, shellcheck_bin: str) -> None:
    result = run_program("staging", overrides={"ladder:vps.count": 3, **BACKUPS}, secrets=CREDENTIALS)
    assert result.error is None, result.error
    data = unwrap(result.one(COMMAND, "app-data-deploy").inputs["stdin"])
    assert "systemctl enable --now ladder-backup.timer" in data
    assert "/etc/ladder/backup.env" in data and "AWS_SECRET_ACCESS_KEY=very-secret-key" in data
    assert "OnCalendar=*-*-* 00,06,12,18:00:00" in data
    app = unwrap(result.one(COMMAND, "app-app-0-deploy").inputs["stdin"])
    assert "ladder-backup" not in app  # app servers hold no data
    assert_only_in_secrets(result, "very-secret-key")
    path = tmp_path / "deploy.sh"
    path.write_text(data)
    check_shell_script(path, shellcheck_bin)


def test_backups_without_credentials_install_nothing() -> None:
    result = run_program("staging", overrides=BACKUPS)
    assert result.error is None, result.error
    assert "ladder-backup" not in unwrap(result.one(COMMAND, "app-app-0-deploy").inputs["stdin"])


def test_digitalocean_creates_the_bucket_and_uptime_alerts() -> None:
    overrides = {
        **DO,
        "ladder:backups": {
            "bucket": "shop-backups",
            "create": True,
            "retentionDays": 14,
            "ageRecipient": AGE_RECIPIENT,
        },
        "ladder:monitoring": {"enabled": True, "alertEmail": "ops@shop.example.com"},
    }
    result = run_program("staging", overrides=overrides)
    assert result.error is None, result.error
    bucket = result.one("digitalocean:index/spacesBucket:SpacesBucket")
    assert bucket.protect and bucket.inputs["acl"] == "private"
    assert bucket.inputs["lifecycleRules"][0]["expiration"]["days"] == 14
    # the uploading key could delete: versioning keeps what it deletes for retentionDays
    assert bucket.inputs["versioning"] == {"enabled": True}
    assert bucket.inputs["lifecycleRules"][0]["noncurrentVersionExpiration"]["days"] == 14
    check = result.one("digitalocean:index/uptimeCheck:UptimeCheck")
    assert check.inputs["target"] == "https://staging.shop.example.com/"
    alerts = {a.inputs["type"] for a in result.of_type("digitalocean:index/uptimeAlert:UptimeAlert")}
    assert alerts == {"down", "ssl_expiry"}
    policies = {a.inputs["type"] for a in result.of_type("digitalocean:index/monitorAlert:MonitorAlert")}
    assert policies == {
        "v1/insights/droplet/cpu",
        "v1/insights/droplet/memory_utilization_percent",
        "v1/insights/droplet/disk_utilization_percent",
    }
    assert any("Spaces" in i["name"] for i in result.outputs["monthlyCost"]["items"])


def test_later_ssh_keys_roll_out_over_ssh_without_touching_servers() -> None:
    new_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewTeamMemberKeyNewTeamMemberKey0000000 new@laptop"
    before = run("hetzner-1")
    after = run("hetzner-1", **{"ladder:vps.sshKeys": [*stack_config("staging")["ladder:vps"]["sshKeys"], new_key]})
    rollout = after.one(COMMAND, "app-app-0-ssh-keys")
    assert new_key in unwrap(rollout.inputs["stdin"]) and "ladder" in unwrap(rollout.inputs["stdin"])
    assert rollout.inputs["triggers"] != before.one(COMMAND, "app-app-0-ssh-keys").inputs["triggers"]
    # the server ignores its `sshKeys` input, so a new key never replaces it
    server = after.one(HCLOUD_SERVER)
    assert server.ignore_changes == ["sshKeys"]
    assert rollout.urn in after.one(COMMAND, "app-app-0-deploy").dependencies


def test_hetzner_watch_mails_through_the_relay(tmp_path: Path, shellcheck_bin: str) -> None:
    monitoring = {
        "enabled": True,
        "alertEmail": "ops@shop.example.com",
        "smtpHost": "smtp.example.com:587",
        "smtpFrom": "alerts@shop.example.com",
        "smtpUser": "apikey",
    }
    result = run_program(
        "staging", overrides={"ladder:monitoring": monitoring}, secrets={"ladder:monitoring.smtpPassword": "smtp-pw-1"}
    )
    assert result.error is None, result.error
    script = unwrap(result.one(COMMAND, "app-app-0-deploy").inputs["stdin"])
    assert "systemctl enable --now ladder-watch.timer" in script
    assert "https://staging.shop.example.com/" in script and "smtp://smtp.example.com:587" in script
    assert 'user = "' in script and ':smtp-pw-1"' in script  # only inside the secret stdin, written mode 600
    assert '--user "' not in script and "SMTP_PASSWORD" not in script  # never on curl's command line
    assert_only_in_secrets(result, "smtp-pw-1")
    path = tmp_path / "deploy.sh"
    path.write_text(script)
    check_shell_script(path, shellcheck_bin)
    quiet = run_program("staging", overrides={"ladder:monitoring": {"enabled": True, "alertEmail": "a@b.co"}})
    assert "ladder-watch" not in unwrap(quiet.one(COMMAND, "app-app-0-deploy").inputs["stdin"])


@pytest.mark.parametrize("variant_name", ["hetzner-1", "digitalocean-1"])
def test_keys_and_allowlist_changes_never_touch_a_server(variant_name: str) -> None:
    new_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewTeamMemberKeyNewTeamMemberKey0000000 new@laptop"
    before = run(variant_name)
    after = run(
        variant_name,
        **{"ladder:vps.sshKeys": [SSH_KEY_STAGING, new_key], "ladder:vps.sshAllowFrom": ["198.51.100.0/24"]},
    )
    for srv in servers(after):
        old = before.one(srv.type, srv.name)
        # the key list only seeds a new server; changes to it are ignored, never a replacement
        assert srv.ignore_changes == ["sshKeys"]
        changed = {k for k in srv.inputs if unwrap(srv.inputs[k]) != unwrap(old.inputs.get(k))}
        assert changed <= {"sshKeys"}, (srv.name, changed)
        assert new_key not in str(unwrap(srv.inputs["userData"]))
        assert "203.0.113.7" not in str(unwrap(srv.inputs["userData"]))
    access = unwrap(after.one(COMMAND, "app-app-0-ssh-keys").inputs["stdin"])
    assert new_key in access and "198.51.100.0/24" in access


def test_access_script_narrows_ufw_and_passes_shellcheck(tmp_path: Path, shellcheck_bin: str) -> None:
    from components.render.hardening import Logins, access_script

    LOGINS = Logins((SSH_KEY_STAGING,), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeployKeyOnlyForTests deploy")

    script = access_script(LOGINS, ["203.0.113.7/32", "2001:db8::/32"], ["22", "6443"])
    assert 'wanted=" 2001:db8::/32 203.0.113.7 "' in script  # as `ufw status` prints sources
    assert "anywhere=0" in script
    assert script.index("ufw allow from") < script.index('ufw delete allow "$port/tcp"')
    # An allowlist of 0.0.0.0/0 keeps SSH open from anywhere (ufw stores it as the bootstrap
    # rule `allow 22/tcp`; deleting that used to lock everyone out).
    everywhere = access_script(LOGINS, ["0.0.0.0/0"], ["22"])
    assert "anywhere=1" in everywhere and 'wanted="  "' in everywhere
    assert SSH_KEY_STAGING in script
    path = tmp_path / "access.sh"
    path.write_text(script)
    check_shell_script(path, shellcheck_bin)


def test_managed_postgres_is_verified_against_its_ca(tmp_path: Path, shellcheck_bin: str) -> None:
    """sslmode=require accepts any certificate: DATABASE_URL says verify-full with the cluster's
    CA, which the deploy writes world-readable and every app service mounts read-only."""
    from components.render.compose import (
        DATABASE_CA,
        DATABASE_CA_MOUNT,
        DATABASE_CA_PARAMS,
        PROJECT_DIR,
        Role,
        compose_document,
    )
    from components.render.deploy import DeployPlan, deploy_script
    from components.render.vps import host_plan

    vps = {**stack_config("staging")["ladder:vps"], "size": "s-1vcpu-2gb", "region": "fra1"}
    s = staging_settings(provider="digitalocean", vps=vps, postgres={"mode": "managed", "version": "17"})
    role = Role(app=True, data=False, behind_load_balancer=False)
    services = compose_document(s, role)["services"]
    for name in s.app.services:
        assert services[name]["volumes"] == [f"./database-ca:{DATABASE_CA_MOUNT}:ro"], name
    assert DATABASE_CA_PARAMS.startswith("sslmode=verify-full&sslrootcert=/etc/ladder/database-ca/")
    plan = host_plan(s, role, run_release=False)
    assert plan.database_ca
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    contents = {n: "X=1\n" for n in plan.secret_files}
    script = deploy_script(plan, {**contents, DATABASE_CA: pem})
    assert f"chmod 0644 {PROJECT_DIR}/{DATABASE_CA}.new" in script and pem in script
    assert f"chmod 0755 {PROJECT_DIR}/database-ca" in script
    path = tmp_path / "deploy.sh"
    path.write_text(script)
    check_shell_script(path, shellcheck_bin)
    empty = deploy_script(plan, {**contents, DATABASE_CA: ""})
    assert "fail 'the managed database CA certificate is missing" in empty
    with pytest.raises(ValueError, match="database-ca"):
        deploy_script(DeployPlan(app="shop", files={}, database_ca=True), {})

    result = run("digitalocean-3")
    assert result.error is None, result.error
    app = unwrap(result.one(COMMAND, "app-app-0-deploy").inputs["stdin"])
    assert DATABASE_CA_PARAMS in app  # DATABASE_URL in the app's env file


def test_every_remote_command_runs_through_the_entry_point(variant: tuple[str, ProgramResult]) -> None:
    """No `sudo bash -s`, `sudo cat` or `sudo install` left: each root script goes on stdin to
    ladder-apply. Provisioned servers split the logins; a host you run keeps its own."""
    name, result = variant
    commands = result.of_type(COMMAND)
    assert commands and all(c.inputs["create"] == AS_ROOT for c in commands), name
    for rollout in (c for c in commands if c.name.endswith("-ssh-keys")):
        script = str(unwrap(rollout.inputs["stdin"]))
        assert "ladder-apply" in script
        if name.startswith("existing"):
            assert "write_keys" not in script and "install_sudoers" not in script
            continue
        deploy_line = script.split("write_keys deploy <<'", 1)[1].splitlines()[1]
        assert deploy_line.startswith('restrict,command="sudo -n /usr/local/sbin/ladder-apply" ssh-ed25519 ')
        assert SSH_KEY_STAGING not in deploy_line
        assert SSH_KEY_STAGING in script.split("write_keys admin <<'", 1)[1].split("write_keys deploy", 1)[0]
