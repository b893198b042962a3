"""Issue 13 on the VPS rung: private registries (the deploy logs in with the token on stdin, into a
Docker config of its own that is gone after the pull) and images built from source (pushed,
deployed by digest)."""

from __future__ import annotations

import copy
import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.render import registry_login
from components.render.compose import Role
from components.render.deploy import deploy_script
from components.render.vps import host_plan
from components.settings import ConfigError, parse_settings
from tests.conftest import check_shell_script
from tests.helpers import SECRET_KEYS, vps_config
from tests.test_images import BUILD, DIGEST, IMAGE, DigestMocks
from tools.harness import ROOT, ProgramResult, is_secret, run_program, stack_config, unwrap

COMMAND = "command:remote:Command"
# A token with what breaks naive quoting: it must reach `docker login` byte for byte, on stdin only.
TOKEN = "ghp_S3CR3T 'q' \"d\" $HOME `x` \\ #h"
REGISTRIES = [{"server": "ghcr.io", "username": "acme-bot", "password": TOKEN}]
PRIVATE_API = "ghcr.io/acme/api:1.4.2"


def _staging(**overrides: Any) -> Any:
    raw = {k.split(":", 1)[1]: v for k, v in stack_config("staging").items() if k.startswith("ladder:")}
    raw.update(secrets={"SESSION_SECRET": "x"}, **overrides)
    return parse_settings(raw, [*SECRET_KEYS, "ladder:registries"])


def _settings() -> Any:
    """Staging with its api image on a private registry."""
    app = copy.deepcopy(stack_config("staging")["ladder:app"])
    app["services"]["api"]["image"] = PRIVATE_API
    return _staging(registries=REGISTRIES, app=app)


def _script(s: Any, token: str = TOKEN) -> str:
    plan = host_plan(s, Role(app=True, data=True), run_release=True, volume_device="/dev/sdb")
    contents = {name: 'K="v"\n' for name in [*plan.secret_files, "backup.env", "watch.env"]}
    contents.update({registry_login.secret_key(server): token for server, _ in plan.registries})
    return deploy_script(plan, contents)


# ---------------------------------------------------------------------------------------
# the rendered script


def test_the_deploy_logs_in_only_where_its_images_come_from() -> None:
    s = _settings()
    plan = host_plan(s, Role(app=True, data=True), run_release=True)
    assert plan.registries == [("ghcr.io", "acme-bot")]
    # The same credentials, but no image from ghcr.io: nothing to log in to, no token in the script.
    public = _staging(registries=REGISTRIES)
    assert host_plan(public, Role(), run_release=True).registries == []
    assert TOKEN not in deploy_script(
        host_plan(public, Role(), run_release=True), {n: "" for n in ("app.env", "postgres.env", "valkey.env")}
    )
    # A data-only host pulls no app image: it logs in nowhere.
    assert host_plan(s, Role(app=False, data=True), run_release=False).registries == []


def test_a_missing_token_is_an_error_not_an_anonymous_pull() -> None:
    s = _settings()
    plan = host_plan(s, Role(), run_release=True, volume_device="/dev/sdb")
    with pytest.raises(ValueError, match=r"registry-password:ghcr\.io"):
        deploy_script(plan, {name: "" for name in plan.secret_files})


def test_login_uses_password_stdin_and_a_private_docker_config(tmp_path: Path, shellcheck_bin: str) -> None:
    script = _script(_settings())
    step4 = script[script.index("# 4. pull images") : script.index("# 5. start data stores")]
    login = next(line for line in step4.splitlines() if "registry_login" in line)
    # The token appears once, as the argument of bash's builtin printf piped to the login.
    assert script.count("ghp_S3CR3T") == 1 and login.startswith("printf '%s' ") and "| registry_login" in login
    assert login.endswith("| registry_login ghcr.io acme-bot")
    assert "--password-stdin" in script and "--password " not in script and "-p " not in step4
    lines = step4.splitlines()
    order = [
        next(i for i, ln in enumerate(lines) if ln.startswith(f"{registry_login.AUTH_VAR}=$(mktemp -d /run/")),
        lines.index(login),
        next(i for i, ln in enumerate(lines) if ln.startswith('DOCKER_CONFIG="$REGISTRY_AUTH" docker compose pull')),
        lines.index("forget_registry_logins"),
    ]
    assert order == sorted(order), step4
    # The exit trap forgets the logins too (a failed pull never leaves them behind).
    on_exit = script[script.index("on_exit() {") :]
    assert on_exit[: on_exit.index("}")].count("forget_registry_logins") == 1
    path = tmp_path / "deploy.sh"
    path.write_text(script)
    check_shell_script(path, shellcheck_bin)


