"""`python -m tools.refresh_contracts [--mirror DIR] [CHART ...]`: refresh the upstream contracts.

For every Helm chart pinned in `components/versions.py` this writes, under
`tests/contracts/<chart>/<version>/`, exactly what the tests check the cluster rung
against: the chart's default values (its `values.yaml`, as JSON), its
`values.schema.json` where it has one, and the openAPIV3Schema of every CRD whose
objects Ladder renders, all read from the upstream git tag of that chart version, and a
`contract.json` naming the source repository, tag, commit, paths and license.

Why a script: a pin that moves without its contract fails the tests
(`tests/test_cluster_contracts.py`); this is how the contract follows the pin.

Where the sources come from: `--mirror DIR` reads local bare clones laid out as
`DIR/<owner>+<name>/repo` (how this repository's contracts were made, offline);
without it the script clones each upstream repository from GitHub into a temporary
directory, which needs network access and `git`.

Schemas are stored with their `description` strings removed (they change nothing a
validator decides and make up most of the bytes); everything else is verbatim.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components import versions
from components.versions import Chart

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "tests" / "contracts"


@dataclass(frozen=True)
class Crd:
    """A CRD whose objects Ladder renders: the file that defines it, and its kind."""

    path: str
    kind: str


@dataclass(frozen=True)
class Source:
    """Where a chart version lives upstream."""

    repo: str  # owner/name on GitHub
    tag: Callable[[str], str]  # chart version -> git tag
    path: str  # the chart's directory at that tag
    license: str  # SPDX id; checked against the LICENSE file at the tag
    crds: tuple[Crd, ...] = ()
    # Subcharts whose values Ladder sets (Helm validates them against the subchart's own
    # schema): name -> Source; their versions come from the parent's Chart.yaml.
    subcharts: dict[str, Source] = field(default_factory=dict)
    # False where the repository's Chart.yaml is a template stamped at release time
    # (cert-manager: `version: v0.0.0`); the tag alone names the version then.
    versioned_chart_yaml: bool = True


CNPG_CRDS = "charts/cloudnative-pg/templates/crds/crds.yaml"
KPS_CRDS = "charts/kube-prometheus-stack/charts/crds/crds"

SOURCES: dict[str, Source] = {
    "traefik": Source("traefik/traefik-helm-chart", lambda v: f"v{v}", "traefik", "Apache-2.0"),
    "ingress-nginx": Source(
        "kubernetes/ingress-nginx", lambda v: f"helm-chart-{v}", "charts/ingress-nginx", "Apache-2.0"
    ),
    "cert-manager": Source(
        "cert-manager/cert-manager",
        lambda v: v,
        "deploy/charts/cert-manager",
        "Apache-2.0",
        (Crd("deploy/crds/cert-manager.io_clusterissuers.yaml", "ClusterIssuer"),),
        versioned_chart_yaml=False,
    ),
    "cloudnative-pg": Source(
        "cloudnative-pg/charts",
        lambda v: f"cloudnative-pg-v{v}",
        "charts/cloudnative-pg",
        "Apache-2.0",
        (Crd(CNPG_CRDS, "Cluster"), Crd(CNPG_CRDS, "ScheduledBackup")),
    ),
    "plugin-barman-cloud": Source(
        "cloudnative-pg/charts",
        lambda v: f"plugin-barman-cloud-v{v}",
        "charts/plugin-barman-cloud",
        "Apache-2.0",
        (Crd("charts/plugin-barman-cloud/templates/crds/crds.yaml", "ObjectStore"),),
    ),
    "kube-prometheus-stack": Source(
        "prometheus-community/helm-charts",
        lambda v: f"kube-prometheus-stack-{v}",
        "charts/kube-prometheus-stack",
        "Apache-2.0",
        (Crd(f"{KPS_CRDS}/crd-podmonitors.yaml", "PodMonitor"),),
        {
            "grafana": Source(
                "grafana-community/helm-charts", lambda v: f"grafana-{v}", "charts/grafana", "Apache-2.0"
            ),
            "kube-state-metrics": Source(
                "prometheus-community/helm-charts",
                lambda v: f"kube-state-metrics-{v}",
                "charts/kube-state-metrics",
                "Apache-2.0",
            ),
            "prometheus-node-exporter": Source(
                "prometheus-community/helm-charts",
                lambda v: f"prometheus-node-exporter-{v}",
                "charts/prometheus-node-exporter",
                "Apache-2.0",
            ),
        },
    ),
    "hcloud-cloud-controller-manager": Source(
        "hetznercloud/hcloud-cloud-controller-manager", lambda v: f"v{v}", "chart", "Apache-2.0"
    ),
    "hcloud-csi": Source("hetznercloud/csi-driver", lambda v: f"v{v}", "chart", "MIT"),
    "metrics-server": Source(
        "kubernetes-sigs/metrics-server",
        lambda v: f"metrics-server-helm-chart-{v}",
        "charts/metrics-server",
        "Apache-2.0",
    ),
}

_LICENSE_MARKERS = {"Apache-2.0": "Apache License", "MIT": "MIT License"}


def pinned_charts() -> list[Chart]:
    """Every `Chart` constant in `components.versions` (what must have a contract)."""
    return [v for v in vars(versions).values() if isinstance(v, Chart)]


def strip_descriptions(node: Any) -> Any:
    """The schema without its prose: `description` keys whose value is a string."""
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def helm_documents(text: str) -> Iterator[dict[str, Any]]:
    """YAML documents of a chart file, with whole-line Helm template guards dropped
    (`{{- if .Values.crds.create }}` around the CRDs)."""
    plain = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("{{"))
    for doc in yaml.safe_load_all(plain):
        if isinstance(doc, dict):
            yield doc


def crd_schemas(text: str, kind: str) -> dict[str, Any]:
    """{group, kind, versions: {name: openAPIV3Schema}} of the CRD for `kind` (served versions only)."""
    for doc in helm_documents(text):
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc.get("spec") or {}
        if (spec.get("names") or {}).get("kind") != kind:
            continue
        served = {
            v["name"]: strip_descriptions(v["schema"]["openAPIV3Schema"])
            for v in spec.get("versions") or []
            if v.get("served")
        }
        return {"group": spec["group"], "kind": kind, "scope": spec.get("scope"), "versions": served}
    raise LookupError(f"no CustomResourceDefinition for kind {kind}")


class Git:
    """Read files of an upstream repository at a tag, from a mirror or a fresh clone."""

    def __init__(self, mirror: Path | None, scratch: Path) -> None:
        self.mirror = mirror
        self.scratch = scratch

    def _dir(self, repo: str) -> Path:
        if self.mirror is not None:
            return self.mirror / repo.replace("/", "+") / "repo"
        target = self.scratch / repo.replace("/", "+")
        if not target.exists():
            subprocess.run(
                ["git", "clone", "--bare", "--filter=blob:none", f"https://github.com/{repo}.git", str(target)],
                check=True,
            )
        return target

    def show(self, repo: str, tag: str, path: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(self._dir(repo)), "show", f"{tag}:{path}"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise FileNotFoundError(f"{repo}@{tag}:{path}: {proc.stderr.strip()}")
        return proc.stdout

    def exists(self, repo: str, tag: str, path: str) -> bool:
        try:
            self.show(repo, tag, path)
        except FileNotFoundError:
            return False
        return True

    def commit(self, repo: str, tag: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(self._dir(repo)), "rev-list", "-n", "1", tag], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def write_contract(git: Git, name: str, version: str, source: Source, parent: str | None = None) -> list[Path]:
    """Write one chart version's contract; returns the files written."""
    tag = source.tag(version)
    out = CONTRACTS / name / version
    chart_yaml = yaml.safe_load(git.show(source.repo, tag, f"{source.path}/Chart.yaml"))
    if source.versioned_chart_yaml and str(chart_yaml.get("version")) != version:
        raise ValueError(f"{source.repo}@{tag}: Chart.yaml says version {chart_yaml.get('version')}, not {version}")
    license_text = git.show(source.repo, tag, "LICENSE")
    if _LICENSE_MARKERS[source.license] not in license_text[:400]:
        raise ValueError(f"{source.repo}@{tag}: LICENSE is not {source.license}")
    files: dict[str, str] = {}
    defaults = yaml.safe_load(git.show(source.repo, tag, f"{source.path}/values.yaml")) or {}
    _write_json(out / "values.json", defaults)
    files["values.json"] = f"{source.path}/values.yaml"
    schema_path = f"{source.path}/values.schema.json"
    if git.exists(source.repo, tag, schema_path):
        _write_json(out / "values.schema.json", strip_descriptions(json.loads(git.show(source.repo, tag, schema_path))))
        files["values.schema.json"] = schema_path
    for crd in source.crds:
        _write_json(out / "crds" / f"{crd.kind}.json", crd_schemas(git.show(source.repo, tag, crd.path), crd.kind))
        files[f"crds/{crd.kind}.json"] = crd.path
    manifest: dict[str, Any] = {
        "chart": name,
        "version": version,
        "appVersion": str(chart_yaml.get("appVersion", "")) if source.versioned_chart_yaml else version,
        "source": f"https://github.com/{source.repo}",
        "tag": tag,
        "commit": git.commit(source.repo, tag),
        "license": source.license,
        "files": files,
        "transform": "YAML parsed to JSON; string `description` fields removed from schemas",
    }
    if parent:
        manifest["subchartOf"] = parent
    written = [out / "contract.json", *(out / f for f in files)]
    for dep in chart_yaml.get("dependencies") or []:
        sub = source.subcharts.get(dep.get("name"))
        if sub is not None:
            manifest.setdefault("subcharts", {})[dep["name"]] = str(dep["version"])
            written += write_contract(git, dep["name"], str(dep["version"]), sub, parent=f"{name}@{version}")
    _write_json(out / "contract.json", manifest)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.refresh_contracts", description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, help="local bare clones as DIR/<owner>+<name>/repo (offline)")
    parser.add_argument("charts", nargs="*", help="chart names (default: every pinned chart)")
    args = parser.parse_args(argv)
    charts = [c for c in pinned_charts() if not args.charts or c.name in args.charts]
    with tempfile.TemporaryDirectory() as scratch:
        git = Git(args.mirror, Path(scratch))
        for chart in charts:
            source = SOURCES.get(chart.name)
            if source is None:
                print(f"error: no upstream source known for chart {chart.name}: add it to SOURCES", file=sys.stderr)
                return 2
            for path in write_contract(git, chart.name, chart.version, source):
                print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
