"""The real grammars of the config values that reach root-run or public text.

Each function takes a string and returns it (possibly normalised) or raises `ValueError`
saying what is expected; `components.settings` wraps them as pydantic validators so the
error names the key path. They are deliberately narrower than "anything the grammar's
RFC allows" where the wider form is both rare and dangerous in one of the sinks (a shell
script run as root, a systemd unit, a Caddyfile, a YAML manifest, an env file): the sinks
quote as well, so this is the first of two walls, not the only one.

Every pattern is applied with `fullmatch`: `re.match(r"...$")` accepts a trailing newline,
which is exactly the character an injection needs.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

# --- URL paths -----------------------------------------------------------------------------

URL_PATH_MAX = 256
# RFC 3986 `pchar` is unreserved / pct-encoded / sub-delims / ":" / "@". Of the sub-delims,
# `'` `(` `)` `$` `&` `*` are left out: quotes and `$` mean something to every shell, `*` is
# a wildcard to Caddy's path matcher, `&` and the parentheses to shells and Caddy snippets.
_PCHAR = r"(?:[A-Za-z0-9\-._~!,;=:@+]|%[0-9A-Fa-f]{2})"
_SEGMENT_RE = re.compile(rf"{_PCHAR}*")


def url_path(value: str) -> str:
    """An absolute URL path (RFC 3986 `path-absolute`, no query), as Caddy's `path` matcher takes it."""
    expected = "expected a URL path such as /api or /healthz (letters, digits, - . _ ~ ! , ; = : @ + %XX)"
    if not value.startswith("/") or len(value) > URL_PATH_MAX:
        raise ValueError(f"{expected}, starting with '/', at most {URL_PATH_MAX} characters")
    segments = value[1:].split("/")
    for i, segment in enumerate(segments):
        if not _SEGMENT_RE.fullmatch(segment):
            raise ValueError(expected)
        if segment in (".", ".."):
            raise ValueError("a URL path takes no '.' or '..' segments")
        if segment == "" and 0 < i < len(segments) - 1:
            raise ValueError("a URL path takes no empty segment ('//')")
    if value == "//":
        raise ValueError("a URL path takes no empty segment ('//')")
    return value


# --- names -----------------------------------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"(?=.{{1,253}}$)(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")


def hostname(value: str) -> str:
    """A fully qualified DNS name (RFC 1123 labels, a letters-only top-level label), lower-cased."""
    if not _HOSTNAME_RE.fullmatch(value):
        raise ValueError("expected a DNS name such as shop.example.com")
    return value.lower()


def host_address(value: str) -> str:
    """A host to connect to: an IP address or a DNS name."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    try:
        return hostname(value)
    except ValueError:
        raise ValueError("expected an IP address or a DNS name such as 192.0.2.10 or app1.example.com") from None


def host_port(value: str) -> str:
    """`host:port` (an SMTP relay): a DNS name, an IPv4 address or a bracketed IPv6 address."""
    host, sep, port = value.rpartition(":")
    expected = "expected host:port such as smtp.example.com:587"
    if not sep or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535 or len(port) > 5:
        raise ValueError(expected)
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(expected) from None
        return value
    try:
        ipaddress.IPv4Address(host)
        return value
    except ValueError:
        pass
    try:
        hostname(host)
    except ValueError:
        raise ValueError(expected) from None
    return value


_POSIX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]*[$]?")


def posix_user(value: str) -> str:
    """A POSIX portable user name as `useradd` takes it (`[a-z_][a-z0-9_-]*[$]?`, at most 32), not root.

    Not root: Ladder's hardening sets `PermitRootLogin no`, so a root login would lock the
    program out of the host on its first run.
    """
    if len(value) > 32 or not _POSIX_USER_RE.fullmatch(value):
        raise ValueError("expected a user name like deploy ([a-z_][a-z0-9_-]*, at most 32 characters)")
    if value == "root":
        raise ValueError("must not be root: Ladder turns off root login over SSH; give a user with sudo")
    return value


_EMAIL_LOCAL_RE = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*")


def email(value: str) -> str:
    """An address for SMTP envelopes, headers and ACME: dot-atom local part of the common characters.

    RFC 5322 also allows quotes, braces, `$` and backticks in a local part; they are legal
    and rare, and each is special in one of the files an address is written to.
    """
    local, sep, domain = value.rpartition("@")
    if not sep or len(value) > 254 or len(local) > 64 or not _EMAIL_LOCAL_RE.fullmatch(local):
        raise ValueError("expected an email address such as ops@example.com")
    try:
        hostname(domain)
    except ValueError:
        raise ValueError("expected an email address such as ops@example.com") from None
    return value


# --- object storage ----------------------------------------------------------------------------

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def s3_bucket(value: str) -> str:
    """An S3 general purpose bucket name (AWS naming rules; DigitalOcean Spaces and Hetzner take a subset)."""
    if not _BUCKET_RE.fullmatch(value):
        raise ValueError(
            "expected an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError("a bucket name takes no '..', '.-' or '-.'")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        raise ValueError("a bucket name must not look like an IP address")
    if value.startswith(_BUCKET_PREFIXES) or value.endswith(_BUCKET_SUFFIXES):
        raise ValueError("a bucket name must not use a prefix or suffix S3 reserves (xn--, -s3alias, ...)")
    return value


def https_endpoint(value: str) -> str:
    """An S3 endpoint: `https://host[:port]` with nothing else (no user, path, query or fragment)."""
    expected = "expected an https:// endpoint such as https://fra1.digitaloceanspaces.com"
    if not value.isascii() or any(c.isspace() for c in value):
        raise ValueError(expected)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(expected) from None
    if parts.scheme != "https" or parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(expected)
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(expected)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            hostname(host)
        except ValueError:
            raise ValueError(expected) from None
    return value.rstrip("/")


_REGION_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")


def region(value: str) -> str:
    """A cloud or S3 region slug (us-east-1, fra1, nbg1, auto)."""
    if not _REGION_RE.fullmatch(value):
        raise ValueError("expected a region slug such as fra1 or us-east-1")
    return value


_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def slug(value: str) -> str:
    """A provider slug (server type, image, database size): lowercase letters, digits, '.', '_', '-'."""
    if not _SLUG_RE.fullmatch(value):
        raise ValueError("expected a provider slug such as cx23, ubuntu-24.04 or db-s-1vcpu-1gb")
    return value


# --- free text -------------------------------------------------------------------------------

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def header_safe(value: str) -> str:
    """Text that goes into a mail header, an env file line or an SMTP AUTH: no control characters."""
    if _CONTROL_RE.search(value):
        raise ValueError("must not contain control characters (CR, LF, NUL, TAB, ...)")
    return value


def no_nul(value: str) -> str:
    """Any text a process can receive (argv, environment): everything but NUL."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


