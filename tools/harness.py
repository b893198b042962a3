"""Run the whole Ladder program (`__main__.py`) under Pulumi mocks with a stack's config.

Used by the tests, `make plan` and `make bench`. It records every registered resource
with its inputs and resource options, and the stack's exports, so tests can assert on
what `pulumi up` would ask the engine to do, without an engine, a cloud or Docker.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.app_overrides import OVERRIDES_KEY, merge_patch

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "__main__.py"
PROJECT = "ladder"
STACKS = ("dev", "staging", "production")


# ---------------------------------------------------------------------------------------
# mocks


def resource_id(typ: str, name: str) -> str:
    """A numeric id that depends only on the resource, so two runs can be compared input by input."""
    return str(int(hashlib.sha256(f"{typ}::{name}".encode()).hexdigest()[:12], 16))


class PlainMocks(pulumi.runtime.Mocks):
    """The plainest mock DESIGN.md allows: outputs echo inputs, ids are numbers, invokes return {}.

    Only the computed outputs DESIGN.md lists are added.
    """

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        state.update(self.computed(args.typ, args.name, state))
        if args.typ.startswith("kubernetes:") and isinstance(state.get("metadata"), dict):
            meta = dict(state["metadata"])
            meta.setdefault("name", args.name)
            meta.setdefault("namespace", "default")
            state["metadata"] = meta
        elif (
            args.typ.startswith("kubernetes:")
            and not args.typ.startswith("kubernetes:helm")
            and args.typ != "pulumi:providers:kubernetes"
        ):
            state["metadata"] = {"name": args.name, "namespace": "default"}
        return resource_id(args.typ, args.name), state

    def computed(self, typ: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
        if typ in ("random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString"):
            return {"result": f"mock-{name}-Zx81"}
        if typ == "hcloud:index/server:Server":
            return {"ipv4Address": "203.0.113.10", "ipv6Address": "2001:db8::10"}
        if typ == "hcloud:index/loadBalancer:LoadBalancer":
            return {"ipv4": "203.0.113.20"}
        if typ == "digitalocean:index/droplet:Droplet":
            return {"ipv4Address": "203.0.113.30", "ipv4AddressPrivate": "10.110.0.30", "urn": f"do:droplet:{name}"}
        if typ == "digitalocean:index/loadBalancer:LoadBalancer":
            return {"ip": "203.0.113.40", "urn": f"do:loadbalancer:{name}"}
        if typ == "digitalocean:index/kubernetesCluster:KubernetesCluster":
            return {
                "endpoint": "https://k8s.example.invalid",
                "urn": f"do:kubernetes:{name}",
                "kubeConfigs": [
                    {
                        "rawConfig": "apiVersion: v1\nkind: Config\n",
                        "host": "https://k8s.example.invalid",
                        "token": "mock-do-token",
                        "clusterCaCertificate": "bW9jay1jYQ==",
                    }
                ],
            }
        if typ == "digitalocean:index/databaseCluster:DatabaseCluster":
            return {
                "host": f"{name}.db.example.invalid",
                "privateHost": f"private-{name}.db.example.invalid",
                "port": 25060,
                "user": "doadmin",
                "password": f"mock-{name}-dbpass",
                "database": "defaultdb",
                "uri": f"postgresql://doadmin:mock@{name}.db.example.invalid:25060/defaultdb",
                "privateUri": f"postgresql://doadmin:mock@private-{name}.db.example.invalid:25060/defaultdb",
                "urn": f"do:dbaas:{name}",
            }
        if typ == "tls:index/privateKey:PrivateKey":
            return {
                "privateKeyOpenssh": "-----BEGIN OPENSSH PRIVATE KEY-----\nmock\n-----END OPENSSH PRIVATE KEY-----\n",
                "privateKeyPem": "-----BEGIN PRIVATE KEY-----\nmock\n-----END PRIVATE KEY-----\n",
                "publicKeyOpenssh": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockMockMockMockMockMockMockMock ladder\n",
            }
        if typ in ("command:remote:Command", "command:local:Command"):
            return {"stdout": "", "stderr": ""}
        return {}


class LadderMocks(PlainMocks):
    """Richer answers where a real provider would give them (e.g. DOKS versions)."""

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "digitalocean:index/getKubernetesVersions:getKubernetesVersions":
            prefix = args.args.get("versionPrefix", "")
            slug = f"{prefix}.5-do.0" if prefix else "1.34.5-do.0"
            return {"latestVersion": slug, "validVersions": [slug], "versionPrefix": prefix, "id": "versions"}, []
        return {}, []


# ---------------------------------------------------------------------------------------
# recording


@dataclass
class Registration:
    """One resource as the program asked the engine for it."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    protect: bool
    ignore_changes: list[str]
    delete_before_replace: bool
    replace_on_changes: list[str]
    dependencies: list[str]
    provider: str
    retain_on_delete: bool


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that also keeps each registration's resource options."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            from pulumi.runtime import rpc

            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    custom=request.custom,
                    inputs=rpc.deserialize_properties(request.object),
                    protect=bool(request.protect),
                    ignore_changes=list(request.ignoreChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    replace_on_changes=list(request.replaceOnChanges),
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                    retain_on_delete=bool(request.retainOnDelete),
                )
            )
        return response


