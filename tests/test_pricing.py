"""The cost function: list prices from the dated table, per rung and provider."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.pricing import PRICES, PRICES_AS_OF, monthly_cost
from components.settings import parse_settings
from tests.helpers import SECRET_KEYS, SSH_KEY, cluster_config, local_config, vps_config


def items(cost: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in cost["items"]}


def test_local_costs_nothing() -> None:
    cost = monthly_cost(parse_settings(local_config())).as_dict()
    assert cost["total"] == 0 and cost["items"] == []


def test_table_is_dated_and_sourced() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", PRICES_AS_OF)
    for prices in PRICES.values():
        assert prices.source.startswith("https://")
        assert all(price > 0 for price in prices.servers.values())


def test_hetzner_single_server_is_the_cheapest_shape() -> None:
    cost = monthly_cost(parse_settings(vps_config()))
    assert cost.currency == "EUR"
    names = items(cost.as_dict())
    server = next(i for n, i in names.items() if "cx23" in n)
    assert server["unitPrice"] == PRICES["hetzner"].servers["cx23"] and server["quantity"] == 1
    assert not any("load balancer" in n for n in names)
    assert cost.total == pytest.approx(sum(i["monthly"] for i in names.values()))
    assert cost.total < 10


def test_more_servers_add_a_load_balancer_and_scale() -> None:
    one = monthly_cost(parse_settings(vps_config()))
    three = monthly_cost(parse_settings(vps_config(vps={**vps_config()["vps"], "count": 3})))
    assert any("load balancer" in i.name for i in three.items)
    assert three.total > one.total + 2 * PRICES["hetzner"].servers["cx23"]


def test_digitalocean_managed_databases_are_billed() -> None:
    raw = vps_config(provider="digitalocean", postgres={"mode": "managed"}, redis={"mode": "managed"})
    cost = monthly_cost(parse_settings(raw))
    assert cost.currency == "USD"
    billed = [i.name for i in cost.items]
    assert any("Postgres" in n for n in billed) and any("Valkey" in n for n in billed)


def test_cluster_ha_control_plane_costs_extra() -> None:
    base = monthly_cost(parse_settings(cluster_config()))
    ha = monthly_cost(parse_settings(cluster_config(cluster={"haControlPlane": True})))
    assert ha.total == pytest.approx(base.total + PRICES["digitalocean"].ha_control_plane)


def test_unknown_size_is_reported_not_guessed() -> None:
    raw = vps_config(vps={**vps_config()["vps"], "size": "ccx99"})
    cost = monthly_cost(parse_settings(raw)).as_dict()
    assert any("ccx99" in name for name in cost["unpriced"])
    assert all(item["unitPrice"] is not None or item["monthly"] == 0 for item in cost["items"])


def test_existing_hosts_are_not_billed_by_ladder() -> None:
    raw = vps_config(
        provider="existing",
        vps={
            "hosts": [
                {
                    "address": "192.0.2.1",
                    "user": "deploy",
                    "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGqNSkWkxGwC56GIK0Ntfe+k+WiXf2BCIxu5hqwvV/g",
                }
            ],
            "sshAllowFrom": ["10.0.0.0/8"],
            "sshPrivateKey": "k",
        },
    )
    assert monthly_cost(parse_settings(raw, SECRET_KEYS)).total == 0


def test_spaces_is_one_subscription_for_all_buckets_and_tenants() -> None:
    from tests.helpers import extras_config

    raw = extras_config(
        cluster_config(), tenants=[{"name": "a", "domain": "a.example.com"}, {"name": "b", "domain": "b.example.com"}]
    )
    raw["buckets"]["exports"] = {}
    names = items(monthly_cost(parse_settings(raw, SECRET_KEYS)).as_dict())
    spaces = [i for n, i in names.items() if "Spaces" in n]
    assert len(spaces) == 1 and spaces[0]["unitPrice"] == 5.0 and spaces[0]["quantity"] == 1
    # api 5 GB + mongo 10 GB + search 2 GB, each at least the provider's minimum, for 2 tenants
    volumes = names["service and accessory volumes (GB, all tenants)"]
    assert volumes["quantity"] == (5 + 10 + 2) * 2 and volumes["unitPrice"] == PRICES["digitalocean"].volume_gb


def test_existing_buckets_elsewhere_cost_nothing_on_spaces() -> None:
    from tests.helpers import extras_config

    # k3s on Hetzner (the vps rung refuses buckets until it deploys them)
    k3s = {"vps": {"sshKeys": [SSH_KEY], "sshAllowFrom": ["10.0.0.0/8"]}, "cluster": {"hcloudToken": "ccm-token"}}
    raw = extras_config(cluster_config(provider="hetzner", **k3s))
    raw["buckets"] = {
        "media": {
            "endpoint": "https://fsn1.your-objectstorage.com",
            "bucket": "shop-media",
            "accessKeyId": "AK",
            "secretAccessKey": "SK",
        }
    }
    names = items(monthly_cost(parse_settings(raw, SECRET_KEYS)).as_dict())
    assert not any("Spaces" in n for n in names)
    (hetzner,) = [i for n, i in names.items() if "Hetzner Object Storage" in n]
    assert hetzner["unitPrice"] == 5.0 and hetzner["quantity"] == 1
    assert not any("Object Storage" in n for n in items(monthly_cost(parse_settings(vps_config())).as_dict()))
