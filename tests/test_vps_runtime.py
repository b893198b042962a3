"""What the live bench found broken on the VPS rung, pinned by tests that fail without the fix.

The bench (tools/e2e) proves each on a real server; these keep them from coming back between
bench runs and explain why each line is there.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.render import envfile
from components.render.compose import CADDY_UID, CADDY_USER, PROXY_INIT, Role, compose_document
from components.render.deploy import deploy_script
from components.render.hardening import Hardening, Logins, Opening, access_script, cloud_config, shell_script
from components.render.vps import host_plan
from tests.helpers import AGE_RECIPIENT
from tests.test_vps import staging_settings

HOSTILE = st.text(
    alphabet=st.characters(codec="utf-8", blacklist_characters="\0\r"), min_size=0, max_size=40
) | st.sampled_from(["p@ss$word", "'quoted", '"double"', "a #hash", "\\back", "-----BEGIN KEY-----\nAbC=\n-----END-"])


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(HOSTILE, min_size=20, max_size=40))
def test_env_files_reach_compose_byte_for_byte(values: list[str], tmp_path: Path, compose_bin: str) -> None:
    """Compose reads back exactly the bytes Ladder wrote (it once cut `p@ss$word` to `p@ss`)."""
    wanted = {f"V{i}": v for i, v in enumerate(values)}
    (tmp_path / "app.env").write_text(envfile.render(wanted))
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: x:1\n    env_file: [app.env]\n")
    out = subprocess.run(
        [compose_bin, "--project-directory", str(tmp_path), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    env = json.loads(out.stdout)["services"]["a"]["environment"]
    # `config` prints a literal `$` as `$$` (its own escaping of the YAML it would write).
    assert {k: v.replace("$$", "$") for k, v in env.items()} == wanted


def _script(**overrides: Any) -> str:
    s = staging_settings(**overrides)
    plan = host_plan(s, Role(app=True, data=True), run_release=True, volume_device="/dev/sdb")
    return deploy_script(plan, {name: 'K="v"\n' for name in [*plan.secret_files, "backup.env", "watch.env"]})


def test_deploy_body_cannot_be_cut_short_by_stdin(tmp_path: Path) -> None:
    """`bash -s` reads its script from stdin; a command inside that reads stdin once swallowed
    the rest and bash exited 0. The body is one function run with stdin from /dev/null."""
    script = _script()
    assert script.rstrip().endswith('main "$@" </dev/null')
    # The same structure, run for real: a stdin reader inside cannot eat what follows.
    probe = 'set -e\nmain() {\ncat >/dev/null\necho reached-the-end\n}\nmain "$@" </dev/null\n'
    done = subprocess.run(["bash", "-s"], input=probe, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "reached-the-end"


def test_system_directories_keep_their_modes() -> None:
    """`install -d -m 0750 /usr/local/sbin` chmods an existing directory; parents are created only if missing."""
    script = _script(
        backups={"bucket": "shop-backups", "accessKeyId": "k", "secretAccessKey": "s", "ageRecipient": AGE_RECIPIENT}
    )
    for system_dir in ("/usr/local/sbin", "/etc/systemd/system"):
        lines = [ln for ln in script.splitlines() if re.search(rf"install -d -m [0-7]+ {system_dir}$", ln)]
        assert lines and all(ln.startswith(f"[ -d {system_dir} ] || ") for ln in lines), lines


def test_cloud_init_wait_is_bounded_and_judged() -> None:
    script = _script()
    assert "timeout 900 cloud-init status --wait" in script
    assert "not|disabled" in script  # a host whose cloud-init never ran does not wait at all
    assert "cloud-init failed" in script


def test_routed_services_roll_by_ladder_revision_not_compose_hash() -> None:
    """Compose's `config --hash` never equals its label for a service with env_file: Ladder's own
    revision (definition + env file) decides, so an unchanged deploy replaces nothing."""
    script = _script()
    assert "config --hash" not in script
    doc = compose_document(staging_settings(), Role())
    assert doc["services"]["web"]["labels"]["dev.ladder.revision"] == "${LADDER_REVISION_WEB:-none}"
    assert _script() == script  # deterministic: the same inputs give the same revisions
    changed = _script(app={**yaml.safe_load(yaml.safe_dump(staging_settings().app.model_dump(by_alias=True)))})
    assert "start_new web 2" in changed


def test_new_containers_join_the_proxy_only_once_healthy() -> None:
    """Docker's DNS lists a container from its start and hands freed addresses to the next one:
    the proxy resolves only the route network, which Compose never attaches (the deploy
    connects a container there once healthy), one network per service."""
    doc = compose_document(staging_settings(), Role())
    assert doc["services"]["proxy"]["networks"] == ["edge", "route-web", "route-api"]
    assert doc["networks"]["route-web"] == {"external": True, "name": "shop_route-web"}
    for name in ("web", "api"):
        assert not any(n.startswith("route-") for n in doc["services"][name]["networks"]), name
    script = _script()
    assert (
        script.index("wait_healthy")
        < script.index("join_pool web shop_route-web")
        < script.index("fence $STOP")
        < script.index("docker stop $STOP")
    )


def test_a_rolling_update_never_reloads_the_proxy() -> None:
    """A Caddy reload closes every open connection (WebSockets too) of every service: the pool
    changes through DNS, and only a changed Caddyfile is reloaded."""
    from components.render.caddy import vps_caddyfile

    text = vps_caddyfile(staging_settings())
    assert "dynamic a {" in text and "name web" in text and "keepalive off" in text and "import" not in text
    script = _script()
    assert script.count("|| reload_proxy") == 1
    assert "cmp -s caddy/Caddyfile .previous/caddy/Caddyfile || reload_proxy" in script


def test_every_container_ladder_chooses_has_a_memory_limit() -> None:
    doc = compose_document(staging_settings(), Role())
    for name in ("proxy", "postgres", "valkey"):
        assert doc["services"][name]["deploy"]["resources"]["limits"]["memory"], name


def test_valkey_password_is_never_on_a_command_line() -> None:
    valkey = compose_document(staging_settings(), Role())["services"]["valkey"]
    command = " ".join(valkey["command"])
    assert "--requirepass" not in command and "-a " not in " ".join(valkey["healthcheck"]["test"])
    assert 'requirepass "$$VALKEY_PASSWORD"' in command  # through the config on stdin


def test_caddy_speaks_only_what_the_firewall_opens() -> None:
    from components.render.caddy import vps_caddyfile

    text = vps_caddyfile(staging_settings())
    assert "protocols h1 h2" in text  # no HTTP/3: UDP 443 is open nowhere
    assert "acme_ca" not in text
    staging = "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert f"acme_ca {staging}" in vps_caddyfile(staging_settings(acmeServer=staging))


def _hardening() -> Hardening:
    return Hardening(
        ssh_keys=["ssh-ed25519 AAAA x"],
        openings=[Opening("2222")],
        packages=["docker.io", "docker-compose-v2"],
        groups=["docker"],
        sudo=True,
    )


def test_runcmd_is_one_checked_script() -> None:
    """cloud-init judges runcmd by its last command: one script under `set -e` that verifies ufw and fail2ban."""
    config = cloud_config(_hardening())
    assert config["runcmd"] == [["/usr/local/sbin/ladder-harden"]]
    script = next(f["content"] for f in config["write_files"] if f["path"] == "/usr/local/sbin/ladder-harden")
    assert script.startswith("#!/usr/bin/env bash\nset -euo pipefail\n")
    assert "fail2ban-client status sshd" in script and "Status: active" in script
    jail = next(f["content"] for f in config["write_files"] if "jail.d" in f["path"])
    assert "backend = systemd" in jail  # sshd logs to the journal only on Debian and minimal Ubuntu


def test_existing_host_hardening_uses_its_own_user_and_port() -> None:
    script = shell_script(_hardening(), "ops")
    assert "usermod -aG docker ops" in script and "usermod -aG docker deploy" not in script
    assert "AllowUsers ops" in script and "ufw allow 2222/tcp" in script
    assert "apt-cache show docker-compose-v2" in script  # Debian has no docker-compose-v2


@pytest.mark.parametrize("allow", [["0.0.0.0/0"], ["0.0.0.0/0", "::/0"], ["::/0"]])
def test_allowlist_from_anywhere_keeps_ssh_open(allow: list[str]) -> None:
    """ufw stores 0.0.0.0/0 as the bootstrap `allow 22/tcp`; deleting it locked everyone out."""
    script = access_script(Logins(("ssh-ed25519 AAAA x",), "ssh-ed25519 AAAAdeploy"), allow, ["22"])
    assert "anywhere=1" in script
    assert 'ufw allow "$port/tcp"' in script


def test_access_waits_for_cloud_init_and_can_skip_keys() -> None:
    script = access_script(None, ["203.0.113.7/32"], ["2222"])
    assert script.index("wait_cloud_init\n") < script.index("ufw allow from")
    assert "authorized_keys" not in script  # a host you run keeps its own keys
    assert "sudoers" not in script and "useradd" not in script  # and its users and sudo rules
    assert script.index("/usr/local/sbin/ladder-apply.new") < script.index("ufw allow from")


def test_heredoc_end_cannot_be_forged_by_content() -> None:
    """A value holding the marker line once ended a file early; the marker now derives from the content."""
    from components.render.heredoc import heredoc, marker

    forged = f"x\n{marker('x')}\necho pwned\nLADDER_EOF\n"
    script = heredoc("cat", forged)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == forged


def test_docker_waits_for_the_data_volume_after_a_reboot() -> None:
    """The bench rebooted a server and Postgres crash-looped on the unmounted directory."""
    script = _script()
    assert "RequiresMountsFor=/srv/ladder-data" in script
    assert script.index("mount /srv/ladder-data") < script.index("RequiresMountsFor=/srv/ladder-data")


def test_caddy_runs_unprivileged_and_gets_its_volumes() -> None:
    """Caddy ran as root (issue 12): the official image's file capability is ignored under
    `no-new-privileges`, so the container's own namespace lets it bind 80/443 instead, and a
    one-shot `proxy-init` hands the volumes over — a new one is a root-owned copy of the image's
    /data, an old one holds certificates a root-run Caddy wrote."""
    doc = compose_document(staging_settings(), Role())
    proxy, init = doc["services"]["proxy"], doc["services"][PROXY_INIT]
    assert proxy["user"] == CADDY_USER and "cap_add" not in proxy and proxy["cap_drop"] == ["ALL"]
    assert proxy["security_opt"] == ["no-new-privileges:true"]
    assert proxy["sysctls"] == {"net.ipv4.ip_unprivileged_port_start": 80}
    assert proxy["depends_on"] == {PROXY_INIT: {"condition": "service_completed_successfully"}}
    caddy_volumes = [v for v in proxy["volumes"] if not v.startswith("./caddy:")]
    assert init["volumes"] == caddy_volumes and init["image"] == proxy["image"]
    assert init["command"] == ["chown", "-R", "-h", CADDY_USER, "/data", "/config"]
    assert init["network_mode"] == "none" and init["cap_drop"] == ["ALL"]
    assert sorted(init["cap_add"]) == ["CHOWN", "DAC_READ_SEARCH"]
    script = _script()
    # The Caddyfile is readable by Caddy's group before any reload or start reads it.
    chgrp = script.index(f"chgrp -R {CADDY_UID} /srv/ladder/caddy")
    assert script.index("mv -f /srv/ladder/caddy/Caddyfile.new") < chgrp < script.index("cmp -s caddy/Caddyfile")
    # Every deploy hands the volumes over before the proxy starts, and a failure stops it there.
    handover = script.index(f"docker compose run --rm -T {PROXY_INIT}")
    assert handover < script.index("docker compose up -d --quiet-pull --no-deps proxy")
    assert "could not hand the proxy's volumes to its user" in script[handover : handover + 300]


def test_proxy_init_is_a_reserved_name() -> None:
    with pytest.raises(Exception, match=r"ladder:accessories\.proxy-init: the name 'proxy-init' is used by Ladder"):
        staging_settings(accessories={"proxy-init": {"image": "redis:7", "port": 6379}})
