"""The bench's cases: each boots its servers from the program's own output, runs the
program's commands as `pulumi up` would, and asserts outcomes a user would see."""

from __future__ import annotations

import base64
import copy
import hashlib
import http.client
import shlex
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import urllib.request
from typing import Any

from components import versions
from components.render import sudo
from components.render.compose import CADDY_UID
from components.render.hardening import DEPLOY_USER
from tools.e2e import bench as b
from tools.e2e import servers
from tools.e2e import world as w
from tools.e2e.load import Load, get
from tools.e2e.proc import BenchError, wait_for
from tools.e2e.program import DeployFailed, Stack, keypair, ssh
from tools.e2e.ws import CLOSE, WebSocket

BUCKET = "shop-backups"


def check(condition: bool, what: str) -> None:
    if not condition:
        raise BenchError(f"assertion failed: {what}")
    print(f"  ok: {what}", flush=True)


def container_ids(server: servers.Server) -> set[str]:
    """The stack's containers, without a scheduled job's one-off run (it comes and goes each minute)."""
    rows = server.inspect("docker ps -a --no-trunc --format '{{.ID}} {{.Names}}'").splitlines()
    return {row.split()[0] for row in rows if row.strip() and not row.split()[1].startswith("ladder-job-")}


def wait_healthy(server: servers.Server, container: str, what: str, timeout: float) -> None:
    status = "docker inspect -f '{{.State.Health.Status}}' " + container
    wait_for(what, lambda: server.inspect(status, check=False).strip() == "healthy", timeout, interval=2)


def psql(server: servers.Server, sql: str) -> str:
    return server.inspect(
        f"cd /srv/ladder && docker compose exec -T postgres psql -U shop -d shop -tAc {shlex.quote(sql)} </dev/null"
    ).strip()


def valkey(server: servers.Server, *args: str) -> str:
    command = shlex.quote('REDISCLI_AUTH="$VALKEY_PASSWORD" valkey-cli ' + shlex.join(args))
    return server.inspect(f"cd /srv/ladder && docker compose exec -T valkey sh -c {command} </dev/null").strip()


