"""`make eject STACK=...`: the stack as files that run without Pulumi, for users who leave or inspect.

local and vps: a standalone `compose.yaml` with its Caddyfile and env examples (names
only). cluster: plain manifests, the Helm values of every release and an `install.sh`
that applies them with helm and kubectl. Nothing secret is written: the program is
evaluated offline under mocks with placeholder secrets, and every Secret becomes an
example with empty values that the user fills in.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from components import images
from components.render import standalone
from components.settings import NAMESPACE, Settings, parse_settings
from tools.harness import ROOT, ProgramResult, run_program
from tools.manifests import clean, manifests_from

SECRET_KINDS = ("Secret",)


def settings_of(result: ProgramResult) -> Settings:
    prefix = f"{NAMESPACE}:"
    raw = {k[len(prefix) :]: v for k, v in result.config.items() if k.startswith(prefix)}
    # The program already checked which keys are secrets; here every key is trusted.
    return parse_settings(raw, [f"{prefix}{k}" for k in raw], project_dir=ROOT)


def _secret_example(manifest: dict[str, Any]) -> dict[str, Any]:
    """A Secret with its keys and empty values: the shape to fill in, never the data."""
    keys = sorted({*(manifest.get("stringData") or {}), *(manifest.get("data") or {})})
    out = {k: v for k, v in manifest.items() if k not in ("stringData", "data")}
    out["stringData"] = {k: "" for k in keys}
    return out


def build_commands(plans: list[images.BuildPlan], out: Path) -> list[list[str]]:
    """`docker buildx build --push` for each planned build, paths relative to the eject directory."""
    commands = []
    for plan in plans:
        section = standalone.build_section(plan, ROOT, out)
        context = section["context"]
        command = ["docker", "buildx", "build", "--push", "--tag", plan.reference]
        command += ["--file", f"{context.rstrip('/')}/{section['dockerfile']}"]
        if "target" in section:
            command += ["--target", section["target"]]
        for name, value in plan.build.args.items():
            command += ["--build-arg", f"{name}={value}"]
        if plan.build.platform:
            command += ["--platform", plan.build.platform]
        commands.append([*command, context])
    return commands


def cluster_files(result: ProgramResult, builds: list[list[str]] | None = None) -> dict[str, str]:
    files: dict[str, str] = {}
    manifests = manifests_from(result)
    namespaces: list[str] = []
    secrets: list[str] = []
    for i, manifest in enumerate(manifests):
        meta = manifest["metadata"]
        ns = meta.get("namespace", "cluster")
        base = f"{i:03d}-{ns}-{manifest['kind'].lower()}-{meta['name']}.yaml"
        if manifest["kind"] in SECRET_KINDS:
            name = f"secrets/{base}"
            files[f"{name}.example"] = yaml.safe_dump(_secret_example(manifest), sort_keys=False)
            secrets.append(name)
            continue
        path = f"manifests/{base}"
        files[path] = yaml.safe_dump(manifest, sort_keys=False)
        if manifest["kind"] == "Namespace":
            namespaces.append(path)
    helm: list[list[str]] = []
    for r in result.of_type("kubernetes:helm.sh/v3:Release"):
        inputs = {k: clean(v) for k, v in r.inputs.items()}
        values_path = f"helm/{r.name}.values.yaml"
        files[values_path] = yaml.safe_dump(inputs.get("values") or {}, sort_keys=False)
        repo = (inputs.get("repositoryOpts") or {}).get("repo")
        command = ["helm", "upgrade", "--install", str(inputs["name"]), str(inputs["chart"])]
        if repo:
            command += ["--repo", str(repo)]
        command += ["--version", str(inputs["version"]), "--namespace", str(inputs["namespace"])]
        command += ["--create-namespace", "--atomic", "--wait", "--values", values_path]
        helm.append(command)
    files["install.sh"] = install_script(helm, namespaces, secrets, builds or [])
    return files


def install_script(
    helm: list[list[str]], namespaces: list[str], secrets: list[str], builds: list[list[str]] | None = None
) -> str:
    """Images built and pushed, helm releases, then namespaces, the filled-in Secrets, the rest in order."""
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        "# Written by `make eject`: applies this stack without Pulumi (helm, kubectl and a kubeconfig).",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        "",
        "# Each secrets/*.yaml.example must be copied to secrets/*.yaml and filled in first.",
    ]
    for name in secrets:
        lines.append(f"test -s {q(name)} || {{ echo {q('fill in ' + name + ' (from its .example)')} >&2; exit 1; }}")
    if builds:
        lines += ["", "# Images built from source (after `docker login` to their registry)."]
    lines += [" ".join(q(part) for part in command) for command in builds or []]
    lines += ["", *(" ".join(q(part) for part in command) for command in helm), ""]
    for path in namespaces:
        lines.append(f"kubectl apply -f {q(path)}")
    for name in secrets:
        lines.append(f"kubectl apply -f {q(name)}")
    lines.append("kubectl apply -f manifests/")
    return "\n".join(lines) + "\n"


def local_extras(s: Settings) -> list[str]:
    """The configured keys that the local standalone compose file leaves out."""
    found = [f"ladder:app.services.{n}.volumes" for n, svc in s.app.services.items() if svc.volumes]
    found += [f"ladder:{key}" for key in ("accessories", "buckets") if getattr(s, key)]
    return found


def eject(
    stack: str, out: Path, overrides: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None
) -> dict[str, str]:
    """Evaluate the stack offline and return relative path -> content of the ejected files.

    `overrides`/`secrets` are for tests, as in `tools.harness.run_program`.
    """
    result = run_program(stack, overrides=overrides, secrets=secrets)
    if result.error is not None:
        raise SystemExit(f"error: {result.error}")
    s = settings_of(result)
    plans = images.plan_builds(s, stack, ROOT)
    if s.phase == "local":
        missing = local_extras(s)
        if missing:
            # The standalone compose file does not carry issue 14's extras yet: an eject without
            # them would run an app whose uploads, stores and buckets silently do not exist.
            raise SystemExit(f"error: eject of phase local does not include {', '.join(missing)} yet")
        return standalone.local_files(s, plans, ROOT, out, stack)
    if s.phase == "vps":
        missing = local_extras(s) + (["ladder:app.jobs"] if s.app.jobs else [])
        if missing:
            # The rung deploys them (env files, directories, timers, backups); the standalone
            # files do not carry all of that yet, and a half eject would lose data silently.
            raise SystemExit(f"error: eject of phase vps does not include {', '.join(missing)} yet")
        from components.render.compose import Role
        from components.vps.topology import topology

        topo = topology(s)
        role = Role(app=True, data=topo.data_on_app_server, behind_load_balancer=topo.load_balancer)
        return standalone.vps_files(s, role, plans, ROOT, out)
    return cluster_files(result, build_commands(plans, out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: eject/<stack>)")
    args = parser.parse_args(argv)
    if not (ROOT / f"Pulumi.{args.stack}.yaml").exists():
        print(f"no stack file Pulumi.{args.stack}.yaml", file=sys.stderr)
        return 2
    out: Path = (args.out or ROOT / "eject" / args.stack).resolve()
    files = eject(args.stack, out)
    if out.exists():
        shutil.rmtree(out)
    for rel, content in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if rel.endswith(".sh"):
            path.chmod(0o755)
    print(f"wrote {len(files)} files under {out}")
    for name in standalone.env_files_of(files):
        print(f"  fill in: {name} -> {name.removesuffix('.example')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