@dataclass
class ProgramResult:
    """What one evaluation of the program registered and exported."""

    stack: str
    config: dict[str, Any]
    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    secret_keys: list[str] = field(default_factory=list)  # config keys set as secrets
    error: BaseException | None = None

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> Registration:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one {typ} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def named(self, name: str) -> Registration:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one resource named {name}, found {len(found)}")
        return found[0]

    def children(self, parent: Registration) -> list[Registration]:
        return [r for r in self.resources if r.parent == parent.urn]

    def descendants(self, parent: Registration) -> Iterator[Registration]:
        for child in self.children(parent):
            yield child
            yield from self.descendants(child)

    def types(self) -> set[str]:
        return {r.type for r in self.resources}


# ---------------------------------------------------------------------------------------
# config


def _config_key(key: str) -> str:
    """A config key with its namespace: keys without one belong to the project (parseConfigKey)."""
    return key if ":" in key else f"{PROJECT}:{key}"


def project_config(project: Mapping[str, Any]) -> dict[str, Any]:
    """The values Pulumi.yaml's `config:` block gives a stack that does not set the key.

    Mirrors pulumi/pulumi (checked at 1b5949891b3c, pkg/v3.259.0-14):
    `RewriteShorthandConfigValues` (sdk/go/common/workspace/project.go) turns a bare scalar
    or list into a `default` for a project key and a `value` for another namespace's key;
    `Project.Validate` refuses a key with both; `mergeConfig` (pkg/workspace/config.go)
    takes `value` or `default`, whatever its type, objects included.
    """
    out: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        if not isinstance(decl, dict):
            out[_config_key(key)] = decl
            continue
        if "default" in decl and "value" in decl:
            raise ValueError(f"project config {key!r} cannot have both a 'default' and 'value' attribute")
        for attr in ("value", "default"):
            if decl.get(attr) is not None:
                out[_config_key(key)] = decl[attr]
    return out


def merge_project_config(project: Mapping[str, Any], stack: Mapping[str, Any]) -> dict[str, Any]:
    """Stack config with project-level values under it, as the CLI merges them.

    `mergeConfig` sets a project value only when the stack lacks the key, and then as a
    whole: a stack's `ladder:app` replaces the project's entirely, never deep-merged.
    """
    merged = {_config_key(key): value for key, value in stack.items()}
    for key, value in project_config(project).items():
        merged.setdefault(key, value)
    return merged


