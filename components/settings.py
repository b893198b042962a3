"""The config contract: every `ladder:` key as a typed, frozen model.

Validation happens here, once, before any resource is registered. Everything is pure:
`parse_settings` takes the raw key/value map (what Pulumi hands the program) and returns
a frozen `Settings` or raises `ConfigError` listing every problem with its full key path,
so a typo in a stack file fails `pulumi preview` with a message a human can act on
instead of a half-built stack or a Python traceback.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from components import backup_buckets, grammar, versions
from components.app_overrides import OVERRIDES_KEY, apply_app_overrides

NAMESPACE = "ladder"

Phase = Literal["local", "vps", "cluster"]
ProviderName = Literal["docker", "hetzner", "digitalocean", "existing"]
PostgresMode = Literal["container", "managed", "operator", "external", "none"]
RedisMode = Literal["container", "managed", "external", "none"]
IngressController = Literal["traefik", "ingress-nginx"]

# Where each rung may run, and what each provider offers for data stores. One table, so
# the error messages and the rung code cannot disagree.
PROVIDERS_BY_PHASE: dict[str, tuple[str, ...]] = {
    "local": ("docker",),
    "vps": ("hetzner", "digitalocean", "existing"),
    "cluster": ("digitalocean", "hetzner", "existing"),
}
POSTGRES_MODES_BY_PHASE: dict[str, tuple[str, ...]] = {
    "local": ("container", "external", "none"),
    "vps": ("container", "managed", "external", "none"),
    "cluster": ("operator", "managed", "external", "none"),
}
REDIS_MODES_BY_PHASE: dict[str, tuple[str, ...]] = {
    "local": ("container", "external", "none"),
    "vps": ("container", "managed", "external", "none"),
    "cluster": ("container", "managed", "external", "none"),
}
MANAGED_DATA_PROVIDERS = ("digitalocean",)
DEFAULT_POSTGRES_MODE = {"local": "container", "vps": "container", "cluster": "operator"}

# Environment variables Ladder injects itself; letting users set them would shadow the
# connection strings of the stores Ladder provisions.
INJECTED_ENV = ("DATABASE_URL", "REDIS_URL")

DNS_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DNS_LABEL_RE = re.compile(rf"^{DNS_LABEL}$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CPU_RE = re.compile(r"^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$")
_MEMORY_RE = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$")
# Docker's reference grammar (distribution/reference), split into its parts.
_IMAGE_RE = re.compile(
    r"^(?P<name>"
    r"(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?)/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_SSH_KEY_RE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\x00-\x1f\x7f]*)?"
)
# A registry host as `docker login` takes it: host[:port], no scheme, no path.
_REGISTRY_HOST_RE = re.compile(
    r"^(localhost|[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
    r"|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?$"
)
# Docker Hub answers to several names; Docker's own config keys it as `docker.io`.
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
# A repository to push to: registry host, then one or more lowercase path components.
_REPO_RE = re.compile(r"^[a-zA-Z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$")
_STAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
# An absolute container path: segments of letters, digits, '.', '_', '-' (no '..', no
# spaces, no shell or YAML metacharacters), so it is safe in a compose volume spec, a
# unit file, a tar argument and a Kubernetes mountPath alike.
_MOUNT_PATH_RE = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
# Where a volume must not go: kernel filesystems, and /tmp (every pod already mounts its own).
_RESERVED_MOUNTS = ("/proc", "/sys", "/dev", "/tmp", "/run", "/etc")
_K8S_VERSION_RE = re.compile(r"^1\.[0-9]{2}$")
_HCLOUD_SIZE_RE = re.compile(r"^[a-z]{2,4}[0-9]{1,3}$")  # cx23, cpx32, cax11, ccx13
_DO_SIZE_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")  # s-1vcpu-2gb, g-2vcpu-8gb


class ConfigError(Exception):
    """A stack's configuration is wrong; `problems` pairs each key path with what is expected."""

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems: list[tuple[str, str]] = list(problems)
        lines = [f"  {path}: {what}" for path, what in self.problems]
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid Ladder configuration ({count} {noun}):\n" + "\n".join(lines))


# ---------------------------------------------------------------------------------------
# Field types


