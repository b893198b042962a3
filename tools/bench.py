"""`make bench`: how long each stack takes to evaluate under mocks, against the floor.

The floor is what no program can beat: a fresh interpreter importing the same provider
SDKs the stack loads and running an empty program under the same mocks. Each figure
is the median of several fresh processes, so import time is included honestly.
This is a measurement script, not a test: timings vary with the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tools.harness import ROOT, STACKS

_CHILD = r"""
import importlib, json, sys, time
from pathlib import Path
t0 = time.perf_counter()
mode, stack, sdks, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
from tools.harness import run_program
if mode == "floor":
    for sdk in sdks:
        importlib.import_module(sdk)
    result = run_program(stack, main=Path(sys.argv[5]))
else:
    result = run_program(stack, overrides=overrides)
elapsed = time.perf_counter() - t0
assert result.error is None, result.error
loaded = sorted({m.split(".")[0] for m in sys.modules if m.startswith("pulumi_")})
print(json.dumps({"seconds": elapsed, "sdks": loaded, "resources": len(result.resources)}))
"""


def _run(mode: str, stack: str, sdks: list[str], overrides: dict[str, Any], empty: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, stack, json.dumps(sdks), json.dumps(overrides), str(empty)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def measure(stack: str, overrides: dict[str, Any], repeat: int, empty: Path) -> dict[str, Any]:
    runs = [_run("stack", stack, [], overrides, empty) for _ in range(repeat)]
    sdks = runs[0]["sdks"]
    floors = [_run("floor", stack, sdks, {}, empty)["seconds"] for _ in range(repeat)]
    seconds = statistics.median(r["seconds"] for r in runs)
    floor = statistics.median(floors)
    return {
        "seconds": seconds,
        "floor": floor,
        "ratio": seconds / floor,
        "resources": runs[0]["resources"],
        "sdks": sdks,
    }


def tenants(count: int) -> list[dict[str, str]]:
    return [{"name": f"t{i:03d}", "domain": f"t{i:03d}.shop.example.com"} for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluation time under mocks vs the floor.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tenants", default="1,10,100", help="tenant counts for the production stack")
    args = parser.parse_args(argv)
    cases: list[tuple[str, str, dict[str, Any]]] = [(s, s, {}) for s in STACKS if (ROOT / f"Pulumi.{s}.yaml").exists()]
    for n in (int(x) for x in args.tenants.split(",") if x):
        cases.append((f"production, {n} tenants", "production", {"ladder:tenants": tenants(n)}))
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.py"
        empty.write_text("")
        print(f"{'case':<28} {'eval s':>8} {'floor s':>8} {'ratio':>6} {'resources':>9}  sdks")
        for label, stack, overrides in cases:
            try:
                m = measure(stack, overrides, args.repeat, empty)
            except subprocess.CalledProcessError as exc:
                print(f"{label:<28} failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr else exc}")
                continue
            print(
                f"{label:<28} {m['seconds']:8.2f} {m['floor']:8.2f} {m['ratio']:6.2f} {m['resources']:9d}  "
                + ",".join(s.removeprefix("pulumi_") for s in m["sdks"])
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
