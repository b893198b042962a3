"""`make plan STACK=...`: what a stack would build, evaluated offline under Pulumi mocks.

No cloud, no CLI, no Docker. Prints the resources grouped by component, what is exposed
to the network, and the monthly cost; writes the rendered files under build/<stack>/.
Exits non-zero with the config error when the stack's config is invalid.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from tools.exposure import exposures
from tools.harness import ROOT, ProgramResult, Registration, run_program
from tools.manifests import manifests_from


def _settings_of(result: ProgramResult) -> Any:
    from components.settings import NAMESPACE, parse_settings

    prefix = f"{NAMESPACE}:"
    raw = {k[len(prefix) :]: v for k, v in result.config.items() if k.startswith(prefix)}
    return parse_settings(raw, result.secret_keys, project_dir=ROOT)


def resource_tree(result: ProgramResult, stack: str) -> Tree:
    tree = Tree(f"[bold]stack {stack}[/] ({len(result.resources)} resources)")
    nodes: dict[str, Tree] = {}

    def label(r: Registration) -> str:
        flags = []
        if r.protect:
            flags.append("[yellow]protected[/]")
        if r.ignore_changes:
            flags.append(f"ignoreChanges={','.join(r.ignore_changes)}")
        suffix = f"  {' '.join(flags)}" if flags else ""
        style = "bold cyan" if not r.custom else "white"
        return f"[{style}]{r.name}[/] [dim]{r.type}[/]{suffix}"

    for r in result.resources:
        parent = nodes.get(r.parent, tree)
        nodes[r.urn] = parent.add(label(r))
    return tree


def builds_table(result: ProgramResult, stack: str) -> Table:
    """The images `pulumi up` would build from source, and where each goes."""
    from components import images

    s = _settings_of(result)
    push = s.phase != "local"
    table = Table(title="Images built from source" + ("" if push else " (local engine, not pushed)"))
    for column in ("build", "services", "context / dockerfile", "tag", "then"):
        table.add_column(column)
    for plan in images.plan_builds(s, stack, ROOT):
        b = plan.build
        extra = "".join(f" {k}={v}" for k, v in (("target", b.target), ("platform", b.platform)) if v)
        table.add_row(
            plan.key,
            ", ".join(plan.services),
            f"{b.context} / {b.dockerfile_path}{extra}",
            plan.reference,
            "push, deploy by digest" if push else "load into the engine",
        )
    if not table.rows:
        table.caption = "none: every service runs a prebuilt image"
    logins = ", ".join(f"{r.server} as {r.username}" for r in s.registries)
    if logins:
        table.caption = (table.caption + "; " if table.caption else "") + f"registry logins: {logins}"
    return table


def cost_table(cost: dict[str, Any]) -> Table:
    table = Table(title=f"Monthly cost ({cost['currency']}, list prices as of {cost.get('asOf')})")
    table.add_column("item")
    table.add_column("qty", justify="right")
    table.add_column("unit", justify="right")
    table.add_column("monthly", justify="right")
    for item in cost["items"]:
        table.add_row(
            item["name"],
            f"{item['quantity']:g}",
            f"{item['unitPrice']:g}" if item["unitPrice"] is not None else "?",
            f"{item['monthly']:.2f}",
        )
    table.add_section()
    table.add_row("[bold]total[/]", "", "", f"[bold]{cost['total']:.2f}[/]")
    table.caption = f"source: {cost.get('source')}"
    return table


def write_build(result: ProgramResult, out: Path) -> list[Path]:
    from components.artifacts import rendered_files

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = []
    for rel, content in rendered_files(_settings_of(result)).items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(path)
    manifests = manifests_from(result)
    if manifests:
        mdir = out / "manifests"
        mdir.mkdir()
        for i, manifest in enumerate(manifests):
            ns = manifest["metadata"].get("namespace", "cluster")
            path = mdir / f"{i:03d}-{ns}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
            path.write_text(yaml.safe_dump(manifest, sort_keys=False))
            written.append(path)
    summary = {
        "stack": result.stack,
        "outputs": {k: ("[secret]" if k in result.secret_outputs else v) for k, v in result.outputs.items()},
        "resources": [{"type": r.type, "name": r.name, "protect": r.protect} for r in result.resources],
    }
    (out / "plan.json").write_text(json.dumps(summary, indent=2, default=str))
    written.append(out / "plan.json")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--out", type=Path, default=None, help="where to write rendered files (build/<stack>)")
    args = parser.parse_args(argv)
    console = Console()

    if not (ROOT / f"Pulumi.{args.stack}.yaml").exists():
        console.print(f"[red]no stack file Pulumi.{args.stack}.yaml[/]")
        return 2
    result = run_program(args.stack)
    if result.error is not None:
        console.print(f"[bold red]error:[/] {result.error}", soft_wrap=True, markup=True, highlight=False)
        return 1

    console.rule(f"[bold]Ladder offline plan: {args.stack}[/] (Pulumi mocks; no cloud, CLI or Docker)")
    outputs = result.outputs
    console.print(
        f"phase [bold]{outputs.get('phase')}[/] on [bold]{outputs.get('provider')}[/] -> {outputs.get('url')}"
    )
    console.print(resource_tree(result, args.stack))

    exposed = Table(title="Exposed to the network")
    for column in ("what", "port", "from"):
        exposed.add_column(column)
    for e in exposures(result):
        exposed.add_row(e.what, e.port, e.source)
    console.print(exposed)
    console.print(builds_table(result, args.stack))
    console.print(cost_table(outputs["monthlyCost"]))

    out = args.out or ROOT / "build" / args.stack
    written = write_build(result, out)
    console.print(f"wrote {len(written)} files under {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/")
    secret = ", ".join(sorted(result.secret_outputs)) or "none"
    console.print(f"secret outputs: {secret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