# A stand-in for the Docker CLI: records what `docker login` got (argv, stdin, DOCKER_CONFIG and
# its mode), looks for the token on every process's command line while it runs, and accepts
# only $WANT. `docker compose pull` records the config it saw.
FAKE_DOCKER = r"""#!/usr/bin/env bash
set -u
out=$FAKE_OUT
case "$1" in
  login)
    cat > "$out/stdin"
    printf '%s\n' "$@" > "$out/argv"
    printf '%s' "${DOCKER_CONFIG:-}" > "$out/login-config"
    stat -c %a "$DOCKER_CONFIG" > "$out/login-config-mode"
    grep -laF -f "$out/stdin" /proc/[0-9]*/cmdline > "$out/token-on-argv" 2>/dev/null || true
    if [ "$(cat "$out/stdin")" != "$WANT" ]; then
      echo "Error response from daemon: Get \"https://ghcr.io/v2/\": denied: denied" >&2
      exit 1
    fi
    echo '{"auths": {"ghcr.io": {"auth": "x"}}}' > "$DOCKER_CONFIG/config.json"
    echo "Login Succeeded"
    ;;
  compose)
    printf '%s' "${DOCKER_CONFIG:-}" > "$out/pull-config"
    [ -f "${DOCKER_CONFIG:-/nonexistent}/config.json" ] && echo yes > "$out/pull-saw-login"
    ;;
esac
"""


def _run_step4(tmp_path: Path, token: str, want: str) -> subprocess.CompletedProcess[str]:
    """Step 4 of the rendered deploy, with its log/fail helpers, its registry functions and exit
    trap, run by bash against the fake Docker (the auth directory under tmp_path, not /run)."""
    script = _script(_settings(), token)
    helpers = "\n".join(ln for ln in script.splitlines() if ln.startswith(("log() ", "fail() ")))
    functions = registry_login.FUNCTIONS
    assert functions in script
    step4 = script[script.index("# 4. pull images") : script.index("# 5. start data stores")]
    step4 = step4.replace("/run/ladder-registry.", f"{tmp_path}/auth/ladder-registry.")
    body = f"set -euo pipefail\numask 077\n{helpers}\n{functions}\nmain() {{\ntrap forget_registry_logins EXIT\n"
    # Right after step 4, before the exit trap could clean up: is anything left?
    after = f'if compgen -G "{tmp_path}/auth/*" >/dev/null; then echo left-after-pull; else echo gone-after-pull; fi'
    body += f"{step4}\n{after}\n}}\nmain </dev/null\n"
    (tmp_path / "auth").mkdir(exist_ok=True)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(home), "FAKE_OUT": str(out), "WANT": want}
    return subprocess.run(["bash", "-s"], input=body, capture_output=True, text=True, env=env, check=False)


def test_the_token_reaches_docker_login_on_stdin_only_and_is_gone_after_the_pull(tmp_path: Path) -> None:
    done = _run_step4(tmp_path, TOKEN, want=TOKEN)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert (out / "stdin").read_text() == TOKEN  # byte for byte, no newline added
    argv = (out / "argv").read_text().splitlines()
    assert argv == ["login", "--username=acme-bot", "--password-stdin", "--", "ghcr.io"]
    assert (out / "token-on-argv").read_text() == "", "the token was on a command line"
    config = (out / "login-config").read_text()
    assert config.startswith(f"{tmp_path}/auth/ladder-registry.")
    assert (out / "login-config-mode").read_text().strip() == "700"
    # The pull used the same private config and saw the login; afterwards nothing is left.
    assert (out / "pull-config").read_text() == config and (out / "pull-saw-login").exists()
    assert done.stdout.splitlines()[-1] == "gone-after-pull"
    assert not Path(config).exists() and list((tmp_path / "auth").iterdir()) == []
    assert not (tmp_path / "home/.docker").exists(), "root's ~/.docker was touched"


def test_a_refused_login_fails_the_deploy_naming_the_registry_never_the_token(tmp_path: Path) -> None:
    done = _run_step4(tmp_path, "wrong-" + TOKEN, want=TOKEN)
    assert done.returncode != 0
    assert "DEPLOY FAILED: logging in to registry ghcr.io as acme-bot failed" in done.stderr
    assert "denied" in done.stderr  # Docker's own reason comes along
    assert "ghp_S3CR3T" not in done.stderr + done.stdout
    assert not (tmp_path / "out/pull-config").exists(), "pulled after a failed login"
    assert list((tmp_path / "auth").iterdir()) == [], "the exit trap left the credentials behind"


# ---------------------------------------------------------------------------------------
# settings


def _built_vps(**extra: Any) -> dict[str, Any]:
    raw = vps_config(**extra)
    raw["app"]["defaultRepo"] = "ghcr.io/acme"
    raw["app"]["services"]["web"] = {"build": BUILD, "port": 3000}
    return raw