def plain_http(ip: str, host: str, path: str = "/") -> tuple[int, str, str]:
    conn = http.client.HTTPConnection(ip, 80, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Location") or "", resp.read().decode(errors="replace")
    finally:
        conn.close()


def operator_conn(bench: b.Bench, ip: str, user: str = sudo.ADMIN_USER) -> dict[str, Any]:
    """The operator's own login (people's keys log in as `admin`; the deploy key is Ladder's)."""
    return {"host": ip, "user": user, "privateKey": bench.operator[0]}


def password_probe(ip: str, user: str, methods: str) -> subprocess.CompletedProcess[str]:
    """Try to log in with `methods` only and no key: the server's refusal names what it offers."""
    argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"]
    argv += ["-o", "UserKnownHostsFile=/dev/null", "-o", f"PreferredAuthentications={methods}", f"{user}@{ip}", "true"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def hardening(server: servers.Server, ip: str, conn: dict[str, Any], user: str) -> None:
    """Seen from inside (sshd -T, ufw, fail2ban) and from outside (which logins work)."""
    sshd = server.inspect("sshd -T 2>/dev/null")
    for setting in (
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        f"allowusers {user}",
    ):
        check(setting in sshd, f"sshd -T: {setting}")
    check("Status: active" in server.inspect("ufw status"), "ufw is active")
    check(
        "Currently banned" in server.inspect("fail2ban-client status sshd", check=False),
        "fail2ban's sshd jail is running",
    )
    check(ssh(conn, "true", None).returncode == 0, f"the key logs in as {user}")
    check(ssh({**conn, "user": "root"}, "true", None, attempts=1).returncode != 0, "root cannot log in")
    probe = password_probe(ip, user, "password,keyboard-interactive")
    check(probe.returncode != 0 and "(publickey)" in probe.stderr, "the server offers no password login")


def deploy_identity(bench: b.Bench, stack: Stack, server: servers.Server, ip: str) -> None:
    """The deploy key reaches root only through `ladder-apply` and can do nothing else; people
    log in as `admin` with sudo; the journal names the last deploy by its script's sha256."""
    applied = next(inputs for urn, inputs in stack.applied.items() if urn.endswith("-deploy"))
    ran = ssh(applied["connection"], "echo escaped", "id -u\n", attempts=1)
    check(
        ran.returncode == 0 and ran.stdout.strip() == "0" and "escaped" not in ran.stdout,
        f"the deploy key runs its stdin through ladder-apply and nothing else ({ran.stdout.strip()[:80]})",
    )
    refused = server.inspect(f"runuser -u {DEPLOY_USER} -- sudo -n true >/dev/null 2>&1; echo $?").strip()
    check(refused != "0", f"sudo -n true as {DEPLOY_USER} is refused (exit {refused})")
    check(ssh(operator_conn(bench, ip), "sudo -n true", None).returncode == 0, "sudo -n true as admin works")
    check(
        server.inspect(f"cat {sudo.SUDOERS}") == sudo.sudoers(DEPLOY_USER, sudo.ADMIN_USER),
        f"{sudo.SUDOERS} holds the entry point's rule and admin's",
    )
    left = server.inspect(f"grep -c '^{DEPLOY_USER}[[:space:]]' {sudo.CLOUD_INIT_SUDOERS} || true").strip()
    check(left == "0", f"cloud-init's NOPASSWD:ALL for {DEPLOY_USER} is gone ({left} lines left)")
    digest = hashlib.sha256(str(applied["stdin"]).encode()).hexdigest()
    journal = server.inspect("journalctl -t ladder-apply -o cat --no-pager")
    check(
        f"user={DEPLOY_USER} sha256={digest}" in journal and f"sha256={digest} exit=0" in journal,
        "the journal names the deploy by its sha256",
    )
    check(b.SESSION_SECRET not in journal, "the journal holds no script content")


def host_key_pinned(stack: Stack, ip: str) -> None:
    cmd = next(c for c in stack.commands(stack.evaluate()) if c.name.endswith("-deploy"))
    from tools.harness import unwrap

    conn = unwrap(cmd.inputs["connection"])
    check(bool(conn.get("hostKey")), "every connection names the host key it expects")
    impostor = {**conn, "hostKey": keypair("impostor")[1]}
    done = ssh(impostor, "true", None, attempts=1)
    check(
        done.returncode != 0 and "Host key verification failed" in done.stderr,
        "a connection to a server with another host key is refused",
    )


def s3_keys(bench: b.Bench, prefix: str = "") -> list[str]:
    import ssl

    ctx = ssl.create_default_context(cafile=str(bench.ca))
    with urllib.request.urlopen(
        f"{w.S3_ENDPOINT}/{BUCKET}?list-type=2&prefix={prefix}", timeout=15, context=ctx
    ) as resp:  # moto does not check signatures
        body = resp.read().decode()
    import re

    return re.findall(r"<Key>([^<]+)</Key>", body)


def make_bucket(bench: b.Bench) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=str(bench.ca))
    req = urllib.request.Request(f"{w.S3_ENDPOINT}/{BUCKET}", method="PUT")
    try:
        urllib.request.urlopen(req, timeout=15, context=ctx).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise


# --- issue 14 on hetzner-1: a service volume, an accessory, a job --------------------------

UPLOADS = "/app/uploads"
VOLUME_DIR = "/srv/ladder-data/volumes/worker/app-uploads"  # vps_extras.volume_paths
JOB = "ladder-job-marker"


def with_extras(config: dict[str, Any]) -> dict[str, Any]:
    """The stack's app plus issue 14's extras. The volume is the worker's: a volume needs a
    single-replica service, and the bench's api runs two replicas for the rolling updates."""
    new = copy.deepcopy(config)
    app = new["ladder:app"]
    app["services"]["worker"]["volumes"] = {UPLOADS: {"sizeGb": 1}}
    app["jobs"] = {
        "marker": {
            "service": "worker",
            "command": ["marker", f"{UPLOADS}/job-marks"],
            "schedule": "* * * * *",
            "timeout": 120,
        }
    }
    # The Valkey stand-in as a second store: internal, on the data network, backed up by its paths.
    new["ladder:accessories"] = {
        "cache2": {
            "image": versions.VALKEY_IMAGES[versions.DEFAULT_VALKEY_VERSION],
            "port": 6379,
            "command": ["valkey-server", "--dir", "/data", "--protected-mode", "no"],
            "volumes": {"/data": {"sizeGb": 1}},
            "health": ["valkey-cli", "ping"],
            "backup": {"paths": ["/data"]},
        }
    }
    return new


def compose_exec(server: servers.Server, service: str, command: str) -> str:
    return server.inspect(
        f"cd /srv/ladder && docker compose exec -T {service} sh -c {shlex.quote(command)} </dev/null", check=False
    ).strip()


def upload_written(server: servers.Server) -> None:
    """The worker writes into its volume as the image's user; the directory is on the data volume."""
    written = compose_exec(
        server, "worker", f"echo kept > {UPLOADS}/bench-upload.txt && cat {UPLOADS}/bench-upload.txt"
    )
    check(written == "kept", "the worker (uid 10001) writes into its volume")
    owner = server.inspect(f"stat -c '%u %a' {VOLUME_DIR}").strip()
    check(owner == "10001 750", f"the volume directory belongs to the image's user, mode 750 ({owner})")
    mount = server.inspect(f"findmnt -n -o TARGET -T {VOLUME_DIR}").strip()
    check(mount == "/srv/ladder-data", f"the volume lives on the data volume ({mount})")


def upload_kept(server: servers.Server) -> None:
    check(compose_exec(server, "worker", f"cat {UPLOADS}/bench-upload.txt") == "kept", "the upload survives redeploys")


def accessory_internal(server: servers.Server) -> None:
    """cache2 is healthy, its address is in the app's env, the api reaches it, the proxy cannot."""
    wait_healthy(server, "shop-cache2-1", "cache2 healthy", 60)
    check(
        compose_exec(server, "api", "printenv CACHE2_HOST CACHE2_PORT").split() == ["cache2", "6379"],
        "the api gets CACHE2_HOST/PORT",
    )
    probe = "python3 -c \"import socket; socket.create_connection(('cache2', 6379), 3)\" && echo yes || echo no"
    check(compose_exec(server, "api", probe) == "yes", "the api reaches cache2")
    check(compose_exec(server, "proxy", probe) == "no", "the proxy (not on the data network) does not")


def job_ran(server: servers.Server) -> None:
    """The timer fired during the case (every minute): the unit's last run succeeded and left its marks."""
    result = server.inspect(f"systemctl show -p Result -p ExecMainStatus --value {JOB}.service").split()
    check(sorted(result) == ["0", "success"], f"the job's last run succeeded ({result})")
    journal = server.inspect(f"journalctl -u {JOB}.service -o cat --no-pager | grep -c 'marker .*: recorded' || true")
    check(int(journal.strip() or 0) >= 1, f"the journal shows the job's output ({journal.strip()} runs)")
    check(int(psql(server, "SELECT count(*) FROM ladder_job_marks") or 0) >= 1, "the job wrote its marks to Postgres")


def job_waits_for_the_lock(server: servers.Server) -> None:
    """While the deploy's lock is held the job waits (activating, no new mark); then it runs.

    The minute timer is paused meanwhile: a run it started just before the lock was taken would
    absorb the start below (systemd merges a start into a running activation) and end."""
    server.inspect(f"systemctl stop {JOB}.timer")
    try:
        wait_for(
            "no run of the job in progress",
            lambda: server.inspect(f"systemctl is-active {JOB}.service", check=False).strip() in ("inactive", "failed"),
            180,
            interval=2,
        )
        before = int(psql(server, "SELECT count(*) FROM ladder_job_marks"))
        held = server.inspect(
            f"flock -x /run/lock/ladder-deploy.lock -c 'systemctl start --no-block {JOB}.service; sleep 8; "
            f"systemctl is-active {JOB}.service'",
            check=False,
        ).strip()
        check(held == "activating", f"the job waits while the lock is held ({held})")
        check(int(psql(server, "SELECT count(*) FROM ladder_job_marks")) == before, "no mark while the lock is held")
        wait_for(
            "the job runs once the lock is free",
            lambda: int(psql(server, "SELECT count(*) FROM ladder_job_marks")) > before,
            60,
            interval=2,
        )
    finally:
        server.inspect(f"systemctl start {JOB}.timer")


def files_backed_up(bench: b.Bench, server: servers.Server, ip: str) -> None:
    """The volume's tarball (with the upload) and cache2's are in the bucket; a restore brings a
    deleted upload back."""
    import io
    import tarfile

    keys = s3_keys(bench, "shop/bench/volumes/worker-app-uploads/")
    check(len(keys) == 1 and keys[0].endswith(".tar.gz.age"), f"the volume's backup is an age file ({keys})")
    check(len(s3_keys(bench, "shop/bench/accessories/cache2/")) == 1, "cache2's data is backed up beside it")
    restore = "ladder-restore-files volumes/worker-app-uploads"
    plain = fetch_and_decrypt(operator_conn(bench, ip), restore)
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:gz") as archive:
        names = archive.getnames()
    check("./bench-upload.txt" in names, "the upload is in the volume's backup tarball")
    compose_exec(server, "worker", f"rm -f {UPLOADS}/bench-upload.txt")
    done = encrypted_restore(operator_conn(bench, ip), restore)
    check(done.returncode == 0, f"ladder-restore-files restores the volume ({done.stderr.strip()[-300:]})")
    upload_kept(server)


# --- cases ------------------------------------------------------------------------------


def served_certificate(ip: str, site: str, bench: b.Bench) -> str:
    """The sha256 of the certificate the proxy presents for `site` (verified against the ACME CA)."""
    context = ssl.create_default_context(cafile=str(bench.acme_root))
    sock = socket.create_connection((ip, 443), timeout=10)
    with context.wrap_socket(sock, server_hostname=site) as tls:
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise BenchError(f"{site}: no certificate")
    return hashlib.sha256(der).hexdigest()


def proxy_unprivileged(bench: b.Bench, stack: Stack, server: servers.Server, ip: str, site: str) -> None:
    """Caddy runs as its own user with no capability; a volume that a root-run Caddy (Ladder
    before this change) left behind is handed over by the next deploy, certificate kept."""
    pid = server.inspect("docker inspect -f '{{.State.Pid}}' shop-proxy-1").strip()
    status = dict(ln.split(":", 1) for ln in server.inspect(f"cat /proc/{pid}/status").splitlines() if ":" in ln)
    uids, caps = set(status["Uid"].split() + status["Gid"].split()), int(status["CapEff"], 16)
    check(uids == {str(CADDY_UID)} and caps == 0, f"Caddy runs as {CADDY_UID} with no capability ({uids}, {caps:#x})")
    cert = served_certificate(ip, site, bench)
    volume = shlex.quote(server.inspect("docker volume inspect -f '{{.Mountpoint}}' shop_caddy-data").strip())
    # What Caddy as root left: everything root's, keys 0600, directories 0700.
    legacy = f"cd /srv/ladder && docker compose stop proxy && chown -R 0:0 {volume} && chmod -R go-rwx {volume}"
    ssh(operator_conn(bench, ip), "sudo bash -s", legacy)
    check(server.inspect(f"find {volume} -uid 0 | wc -l").strip() != "0", "the volume is root's, as before")
    stack.up(force=("deploy",))
    b.serves(bench, site, ip, "1.0.0", timeout=60)
    stray = server.inspect(f"find {volume} ! -uid {CADDY_UID} -o ! -gid {CADDY_UID} | head -3").strip()
    check(stray == "", f"the next deploy hands the volume to Caddy's user ({stray or 'all files'})")
    check(served_certificate(ip, site, bench) == cert, "Caddy serves the certificate it had (none issued anew)")


def hetzner_single(bench: b.Bench) -> None:
    """Hetzner, one server, with backups: first deploy, bumps under load, broken releases,
    idempotency, data across redeploy/restart/reboot, backup and restore, hardening, rotation."""
    ip = f"{w.PUBLIC_PREFIX}.10"
    make_bucket(bench)
    site = b.domain("hetzner-1")
    config = b.vps_config("hetzner-1", "hetzner", bench.operator[1], count=1, size="cx23", region="nbg1", volumeGb=10)
    config["ladder:backups"] = {
        "bucket": BUCKET,
        "endpoint": w.S3_ENDPOINT,
        "region": "us-east-1",
        "schedule": "0 3 * * *",
        "retentionDays": 7,
        "ageRecipient": operator_age_key()[1],
    }
    config = with_extras(config)
    stack = b.new_stack(config, {"shop-app-0": ip})
    stack.secrets.update(
        {"ladder:backups.accessKeyId": "bench-access-key", "ladder:backups.secretAccessKey": "bench-secret-key"}
    )
    bench.world.dns_record(site, ip)
    with b.fleet(bench, stack) as fleet:
        server = fleet["shop-app-0"]
        started = time.monotonic()
        stack.up()
        b.serves(bench, site, ip, "1.0.0")
        bench.note("hetzner x1: first deploy (boot to serving)", f"{time.monotonic() - started:.1f} s")

        status, location, _ = plain_http(ip, site)
        check(status in (301, 308) and location.startswith("https://"), f"http:// redirects to https ({status})")
        listening = server.inspect(
            "ss -Hltn | awk '{print $4}' | grep -v -e '^127\\.' -e '^\\[::1\\]' | sed 's/.*://' | sort -un"
        ).split()
        check(set(listening) == {"22", "80", "443"}, f"only 22, 80, 443 listen beyond loopback ({listening})")
        check(psql(server, "SELECT count(*) FROM ladder_releases") == "1", "the release ran once")
        first_start = server.inspect("docker inspect -f '{{.State.StartedAt}}' shop-web-1 shop-api-1").split()
        release_at = psql(
            server, "SELECT to_char(min(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM ladder_releases"
        )
        check(all(release_at <= t[:19] for t in first_start), "the release ran before any app container started")
        _, deep = get(ip, site, "/api/deep", bench.acme_root)
        check("error" not in deep and bool(deep.get("hits")), "the api reaches Postgres and Valkey")
        upload_written(server)
        accessory_internal(server)
        proxy_unprivileged(bench, stack, server, ip, site)
        _, digests = get(ip, site, "/api/env-digests", bench.acme_root)
        want = hashlib.sha256(b.SESSION_SECRET.encode()).hexdigest()
        seen = digests.get("digests")
        check(
            isinstance(seen, dict) and seen.get("SESSION_SECRET") == want,
            "a secret with $, quotes, # and newlines reaches the container byte for byte",
        )

        before = container_ids(server)
        stack.up(force=("deploy",))
        check(container_ids(server) == before, "the same deploy twice replaces 0 containers")
        deploy_identity(bench, stack, server, ip)

        with Load(ip, site, bench.acme_root, b.ROUTES, rate=25) as load:
            time.sleep(3)
            for version in ("1.0.1", "1.0.2", "1.0.3"):
                stack.config = with_extras(b.with_app(config, version))
                t0 = time.monotonic()
                steps = stack.up()
                bench.note(f"image bump to {version}", f"{time.monotonic() - t0:.1f} s")
                for step in steps:  # the deploy's own timeline, to line up with any failed request
                    print("    " + " | ".join(ln[8:] for ln in step.stderr.splitlines() if ln.startswith("ladder: ")))
                b.serves(bench, site, ip, version, timeout=10)
            time.sleep(2)
        bench.note("load across 3 bumps (25 req/s)", load.result.line())
        check(load.result.misrouted == 0, "0 misrouted requests across bumps")
        check(load.result.failed == 0, f"0 failed requests across bumps ({load.result.failed} of {load.result.sent})")
        # The first deploy, the proxy's hand-over, the repeat, three bumps: one release in each.
        check(psql(server, "SELECT count(*) FROM ladder_releases") == "6", "one release per deploy, 6 in all")
        deployed = websocket_across_deploys(bench, stack, with_extras(b.with_app(config, "1.0.3")), site, ip)

        for mode in ("500", "deaf"):
            with Load(ip, site, bench.acme_root, b.ROUTES, rate=25) as load:
                stack.config = with_extras(b.with_app(config, "2.0.0", mode))
                t0 = time.monotonic()
                try:
                    stack.up()
                    raise BenchError(f"a release that is {mode} deployed")
                except DeployFailed as exc:
                    reason = [ln for ln in exc.stderr.splitlines() if "DEPLOY FAILED" in ln]
                bench.note(f"broken release ({mode}) refused after", f"{time.monotonic() - t0:.1f} s")
                check(
                    bool(reason) and "did not turn healthy" in reason[0],
                    f"the deploy fails with the reason: {reason[0][:150] if reason else '(none)'}",
                )
            bench.note(f"load during the {mode} release", load.result.line())
            check(
                not any("2.0.0" in v for v in load.result.versions) and load.result.failed == 0,
                f"0 requests saw the {mode} release, 0 failed",
            )
            compose = server.inspect("cat /srv/ladder/compose.yaml")
            check("demo:1.0.3" in compose and "2.0.0" not in compose, "compose.yaml still describes what runs")
        stack.config = deployed  # what runs (the failed deploys changed nothing)
        b.serves(bench, site, ip, "1.0.3", timeout=10)
        upload_kept(server)
        job_ran(server)
        job_waits_for_the_lock(server)

        psql(server, "CREATE TABLE IF NOT EXISTS bench_keep (v text); INSERT INTO bench_keep VALUES ('kept')")
        valkey(server, "set", "bench:keep", "kept")
        ssh(operator_conn(bench, ip), "sudo systemctl restart docker", None)
        b.serves(bench, site, ip, "1.0.3", timeout=120)
        check(psql(server, "SELECT v FROM bench_keep") == "kept", "a Postgres row survives a Docker restart")
        servers.shutdown(server)
        servers.boot(bench.world, server)
        b.serves(bench, site, ip, "1.0.3", timeout=180)
        wait_healthy(server, "shop-postgres-1", "Postgres healthy after the reboot", 120)
        check(psql(server, "SELECT v FROM bench_keep") == "kept", "a Postgres row survives a reboot")
        check(valkey(server, "get", "bench:keep") == "kept", "a Valkey key survives a reboot")
        check(server.inspect("findmnt -n -o SOURCE /srv/ladder-data").strip() != "", "the data volume is mounted")

        t0 = time.monotonic()
        ssh(operator_conn(bench, ip), "sudo systemctl start ladder-backup.service", None)
        keys = s3_keys(bench, "shop/bench/postgres/")
        bench.note("backup to S3", f"{time.monotonic() - t0:.1f} s")
        check(len(keys) == 1 and keys[0].endswith(".dump.gz.age"), f"the backup landed in the bucket ({keys})")
        psql(server, "DELETE FROM bench_keep")
        t0 = time.monotonic()
        done = encrypted_restore(operator_conn(bench, ip))
        bench.note("restore from S3", f"{time.monotonic() - t0:.1f} s")
        check(
            done.returncode == 0 and psql(server, "SELECT v FROM bench_keep") == "kept",
            "the restore brings the row back",
        )
        b.serves(bench, site, ip, "1.0.3", timeout=60)
        files_backed_up(bench, server, ip)

        modes = server.inspect("stat -c '%n %a' /usr/local/sbin /etc/systemd/system /etc").split()
        check(
            modes == ["/usr/local/sbin", "755", "/etc/systemd/system", "755", "/etc", "755"],
            f"system directories keep their modes {modes}",
        )
        hardening(server, ip, operator_conn(bench, ip), sudo.ADMIN_USER)
        host_key_pinned(stack, ip)
        rotation(bench, stack, server, ip)


def websocket_across_deploys(
    bench: b.Bench, stack: Stack, config: dict[str, Any], site: str, ip: str
) -> dict[str, Any]:
    """A WebSocket to the api lives through a deploy of web (the proxy is not reloaded), and
    when the api itself rolls, its old container closes it with a close frame, not a reset.
    Returns the config now deployed (both services' memory changed)."""
    ws = WebSocket(ip, site, "/api/ws", bench.acme_root)
    try:
        first = ws.ask("hello")
        check(first.get("service") == "api", f"a WebSocket reaches the api through Caddy ({first})")
        for service in ("web", "api"):
            config = copy.deepcopy(config)
            config["ladder:app"]["services"][service]["resources"]["memory"] = "80Mi"
            stack.config = config
            steps = stack.up()
            check(any(f"{service}: starting" in s.stderr for s in steps), f"a deploy rolled {service}")
            if service == "web":
                again = ws.ask("still there?")
                check(
                    again.get("echo") == "still there?" and again.get("service") == "api",
                    "the WebSocket to the api lives through a deploy of web",
                )
        opcode, payload = ws.receive(timeout=30)
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        check(
            opcode == CLOSE and code == 1001,
            f"its own deploy closes it with a close frame, 1001 (got {opcode}, {code})",
        )
    finally:
        ws.close()
    return config


_AGE_KEY: list[tuple[str, str]] = []


def operator_age_key() -> tuple[str, str]:
    """(identity file text, public key) of the bench's operator: made once with age-keygen on
    the bench host, never sent to a server (the restore decrypts here)."""
    if not _AGE_KEY:
        made = subprocess.run(["age-keygen"], capture_output=True, text=True, timeout=30, check=True)
        public = next(ln.split(": ", 1)[1] for ln in made.stderr.splitlines() if ln.startswith("Public key: "))
        _AGE_KEY.append((made.stdout, public.strip()))
    return _AGE_KEY[0]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decrypt(cipher: bytes) -> bytes:
    """What the operator does with the private key, on their own machine."""
    check(cipher.startswith(b"age-encryption.org/v1\n"), "what the bucket holds is age ciphertext")
    with tempfile.TemporaryDirectory() as d:
        identity = f"{d}/operator.key"
        with open(identity, "w", encoding="ascii") as f:
            f.write(operator_age_key()[0])
        plain = subprocess.run(
            ["age", "-d", "-i", identity], input=cipher, capture_output=True, timeout=120, check=True
        )
    return plain.stdout


def fetch_and_decrypt(conn: dict[str, Any], restore: str) -> bytes:
    """The printed restore's first half: fetch the latest ciphertext, decrypt it on this machine."""
    fetched = ssh(conn, f"sudo /usr/local/sbin/{restore} --fetch latest | base64 -w0", None)
    check(fetched.returncode == 0, f"{restore} --fetch ({fetched.stderr.strip()[-300:]})")
    return decrypt(base64.b64decode(fetched.stdout))


def encrypted_restore(conn: dict[str, Any], restore: str = "ladder-restore") -> subprocess.CompletedProcess[str]:
    """The printed restore (tools.restore): fetch the ciphertext, decrypt on this machine, stream
    the plain archive back. Binary goes over the text-mode `ssh` helper as base64."""
    command = f"/usr/local/sbin/{restore}"
    plain = fetch_and_decrypt(conn, restore)
    done: subprocess.CompletedProcess[str] = ssh(conn, f"base64 -d | sudo {command} --stdin", b64(plain))
    return done


def rotation(bench: b.Bench, stack: Stack, server: servers.Server, ip: str) -> None:
    """Keys and the allowlist change over SSH, 0.0.0.0/0 included, without locking anyone out."""
    second = keypair("colleague@laptop")
    vps = dict(stack.config["ladder:vps"])
    stack.config = {
        **stack.config,
        "ladder:vps": {**vps, "sshKeys": [bench.operator[1], second[1]], "sshAllowFrom": ["0.0.0.0/0"]},
    }
    stack.up()
    check(
        ssh({**operator_conn(bench, ip), "privateKey": second[0]}, "true", None).returncode == 0, "an added key logs in"
    )
    rules = server.inspect("ufw status")
    check(
        "22/tcp" in rules and "Anywhere" in rules.split("22/tcp", 1)[1].splitlines()[0],
        "sshAllowFrom 0.0.0.0/0 opens SSH from anywhere (and keeps the session)",
    )
    stack.config = {**stack.config, "ladder:vps": vps}
    stack.up()
    ssh_rules = [ln for ln in server.inspect("ufw status").splitlines() if ln.startswith("22/tcp")]
    check(len(ssh_rules) == 1 and w.GATEWAY in ssh_rules[0], f"narrowed back to the allowlist only ({ssh_rules})")
    check(
        ssh({**operator_conn(bench, ip), "privateKey": second[0]}, "true", None, attempts=1).returncode != 0,
        "a removed key no longer logs in",
    )
    check(ssh(operator_conn(bench, ip), "true", None).returncode == 0, "the operator still logs in")


def digitalocean_single(bench: b.Bench) -> None:
    """DigitalOcean, one droplet: the same user data path and deploy; serves with TLS. Its api
    image is on the bench's private registry: the deploy logs in with `ladder:registries`."""
    ip = f"{w.PUBLIC_PREFIX}.20"
    site = b.domain("digitalocean-1")
    config = b.vps_config(
        "digitalocean-1", "digitalocean", bench.operator[1], count=1, size="s-1vcpu-2gb", region="fra1"
    )
    config["ladder:app"] = b.private_app("1.0.0")
    stack = b.new_stack(config, {"shop-app-0": ip})
    stack.secrets["ladder:registries"] = b.registries(bench.registry_password)
    bench.world.dns_record(site, ip)
    with b.fleet(bench, stack) as fleet:
        server = fleet["shop-app-0"]
        started = time.monotonic()
        stack.up()
        b.serves(bench, site, ip, "1.0.0")
        bench.note("digitalocean x1: first deploy (boot to serving)", f"{time.monotonic() - started:.1f} s")
        pinned_by_digest(server)
        private_registry(bench, stack, server, site, ip, config)
        hardening(server, ip, operator_conn(bench, ip), sudo.ADMIN_USER)


def pinned_by_digest(server: servers.Server) -> None:
    """The images Ladder chooses run by tag and digest (the stand-ins' digests: tools/e2e/digests.py)."""
    pins = {"shop-proxy-1": versions.CADDY_IMAGE, "shop-postgres-1": versions.POSTGRES_IMAGES["17"]}
    for container, image in pins.items():
        running = server.inspect(f"docker inspect -f '{{{{.Config.Image}}}}' {container}").strip()
        check("@sha256:" in image and running == image, f"{container} runs {running}")


def api_images(server: servers.Server) -> str:
    """The image(s) the api's running containers run (names change across rolling updates)."""
    ids = server.inspect("docker ps -q --filter label=com.docker.compose.service=api").split()
    # The reference each was created from (`docker ps` shows an ID when two names share an image).
    out = server.inspect("docker inspect -f '{{.Config.Image}}' " + " ".join(ids)) if ids else ""
    return " ".join(sorted(set(out.split())))


def private_registry(
    bench: b.Bench, stack: Stack, server: servers.Server, site: str, ip: str, config: dict[str, Any]
) -> None:
    """The api runs the private image, pulled with the credentials, which the server does not keep;
    a wrong password fails the deploy naming the registry (never the password) and 1.0.0 keeps serving."""
    running = api_images(server)
    check(running.startswith(f"{w.PRIVATE_REGISTRY}/"), f"the api runs the private image ({running})")
    pulls = (bench.world.run_dir / "private-registry.log").read_text(errors="replace")
    check(f"auth.user.name={w.PRIVATE_REGISTRY_USER}" in pulls, "the private registry served an authenticated pull")
    left = server.inspect("ls -d /run/ladder-registry.* /root/.docker/config.json 2>/dev/null || true").split()
    check(not left, f"no credentials stay on the server after the deploy ({left})")

    wrong = "wrong-" + bench.registry_password
    stack.secrets["ladder:registries"] = b.registries(wrong)
    stack.config = {**config, "ladder:app": b.private_app("1.0.1")}
    try:
        stack.up()
        raise BenchError("a deploy with a wrong registry password succeeded")
    except DeployFailed as exc:
        output = exc.stderr
    reason = [ln for ln in output.splitlines() if "DEPLOY FAILED" in ln]
    check(
        bool(reason) and f"logging in to registry {w.PRIVATE_REGISTRY}" in reason[0],
        f"a wrong password fails the deploy naming the registry: {reason[0][:160] if reason else '(none)'}",
    )
    check(wrong not in output and bench.registry_password not in output, "the deploy output never shows the password")
    b.serves(bench, site, ip, "1.0.0", timeout=30)
    compose = server.inspect("cat /srv/ladder/compose.yaml")
    check(
        "private-demo:1.0.0" in compose and "private-demo:1.0.1" not in compose,
        "compose.yaml still describes what runs",
    )

    stack.secrets["ladder:registries"] = b.registries(bench.registry_password)
    stack.up()
    b.serves(bench, site, ip, "1.0.1", timeout=60)
    running = api_images(server)
    check(
        running == b.private_app("1.0.1")["services"]["api"]["image"],
        f"with the right password again, 1.0.1 rolls out ({running})",
    )


def existing_host(bench: b.Bench) -> None:
    """A host you run: user `ops` with passwordless sudo and passwords on, no cloud-init run;
    with monitoring, whose uptime watch mails through a relay that requires STARTTLS and a login."""
    ip = f"{w.PUBLIC_PREFIX}.30"
    key = keypair("ops@laptop")
    site = b.domain("existing")
    # The watch fetches the public URL as a user would: the site resolves here through /etc/hosts
    # (the bench's DNS serves only the bench) and the bench's CAs stand in for the public ones.
    server = servers.prepare(
        bench.world,
        bench.server_rootfs,
        "existing",
        ip,
        user_data=None,
        hosts={site: ip},
        trust=(bench.ca, bench.acme_root),
    )
    host_key = servers.plain_host(server, "ops", key[1])
    config = b.vps_config(
        "existing", "existing", bench.operator[1], hosts=[{"address": ip, "user": "ops", "hostKey": host_key}]
    )
    del config["ladder:vps"]["sshKeys"]
    config["ladder:monitoring"] = {
        "enabled": True,
        "alertEmail": "oncall@bench.test",
        "smtpHost": f"{w.GATEWAY}:{w.SMTP_PORT}",
        "smtpFrom": "ladder@bench.test",
        "smtpUser": w.SMTP_USER,
    }
    stack = b.new_stack(config, {})
    stack.secrets["ladder:vps.sshPrivateKey"] = key[0]
    stack.secrets["ladder:monitoring.smtpPassword"] = w.SMTP_PASSWORD
    bench.world.dns_record(site, ip)
    try:
        servers.boot(bench.world, server)
        before = password_probe(ip, "ops", "password")
        check("password" in before.stderr, "before Ladder, the host offers password logins")
        started = time.monotonic()
        stack.up()
        b.serves(bench, site, ip, "1.0.0")
        bench.note("existing host: harden + first deploy", f"{time.monotonic() - started:.1f} s")
        hardening(server, ip, {"host": ip, "user": "ops", "privateKey": key[0]}, "ops")
        uptime_watch(bench, server, site, ip)
    finally:
        servers.destroy(server)


def uptime_watch(bench: b.Bench, server: servers.Server, site: str, ip: str) -> None:
    """The watch mails once when the site goes down and once when it is back, through the relay."""

    def watch_once() -> None:
        server.inspect("systemctl start ladder-watch.service")  # oneshot: returns when the check ran

    watch_once()
    check(bench.world.mails() == [], "the watch sends nothing while the site is up")
    mode = server.inspect("stat -c '%U %a' /etc/ladder/watch.curlrc").strip()
    check(mode == "root 600", f"the watch's SMTP login is in a root-only file ({mode})")
    server.inspect("cd /srv/ladder && docker compose stop web </dev/null")
    watch_once()
    mails = bench.world.mails()
    check(len(mails) == 1 and "is down" in mails[0], f"one alert mail when the site is down ({len(mails)} mails)")
    check(
        f"X-Bench-Login: {w.SMTP_USER}" in mails[0] and "X-Bench-Rcpt: oncall@bench.test" in mails[0],
        "it went through the relay with STARTTLS and the configured login, to alertEmail",
    )
    server.inspect("cd /srv/ladder && docker compose start web </dev/null")
    b.serves(bench, site, ip, "1.0.0", timeout=60)
    watch_once()
    mails = bench.world.mails()
    check(len(mails) == 2 and "is up" in mails[1], "and one when it is back")


def local_build(bench: b.Bench) -> None:
    """The local rung builds `tests/fixtures/build` from source: the arguments the program gives
    pulumi-docker-build's `Image` (there is no Pulumi CLI here, so the bench plays the
    provider's build step), run by the bench's engine; the image runs as its USER."""
    base = "localhost:5000/ladderbench/demo:1.0.0"  # the fixture's BASE build argument, from the bench registry
    build = {"context": "tests/fixtures/build", "target": "app", "args": {"BASE": base}}
    web = {"build": build, "port": 8000, "path": "/", "health": "/", "resources": {"cpu": "100m", "memory": "64Mi"}}
    stack = b.new_stack({"ladder:phase": "local", "ladder:app": {"name": "shop", "services": {"web": web}}}, {})
    stack.secrets.clear()  # this app has no secretEnv
    result = stack.evaluate()
    check(result.error is None, "the local stack evaluates" + (f": {result.error}" if result.error else ""))
    images = [r for r in result.resources if r.type == "docker-build:index:Image"]
    check(len(images) == 1 and images[0].inputs.get("push") is False, "one image is built locally, pushed nowhere")
    i = images[0].inputs
    argv = ["docker", "-H", bench.engine, "build", "-q", "-f", i["dockerfile"]["location"], "--target", i["target"]]
    argv += [f"--build-arg={k}={v}" for k, v in sorted((i.get("buildArgs") or {}).items())]
    t0 = time.monotonic()
    built = subprocess.run(
        [*argv, "-t", "ladder-bench/local-build", i["context"]["location"]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOCKER_BUILDKIT": "0"},
    )
    check(built.returncode == 0, "the engine builds it with those arguments " + built.stderr.strip()[-300:])
    bench.note("local build of the fixture", f"{time.monotonic() - t0:.1f} s")
    inside = subprocess.run(
        [
            "docker",
            "-H",
            bench.engine,
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            "ladder-bench/local-build",
            "-c",
            "id -u; ls /app",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout.split()
    check(
        inside[:1] == ["10001"] and "index.html" in inside, f"it runs as its USER with the context's files ({inside})"
    )


def existing_root(bench: b.Bench) -> None:
    """`root` as the login user would lock Pulumi out once sshd forbids root: refused up front."""
    config = b.vps_config(
        "existing-root",
        "existing",
        bench.operator[1],
        hosts=[{"address": f"{w.PUBLIC_PREFIX}.31", "user": "root", "hostKey": keypair("x")[1]}],
    )
    stack = b.new_stack(config, {})
    stack.secrets["ladder:vps.sshPrivateKey"] = keypair("root")[0]
    result = stack.evaluate()
    message = str(result.error or "")
    check(
        result.error is not None and "ladder:vps.hosts[0].user" in message,
        f"the program refuses it naming ladder:vps.hosts[0].user ({message.strip()[:120]})",
    )
    check(not result.resources, "and registers no resource")


def hetzner_three(bench: b.Bench) -> None:
    """Hetzner, three app servers and a data server on a private network (the provider's load
    balancer is out of reach here: the bench plays it, sending plain HTTP to each app server)."""
    from components.vps import topology as t

    addresses = {
        "shop-data": f"{w.PUBLIC_PREFIX}.40",
        **{f"shop-app-{i}": f"{w.PUBLIC_PREFIX}.{41 + i}" for i in range(3)},
    }
    private = {"shop-data": t.DATA_SERVER_IP, **{f"shop-app-{i}": t.app_server_ip(i) for i in range(3)}}
    site = b.domain("hetzner-3")
    config = b.vps_config("hetzner-3", "hetzner", bench.operator[1], count=3, size="cx23", region="nbg1")
    stack = b.new_stack(config, addresses, private)
    with b.fleet(bench, stack, private) as fleet:
        started = time.monotonic()
        stack.up()
        for i in range(3):
            ip = addresses[f"shop-app-{i}"]
            wait_for(
                f"app-{i} serves over HTTP",
                lambda ip=ip: all(  # type: ignore[misc]
                    f'"{svc}"' in plain_http(ip, site, path)[2] for path, svc in b.ROUTES.items()
                ),
                120,
                interval=2,
            )
        bench.note("hetzner x3: first deploy of 4 servers", f"{time.monotonic() - started:.1f} s")
        data = fleet["shop-data"]
        names = data.inspect("docker ps --format '{{.Names}}'").split()
        check(sorted(names) == ["shop-postgres-1", "shop-valkey-1"], f"the data server runs only the stores {names}")
        app0 = fleet["shop-app-0"]
        check("postgres" not in app0.inspect("docker ps --format '{{.Names}}'"), "app servers hold no data")
        published = data.inspect("ss -Hltn | awk '{print $4}'")
        check(
            f"{t.DATA_SERVER_IP}:5432" in published and "0.0.0.0:5432" not in published,
            "Postgres listens on the private address only",
        )
        status, body = 0, ""
        for i in range(3):
            status, _, body = plain_http(addresses[f"shop-app-{i}"], site, "/api/deep")
            check(status == 200 and "releases" in body, f"app-{i} reaches Postgres and Valkey over the private network")
