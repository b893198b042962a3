"""`cloud-init schema` accepts misspelled top-level keys, so Ladder checks them against the known modules."""

from __future__ import annotations

from typing import Any

# Top-level keys of the cloud-config modules Ladder uses or may use (cloud-init 22.4+ docs).
KNOWN_TOP_LEVEL = {
    "users",
    "groups",
    "disable_root",
    "ssh_pwauth",
    "ssh_authorized_keys",
    "ssh_deletekeys",
    "ssh_genkeytypes",
    "ssh_keys",  # cc_ssh: host keys given to the server (ed25519_private, ed25519_public)
    "package_update",
    "package_upgrade",
    "package_reboot_if_required",
    "packages",
    "write_files",
    "runcmd",
    "bootcmd",
    "mounts",
    "swap",
    "fs_setup",
    "disk_setup",
    "timezone",
    "locale",
    "hostname",
    "fqdn",
    "ntp",
    "apt",
    "final_message",
    "power_state",
}


def assert_known_top_level_keys(config: dict[str, Any]) -> None:
    unknown = set(config) - KNOWN_TOP_LEVEL
    assert not unknown, f"unknown cloud-config keys (typos pass cloud-init schema): {sorted(unknown)}"


def test_a_typo_is_caught() -> None:
    try:
        assert_known_top_level_keys({"packages": [], "pakages": []})
    except AssertionError as exc:
        assert "pakages" in str(exc)
    else:
        raise AssertionError("a misspelled key must be reported")