_KEY_ID_RE = re.compile(r"[\x21-\x7e]{1,256}")


def credential(value: str) -> str:
    """An access key id or secret key: printable ASCII, no spaces (what S3 providers issue)."""
    if not _KEY_ID_RE.fullmatch(value):
        raise ValueError("expected printable ASCII without spaces, as the storage provider issued it")
    return value


_CRYPT_KEY_RE = re.compile(r"[\x21-\x7e]{32,1024}")


def crypt_key(value: str) -> str:
    """The cluster backups' encryption passphrase (`ladder:backups.encryptionKey`).

    rclone's crypt derives its key from it with scrypt; a long random value makes the derived
    key as strong as the cipher, so at least 32 characters (`openssl rand -base64 32` gives 44).
    Printable ASCII without spaces: it travels as one line (`rclone obscure -` reads the first
    line of stdin, in the pod and on the operator's machine) and must survive copy and paste.
    """
    if not _CRYPT_KEY_RE.fullmatch(value):
        raise ValueError(
            "expected 32 to 1024 printable ASCII characters without spaces "
            "(e.g. the output of `openssl rand -base64 32`)"
        )
    return value


# --- cron --------------------------------------------------------------------------------------

CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_ITEM_RE = re.compile(r"(\*|(?P<a>[0-9]{1,2})(?:-(?P<b>[0-9]{1,2}))?)(?:/(?P<step>[0-9]{1,2}))?")


def cron(value: str) -> str:
    """A 5-field cron schedule (numbers, `*`, ranges, lists, steps), fields separated by one space."""
    expected = "expected a 5-field cron schedule such as '0 */6 * * *'"
    fields = value.split(" ")
    if len(fields) != 5:
        raise ValueError(expected)
    for text, (name, low, high) in zip(fields, CRON_FIELDS, strict=True):
        for item in text.split(","):
            match = _CRON_ITEM_RE.fullmatch(item)
            if not match:
                raise ValueError(expected)
            a, b, step = match.group("a"), match.group("b"), match.group("step")
            if step is not None and int(step) < 1:
                raise ValueError(f"cron {name}: a step must be at least 1")
            bounds = [int(x) for x in (a, b) if x is not None]
            if any(not low <= x <= high for x in bounds) or (len(bounds) == 2 and bounds[0] > bounds[1]):
                raise ValueError(f"cron {name}: {item!r} is outside {low}-{high}")
    return value


# --- age recipients ----------------------------------------------------------------------------

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_AGE_RECIPIENT_RE = re.compile(rf"age1[{_BECH32_CHARSET}]{{58}}")


def _bech32_polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_BECH32_GENERATOR):
            check ^= generator if (top >> i) & 1 else 0
    return check


def age_recipient(value: str) -> str:
    """An age X25519 recipient (`age-keygen`'s "Public key: age1..."), checksum verified.

    The format is Bech32 (BIP 173) with human-readable part `age`: 32 key bytes are 52 data
    characters, then 6 of checksum, all from Bech32's 32-letter alphabet, lower case. SSH and
    plugin recipients (`ssh-ed25519 ...`, `age1yubikey1...`) are not taken: the first has
    spaces for every sink to get wrong, the second needs a plugin binary on the server.
    """
    expected = "expected an age public key such as the 'Public key: age1...' line age-keygen prints (62 characters)"
    if not _AGE_RECIPIENT_RE.fullmatch(value):
        raise ValueError(expected)
    hrp, data = "age", [_BECH32_CHARSET.index(c) for c in value[4:]]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    if _bech32_polymod(expanded + data) != 1:
        raise ValueError("the age public key's checksum does not match: copy the whole 'age1...' line again")
    # 52 characters carry 260 bits: the 4 padding bits after the 256-bit key must be zero.
    if data[51] & 0xF:
        raise ValueError(expected)
    return value