def test_a_build_on_vps_is_accepted_with_a_registry() -> None:
    s = parse_settings(_built_vps(registries=REGISTRIES), ["ladder:registries"], project_dir=ROOT)
    assert s.app.services["web"].build is not None


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (_built_vps(), "ladder:registries"),
        (
            {
                **_built_vps(registries=REGISTRIES),
                "app": {**vps_config()["app"], "services": {"web": {"build": BUILD}}},
            },
            "ladder:app.defaultRepo",
        ),
    ],
    ids=["no credentials", "no defaultRepo"],
)
def test_a_build_on_vps_needs_a_registry(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, ["ladder:registries"], project_dir=ROOT)
    assert key in dict(err.value.problems), err.value.problems


def test_a_token_is_one_line_and_never_echoed() -> None:
    token = "ghp_first-line\nsecond-line"
    raw = vps_config(registries=[{**REGISTRIES[0], "password": token}])
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, ["ladder:registries"], project_dir=ROOT)
    problems = dict(err.value.problems)
    assert "control characters" in problems["ladder:registries[0].password"]
    assert "ghp_first" not in str(err.value)


# ---------------------------------------------------------------------------------------
# the program under mocks


class RebuiltMocks(DigestMocks):
    """The registry answers another digest: the source changed and the push made a new image."""

    def computed(self, typ: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
        out = super().computed(typ, name, state)
        return {k: v.replace("ab", "cd") for k, v in out.items()} if typ == IMAGE and state.get("push") else out


def _built_program(mocks: Any) -> ProgramResult:
    result = run_program(
        "staging",
        overrides={
            "ladder:app.defaultRepo": "ghcr.io/acme",
            "ladder:app.services.api": {"build": BUILD, "port": 8080, "path": "/api", "health": "/api/health"},
        },
        secrets={"ladder:registries": [{"server": "ghcr.io", "username": "acme-bot", "password": TOKEN}]},
        mocks=mocks,
    )
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def built() -> ProgramResult:
    return _built_program(DigestMocks())


def test_vps_builds_pushes_and_deploys_by_digest(built: ProgramResult) -> None:
    (image,) = built.of_type(IMAGE)
    assert image.inputs["push"] is True and image.inputs["load"] is False
    (tag,) = image.inputs["tags"]
    assert tag.startswith("ghcr.io/acme/shop-api:staging-")
    assert image.inputs["cacheFrom"] == [{"registry": {"ref": "ghcr.io/acme/shop-api:buildcache"}}]
    assert is_secret(image.inputs["registries"])
    deploy = built.one(COMMAND, "app-app-0-deploy")
    assert image.urn in deploy.dependencies  # the deploy waits for the push
    assert is_secret(deploy.inputs["stdin"])
    script = unwrap(deploy.inputs["stdin"])
    assert f"image: ghcr.io/acme/shop-api@{DIGEST}" in script
    assert "image: mendhak/http-https-echo:37" in script  # the worker keeps its prebuilt image
    assert "| registry_login ghcr.io acme-bot" in script and "ghp_S3CR3T" in script
    # Nothing but the secret script carries the token.
    for r in built.resources:
        for key, value in r.inputs.items():
            assert is_secret(value) or "ghp_S3CR3T" not in str(value), f"{r.type} {r.name}.{key}"


def _trigger(result: ProgramResult) -> str:
    deploy = result.one(COMMAND, "app-app-0-deploy")
    return hashlib.sha256(str(unwrap(deploy.inputs["triggers"])).encode()).hexdigest()


def test_a_rebuilt_image_rolls_out_and_an_unchanged_one_does_nothing(built: ProgramResult) -> None:
    again = _built_program(DigestMocks())
    assert _trigger(again) == _trigger(built)
    rebuilt = _built_program(RebuiltMocks())
    assert _trigger(rebuilt) != _trigger(built)
    script = unwrap(rebuilt.one(COMMAND, "app-app-0-deploy").inputs["stdin"])
    assert re.search(r"image: ghcr\.io/acme/shop-api@sha256:(cd){32}\n", script)


def test_the_plan_shows_the_login_and_the_planned_tag_never_the_token(built: ProgramResult) -> None:
    from components.artifacts import rendered_files

    s = parse_settings(_built_vps(registries=REGISTRIES), ["ladder:registries"], project_dir=ROOT)
    files = rendered_files(s)
    assert "image: ghcr.io/acme/shop-web:stack-" in files["compose.yaml"]
    assert "| registry_login ghcr.io acme-bot" in files["deploy.sh"]
    assert "ghp_S3CR3T" not in "".join(files.values())
