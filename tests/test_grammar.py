"""Issue 12 items 5, 8, 12, 14: every value that reaches root-run or public text is checked by its
grammar, secret keys must be secrets, and the refusals name the key path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components import grammar
from components.settings import ConfigError, parse_settings
from tests.helpers import AGE_RECIPIENT, SECRET_KEYS, cluster_config, local_config, vps_config

K3S = {"provider": "hetzner", "vps": {"sshKeys": [vps_config()["vps"]["sshKeys"][0]], "sshAllowFrom": ["10.0.0.0/8"]}}
EXISTING_VPS: dict[str, Any] = {
    "hosts": [
        {
            "address": "192.0.2.10",
            "user": "deploy",
            "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGqNSkWkxGwC56GIK0Ntfe+k+WiXf2BCIxu5hqwvV/g",
        }
    ],
    "sshAllowFrom": ["203.0.113.7/32"],
    "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
}


def _set(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    node: Any = out
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {}) if not part.isdigit() else node[int(part)]
    if leaf.isdigit():
        node[int(leaf)] = value
    else:
        node[leaf] = value
    return out


def _problems(raw: dict[str, Any], secret_keys: list[str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, SECRET_KEYS if secret_keys is None else secret_keys)
    return dict(info.value.problems)


BACKUPS = {"bucket": "shop-backups", "ageRecipient": AGE_RECIPIENT}
MONITORING: dict[str, Any] = {"enabled": True, "alertEmail": "ops@example.com", "smtpHost": "smtp.example.com:587"}
MONITORING["smtpFrom"] = "alerts@example.com"

# (why, base config, dotted path under ladder:, hostile value, key path the error must name)
HOSTILE: list[tuple[str, dict[str, Any], str, Any, str]] = [
    ("health path with a newline", vps_config(), "app.services.web.health", "/h\nreboot", "app.services.web.health"),
    ("health path with a quote", vps_config(), "app.services.web.health", "/h'$(id)'", "app.services.web.health"),
    ("route path with a brace", vps_config(), "app.services.web.path", "/x {", "app.services.web.path"),
    ("route path with a tab", vps_config(), "app.services.web.path", "/a\tb", "app.services.web.path"),
    ("route path wildcard", vps_config(), "app.services.web.path", "/api*", "app.services.web.path"),
    ("route path dot segment", vps_config(), "app.services.web.path", "/a/../data", "app.services.web.path"),
    ("route path trailing newline", vps_config(), "app.services.web.path", "/api\n", "app.services.web.path"),
    ("bucket with a newline", vps_config(backups=BACKUPS), "backups.bucket", "b\nExecStartPre=/x", "backups.bucket"),
    ("bucket upper case", vps_config(backups=BACKUPS), "backups.bucket", "Shop-Backups", "backups.bucket"),
    ("bucket like an IP", vps_config(backups=BACKUPS), "backups.bucket", "192.168.5.4", "backups.bucket"),
    ("bucket double dot", vps_config(backups=BACKUPS), "backups.bucket", "a..b", "backups.bucket"),
    ("endpoint http", vps_config(backups=BACKUPS), "backups.endpoint", "http://s3.example.com", "backups.endpoint"),
    ("endpoint path", vps_config(backups=BACKUPS), "backups.endpoint", "https://e.com/x", "backups.endpoint"),
    ("endpoint user", vps_config(backups=BACKUPS), "backups.endpoint", "https://a@e.com", "backups.endpoint"),
    ("endpoint newline", vps_config(backups=BACKUPS), "backups.endpoint", "https://e.com\n", "backups.endpoint"),
    ("region injection", vps_config(backups=BACKUPS), "backups.region", "eu;reboot", "backups.region"),
    ("cron newline", vps_config(backups=BACKUPS), "backups.schedule", "0\n*/6 * * *", "backups.schedule"),
    ("cron out of range", vps_config(backups=BACKUPS), "backups.schedule", "61 * * * *", "backups.schedule"),
    ("smtp user CRLF", vps_config(monitoring=MONITORING), "monitoring.smtpUser", "u\r\nRCPT", "monitoring.smtpUser"),
    ("smtp host injection", vps_config(monitoring=MONITORING), "monitoring.smtpHost", "a;b:25", "monitoring.smtpHost"),
    (
        "smtp host port",
        vps_config(monitoring=MONITORING),
        "monitoring.smtpHost",
        "smtp.x.io:99999",
        "monitoring.smtpHost",
    ),
    (
        "smtp from header",
        vps_config(monitoring=MONITORING),
        "monitoring.smtpFrom",
        "a@b.co\nBcc: x",
        "monitoring.smtpFrom",
    ),
    (
        "alert email quote",
        vps_config(monitoring=MONITORING),
        "monitoring.alertEmail",
        "a'b@x.co",
        "monitoring.alertEmail",
    ),
    ("acme email newline", vps_config(), "acmeEmail", "ops@example.com\n", "acmeEmail"),
    ("domain trailing newline", vps_config(), "domain", "shop.example.com\n", "domain"),
    ("env value NUL", local_config(), "app.env", {"A": "x\x00y"}, "app.env.A"),
    ("env name with '='", local_config(), "app.env", {"A=B": "x"}, "app.env"),
    ("image trailing newline", local_config(), "app.services.web.image", "a/b:1\n", "app.services.web.image"),
    ("command NUL", local_config(), "app.services.web.command", ["a\x00"], "app.services.web.command[0]"),
    ("ssh key comment newline", vps_config(), "vps.sshKeys", ["ssh-ed25519 AAAA x\ny"], "vps.sshKeys[0]"),
    ("vps region", vps_config(), "vps.region", "nbg1 ; x", "vps.region"),
    ("vps image", vps_config(), "vps.image", "ubuntu\n", "vps.image"),
    (
        "host user root",
        vps_config(provider="existing", vps=EXISTING_VPS),
        "vps.hosts.0.user",
        "root",
        "vps.hosts[0].user",
    ),
    (
        "host user heredoc",
        vps_config(provider="existing", vps=EXISTING_VPS),
        "vps.hosts.0.user",
        "ops\nEOF\nreboot",
        "vps.hosts[0].user",
    ),
    (
        "host user too long",
        vps_config(provider="existing", vps=EXISTING_VPS),
        "vps.hosts.0.user",
        "a" * 33,
        "vps.hosts[0].user",
    ),
    (
        "host address",
        vps_config(provider="existing", vps=EXISTING_VPS),
        "vps.hosts.0.address",
        "h;x",
        "vps.hosts[0].address",
    ),
    ("host port", vps_config(provider="existing", vps=EXISTING_VPS), "vps.hosts.0.port", 0, "vps.hosts[0].port"),
    ("cluster region", cluster_config(), "cluster.region", "fra1'", "cluster.region"),
    ("tenant domain", cluster_config(), "tenants", [{"name": "a", "domain": "a.example.com\n"}], "tenants[0].domain"),
]


@pytest.mark.parametrize(("why", "base", "path", "value", "key"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_value_is_refused_with_its_key_path(
    why: str, base: dict[str, Any], path: str, value: Any, key: str
) -> None:
    problems = _problems(_set(base, path, value))
    assert f"ladder:{key}" in problems, f"{why}: {problems}"


def test_existing_host_needs_a_user() -> None:
    vps = copy.deepcopy(EXISTING_VPS)
    del vps["hosts"][0]["user"]
    assert "ladder:vps.hosts[0].user" in _problems(vps_config(provider="existing", vps=vps))


def test_root_is_refused_with_a_reason() -> None:
    problems = _problems(_set(vps_config(provider="existing", vps=EXISTING_VPS), "vps.hosts.0.user", "root"))
    assert "root" in problems["ladder:vps.hosts[0].user"]


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (grammar.url_path, "/"),
        (grammar.url_path, "/api/"),
        (grammar.url_path, "/a-b_c.d~e/%20/x:y@z+1,2;3=4!"),
        (grammar.s3_bucket, "shop-backups.eu"),
        (grammar.https_endpoint, "https://fra1.digitaloceanspaces.com"),
        (grammar.https_endpoint, "https://10.0.0.5:9000/"),
        (grammar.posix_user, "deploy"),
        (grammar.posix_user, "_svc-1$"),
        (grammar.host_port, "smtp.example.com:587"),
        (grammar.host_port, "192.0.2.1:25"),
        (grammar.host_port, "[2001:db8::1]:587"),
        (grammar.email, "first.last+tag@example.co.uk"),
        (grammar.cron, "0 */6 * * *"),
        (grammar.cron, "15 2,14 1-15 1-12/2 0-7"),
        (grammar.header_safe, "apikey with spaces"),
    ],
)
def test_good_values_pass(check: Any, value: str) -> None:
    assert check(value)


def test_good_configs_still_pass() -> None:
    raw = vps_config(
        backups={**BACKUPS, "endpoint": "https://fra1.digitaloceanspaces.com", "region": "fra1"},
        monitoring={**MONITORING, "smtpUser": "apikey"},
    )
    s = parse_settings(raw, SECRET_KEYS)
    assert s.backups is not None and s.backups.endpoint == "https://fra1.digitaloceanspaces.com"


# --- item 14: secret keys must be secrets, and errors never echo them --------------------------

PLAIN_SECRETS: list[tuple[dict[str, Any], str]] = [
    (local_config(app={**local_config()["app"], "secretEnv": ["K"]}, secrets={"K": "v"}), "secrets"),
    (vps_config(provider="existing", vps=EXISTING_VPS), "vps.sshPrivateKey"),
    (cluster_config(provider="existing", cluster={"kubeconfig": "apiVersion: v1"}), "cluster.kubeconfig"),
    (cluster_config(**K3S, cluster={"hcloudToken": "t"}), "cluster.hcloudToken"),
    (vps_config(backups={**BACKUPS, "accessKeyId": "AK", "secretAccessKey": "SK"}), "backups.accessKeyId"),
    (vps_config(backups={**BACKUPS, "accessKeyId": "AK", "secretAccessKey": "SK"}), "backups.secretAccessKey"),
    (vps_config(monitoring={**MONITORING, "smtpPassword": "pw"}), "monitoring.smtpPassword"),
]


@pytest.mark.parametrize(("raw", "key"), PLAIN_SECRETS, ids=[k for _, k in PLAIN_SECRETS])
def test_secret_key_set_in_plain_text_is_refused(raw: dict[str, Any], key: str) -> None:
    problems = _problems(raw, secret_keys=[])
    assert "--secret" in problems[f"ladder:{key}"]
    top = f"ladder:{key.split('.')[0]}"
    try:
        parse_settings(raw, [top])
    except ConfigError as exc:  # other rules may still apply, but not this one
        assert f"ladder:{key}" not in dict(exc.problems)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("vps.sshPrivateKey", ["hunter2-in-a-list"]),
        ("monitoring.smtpPassword", "hunter2\r\nwith CRLF"),
        ("backups.secretAccessKey", "hunter2 with spaces"),
        ("cluster.hcloudToken", 12345678.5),
    ],
)
def test_type_errors_never_echo_a_secret_field(path: str, value: Any) -> None:
    bases = {
        "vps": vps_config(provider="existing", vps=EXISTING_VPS),
        "monitoring": vps_config(monitoring=MONITORING),
        "backups": vps_config(backups={**BACKUPS, "accessKeyId": "AK", "secretAccessKey": "SK"}),
        "cluster": cluster_config(**K3S, cluster={"hcloudToken": "t"}),
    }
    raw = _set(bases[path.split(".")[0]], path, value)
    for secret_keys in ([], SECRET_KEYS):
        with pytest.raises(ConfigError) as info:
            parse_settings(raw, secret_keys)
        assert f"ladder:{path}" in str(info.value)
        assert "hunter2" not in str(info.value) and "12345678" not in str(info.value)


# --- item 8: k3s takes its own Hetzner token ---------------------------------------------------


def test_k3s_on_hetzner_requires_its_own_token() -> None:
    problems = _problems(cluster_config(**K3S))
    assert "ladder:cluster.hcloudToken" in problems and "hcloud:token" in problems["ladder:cluster.hcloudToken"]
    s = parse_settings(cluster_config(**K3S, cluster={"hcloudToken": "ccm-token"}), SECRET_KEYS)
    assert s.cluster.hcloud_token is not None and "ccm-token" not in repr(s)


def test_hcloud_token_only_on_k3s() -> None:
    assert "ladder:cluster.hcloudToken" in _problems(cluster_config(cluster={"hcloudToken": "t"}))


# --- item 12: managed Valkey is refused with several tenants -----------------------------------


def test_managed_valkey_is_refused_with_several_tenants() -> None:
    tenants = [{"name": "a", "domain": "a.example.com"}, {"name": "b", "domain": "b.example.com"}]
    problems = _problems(cluster_config(redis={"mode": "managed"}, tenants=tenants))
    assert "container" in problems["ladder:redis.mode"]
    one = parse_settings(cluster_config(redis={"mode": "managed"}, tenants=tenants[:1]), SECRET_KEYS)
    assert one.redis.mode == "managed"


# --- the sinks this change quotes ----------------------------------------------------------


def test_systemd_text_escapes_specifiers_and_refuses_line_breaks() -> None:
    from components.render import systemd

    assert systemd.text("50% of s3://b/%n") == "50%% of s3://b/%%n"
    for bad in ("a\nExecStartPre=/bin/x", "a\rb", "tail\\", "nul\x00"):
        with pytest.raises(ValueError):
            systemd.text(bad)


def test_watch_login_is_read_back_byte_for_byte_by_curl() -> None:
    """The watch's SMTP login is a curl config file: curl itself reads it and sends exactly the
    configured bytes (here as Basic auth to a listener), whatever quotes, `$` or backslashes."""
    from components.render.watch import watch_env_file
    from tools.judge import Judge

    judge = Judge()
    for user, password in [("ops user $(id)`id`", "p@ss$word'\"; reboot #"), ("a", 'back\\slash "q"\ttab')]:
        expect = {"smtpUser": user, "smtpPassword": password}
        assert judge._curlrc(watch_env_file(user, password), expect) == [], (user, password)
    assert judge._curlrc('user = "a:b"\n', {"smtpUser": "a", "smtpPassword": "c"})  # the check can fail