def stack_config(stack: str) -> dict[str, Any]:
    """The stack's config as the CLI hands it to the program: Pulumi.<stack>.yaml over Pulumi.yaml."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text()) or {}
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    return merge_project_config(project, data.get("config") or {})


def _encode(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _set_path(config: dict[str, Any], path: str, value: Any) -> None:
    """Set `ladder:secrets.KEY`-style paths like `pulumi config set --path` does."""
    key, _, rest = path.partition(".")
    if not rest:
        config[key] = value
        return
    current = config.get(key)
    node = dict(current) if isinstance(current, dict) else {}
    config[key] = node
    parts = rest.split(".")
    for part in parts[:-1]:
        node[part] = dict(node.get(part) or {})
        node = node[part]
    node[parts[-1]] = value


PLACEHOLDER = "plan-placeholder-secret"


def placeholder_secrets(config: Mapping[str, Any]) -> dict[str, Any]:
    """Stand-ins for the secrets a stack file cannot hold (they live encrypted in real stacks).

    The offline plan and the stack tests use them so `secretEnv` and the `existing`
    providers evaluate; real runs read the values set with `pulumi config set --secret`.
    """
    out: dict[str, Any] = {}
    app = merge_patch(config.get(f"{PROJECT}:app") or {}, config.get(f"{PROJECT}:{OVERRIDES_KEY}") or {})
    for key in app.get("secretEnv", []) if isinstance(app, dict) else []:
        out[f"{PROJECT}:secrets.{key}"] = PLACEHOLDER
    for store, url in (("postgres", "DATABASE_URL"), ("redis", "REDIS_URL")):
        section = config.get(f"{PROJECT}:{store}") or {}
        if isinstance(section, dict) and section.get("mode") == "external":
            out[f"{PROJECT}:secrets.{url}"] = f"{store}://user:{PLACEHOLDER}@db.example.invalid:5432/app"
    if config.get(f"{PROJECT}:phase") == "cluster" and config.get(f"{PROJECT}:provider") == "hetzner":
        out[f"{PROJECT}:cluster.hcloudToken"] = f"hcloud-ccm-{PLACEHOLDER}"
    registries = config.get(f"{PROJECT}:registries")
    if isinstance(registries, list) and registries:
        out[f"{PROJECT}:registries"] = [
            {**entry, "password": PLACEHOLDER} if isinstance(entry, dict) and "password" in entry else entry
            for entry in registries
        ]
    if config.get(f"{PROJECT}:provider") == "existing":
        if config.get(f"{PROJECT}:phase") == "cluster":
            out[f"{PROJECT}:cluster.kubeconfig"] = "apiVersion: v1\nkind: Config\nclusters: []\n"
        else:
            out[f"{PROJECT}:vps.sshPrivateKey"] = (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nplaceholder\n-----END OPENSSH PRIVATE KEY-----\n"
            )
    return out


# ---------------------------------------------------------------------------------------
# running


def run_program(
    stack: str = "dev",
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    mocks: pulumi.runtime.Mocks | None = None,
    base: Mapping[str, Any] | None = None,
    with_placeholders: bool = True,
    main: Path = MAIN,
    preview: bool = False,
) -> ProgramResult:
    """Evaluate `__main__.py` under mocks.

    The config is `stack_config(stack)` (Pulumi.yaml's project values under the stack
    file's, as the CLI merges them), or `base`, taken as the complete config map.
    `overrides` then replace whole keys (`ladder:phase`) or paths (`ladder:vps.count`) in
    that merged map (a test convenience: `pulumi config set --path` edits the stack file
    alone), and `ladder:appOverrides` is still applied by the program after them;
    `secrets` are set like `pulumi config set --secret --path`; `preview` evaluates as
    `pulumi preview` does. Errors are captured
    in `result.error`, never raised.
    """
    config: dict[str, Any] = dict(base) if base is not None else stack_config(stack)
    for path, value in (overrides or {}).items():
        if value is None:
            config.pop(path, None)
        else:
            _set_path(config, path, value)
    secret_paths = dict(placeholder_secrets(config)) if with_placeholders else {}
    secret_paths.update(secrets or {})
    for path, value in secret_paths.items():
        _set_path(config, path, value)
    secret_keys = sorted({path.split(".", 1)[0] for path in secret_paths})

    result = ProgramResult(stack=stack, config=config, secret_keys=secret_keys)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        set_all_config({k: _encode(v) for k, v in config.items()}, secret_keys)
        monitor = RecordingMonitor(mocks or LadderMocks())
        pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
        root = pulumi_settings.get_root_resource()

        def program() -> None:
            if str(ROOT) not in sys.path:
                sys.path.insert(0, str(ROOT))
            runpy.run_path(str(main), run_name="__main__")

        try:
            _sync_await(run_pulumi_func(program))
            exported = getattr(root, "outputs", {}) or {}
            for name, value in exported.items():
                output = pulumi.Output.from_input(value)
                result.outputs[name] = _sync_await(output.future())
                if _sync_await(output.is_secret()):
                    result.secret_outputs.add(name)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            result.error = exc
        result.resources = list(monitor.registrations)
    finally:
        set_all_config({}, [])
        pulumi_settings.reset_options()
        loop.close()
        asyncio.set_event_loop(None)
    return result


# ---------------------------------------------------------------------------------------
# secrets in recorded inputs

_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def is_secret(value: Any) -> bool:
    """True when a recorded input value was sent to the engine as a secret."""
    return isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG


def unwrap(value: Any) -> Any:
    """The recorded value with every secret wrapper removed (for assertions on content)."""
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value
