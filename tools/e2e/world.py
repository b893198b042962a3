"""The bench's own small internet on this machine: a bridge for the servers' public
network, a private bridge, and the services a real server would reach (a registry that
mirrors docker.io, an apt repository, an ACME CA with its DNS, S3), all on 198.18.0.1.

198.18.0.0/15 is the range set aside for benchmarks (RFC 2544): nothing real lives there.
Every process and link started here is stopped by `World.close()`, even on failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tools.e2e.proc import BenchError, run, wait_for

GATEWAY = "198.18.0.1"
PUBLIC_PREFIX = "198.18.0"
PUBLIC_BRIDGE = "lb-pub"
PRIVATE_BRIDGE = "lb-priv"
SWITCH_NETNS = "lb-switch"  # holds the private bridge
REGISTRY_PORT = 5000
# A private registry beside the mirror: htpasswd (bcrypt) basic auth, plain HTTP like the mirror
# (the servers list it in `insecure-registries`). The password is the bench's own.
PRIVATE_REGISTRY_PORT = 5001
PRIVATE_REGISTRY = f"{GATEWAY}:{PRIVATE_REGISTRY_PORT}"
PRIVATE_REGISTRY_USER = "bench-puller"
APT_PORT = 8081
ACME_PORT = 14000
ACME_MGMT_PORT = 15000
DNS_PORT = 8053
DNS_MGMT_PORT = 8055
S3_PORT = 4443
SMTP_PORT = 2587
SMTP_USER = "alerts@bench.test"
SMTP_PASSWORD = 'relay "pass" $1'  # quotes and a dollar: the watch must send it as it is
ACME_DIRECTORY = f"https://{GATEWAY}:{ACME_PORT}/dir"
S3_ENDPOINT = f"https://{GATEWAY}:{S3_PORT}"
# A certificate request with a new P-256 key, unencrypted (the bench's CA and its server certs).
NEW_EC_KEY_REQUEST = ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


@dataclass
class World:
    cache: Path
    run_dir: Path
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # --- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> World:
        self.sweep()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return self

    def sweep(self) -> None:
        """Remove what an earlier run killed with SIGKILL left behind (mounts, loop devices, links)."""
        for merged in sorted(self.run_dir.glob("servers/*/merged")):
            run(["umount", "-l", str(merged)], check=False)
        for image in sorted(self.run_dir.glob("servers/*/volume.img")):
            for line in run(["losetup", "-j", str(image)], check=False).stdout.splitlines():
                run(["losetup", "-d", line.split(":")[0]], check=False)
        for ns in run(["ip", "netns", "list"], check=False).stdout.split():
            if ns.startswith("lb-"):
                run(["ip", "netns", "del", ns], check=False)
        run(["ip", "link", "del", PUBLIC_BRIDGE], check=False)
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stack.close()
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()
        run(["ip", "link", "del", PUBLIC_BRIDGE], check=False)
        run(["ip", "netns", "del", SWITCH_NETNS], check=False)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.run_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the world
        self.stack.callback(log.close)
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        self.procs.append(proc)
        return proc

    # --- network ---------------------------------------------------------------------

    def network(self) -> None:
        run(["ip", "link", "del", PUBLIC_BRIDGE], check=False)
        run(["ip", "link", "add", PUBLIC_BRIDGE, "type", "bridge"])
        run(["ip", "link", "set", PUBLIC_BRIDGE, "up"])
        # Only the public bridge has an address here: this machine plays the internet and the
        # operator's laptop. The private network is a bridge in a namespace of its own, reachable
        # from the servers alone, and its frames never meet this machine's iptables (where a host
        # Docker engine may have set FORWARD to DROP with br_netfilter loaded).
        run(["ip", "addr", "add", f"{GATEWAY}/24", "dev", PUBLIC_BRIDGE])
        run(["ip", "netns", "del", SWITCH_NETNS], check=False)
        run(["ip", "netns", "add", SWITCH_NETNS])
        run(["ip", "-n", SWITCH_NETNS, "link", "add", PRIVATE_BRIDGE, "type", "bridge"])
        run(["ip", "-n", SWITCH_NETNS, "link", "set", PRIVATE_BRIDGE, "up"])

    # --- certificates ----------------------------------------------------------------

    def ca(self) -> tuple[Path, Path]:
        """The bench CA (cached): signs the ACME server's and S3's HTTPS certificates."""
        d = self.cache / "ca"
        crt, key = d / "ca.crt", d / "ca.key"
        if not crt.exists():
            d.mkdir(parents=True, exist_ok=True)
            run(
                [
                    *NEW_EC_KEY_REQUEST,
                    "-x509",
                    "-keyout",
                    str(key),
                    "-out",
                    str(crt),
                    "-days",
                    "3650",
                    "-subj",
                    "/CN=Ladder bench CA",
                ]
            )
        return crt, key

    def server_cert(self, name: str) -> tuple[Path, Path]:
        ca_crt, ca_key = self.ca()
        d = self.run_dir / "certs"
        d.mkdir(exist_ok=True)
        crt, key, csr, ext = (d / f"{name}.{s}" for s in ("crt", "key", "csr", "ext"))
        ext.write_text(f"subjectAltName=IP:{GATEWAY},DNS:localhost\nextendedKeyUsage=serverAuth\n")
        run(
            [
                *NEW_EC_KEY_REQUEST,
                "-keyout",
                str(key),
                "-out",
                str(csr),
                "-subj",
                f"/CN={name}",
            ]
        )
        run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                str(csr),
                "-CA",
                str(ca_crt),
                "-CAkey",
                str(ca_key),
                "-CAcreateserial",
                "-out",
                str(crt),
                "-days",
                "30",
                "-extfile",
                str(ext),
            ]
        )
        return crt, key

    # --- services --------------------------------------------------------------------

    def engine(self) -> str:
        """The bench's own Docker engine (builds and pushes the stand-in images only)."""
        sock = self.run_dir / "docker.sock"
        self.spawn(
            "dockerd",
            [
                "dockerd",
                "--data-root",
                str(self.cache / "engine"),
                "--exec-root",
                str(self.run_dir / "engine-exec"),
                "--pidfile",
                str(self.run_dir / "dockerd.pid"),
                "-H",
                f"unix://{sock}",
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-masq=false",
            ],
        )
        host = f"unix://{sock}"
        wait_for(
            "the bench's Docker engine", lambda: run(["docker", "-H", host, "info"], check=False).returncode == 0, 60
        )
        return host

    def registry(self) -> None:
        config = self.run_dir / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.cache / 'registry'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 0.0.0.0:{REGISTRY_PORT}\n"
        )
        self.spawn("registry", ["docker-registry", "serve", str(config)])
        wait_for("the registry", lambda: _http_ok(f"http://127.0.0.1:{REGISTRY_PORT}/v2/"), 30)

    def private_registry(self, password: str) -> None:
        """A second `docker-registry` (distribution 2.8) that answers only to PRIVATE_REGISTRY_USER.

        distribution's htpasswd backend reads bcrypt entries only: Debian's `htpasswd`
        (apache2-utils) writes one, the password on stdin. Its storage is per run."""
        line = run(["htpasswd", "-niB", "-C", "10", PRIVATE_REGISTRY_USER], input=password).stdout.strip()
        htpasswd = self.run_dir / "private-registry.htpasswd"
        htpasswd.write_text(line + "\n")
        config = self.run_dir / "private-registry.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.run_dir / 'private-registry'}\n"
            f"http:\n  addr: 0.0.0.0:{PRIVATE_REGISTRY_PORT}\n"
            f"auth:\n  htpasswd:\n    realm: ladder-bench\n    path: {htpasswd}\n"
        )
        self.spawn("private-registry", ["docker-registry", "serve", str(config)])
        url = f"http://127.0.0.1:{PRIVATE_REGISTRY_PORT}/v2/"
        wait_for("the private registry (asks for credentials)", lambda: _http_ok(url, expect=(401,)), 30)

    def apt_repo(self) -> None:
        """A flat apt repository holding what Ubuntu has and Debian lacks: `docker-compose-v2`
        (Ubuntu's package of the Compose plugin; Debian's is `docker-compose`)."""
        repo = self.run_dir / "apt"
        pkg = self.run_dir / "apt-build/docker-compose-v2"
        (pkg / "DEBIAN").mkdir(parents=True, exist_ok=True)
        (pkg / "DEBIAN/control").write_text(
            "Package: docker-compose-v2\nVersion: 2.26.1-ladder-bench\nArchitecture: all\n"
            "Maintainer: Ladder bench <bench@ladder.invalid>\nDepends: docker-compose (>= 2)\n"
            "Description: Ubuntu's name for the Compose v2 plugin, provided by Debian's docker-compose\n"
        )
        repo.mkdir(exist_ok=True)
        deb = repo / "docker-compose-v2_all.deb"
        run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)])
        control = (pkg / "DEBIAN/control").read_text().rstrip("\n")
        data = deb.read_bytes()
        packages = (
            f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n\n"
        )
        (repo / "Packages").write_text(packages)
        digest = hashlib.sha256(packages.encode()).hexdigest()
        (repo / "Release").write_text(
            f"Origin: ladder-bench\nLabel: ladder-bench\nSuite: bench\nCodename: bench\n"
            f"Architectures: amd64 all\nSHA256:\n {digest} {len(packages)} Packages\n"
        )
        self.spawn("apt", ["python3", "-m", "http.server", "--bind", GATEWAY, "--directory", str(repo), str(APT_PORT)])
        wait_for("the apt repository", lambda: _http_ok(f"http://{GATEWAY}:{APT_PORT}/Release"), 30)

    def acme(self) -> None:
        """Pebble (an ACME CA for tests) and its DNS: Caddy gets real certificates through
        HTTP-01 on port 80 of the server, as it would from Let's Encrypt."""
        crt, key = self.server_cert("acme")
        config = self.run_dir / "pebble.json"
        config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"{GATEWAY}:{ACME_PORT}",
                        "managementListenAddress": f"{GATEWAY}:{ACME_MGMT_PORT}",
                        "certificate": str(crt),
                        "privateKey": str(key),
                        "httpPort": 80,
                        "tlsPort": 443,
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                    }
                }
            )
        )
        self.spawn(
            "dns",
            [
                "pebble-challtestsrv",
                "-dns01",
                f"{GATEWAY}:{DNS_PORT}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                f"{GATEWAY}:{DNS_MGMT_PORT}",
                "-defaultIPv4",
                GATEWAY,
                "-defaultIPv6",
                "",
            ],
        )
        self.spawn(
            "acme",
            ["pebble", "-config", str(config), "-dnsserver", f"{GATEWAY}:{DNS_PORT}"],
            env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "100"},
        )
        wait_for("the ACME server", lambda: _http_ok(ACME_DIRECTORY, self.ca()[0]), 30)
        wait_for("the ACME DNS", lambda: _http_ok(f"http://{GATEWAY}:{DNS_MGMT_PORT}/", expect=(200, 404, 405)), 30)

    def dns_record(self, host: str, address: str) -> None:
        req = urllib.request.Request(
            f"http://{GATEWAY}:{DNS_MGMT_PORT}/add-a",
            data=json.dumps({"host": host.rstrip(".") + ".", "addresses": [address]}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status != 200:
                raise BenchError(f"DNS record for {host}: HTTP {resp.status}")

    def acme_root(self) -> Path:
        """The root of the certificates the ACME server issues (what browsers would trust)."""
        path = self.run_dir / "acme-root.pem"
        ctx = _ssl_context(self.ca()[0])
        with urllib.request.urlopen(f"https://{GATEWAY}:{ACME_MGMT_PORT}/roots/0", timeout=10, context=ctx) as resp:
            path.write_bytes(resp.read())
        return path

    def s3(self, venv_bin: Path) -> None:
        crt, key = self.server_cert("s3")
        self.spawn(
            "s3", [str(venv_bin / "moto_server"), "-H", GATEWAY, "-p", str(S3_PORT), "-c", str(crt), "-k", str(key)]
        )
        wait_for("the S3 stand-in", lambda: _http_ok(S3_ENDPOINT + "/", self.ca()[0], expect=(200, 403)), 60)

    def smtp(self, venv_bin: Path) -> None:
        """A mail relay (STARTTLS required, with a login) for the uptime watch's alerts."""
        crt, key = self.server_cert("smtp")
        argv = [str(venv_bin / "python"), "-m", "tools.e2e.smtp", GATEWAY, str(SMTP_PORT), str(crt), str(key)]
        self.spawn("smtp", [*argv, SMTP_USER, SMTP_PASSWORD, str(self.maildir)])
        wait_for("the mail relay", lambda: "listening" in (self.run_dir / "smtp.log").read_text(), 30)

    @property
    def maildir(self) -> Path:
        return self.run_dir / "mail"

    def mails(self) -> list[str]:
        return [p.read_text(errors="replace") for p in sorted(self.maildir.glob("*.eml"))]


def _ssl_context(ca: Path | None):  # type: ignore[no-untyped-def]
    import ssl

    return ssl.create_default_context(cafile=str(ca)) if ca else None


def _http_ok(url: str, ca: Path | None = None, expect: tuple[int, ...] = (200,)) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3, context=_ssl_context(ca)) as resp:
            return resp.status in expect
    except urllib.error.HTTPError as exc:
        return exc.code in expect
    except OSError:
        return False
