"""`make e2e`: run the live bench (as root) and print its numbers; LADDER_E2E_HOLD=<s> keeps a failed case up."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from tools.e2e import bench as b
from tools.e2e import cases
from tools.e2e import world as w

CACHE = Path(os.environ.get("LADDER_E2E_CACHE", "/var/cache/ladder-e2e"))
CASES = {
    "existing-root": cases.existing_root,
    "local-build": cases.local_build,
    "hetzner-1": cases.hetzner_single,
    "digitalocean-1": cases.digitalocean_single,
    "existing": cases.existing_host,
    "hetzner-3": cases.hetzner_three,
}
DEFAULT = list(CASES)  # what `make e2e` (and CI) runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cases", nargs="*", default=DEFAULT, help=f"of {', '.join(CASES)}")
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    if os.geteuid() != 0:
        print("the bench needs root (network namespaces, system containers)", file=sys.stderr)
        return 2
    # SIGTERM (CI's timeout, Ctrl-C's cousin) unwinds like an exception: everything is cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run_dir = CACHE / "run"
    started = time.monotonic()
    failed: list[str] = []
    with w.World(CACHE, run_dir) as world:
        bench = b.setup(world)
        for name in args.cases:
            print(f"== case {name}", flush=True)
            t0 = time.monotonic()
            try:
                CASES[name](bench)
            except Exception as exc:  # noqa: BLE001 - reported, the next case runs
                failed.append(name)
                print(f"  FAILED: {exc}", flush=True)
            bench.note(f"case {name}", f"{time.monotonic() - t0:.1f} s")
        print("== numbers")
        for key, value in bench.numbers.items():
            print(f"  {key}: {value}")
    total = time.monotonic() - started
    print(f"bench: {len(args.cases) - len(failed)} passed, {len(failed)} failed in {total:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