def _image(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    match = _IMAGE_RE.fullmatch(value) if len(value) <= 255 else None
    if not match:
        raise ValueError("expected an image reference like ghcr.io/acme/api:1.4.2")
    tag, digest = match.group("tag"), match.group("digest")
    if not tag and not digest:
        raise ValueError("pin the image with a tag or digest (ghcr.io/acme/api:1.4.2)")
    if tag == "latest" and not digest:
        raise ValueError("`latest` is not a version: pin a tag such as :1.4.2 or a digest")
    return value


def _registry_host(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    # No stripping: a value with whitespace around it is a typo or worse, never another host.
    host = value.lower()
    if host.startswith("https://index.docker.io/v1"):
        return DOCKER_HUB
    if not _REGISTRY_HOST_RE.fullmatch(host):
        raise ValueError("expected a registry host such as ghcr.io or registry.example.com:5000 (no https://, no path)")
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


def image_registry(reference: str) -> str:
    """The registry host an image reference is pulled from (`docker.io` when it names none).

    Docker's rule (distribution/reference): the first path component is a host only when
    it contains a '.' or a ':' or is `localhost`.
    """
    first, sep, _ = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host = first.lower()
        return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host
    return DOCKER_HUB


def docr_registry_name(s: Settings) -> str | None:
    """The DigitalOcean Container Registry the app uses: `registry.digitalocean.com/<name>/...`."""
    refs = [s.app.default_repo or "", *(svc.image or "" for svc in s.app.services.values())]
    for ref in refs:
        parts = ref.split("/")
        if len(parts) >= 2 and parts[0] == "registry.digitalocean.com":
            return parts[1].split(":")[0].split("@")[0]
    return None


def _repo(value: Any) -> Any:
    if isinstance(value, str) and not _REPO_RE.fullmatch(value):
        raise ValueError("expected a registry and namespace to push to, such as ghcr.io/acme")
    return value


def _build_arg_value(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and any(ord(c) < 32 and c != "\t" for c in value):
        raise ValueError("build argument values are single-line text (no control characters)")
    return value


def _relative_path(value: Any) -> Any:
    if isinstance(value, str) and (
        not value or value.startswith(("/", "~")) or "\\" in value or any(ord(c) < 32 for c in value)
    ):
        raise ValueError("expected a path relative to the project directory (where Pulumi.yaml is), e.g. ./app")
    return value


def _container_path(value: Any) -> Any:
    if isinstance(value, str) and (not value.startswith("/") or any(ord(c) < 32 for c in value) or ":" in value):
        raise ValueError("expected an absolute path inside the container, e.g. /app/src")
    return value


def _dns_label(value: Any) -> Any:
    if isinstance(value, str) and not _DNS_LABEL_RE.fullmatch(value):
        raise ValueError(
            "expected a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
        )
    return value


def _strings(check: Callable[[str], str]) -> Any:
    """A pydantic before-validator applying a `components.grammar` check to strings (other types
    fall through to pydantic's own type error)."""

    def validate(value: Any) -> Any:
        return check(value) if isinstance(value, str) else value

    return validate


def _env_name(value: Any) -> Any:
    if isinstance(value, str) and not _ENV_NAME_RE.fullmatch(value):
        raise ValueError("expected an environment variable name like STRIPE_KEY")
    return value


def _cidr(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError("expected an IP address or CIDR such as 203.0.113.7/32") from None


def _ssh_key(value: Any) -> Any:
    if isinstance(value, str) and not _SSH_KEY_RE.fullmatch(value.strip()):
        raise ValueError("expected an OpenSSH public key line such as 'ssh-ed25519 AAAA... you@laptop'")
    return value.strip() if isinstance(value, str) else value


def _mount_path(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if not _MOUNT_PATH_RE.fullmatch(value) or any(seg in (".", "..") for seg in value.split("/")):
        raise ValueError("expected an absolute path such as /app/uploads (letters, digits, '.', '_', '-')")
    if any(value.lower() == r or value.lower().startswith(r + "/") for r in _RESERVED_MOUNTS):
        raise ValueError(f"{value} is reserved; mount volumes elsewhere (e.g. /data)")
    return value


def _egress_target(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        pass
    try:
        return grammar.hostname(value).lower()
    except ValueError:
        raise ValueError("expected a CIDR such as 203.0.113.0/24 or a host name such as smtp.example.com") from None


def _string_env(value: Any) -> Any:
    # YAML turns `DEBUG: 1` into an int; environment values are strings.
    if isinstance(value, dict):
        return {
            k: (str(v).lower() if isinstance(v, bool) else str(v)) if isinstance(v, (int, float, bool)) else v
            for k, v in value.items()
        }
    return value


def _quoted_version(value: Any) -> Any:
    # YAML reads `1.30` as the float 1.3: refuse numbers instead of guessing.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError('quote the version, e.g. "1.34" (YAML reads 1.30 as the number 1.3)')
    if isinstance(value, str) and not _K8S_VERSION_RE.fullmatch(value):
        raise ValueError('expected a Kubernetes minor version prefix such as "1.34"')
    return value


def _version_key(choices: Mapping[str, str]) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value not in choices:
            raise ValueError(f"expected one of {', '.join(sorted(choices))}")
        return value

    return check


def _quantity(pattern: re.Pattern[str], example: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and not pattern.fullmatch(value):
            raise ValueError(f"expected a Kubernetes quantity such as {example}")
        return value

    return check


Image = Annotated[str, BeforeValidator(_image)]
DnsLabel = Annotated[str, Field(max_length=40), BeforeValidator(_dns_label)]
Hostname = Annotated[str, BeforeValidator(_strings(grammar.hostname))]
Email = Annotated[str, BeforeValidator(_strings(grammar.email))]
EnvName = Annotated[str, BeforeValidator(_env_name)]
UrlPath = Annotated[str, BeforeValidator(_strings(grammar.url_path))]
Cidr = Annotated[str, BeforeValidator(_cidr)]
SshPublicKey = Annotated[str, BeforeValidator(_ssh_key)]
Cron = Annotated[str, BeforeValidator(_strings(grammar.cron))]
HostAddress = Annotated[str, BeforeValidator(_strings(grammar.host_address))]
HostPort = Annotated[str, BeforeValidator(_strings(grammar.host_port))]
PosixUser = Annotated[str, BeforeValidator(_strings(grammar.posix_user))]
HeaderSafe = Annotated[str, Field(max_length=256), BeforeValidator(_strings(grammar.header_safe))]
Text = Annotated[str, BeforeValidator(_strings(grammar.no_nul))]
Region = Annotated[str, BeforeValidator(_strings(grammar.region))]
Slug = Annotated[str, BeforeValidator(_strings(grammar.slug))]
BucketName = Annotated[str, BeforeValidator(_strings(grammar.s3_bucket))]
HttpsEndpoint = Annotated[str, BeforeValidator(_strings(grammar.https_endpoint))]
AgeRecipient = Annotated[str, BeforeValidator(_strings(grammar.age_recipient))]
# Secrets: validated like the rest, but pydantic never keeps them in a repr or an error.
SecretText = Annotated[SecretStr, BeforeValidator(_strings(grammar.no_nul))]
SecretLine = Annotated[SecretStr, BeforeValidator(_strings(grammar.header_safe))]
SecretCredential = Annotated[SecretStr, BeforeValidator(_strings(grammar.credential))]
SecretCryptKey = Annotated[SecretStr, BeforeValidator(_strings(grammar.crypt_key))]
MountPath = Annotated[str, BeforeValidator(_mount_path)]
EgressTarget = Annotated[str, BeforeValidator(_egress_target)]
Port = Annotated[int, Field(ge=1, le=65535)]
RegistryHost = Annotated[str, BeforeValidator(_registry_host)]
Repo = Annotated[str, BeforeValidator(_repo)]
RelativePath = Annotated[str, BeforeValidator(_relative_path)]
ContainerPath = Annotated[str, BeforeValidator(_container_path)]
BuildArgValue = Annotated[str, BeforeValidator(_build_arg_value)]
Stage = Annotated[str, Field(pattern=_STAGE_RE.pattern)]
# The Linux entries of pulumi-docker-build's `Platform` enum (its others are OS/arch pairs
# no Ladder rung runs).
BuildPlatform = Literal[
    "linux/386",
    "linux/amd64",
    "linux/arm",
    "linux/arm64",
    "linux/mips64",
    "linux/mips64le",
    "linux/ppc64le",
    "linux/riscv64",
    "linux/s390x",
]
CpuQuantity = Annotated[str, BeforeValidator(_quantity(_CPU_RE, "250m or 0.5"))]
MemoryQuantity = Annotated[str, BeforeValidator(_quantity(_MEMORY_RE, "256Mi or 1Gi"))]


class _Model(BaseModel):
    """Strict-ish base: camelCase keys as users write them, unknown keys rejected, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------------------------------
# ladder:app


class Autoscale(_Model):
    min: int = Field(ge=1, le=1000)
    max: int = Field(ge=1, le=1000)
    cpu: int | None = Field(default=70, ge=1, le=100)
    memory: int | None = Field(default=None, ge=1, le=100)


class Resources(_Model):
    cpu: CpuQuantity = "100m"
    memory: MemoryQuantity = "128Mi"


class Build(_Model):
    """Build the service's image from source (`docker build`), instead of pulling `image`.

    Paths are relative to the project directory; `dockerfile` is relative to `context`,
    as in Compose.
    """

    context: RelativePath = "."
    dockerfile: RelativePath = "Dockerfile"
    target: Stage | None = None
    args: dict[EnvName, BuildArgValue] = {}
    platform: BuildPlatform | None = None

    @property
    def dockerfile_path(self) -> str:
        """The Dockerfile relative to the project directory (what the build provider takes)."""
        return str(Path(self.context) / self.dockerfile)


class Mount(_Model):
    source: RelativePath
    target: ContainerPath
    read_only: bool = Field(default=False, alias="readOnly")


class Dev(_Model):
    """What only the local rung uses: source bind mounts for hot reload and a dev command."""

    mounts: list[Mount] = []
    command: list[str] | None = Field(default=None, min_length=1)


class Volume(_Model):
    """Persistent storage mounted into one container (`services.<name>.volumes.<mountPath>`)."""

    size_gb: int = Field(default=1, ge=1, le=16384, alias="sizeGb")


def volume_slug(mount_path: str) -> str:
    """A DNS-label name for a mount path (`/app/uploads` -> `app-uploads`): volume, PVC and directory names."""
    return re.sub(r"[^a-z0-9]+", "-", mount_path.lower()).strip("-") or "root"


class Service(_Model):
    image: Image | None = None
    build: Build | None = None
    dev: Dev | None = None
    port: Port | None = None
    path: UrlPath | None = None
    replicas: int | None = Field(default=None, ge=0, le=1000)
    health: UrlPath | None = None
    command: list[Text] | None = Field(default=None, min_length=1)
    # A service without a port has no HTTP endpoint to probe: this command (exec, no
    # shell) tells the cluster it is alive; a non-zero exit restarts the container.
    liveness: list[Text] | None = Field(default=None, min_length=1)
    autoscale: Autoscale | None = None
    resources: Resources = Resources()
    volumes: dict[MountPath, Volume] = {}
    # Sticky sessions: a client keeps reaching the replica that served it first (a cookie
    # set by the proxy), for WebSockets and in-memory sessions spread over replicas.
    sticky: bool = False

    @property
    def routed(self) -> bool:
        return self.port is not None

    @property
    def pulled_image(self) -> str:
        """The prebuilt image reference of a service without `build` (settings guarantee one)."""
        assert self.image is not None, "a built service's reference comes from components.images"
        return self.image

    @property
    def route(self) -> str:
        return self.path or "/"

    @property
    def health_path(self) -> str:
        return self.health or "/"

    @property
    def replica_count(self) -> int:
        if self.replicas is not None:
            return self.replicas
        return self.autoscale.min if self.autoscale else 1


class Release(_Model):
    service: DnsLabel
    command: list[Text] = Field(min_length=1)


class Job(_Model):
    """A scheduled command in a service's image (`ladder:app.jobs.<name>`)."""

    service: DnsLabel
    command: list[Text] = Field(min_length=1)
    schedule: Cron
    # Seconds; the job is killed (and counted as failed) after this long.
    timeout: int = Field(default=3600, ge=10, le=86400)


class App(_Model):
    name: DnsLabel
    env: dict[EnvName, Text] = {}
    secret_env: list[EnvName] = Field(default=[], alias="secretEnv")
    release: Release | None = None
    services: dict[DnsLabel, Service] = Field(min_length=1)
    # Where built images are pushed on vps/cluster: a registry host and namespace
    # (Skaffold's `default-repo`); each build becomes `<defaultRepo>/<app>-<service>`.
    default_repo: Repo | None = Field(default=None, alias="defaultRepo")
    jobs: dict[DnsLabel, Job] = {}

    @field_validator("env", mode="before")
    @classmethod
    def _stringify_env(cls, value: Any) -> Any:
        return _string_env(value)

    @property
    def database(self) -> str:
        """Postgres database and owner name on every rung (identifiers take no '-')."""
        return self.name.replace("-", "_")

    @property
    def routed_services(self) -> dict[str, Service]:
        return {name: svc for name, svc in self.services.items() if svc.routed}


# ---------------------------------------------------------------------------------------
# data stores


class PostgresConfig(_Model):
    mode: PostgresMode | None = None
    # local only: publish the store on 127.0.0.1:<port> for psql and GUI tools.
    publish_port: Port | None = Field(default=None, alias="publishPort")
    version: Annotated[str, BeforeValidator(_version_key(versions.POSTGRES_IMAGES))] = versions.DEFAULT_POSTGRES_VERSION
    storage_gb: int = Field(default=10, ge=1, le=16384, alias="storageGb")
    instances: int = Field(default=1, ge=1, le=9)
    size: Slug | None = None


class RedisConfig(_Model):
    mode: RedisMode = "container"
    publish_port: Port | None = Field(default=None, alias="publishPort")
    version: Annotated[str, BeforeValidator(_version_key(versions.VALKEY_IMAGES))] = versions.DEFAULT_VALKEY_VERSION
    max_memory_mb: int = Field(default=128, ge=16, le=65536, alias="maxMemoryMb")
    size: Slug | None = None


# ---------------------------------------------------------------------------------------
# where it runs


class Host(_Model):
    address: HostAddress
    # No default: the usual default (root) is refused, and a guess would lock Ladder out.
    user: PosixUser
    port: Port = 22
    # The host's SSH host key as `ssh-keyscan -t ed25519 HOST` prints it (without the host
    # name): Pulumi refuses to talk to anything else at that address.
    host_key: SshPublicKey = Field(alias="hostKey")


class VpsConfig(_Model):
    count: int | None = Field(default=None, ge=1, le=20)
    size: Slug | None = None
    region: Region | None = None
    image: Slug | None = None
    ssh_keys: list[SshPublicKey] = Field(default=[], alias="sshKeys")
    ssh_allow_from: list[Cidr] = Field(default=[], alias="sshAllowFrom")
    volume_gb: int = Field(default=10, ge=10, le=10240, alias="volumeGb")
    hosts: list[Host] = []
    server_backups: bool = Field(default=False, alias="serverBackups")
    ssh_private_key: SecretText | None = Field(default=None, alias="sshPrivateKey")

    @property
    def server_count(self) -> int:
        if self.hosts:
            return len(self.hosts)
        return self.count or 1


class ClusterConfig(_Model):
    version: Annotated[str, BeforeValidator(_quoted_version)] = versions.DEFAULT_KUBERNETES_MINOR
    node_size: Slug | None = Field(default=None, alias="nodeSize")
    min_nodes: int = Field(default=2, ge=1, le=100, alias="minNodes")
    max_nodes: int = Field(default=4, ge=1, le=100, alias="maxNodes")
    region: Region | None = None
    ha_control_plane: bool = Field(default=False, alias="haControlPlane")
    ingress: IngressController = "traefik"
    kubeconfig: SecretText | None = None
    # k3s on Hetzner: the token the cloud controller manager and CSI driver keep in
    # kube-system. Separate from `hcloud:token` (Pulumi's), so a cluster compromise never
    # yields the token that manages the project's servers, and either can be revoked alone.
    hcloud_token: SecretLine | None = Field(default=None, alias="hcloudToken")
    # DOKS: CIDRs allowed to reach the Kubernetes API (the control plane firewall). Other
    # providers ignore it (k3s opens 6443 to vps.sshAllowFrom), so switching provider is one edit.
    api_allow_from: list[Cidr] = Field(default=[], alias="apiAllowFrom")


DOCR = "registry.digitalocean.com"


class Registry(_Model):
    """Credentials for one private registry; `password` (a token) only as a Pulumi secret.

    Both may be left out for DigitalOcean Container Registry on a DigitalOcean cluster:
    the program then mints them (`digitalocean.ContainerRegistryDockerCredentials`).
    """

    server: RegistryHost
    # On the VPS deploy's command line (`docker login --username`) and in Docker's config.json.
    username: (
        Annotated[
            str,
            BeforeValidator(_strings(grammar.header_safe)),
            Field(min_length=1, max_length=256, pattern=r"^[^:\s]+$"),
        ]
        | None
    ) = None
    # One line: the VPS deploy feeds it to `docker login --password-stdin`, which keeps
    # everything but a final newline.
    password: Annotated[SecretStr, BeforeValidator(_strings(grammar.header_safe)), Field(min_length=1)] | None = None

    @property
    def minted(self) -> bool:
        """True when the credentials come from the DigitalOcean provider, not the config."""
        return self.password is None


class Tenant(_Model):
    name: DnsLabel
    domain: Hostname


class BackupsConfig(_Model):
    bucket: BucketName
    endpoint: HttpsEndpoint | None = None
    region: Region = "us-east-1"
    schedule: Cron = "0 */6 * * *"
    retention_days: int = Field(default=30, ge=1, le=3650, alias="retentionDays")
    create: bool = False
    access_key_id: SecretCredential | None = Field(default=None, alias="accessKeyId")
    secret_access_key: SecretCredential | None = Field(default=None, alias="secretAccessKey")
    # The public half of an age key pair the operator keeps (`age-keygen`): the VPS backup
    # encrypts every dump to it before upload; only the private half, never on a server,
    # decrypts. A public key, so not a secret.
    age_recipient: AgeRecipient | None = Field(default=None, alias="ageRecipient")
    # The cluster rung's volume and accessory backups are sealed with rclone's crypt (no
    # pinnable image ships age): a symmetric passphrase the operator keeps a copy of, set with
    # `--secret`; it reaches the tenant's Kubernetes Secret and nothing else.
    encryption_key: SecretCryptKey | None = Field(default=None, alias="encryptionKey")


class MonitoringConfig(_Model):
    enabled: bool = False
    alert_email: Email | None = Field(default=None, alias="alertEmail")
    # Alertmanager needs a mail relay to send alerts (cluster rung); host:port.
    smtp_host: HostPort | None = Field(default=None, alias="smtpHost")
    smtp_from: Email | None = Field(default=None, alias="smtpFrom")
    smtp_user: HeaderSafe | None = Field(default=None, alias="smtpUser")
    smtp_password: SecretLine | None = Field(default=None, alias="smtpPassword")


class AccessoryBackup(_Model):
    """How an accessory is backed up: a dump `command` (run in its image, writing the dump
    to stdout) or `paths` (directories of its volumes, archived with tar). Exactly one."""

    command: list[Text] | None = Field(default=None, min_length=1)
    paths: list[MountPath] | None = Field(default=None, min_length=1)


class Accessory(_Model):
    """Another data store from an image (`ladder:accessories.<name>`), internal only."""

    image: Image
    port: Port
    env: Annotated[dict[EnvName, Text], BeforeValidator(_string_env)] = {}
    # Names whose values are set with `pulumi config set --secret --path 'ladder:secrets.NAME'`.
    secret_env: list[EnvName] = Field(default=[], alias="secretEnv")
    volumes: dict[MountPath, Volume] = {}
    command: list[Text] | None = Field(default=None, min_length=1)
    # Exec health check (no shell), e.g. [mongosh, --quiet, --eval, "db.adminCommand('ping')"];
    # without it the cluster checks that the port accepts connections.
    health: list[Text] | None = Field(default=None, min_length=1)
    backup: AccessoryBackup | None = None
    resources: Resources = Resources(cpu="100m", memory="256Mi")


class Bucket(_Model):
    """Object storage for the app (`ladder:buckets.<name>`).

    Created by Ladder on DigitalOcean (Spaces) and local (MinIO). With `endpoint` it is a
    bucket you already have (Hetzner Object Storage, R2, S3...): give its `bucket` name and
    its keys as secrets."""

    public: bool = False
    # CORS: origins allowed to read/upload from browsers (Spaces and existing buckets:
    # Ladder sets them on Spaces only).
    cors_origins: list[str] = Field(default=[], alias="corsOrigins")
    # Delete objects older than this many days (Spaces lifecycle rule); unset keeps them.
    expire_days: int | None = Field(default=None, ge=1, le=36500, alias="expireDays")
    endpoint: HttpsEndpoint | None = None
    region: Region = "us-east-1"
    bucket: BucketName | None = None
    # Secrets (refused in plain text, never echoed in an error): see SECRET_FIELDS.
    access_key_id: SecretCredential | None = Field(default=None, alias="accessKeyId")
    secret_access_key: SecretCredential | None = Field(default=None, alias="secretAccessKey")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
                raise ValueError(f"expected origins like https://shop.example.com or '*' (got {origin!r})")
        return value

    @property
    def external(self) -> bool:
        return self.endpoint is not None


class EgressRule(_Model):
    """Where the app's pods may connect beyond HTTPS (`ladder:egress[i]`, cluster rung)."""

    to: EgressTarget
    ports: list[Port] = Field(min_length=1)

    @property
    def is_cidr(self) -> bool:
        return "/" in self.to


def _acme_directory(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(
        r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?", value
    ):
        raise ValueError(
            "expected an ACME directory URL such as https://acme-staging-v02.api.letsencrypt.org/directory"
        )
    return value


class Settings(_Model):
    """The whole, validated stack configuration. Built only by `parse_settings`."""

    phase: Phase = "local"
    provider: ProviderName | None = None
    domain: Hostname | None = None
    acme_email: Email | None = Field(default=None, alias="acmeEmail")
    # The ACME directory certificates come from: Let's Encrypt when unset; its staging
    # directory (or an internal CA such as step-ca) for test stacks that must not hit its rate limits.
    acme_server: Annotated[str, BeforeValidator(_acme_directory)] | None = Field(default=None, alias="acmeServer")
    app: App
    postgres: PostgresConfig = PostgresConfig()
    redis: RedisConfig = RedisConfig()
    vps: VpsConfig = VpsConfig()
    cluster: ClusterConfig = ClusterConfig()
    tenants: list[Tenant] = []
    backups: BackupsConfig | None = None
    monitoring: MonitoringConfig = MonitoringConfig()
    secrets: dict[EnvName, SecretText] = {}
    # Outside `ladder:app` on purpose: a `--secret --path` value makes its whole top-level
    # key secret, and the app description must stay plain (and shareable across stacks).
    registries: list[Registry] = []
    protect: bool | None = None
    accessories: dict[DnsLabel, Accessory] = {}
    buckets: dict[DnsLabel, Bucket] = {}
    egress: list[EgressRule] = []

    # Filled in by `parse_settings`; always set on a returned Settings.
    @property
    def provider_name(self) -> str:
        assert self.provider is not None
        return self.provider

    @property
    def protected(self) -> bool:
        return bool(self.protect)

    @property
    def public_host(self) -> str:
        return self.domain or "localhost"

    @property
    def effective_tenants(self) -> list[Tenant]:
        """Tenants as listed, or one named after the app on `ladder:domain` (seed 004)."""
        if self.tenants:
            return list(self.tenants)
        return [Tenant.model_construct(name=self.app.name, domain=self.public_host)]

    def secret(self, name: str) -> str | None:
        value = self.secrets.get(name)
        return value.get_secret_value() if value is not None else None

    def registry_for(self, host: str) -> Registry | None:
        """The configured credentials for a registry host, if any."""
        return next((r for r in self.registries if r.server == host), None)


# ---------------------------------------------------------------------------------------
# names Ladder derives from the config (env variables, volumes, buckets): one place, so the
# checks below and every rung agree


# Names an accessory may not take: the stores and containers Ladder runs itself.
RESERVED_NAMES = ("postgres", "valkey", "redis", "proxy", "proxy-init", "minio", "release", "app")
S3_FIELDS = ("ENDPOINT", "REGION", "BUCKET", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY")
S3_SECRET_FIELDS = {"ACCESS_KEY_ID": "accessKeyId", "SECRET_ACCESS_KEY": "secretAccessKey"}


def env_prefix(name: str) -> str:
    """`meili-search` -> `MEILI_SEARCH`."""
    return name.upper().replace("-", "_")


def accessory_env_names(name: str) -> dict[str, str]:
    """What services get for accessory `name`: {"HOST": "MONGO_HOST", "PORT": "MONGO_PORT"}."""
    return {field: f"{env_prefix(name)}_{field}" for field in ("HOST", "PORT")}


def bucket_env_names(name: str, only: bool) -> dict[str, list[str]]:
    """S3 field -> env names for bucket `name`: always `S3_<NAME>_<FIELD>`, and the plain
    `S3_<FIELD>` too when the stack has exactly one bucket (most apps)."""
    return {f: [f"S3_{env_prefix(name)}_{f}", *([f"S3_{f}"] if only else [])] for f in S3_FIELDS}


def injected_env_names(s: Settings) -> dict[str, str]:
    """Every env name Ladder injects into services -> the config key it comes from."""
    names = {key: f"{NAMESPACE}:postgres" if key == "DATABASE_URL" else f"{NAMESPACE}:redis" for key in INJECTED_ENV}
    for name in s.accessories:
        for env in accessory_env_names(name).values():
            names[env] = f"{NAMESPACE}:accessories.{name}"
    for name in s.buckets:
        for envs in bucket_env_names(name, len(s.buckets) == 1).values():
            for env in envs:
                names[env] = f"{NAMESPACE}:buckets.{name}"
    return names


def service_volume_name(service: str, mount_path: str) -> str:
    """`<service>-<slug>`: the PVC, named volume and host directory of one service volume."""
    return f"{service}-{volume_slug(mount_path)}"


_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def cron_values(expr: str) -> list[list[int] | None]:
    """The five fields of a cron schedule as sorted value lists (None for `*`).

    Raises ValueError on anything outside the fields' ranges; day of week 7 is Sunday (0).
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError("expected a 5-field cron schedule such as '0 */6 * * *'")
    out: list[list[int] | None] = []
    for field, (low, high) in zip(fields, _CRON_RANGES, strict=True):
        if field == "*":
            out.append(None)
            continue
        values: set[int] = set()
        for part in field.split(","):
            m = re.fullmatch(r"(\*|([0-9]+)(-([0-9]+))?)(/([0-9]+))?", part)
            if not m:
                raise ValueError(f"cron field {field!r} is not a value, range, list or step")
            start, stop = (low, high) if m.group(1) == "*" else (int(m.group(2)), int(m.group(4) or m.group(2)))
            step = int(m.group(6) or 1)
            if m.group(6) and m.group(4) is None and m.group(1) != "*":
                stop = high  # `5/15` means from 5 every 15
            if not (low <= start <= stop <= high) or step < 1:
                raise ValueError(f"cron field {field!r} is outside {low}-{high}")
            values.update(range(start, stop + 1, step))
        out.append(sorted({0 if (low, high) == (0, 7) and v == 7 else v for v in values}))
    return out


# `appOverrides` is no field: `parse_settings` merges it into `app` before validation.
TOP_LEVEL_KEYS = (*((field.alias or name) for name, field in Settings.model_fields.items()), OVERRIDES_KEY)


# ---------------------------------------------------------------------------------------
# parsing


def _key_path(loc: tuple[int | str, ...]) -> str:
    if "[key]" in loc:
        # A bad map key (pydantic puts the key itself before "[key]"): name the map, and let
        # the message show the key (repr-quoted), never raw text in the path.
        loc = loc[: max(loc.index("[key]") - 1, 0)]
    path = f"{NAMESPACE}:"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            # An unknown key is the user's text: quoted when it is not a plain name, so a
            # hostile key cannot put a line break or escape sequence into the message.
            name = part if part.isprintable() and " " not in part else repr(part)
            path += name if i == 0 else f".{name}"
    return path


# Keys that hold secrets (key paths under `ladder:`); `secrets` covers every `secrets.NAME`.
SECRET_FIELDS: tuple[tuple[str, ...], ...] = (
    ("secrets",),
    ("vps", "sshPrivateKey"),
    ("cluster", "kubeconfig"),
    ("cluster", "hcloudToken"),
    ("backups", "accessKeyId"),
    ("backups", "secretAccessKey"),
    ("backups", "encryptionKey"),
    ("monitoring", "smtpPassword"),
    # `*`: any key of that map (every bucket's keys).
    ("buckets", "*", "accessKeyId"),
    ("buckets", "*", "secretAccessKey"),
)


def _field_matches(loc: tuple[int | str, ...], field: tuple[str, ...]) -> bool:
    return len(loc) >= len(field) and all(f in ("*", part) for part, f in zip(loc, field, strict=False))


def _is_secret_path(loc: tuple[int | str, ...]) -> bool:
    return any(_field_matches(loc, field) for field in SECRET_FIELDS)


def _secret_values(raw: Any, field: tuple[str, ...], at: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    """The concrete key paths under `raw` that `field` (with `*` wildcards) names and that are set."""
    if not field:
        if raw is not None:
            yield at
        return
    if not isinstance(raw, Mapping):
        return
    head, rest = field[0], field[1:]
    keys = [k for k in raw if isinstance(k, str)] if head == "*" else [head]
    for key in keys:
        yield from _secret_values(raw.get(key), rest, (*at, key))


def _unsecured(raw: Mapping[str, Any], secret_tops: set[str]) -> Iterable[tuple[str, str]]:
    """Secret keys set in plain text: refused, so a secret never sits unencrypted in a stack file.

    Pulumi marks the top-level key secret when any value under it was set with `--secret`
    (`pulumi.runtime.config.is_config_secret`), so the test is on the top-level key.
    """
    for field in SECRET_FIELDS:
        if field[0] in secret_tops:
            continue
        for found in _secret_values(raw, field):
            # A map key is the user's text: quoted when it is not a plain name.
            path = ".".join(part if part.isprintable() and " " not in part else repr(part) for part in found)
            yield (
                f"{NAMESPACE}:{path}",
                f"must be set as a secret: pulumi config set --secret --path '{NAMESPACE}:{path}"
                f"{'.NAME' if field == ('secrets',) else ''}' ... (and remove the plain value)",
            )


def _describe(error: Any, secret_paths: set[str]) -> str:
    kind = str(error["type"])
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against the README's config reference)"
    if kind == "missing":
        return "required"
    top = error["loc"][0] if error["loc"] else ""
    if top in secret_paths or top == "registries" or _is_secret_path(tuple(error["loc"])):
        return message
    shown = repr(error.get("input"))
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{message} (got {shown})"


# Sizes and places a reader would pick first: the cheapest sensible shape on each provider.
PROVIDER_DEFAULTS: dict[tuple[str, str], dict[str, dict[str, str]]] = {
    ("vps", "hetzner"): {"vps": {"size": "cx23", "region": "nbg1", "image": "ubuntu-24.04"}},
    ("vps", "digitalocean"): {
        "vps": {"size": "s-1vcpu-2gb", "region": "fra1", "image": "ubuntu-24-04-x64"},
        "data": {"postgresSize": "db-s-1vcpu-1gb", "redisSize": "db-s-1vcpu-1gb"},
    },
    ("cluster", "digitalocean"): {
        "cluster": {"nodeSize": "s-2vcpu-4gb", "region": "fra1"},
        "data": {"postgresSize": "db-s-1vcpu-1gb", "redisSize": "db-s-1vcpu-1gb"},
    },
    ("cluster", "hetzner"): {
        "vps": {"size": "cx23", "region": "nbg1", "image": "ubuntu-24.04"},
        "cluster": {"nodeSize": "cx33", "region": "nbg1"},
    },
}


def _defaults(phase: str, provider: str) -> dict[str, dict[str, str]]:
    return PROVIDER_DEFAULTS.get((phase, provider), {})


def parse_settings(
    raw: Mapping[str, Any], secret_keys: Iterable[str] = (), project_dir: Path | None = None
) -> Settings:
    """Validate the `ladder:` config map (keys without the namespace) into `Settings`.

    `project_dir` (default: the working directory, where Pulumi runs the program) is what
    build contexts and dev mounts are relative to. Raises `ConfigError` with every problem
    found; never returns a half-valid Settings.
    """
    secret_tops = {k.split(":", 1)[-1] for k in secret_keys}
    raw, patch_problems = apply_app_overrides(raw)
    unsecured = patch_problems + list(_unsecured(raw, secret_tops))
    try:
        settings = Settings.model_validate(raw, by_alias=True)
    except ValidationError as exc:
        problems = [(_key_path(tuple(err["loc"])), _describe(err, secret_tops)) for err in exc.errors()]
        raise ConfigError(unsecured + problems) from None
    problems = unsecured + list(_cross_checks(settings))
    problems += _registry_checks(settings, "registries" in secret_tops)
    problems += _build_checks(settings, project_dir or Path.cwd())
    if problems:
        raise ConfigError(problems)
    return _resolve(settings)


def backs_up_archives(s: Settings) -> bool:
    """Whether the cluster rung would run volume or accessory backup CronJobs (encrypted archives)."""
    return any(svc.volumes for svc in s.app.services.values()) or any(a.backup for a in s.accessories.values())


def _cross_checks(s: Settings) -> Iterable[tuple[str, str]]:
    """Rules that span fields; each yields (key path, what is expected)."""
    ns = NAMESPACE
    phase = s.phase
    provider = s.provider or ("docker" if phase == "local" else None)
    allowed = PROVIDERS_BY_PHASE[phase]
    if provider is None:
        yield f"{ns}:provider", f"required for phase {phase}: one of {', '.join(allowed)}"
        return
    if provider not in allowed:
        yield (
            f"{ns}:provider",
            f"{provider!r} does not run phase {phase}; use one of {', '.join(allowed)}",
        )
        return

    if phase != "local":
        if not s.domain:
            yield f"{ns}:domain", f"required for phase {phase}: the public host name, e.g. shop.example.com"
        if not s.acme_email:
            yield f"{ns}:acmeEmail", "required where TLS certificates are issued (Let's Encrypt account email)"
    elif s.domain:
        yield f"{ns}:domain", "phase local serves on localhost; leave ladder:domain unset"

    yield from _app_checks(s)
    yield from _vps_extras_checks(s)
    yield from _volume_and_job_checks(s)
    yield from _accessory_checks(s)
    yield from _bucket_checks(s, provider)
    if s.egress and phase != "cluster":
        yield f"{ns}:egress", "only used with phase cluster (containers on local and vps may connect anywhere)"
    yield from _data_checks(s, provider)
    yield from _where_checks(s, provider)

    names = [t.name for t in s.tenants]
    domains = [t.domain for t in s.tenants]
    for i, tenant in enumerate(s.tenants):
        if names.count(tenant.name) > 1:
            yield f"{ns}:tenants[{i}].name", f"duplicate tenant name {tenant.name!r}"
        if domains.count(tenant.domain) > 1:
            yield f"{ns}:tenants[{i}].domain", f"duplicate tenant domain {tenant.domain!r}"
    if s.tenants and phase != "cluster":
        yield f"{ns}:tenants", "tenants need phase cluster (one namespace per tenant)"

    if s.monitoring.enabled and not s.monitoring.alert_email and phase != "local":
        yield f"{ns}:monitoring.alertEmail", "required when monitoring is enabled"
    if phase == "cluster" and s.monitoring.enabled and s.monitoring.alert_email and not s.monitoring.smtp_host:
        # Alertmanager's config loader refuses an email receiver without a smarthost, and
        # the operator then stops reconciling: no half-configured mail.
        yield f"{ns}:monitoring.smtpHost", "required with alertEmail on the cluster rung: Alertmanager mails through it"
    if s.monitoring.smtp_host and not s.monitoring.smtp_from:
        yield f"{ns}:monitoring.smtpFrom", "required with smtpHost: the sender address of alert mails"

    if s.backups is not None:
        has_id = s.backups.access_key_id is not None
        has_secret = s.backups.secret_access_key is not None
        if has_id != has_secret:
            yield (
                f"{ns}:backups.{'secretAccessKey' if has_id else 'accessKeyId'}",
                "set both accessKeyId and secretAccessKey (as secrets) or neither",
            )
        if phase == "local":
            yield f"{ns}:backups", "phase local has no backups; remove ladder:backups from this stack"
        if phase == "vps" and s.backups.age_recipient is None:
            yield (
                f"{ns}:backups.ageRecipient",
                "required on the vps rung: dumps are encrypted before upload; run `age-keygen -o backup.key` "
                "on your machine, keep backup.key off the servers and set its 'Public key: age1...'",
            )
        if phase == "cluster" and has_id and has_secret and s.backups.encryption_key is None and backs_up_archives(s):
            yield (
                f"{ns}:backups.encryptionKey",
                "required on the cluster rung when service volumes or accessories are backed up: archives are "
                "encrypted in the pod before upload; run `openssl rand -base64 32`, keep a copy off the cluster and "
                "set it with pulumi config set --secret --path 'ladder:backups.encryptionKey' ...",
            )
        if s.backups.create and provider != "digitalocean":
            yield f"{ns}:backups.create", "Ladder creates buckets on DigitalOcean Spaces only; give an existing bucket"
        yield from backup_buckets.tenant_bucket_problems(s)


def _app_checks(s: Settings) -> Iterable[tuple[str, str]]:
    ns = NAMESPACE
    app = s.app
    routed = app.routed_services
    if not routed:
        yield f"{ns}:app.services", "at least one service needs a `port` so it can be routed"
    seen: dict[str, str] = {}
    for name, svc in app.services.items():
        at = f"{ns}:app.services.{name}"
        if svc.routed:
            if svc.route in seen:
                yield f"{at}.path", f"path {svc.route!r} is already routed to service {seen[svc.route]!r}"
            seen[svc.route] = name
        else:
            if svc.path is not None:
                yield f"{at}.path", "a path needs a `port` to route to"
            if svc.health is not None:
                yield f"{at}.health", "a health check path needs a `port`"
            if svc.sticky:
                yield f"{at}.sticky", "sticky sessions need a `port`: only routed services are load-balanced"
        if svc.autoscale:
            if svc.autoscale.min > svc.autoscale.max:
                yield f"{at}.autoscale.min", f"must be <= autoscale.max ({svc.autoscale.max})"
            elif svc.replicas is not None and not svc.autoscale.min <= svc.replicas <= svc.autoscale.max:
                yield (
                    f"{at}.replicas",
                    f"must lie within autoscale {svc.autoscale.min}..{svc.autoscale.max} (or leave it unset)",
                )
            if svc.autoscale.cpu is None and svc.autoscale.memory is None:
                yield f"{at}.autoscale", "set a `cpu` or `memory` utilisation target"
    if app.release and app.release.service not in app.services:
        yield (
            f"{ns}:app.release.service",
            f"no service named {app.release.service!r}; one of {', '.join(app.services)}",
        )
    injected = injected_env_names(s)
    for key in app.env:
        if key in injected:
            yield f"{ns}:app.env.{key}", f"is injected by Ladder from {injected[key]}; remove it"
    for i, key in enumerate(app.secret_env):
        if key in injected:
            yield f"{ns}:app.secretEnv[{i}]", f"{key} is injected by Ladder from {injected[key]}; remove it"
        elif key in app.env:
            yield f"{ns}:app.secretEnv[{i}]", f"{key} is also set in ladder:app.env; keep it in one place"
        elif key not in s.secrets:
            yield (
                f"{ns}:secrets.{key}",
                f"required by ladder:app.secretEnv: pulumi config set --secret --path 'ladder:secrets.{key}' ...",
            )
    expected = set(app.secret_env)
    for accessory in s.accessories.values():
        expected.update(accessory.secret_env)
    if s.postgres.mode == "external":
        expected.add("DATABASE_URL")
    if s.redis.mode == "external":
        expected.add("REDIS_URL")
    for key in s.secrets:
        if key not in expected:
            yield f"{ns}:secrets.{key}", "not used: list it in ladder:app.secretEnv (or remove it)"


def _registry_checks(s: Settings, registries_secret: bool) -> list[tuple[str, str]]:
    """Credentials: one entry per registry, passwords only as secrets (never echoed)."""
    ns = NAMESPACE
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    do_cluster = s.phase == "cluster" and s.provider == "digitalocean"
    for i, reg in enumerate(s.registries):
        at = f"{ns}:registries[{i}]"
        if reg.server in seen:
            problems.append((f"{at}.server", f"{reg.server} is listed twice; keep one entry"))
        seen.add(reg.server)
        if reg.password is None or reg.username is None:
            if reg.server == DOCR and do_cluster:
                if reg.password is not None or reg.username is not None:
                    problems.append((at, "give both username and password, or neither (minted by DigitalOcean)"))
                elif docr_registry_name(s) is None:
                    problems.append(
                        (
                            at,
                            f"name the registry: set ladder:app.defaultRepo to {DOCR}/<registry> "
                            f"or use an image under {DOCR}/<registry>/",
                        )
                    )
                continue
            missing = "password" if reg.password is None else "username"
            hint = " (only DigitalOcean Container Registry on a digitalocean cluster can do without)"
            problems.append((f"{at}.{missing}", "required" + hint))
            continue
        if not registries_secret:
            problems.append(
                (
                    f"{ns}:registries[{i}].password",
                    "must be a Pulumi secret: pulumi config set --secret --path "
                    f"'ladder:registries[{i}].password' (reads the token from stdin when no value is given)",
                )
            )
    return problems


def _build_checks(s: Settings, project_dir: Path) -> list[tuple[str, str]]:
    """`image` xor `build`; builds need a push target off `local`; paths exist."""
    ns = NAMESPACE
    problems: list[tuple[str, str]] = []
    built = False
    for name, svc in s.app.services.items():
        at = f"{ns}:app.services.{name}"
        if (svc.image is None) == (svc.build is None):
            problems.append((f"{at}.image", "set exactly one of `image` (a prebuilt image) or `build` (from source)"))
        if svc.build is not None:
            built = True
            context = project_dir / svc.build.context
            if not context.is_dir():
                problems.append((f"{at}.build.context", f"no directory {svc.build.context!r} under the project"))
            elif not (project_dir / svc.build.dockerfile_path).is_file():
                problems.append(
                    (f"{at}.build.dockerfile", f"no file {svc.build.dockerfile!r} in {svc.build.context!r}")
                )
        if svc.dev is not None:
            for j, mount in enumerate(svc.dev.mounts):
                if not (project_dir / mount.source).exists():
                    problems.append((f"{at}.dev.mounts[{j}].source", f"no file or directory {mount.source!r}"))
    if built and s.phase != "local":
        repo = s.app.default_repo
        if repo is None:
            problems.append(
                (
                    f"{ns}:app.defaultRepo",
                    f"required when a service has `build` on phase {s.phase}: where images are pushed, "
                    "e.g. ghcr.io/acme",
                )
            )
        elif s.registry_for(image_registry(repo + "/x")) is None:
            problems.append(
                (
                    f"{ns}:registries",
                    f"builds push to {image_registry(repo + '/x')}: add its credentials "
                    "({server, username} and the password with --secret)",
                )
            )
    ports: dict[int, str] = {}
    for store in ("postgres", "redis"):
        conf: PostgresConfig | RedisConfig = getattr(s, store)
        port = conf.publish_port
        if port is None:
            continue
        at = f"{ns}:{store}.publishPort"
        if s.phase != "local":
            problems.append((at, "only used on phase local (publishes on 127.0.0.1 for local tools)"))
        elif (conf.mode or "container") != "container":
            problems.append((at, "only used with mode container"))
        elif port in ports:
            problems.append((at, f"port {port} is already published by {ports[port]}"))
        elif port == 8080:
            problems.append((at, "port 8080 is the local proxy's"))
        ports[port] = store
    return problems


def _vps_extras_checks(s: Settings) -> Iterable[tuple[str, str]]:
    """What the vps rung cannot place: accessories need a data host, which DigitalOcean's
    several-server shape does not have (its data stores are managed). Service volumes with
    several servers are refused in `_volume_and_job_checks` (every app server runs every
    service: each would write its own copy)."""
    if s.phase != "vps":
        return
    if s.accessories and s.provider == "digitalocean" and s.vps.server_count > 1:
        yield (
            f"{NAMESPACE}:accessories",
            "with vps.count > 1 on digitalocean there is no data server to run them on (Postgres and Valkey "
            "are managed there): use one server, provider hetzner (a data server), or a managed service",
        )


def _volume_and_job_checks(s: Settings) -> Iterable[tuple[str, str]]:
    ns = NAMESPACE
    for name, svc in s.app.services.items():
        if not svc.volumes:
            continue
        at = f"{ns}:app.services.{name}.volumes"
        why = None
        if svc.replica_count > 1:
            why = f"replicas is {svc.replica_count}"
        elif svc.autoscale is not None:
            why = "autoscale is set"
        elif s.phase == "vps" and s.vps.server_count > 1:
            why = f"vps.count is {s.vps.server_count} (a copy on every server)"
        if why:
            yield (
                at,
                f"a volume is mounted by one container, but {why}: keep files shared between replicas "
                "in object storage (ladder:buckets) and leave the volume to a single-replica service",
            )
        for j, mount in enumerate(svc.dev.mounts if svc.dev else []):
            if mount.target.rstrip("/") in svc.volumes:
                # Docker refuses two mounts on one path ("Duplicate mount point").
                yield (
                    f"{at}.{mount.target.rstrip('/')}",
                    f"is also dev.mounts[{j}]'s target; mount one of them elsewhere",
                )
        slugs: dict[str, str] = {}
        for path in svc.volumes:
            volume = service_volume_name(name, path)
            if volume_slug(path) in slugs:
                yield f"{at}.{path}", f"names the same volume as {slugs[volume_slug(path)]} ({volume}); rename one"
            slugs[volume_slug(path)] = path
            if len(volume) > 63:
                yield f"{at}.{path}", f"the volume name {volume!r} is longer than 63 characters; use a shorter path"
    sizes = [v.size_gb for svc in s.app.services.values() for v in svc.volumes.values()]
    sizes += [v.size_gb for acc in s.accessories.values() for v in acc.volumes.values()]
    if s.phase == "vps" and sum(sizes) > s.vps.volume_gb:
        # On the VPS rung every volume is a directory on the one data volume.
        yield (
            f"{ns}:vps.volumeGb",
            f"the service and accessory volumes add up to {sum(sizes)} GB: make the data volume at least that large",
        )
    for name, job in s.app.jobs.items():
        at = f"{ns}:app.jobs.{name}"
        if job.service not in s.app.services:
            yield f"{at}.service", f"no service named {job.service!r}; one of {', '.join(s.app.services)}"
        try:
            cron_values(job.schedule)
        except ValueError as exc:
            yield f"{at}.schedule", str(exc)
        for i, arg in enumerate(job.command):
            if any(unit_unsafe(c) for c in arg):
                yield (
                    f"{at}.command[{i}]",
                    "control characters and line separators (newlines, tabs, U+2028) cannot reach a unit file "
                    "or CronJob safely",
                )


def unit_unsafe(c: str) -> bool:
    """A character a unit file line cannot carry unambiguously: C0/C1 controls, and the Unicode
    line and paragraph separators that some readers of the file (editors, Python) break lines at."""
    return ord(c) < 32 or 127 <= ord(c) <= 159 or c in "\u2028\u2029"


def _accessory_checks(s: Settings) -> Iterable[tuple[str, str]]:
    ns = NAMESPACE
    for name, acc in s.accessories.items():
        at = f"{ns}:accessories.{name}"
        if name in s.app.services:
            yield at, f"the name {name!r} is already a service in ladder:app.services; rename one"
        elif name in RESERVED_NAMES:
            yield at, f"the name {name!r} is used by Ladder itself; pick another (e.g. {name}-2)"
        for i, key in enumerate(acc.secret_env):
            if key in acc.env:
                yield f"{at}.secretEnv[{i}]", f"{key} is also set in env; keep it in one place"
            elif key not in s.secrets:
                yield (
                    f"{ns}:secrets.{key}",
                    f"required by {at}.secretEnv: pulumi config set --secret --path 'ladder:secrets.{key}' ...",
                )
        for path in acc.volumes:
            if len(f"data-{name}-{volume_slug(path)}-{name}-0") > 63:
                yield f"{at}.volumes.{path}", "the volume's claim name would pass 63 characters; use a shorter path"
        backup = acc.backup
        if backup is None:
            continue
        if (backup.command is None) == (backup.paths is None):
            yield f"{at}.backup", "set exactly one of `command` (a dump written to stdout) or `paths` (tar of volumes)"
        for i, path in enumerate(backup.paths or []):
            if not any(path == v or path.startswith(v + "/") for v in acc.volumes):
                yield (
                    f"{at}.backup.paths[{i}]",
                    f"{path} is not in one of the accessory's volumes ({', '.join(acc.volumes) or 'none'})",
                )


def _bucket_checks(s: Settings, provider: str) -> Iterable[tuple[str, str]]:
    ns = NAMESPACE
    for name, b in s.buckets.items():
        at = f"{ns}:buckets.{name}"
        if len(f"{s.app.name}-{name}") > 40:
            yield at, "app name and bucket name together must stay within 40 characters (bucket names are global)"
        has_keys = (b.access_key_id is not None, b.secret_access_key is not None)
        if b.external:
            if b.bucket is None:
                yield f"{at}.bucket", "required with endpoint: the name of the existing bucket"
            for field, present in zip(("accessKeyId", "secretAccessKey"), has_keys, strict=True):
                if not present:
                    yield (
                        f"{at}.{field}",
                        "required with endpoint: "
                        f"pulumi config set --secret --path 'ladder:buckets.{name}.{field}' ...",
                    )
            for field, value in (("corsOrigins", b.cors_origins), ("expireDays", b.expire_days), ("public", b.public)):
                if value:
                    yield (
                        f"{at}.{field}",
                        "Ladder sets this on buckets it creates only; configure your bucket's provider",
                    )
            continue
        given: tuple[tuple[str, object], ...] = (
            ("bucket", b.bucket),
            ("accessKeyId", b.access_key_id),
            ("secretAccessKey", b.secret_access_key),
        )
        for key, given_value in given:
            if given_value is not None:
                yield f"{at}.{key}", "only used with endpoint (a bucket you already have)"
        if provider in ("hetzner", "existing"):
            # pulumi-hcloud (1.43) has no Object Storage resource: Hetzner buckets are made
            # in the console, and Ladder uses them with their endpoint and keys.
            yield (
                f"{at}.endpoint",
                f"required on provider {provider}: Ladder cannot create the bucket here; create it "
                "(e.g. Hetzner Object Storage, https://fsn1.your-objectstorage.com) and give endpoint, bucket "
                "and the keys as secrets",
            )


def _data_checks(s: Settings, provider: str) -> Iterable[tuple[str, str]]:
    ns = NAMESPACE
    phase = s.phase
    stores = (
        ("postgres", s.postgres.mode or DEFAULT_POSTGRES_MODE[phase], POSTGRES_MODES_BY_PHASE, "DATABASE_URL"),
        ("redis", s.redis.mode, REDIS_MODES_BY_PHASE, "REDIS_URL"),
    )
    for key, mode, table, url_secret in stores:
        modes = table[phase]
        if mode not in modes:
            hint = " (CloudNativePG runs Postgres on the cluster)" if mode == "container" else ""
            yield f"{ns}:{key}.mode", f"{mode!r} is not available on phase {phase}; use one of {', '.join(modes)}{hint}"
        elif mode == "managed" and provider not in MANAGED_DATA_PROVIDERS:
            instead = "operator" if (key == "postgres" and phase == "cluster") else "container"
            yield (
                f"{ns}:{key}.mode",
                f"provider {provider} offers no managed {key}; use {instead!r} "
                f"(or provider digitalocean for managed databases)",
            )
        elif mode == "external" and url_secret not in s.secrets:
            yield (
                f"{ns}:secrets.{url_secret}",
                f"required for {key}.mode external: "
                f"pulumi config set --secret --path 'ladder:secrets.{url_secret}' ...",
            )
        if mode != "managed" and getattr(s, key).size is not None:
            yield f"{ns}:{key}.size", "only used with mode managed"
    if s.redis.mode == "managed" and phase == "cluster" and len(s.tenants) > 1:
        # DigitalOcean creates users with ACLs for Kafka and OpenSearch only
        # (digitalocean.DatabaseUser `settings`), so every tenant would get the admin URL.
        yield (
            f"{ns}:redis.mode",
            "managed Valkey has one admin user that every tenant would share (DigitalOcean offers no "
            "per-tenant Valkey users): use mode 'container' (one Valkey per tenant namespace) with "
            f"{len(s.tenants)} tenants",
        )
    if s.postgres.instances > 1 and (s.postgres.mode or DEFAULT_POSTGRES_MODE[phase]) not in ("operator", "managed"):
        yield f"{ns}:postgres.instances", "more than one instance needs mode operator or managed"


def _where_checks(s: Settings, provider: str) -> Iterable[tuple[str, str]]:
    ns = NAMESPACE
    phase = s.phase
    vps = s.vps
    uses_servers = phase == "vps" or (phase == "cluster" and provider == "hetzner")
    if phase == "vps" and provider == "existing":
        if not vps.hosts:
            yield f"{ns}:vps.hosts", "required for provider existing: [{address, user}] of each host"
        if vps.count is not None and vps.count != len(vps.hosts):
            yield f"{ns}:vps.count", "with provider existing the count is the number of vps.hosts; remove it"
        if len(vps.hosts) > 1:
            yield (
                f"{ns}:vps.hosts",
                "provider existing runs one host (several hosts need a load balancer and private network "
                "Ladder does not manage for you; use provider hetzner or digitalocean with vps.count)",
            )
        if vps.ssh_private_key is None:
            yield (
                f"{ns}:vps.sshPrivateKey",
                "required for provider existing: pulumi config set --secret --path 'ladder:vps.sshPrivateKey' < key",
            )
    elif vps.hosts:
        yield f"{ns}:vps.hosts", "only used with phase vps and provider existing"
    if phase == "vps" and provider == "digitalocean" and vps.server_count > 1:
        for key, mode in (("postgres", s.postgres.mode or "container"), ("redis", s.redis.mode)):
            if mode == "container":
                yield (
                    f"{ns}:{key}.mode",
                    "with vps.count > 1 on digitalocean the data leaves the app servers: use 'managed'",
                )
    if uses_servers and provider != "existing" and not vps.ssh_keys:
        yield f"{ns}:vps.sshKeys", "at least one OpenSSH public key, for the non-root deploy user"
    if uses_servers and not vps.ssh_allow_from:
        yield (
            f"{ns}:vps.sshAllowFrom",
            "at least one CIDR allowed to reach SSH (e.g. your office IP as 203.0.113.7/32)",
        )
    size_patterns = {"hetzner": (_HCLOUD_SIZE_RE, "cx23"), "digitalocean": (_DO_SIZE_RE, "s-1vcpu-2gb")}
    if provider in size_patterns:
        pattern, example = size_patterns[provider]
        sized = [("vps.size", vps.size)] if uses_servers else []
        if phase == "cluster":
            sized.append(("cluster.nodeSize", s.cluster.node_size))
        for key, size in sized:
            if size is not None and not pattern.match(size):
                yield f"{ns}:{key}", f"{size!r} is not a {provider} size (e.g. {example})"
    cl = s.cluster
    if phase == "cluster":
        if cl.min_nodes > cl.max_nodes:
            yield f"{ns}:cluster.minNodes", f"must be <= cluster.maxNodes ({cl.max_nodes})"
        if provider == "hetzner" and cl.version not in versions.K3S_VERSIONS:
            yield (
                f"{ns}:cluster.version",
                f"k3s releases are pinned for {', '.join(sorted(versions.K3S_VERSIONS))} (components/versions.py)",
            )
        if provider == "existing" and cl.kubeconfig is None:
            yield (
                f"{ns}:cluster.kubeconfig",
                "required for provider existing: "
                "pulumi config set --secret --path 'ladder:cluster.kubeconfig' < kubeconfig",
            )
    if cl.kubeconfig is not None and not (phase == "cluster" and provider == "existing"):
        yield f"{ns}:cluster.kubeconfig", "only used with phase cluster and provider existing"
    if phase == "cluster":
        yield from _drain_checks(s)
    k3s = phase == "cluster" and provider == "hetzner"
    if k3s and cl.hcloud_token is None:
        yield (
            f"{ns}:cluster.hcloudToken",
            "required for k3s on Hetzner: a separate Hetzner Cloud API token (read & write) that the cloud "
            "controller manager and CSI driver keep in kube-system, never hcloud:token: "
            "pulumi config set --secret --path 'ladder:cluster.hcloudToken' <token>",
        )
    elif cl.hcloud_token is not None and not k3s:
        yield f"{ns}:cluster.hcloudToken", "only used with phase cluster and provider hetzner"


def _drain_checks(s: Settings) -> Iterable[tuple[str, str]]:
    """What the cluster rung's drain and sticky sessions need from the cluster."""
    ns = NAMESPACE
    # Routed pods drain with `lifecycle.preStop.sleep` (components/render/drain.py).
    if int(s.cluster.version.split(".")[1]) < versions.MIN_KUBERNETES_MINOR:
        yield (
            f"{ns}:cluster.version",
            f"must be 1.{versions.MIN_KUBERNETES_MINOR} or newer: routed pods drain with the preStop "
            "`sleep` action (on by default since 1.30)",
        )
    if s.cluster.ingress == "ingress-nginx":
        for name, svc in s.app.services.items():
            if svc.sticky:
                yield (
                    f"{ns}:app.services.{name}.sticky",
                    "sticky sessions are rendered for Traefik (the default ladder:cluster.ingress); "
                    "ingress-nginx is retired upstream and kept only for migrations",
                )


def _resolve(s: Settings) -> Settings:
    """Fill the defaults that depend on the phase and provider."""
    provider = s.provider or "docker"
    defaults = _defaults(s.phase, provider)
    vps_defaults = defaults.get("vps", {})
    cluster_defaults = defaults.get("cluster", {})
    data_defaults = defaults.get("data", {})
    pg_mode = s.postgres.mode or DEFAULT_POSTGRES_MODE[s.phase]
    return s.model_copy(
        update={
            "provider": provider,
            "protect": s.phase != "local" if s.protect is None else s.protect,
            "postgres": s.postgres.model_copy(
                update={
                    "mode": pg_mode,
                    "size": s.postgres.size or (data_defaults.get("postgresSize") if pg_mode == "managed" else None),
                }
            ),
            "redis": s.redis.model_copy(
                update={"size": s.redis.size or (data_defaults.get("redisSize") if s.redis.mode == "managed" else None)}
            ),
            "vps": s.vps.model_copy(
                update={
                    "count": s.vps.server_count,
                    "size": s.vps.size or vps_defaults.get("size"),
                    "region": s.vps.region or vps_defaults.get("region"),
                    "image": s.vps.image or vps_defaults.get("image"),
                }
            ),
            "cluster": s.cluster.model_copy(
                update={
                    "node_size": s.cluster.node_size or cluster_defaults.get("nodeSize"),
                    "region": s.cluster.region or cluster_defaults.get("region"),
                }
            ),
        }
    )
