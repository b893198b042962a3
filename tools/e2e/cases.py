"""The bench's cases: each boots its servers, runs the program's deploys and asserts outcomes."""

from __future__ import annotations

import copy
import time

from tools.e2e import bench as b
from tools.e2e import servers
from tools.e2e.load import Load, get
from tools.e2e.proc import BenchError
from tools.e2e.program import DeployFailed, ssh


def check(condition: bool, what: str) -> None:
    if not condition:
        raise BenchError(f"assertion failed: {what}")
    print(f"  ok: {what}", flush=True)


def app_ids(server: servers.Server) -> dict[str, str]:
    out = server.inspect("docker ps -a --format '{{.ID}} {{.Label \"com.docker.compose.service\"}}'")
    return dict(reversed(line.split()) for line in out.splitlines() if line.strip())  # type: ignore[misc]


def psql(server: servers.Server, sql: str) -> str:
    return server.inspect(
        f"cd /srv/ladder && docker compose exec -T postgres psql -U shop -d shop -tAc {sql!r} </dev/null"
    ).strip()


def hetzner_single(bench: b.Bench) -> None:
    """Hetzner, one server: first deploy, bumps under load, broken releases, idempotency, data, hardening."""
    ip = f"{b.w.PUBLIC_PREFIX}.10"
    config = b.vps_config("hetzner", bench.operator[1], count=1, size="cx23", region="nbg1", volumeGb=10)
    stack = b.new_stack(config, {"shop-app-0": ip})
    bench.world.dns_record(b.DOMAIN, ip)
    with b.fleet(bench, stack) as fleet:
        server = next(iter(fleet.values()))
        started = time.monotonic()
        stack.up()
        b.serves(bench, ip, "1.0.0")
        bench.note("hetzner x1: first deploy (boot to serving)", f"{time.monotonic() - started:.1f} s")

        status, _ = redirect(ip)
        check(status in (301, 308), f"http://{b.DOMAIN}/ redirects to https (HTTP {status})")
        listening = server.inspect("ss -Hltn | awk '{print $4}' | sed 's/.*://' | sort -un").split()
        check(set(listening) <= {"22", "80", "443"}, f"only 22, 80, 443 listen on the server ({listening})")
        check(psql(server, "SELECT count(*) FROM ladder_releases") == "1", "the release ran once")

        _, deep = get(ip, b.DOMAIN, "/api/deep", bench.acme_root)
        check("error" not in deep and deep.get("hits"), f"the api reaches Postgres and Valkey ({deep})")
        _, digests = get(ip, b.DOMAIN, "/api/env-digests", bench.acme_root)
        import hashlib

        want = hashlib.sha256(b.SESSION_SECRET.encode()).hexdigest()
        check(
            digests.get("digests", {}).get("SESSION_SECRET") == want,  # type: ignore[union-attr]
            "SESSION_SECRET reaches the container byte for byte",
        )

        before = app_ids(server)
        stack.up(force=("deploy",))
        check(app_ids(server) == before, "the same deploy twice replaces 0 containers")

        with Load(ip, b.DOMAIN, bench.acme_root, b.ROUTES, rate=25) as load:
            time.sleep(3)
            for version in ("1.0.1", "1.0.2", "1.0.3"):
                stack.config = b.with_app(config, version)
                t0 = time.monotonic()
                stack.up()
                bench.note(f"bump to {version}", f"{time.monotonic() - t0:.1f} s")
                b.serves(bench, ip, version, timeout=10)
            time.sleep(2)
        bench.note("load across 3 bumps", load.result.line())
        check(load.result.failed == 0 and load.result.misrouted == 0, "0 failed, 0 misrouted requests across bumps")
        check(psql(server, "SELECT count(*) FROM ladder_releases") == "4", "one release per deploy, 4 in all")

        for mode in ("500", "deaf"):
            with Load(ip, b.DOMAIN, bench.acme_root, b.ROUTES, rate=25) as load:
                stack.config = b.with_app(config, "2.0.0", mode)
                t0 = time.monotonic()
                try:
                    stack.up()
                    raise BenchError(f"a release that answers {mode} deployed")
                except DeployFailed as exc:
                    reason = exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else ""
                bench.note(f"broken release ({mode}) refused after", f"{time.monotonic() - t0:.1f} s: {reason[:160]}")
            bench.note(f"load during broken release ({mode})", load.result.line())
            check(not any("2.0.0" in v for v in load.result.versions), f"0 requests saw the {mode} release")
            check(load.result.failed == 0, f"0 failed requests during the {mode} release")
            compose = server.inspect("cat /srv/ladder/compose.yaml")
            check("1.0.3" in compose and "2.0.0" not in compose, "compose.yaml still describes the running version")
        stack.config = b.with_app(config, "1.0.3")
        b.serves(bench, ip, "1.0.3", timeout=10)

        psql(server, "CREATE TABLE IF NOT EXISTS bench_keep (v text); INSERT INTO bench_keep VALUES ('kept')")
        servers.shutdown(server)
        servers.boot(bench.world, server)
        b.serves(bench, ip, "1.0.3", timeout=180)
        check(psql(server, "SELECT v FROM bench_keep") == "kept", "a Postgres row survives a reboot")

        hardening(bench, server, ip, stack)


def redirect(ip: str) -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection(ip, 80, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": b.DOMAIN})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Location") or ""
    finally:
        conn.close()


def hardening(bench: b.Bench, server: servers.Server, ip: str, stack: b.Stack) -> None:
    sshd = server.inspect("sshd -T 2>/dev/null")
    for setting in ("permitrootlogin no", "passwordauthentication no", "kbdinteractiveauthentication no"):
        check(setting in sshd, f"sshd -T: {setting}")
    check("active" in server.inspect("ufw status | head -1"), "ufw is active")
    check("sshd" in server.inspect("fail2ban-client status", check=False), "fail2ban's sshd jail is active")
    modes = server.inspect("stat -c '%n %a' /usr/local/sbin /etc/systemd/system").split()
    check(modes == ["/usr/local/sbin", "755", "/etc/systemd/system", "755"], f"system directories keep 0755 {modes}")
    conn = {"host": ip, "user": "deploy", "privateKey": bench.operator[0]}
    check(ssh(conn, "true", None).returncode == 0, "the operator's key logs in as deploy")
    check(ssh({**conn, "user": "root"}, "true", None, attempts=1).returncode != 0, "root cannot log in")
    import subprocess

    probe = subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            f"deploy@{ip}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    check(
        probe.returncode != 0
        and "publickey" in probe.stderr
        and "password" not in probe.stderr.split("Permission denied")[-1],
        f"no password login is offered ({probe.stderr.strip()[-80:]})",
    )
    _ = copy
