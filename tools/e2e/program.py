"""The program as `pulumi up` would run it: evaluated with a stack's config, then every
`command:remote:Command` it registers is run as pulumi-command runs it (SSH, `create` with
`stdin`, the host key checked when `connection.hostKey` is set) in dependency order, and
only when its inputs changed since the last successful run (a replacement, in Pulumi's terms).

The mocks answer what a cloud would (server addresses, volume devices, generated keys and
passwords) and keep those answers across evaluations, as a stack's state does.
"""

from __future__ import annotations

import secrets
import string
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.e2e.proc import BenchError, run
from tools.harness import LadderMocks, ProgramResult, Registration, run_program, unwrap

COMMAND = "command:remote:Command"


def keypair(comment: str = "ladder-bench") -> tuple[str, str]:
    """An ed25519 key pair in OpenSSH format (private, public)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
        return path.read_text(), (path.with_suffix(".pub")).read_text().strip()


class BenchMocks(LadderMocks):
    """What the clouds would answer, stable across evaluations like a stack's state."""

    def __init__(self, addresses: Mapping[str, str], private: Mapping[str, str] | None = None) -> None:
        self.addresses = dict(addresses)  # server resource name -> public IPv4
        self.private = dict(private or {})
        self.remembered: dict[tuple[str, str], dict[str, Any]] = {}

    def computed(self, typ: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
        key = (typ, name)
        if key in self.remembered:
            return self.remembered[key]
        out: dict[str, Any]
        if typ == "tls:index/privateKey:PrivateKey":
            private, public = keypair(name)
            out = {"privateKeyOpenssh": private, "publicKeyOpenssh": public + "\n", "privateKeyPem": ""}
        elif typ in ("random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString"):
            alphabet = string.ascii_letters + string.digits + ("" if state.get("special") is False else "!#%&*-_=+")
            out = {"result": "".join(secrets.choice(alphabet) for _ in range(int(state.get("length", 32))))}
        elif typ in ("hcloud:index/server:Server", "digitalocean:index/droplet:Droplet"):
            ip = self.addresses.get(name)
            if ip is None:
                raise BenchError(f"the bench has no address for server {name}")
            out = {
                "ipv4Address": ip,
                "ipv6Address": "",
                "ipv4AddressPrivate": self.private.get(name, ""),
                "urn": f"do:droplet:{name}",
            }
        elif typ == "hcloud:index/volume:Volume":
            out = {"linuxDevice": f"/dev/disk/by-id/scsi-0HC_Volume_{abs(hash(name)) % 10**8}"}
        elif typ == "hcloud:index/primaryIp:PrimaryIp":
            out = {"ipAddress": next(iter(self.addresses.values()), "")}
        else:
            out = super().computed(typ, name, state)
        self.remembered[key] = out
        return out


@dataclass
class Step:
    name: str
    seconds: float
    stdout: str
    stderr: str


class DeployFailed(BenchError):
    def __init__(self, step: str, stderr: str) -> None:
        super().__init__(f"{step} failed:\n{stderr[-4000:]}")
        self.step = step
        self.stderr = stderr


@dataclass
class Stack:
    """One stack's config and state: `up()` evaluates and runs what changed."""

    config: dict[str, Any]
    secrets: dict[str, Any]
    mocks: BenchMocks
    applied: dict[str, Any] = field(default_factory=dict)  # command urn -> inputs of its last success
    last: ProgramResult | None = None

    def evaluate(self) -> ProgramResult:
        result = run_program("bench", base=self.config, secrets=self.secrets, mocks=self.mocks, with_placeholders=False)
        self.last = result
        return result

    def commands(self, result: ProgramResult) -> list[Registration]:
        cmds = [r for r in result.resources if r.type == COMMAND]
        by_urn = {r.urn: r for r in result.resources}
        deps: dict[str, set[str]] = {}

        def command_deps(r: Registration, seen: set[str]) -> set[str]:
            found: set[str] = set()
            for urn in r.dependencies:
                if urn in seen:
                    continue
                seen.add(urn)
                dep = by_urn.get(urn)
                if dep is None:
                    continue
                if dep.type == COMMAND:
                    found.add(urn)
                else:
                    found |= command_deps(dep, seen)
            return found

        for c in cmds:
            deps[c.urn] = command_deps(c, set())
        ordered: list[Registration] = []
        done: set[str] = set()
        while len(ordered) < len(cmds):
            ready = [c for c in cmds if c.urn not in done and deps[c.urn] <= done]
            if not ready:
                raise BenchError("the program's commands have a dependency cycle")
            ordered.append(ready[0])
            done.add(ready[0].urn)
        return ordered

    def up(self, force: tuple[str, ...] = ()) -> list[Step]:
        """`pulumi up`: a config error raises; a failed command raises DeployFailed and
        leaves its state as before (Pulumi keeps the old resource when a replacement fails)."""
        result = self.evaluate()
        if result.error is not None:
            raise BenchError(f"the program failed: {result.error}")
        steps = []
        for c in self.commands(result):
            inputs = unwrap(c.inputs)
            if self.applied.get(c.urn) == inputs and not any(f in c.name for f in force):
                continue
            started = time.monotonic()
            done = ssh(inputs["connection"], inputs["create"], inputs.get("stdin"))
            if done.returncode != 0:
                raise DeployFailed(c.name, done.stderr + done.stdout)
            self.applied[c.urn] = inputs
            steps.append(Step(c.name, time.monotonic() - started, done.stdout, done.stderr))
        return steps


def ssh_argv(connection: Mapping[str, Any], key_file: Path, known_hosts: Path) -> list[str]:
    host, port, user = connection["host"], int(connection.get("port") or 22), connection.get("user") or "root"
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        str(key_file),
        "-p",
        str(port),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
    ]
    if connection.get("hostKey"):
        target = host if port == 22 else f"[{host}]:{port}"
        known_hosts.write_text(f"{target} {connection['hostKey'].strip()}\n")
        argv += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}"]
    else:  # pulumi-command without a host key accepts any
        argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    return [*argv, f"{user}@{host}"]


def ssh(connection: Mapping[str, Any], create: str, stdin: str | None, timeout: float = 900, attempts: int = 10):  # type: ignore[no-untyped-def]
    """Run `create` over SSH with `stdin`, retrying only failures to connect (exit 255 with no
    output), as pulumi-command retries dialing (`dialErrorLimit`)."""
    with tempfile.TemporaryDirectory() as d:
        key = Path(d) / "id"
        key.write_text(connection["privateKey"])
        key.chmod(0o600)
        argv = [*ssh_argv(connection, key, Path(d) / "known_hosts"), create]
        for attempt in range(attempts):
            done = run(argv, input=stdin or "", timeout=timeout, check=False)
            dial_error = done.returncode == 255 and ("Connection refused" in done.stderr or "timed out" in done.stderr)
            if not dial_error or attempt == attempts - 1:
                return done
            time.sleep(3)
        return done
