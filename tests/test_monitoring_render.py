"""kube-prometheus-stack values, checked as data (no Helm binary is available offline)."""

from __future__ import annotations

import pytest
import yaml

from components import versions
from components.render.monitoring import SmtpSettings, kube_prometheus_stack_values


def test_chart_is_pinned() -> None:
    chart = versions.KUBE_PROMETHEUS_STACK
    assert chart.name == "kube-prometheus-stack"
    assert chart.repo.startswith("https://")
    assert all(part.isdigit() for part in chart.version.split("."))


def test_values_shape() -> None:
    v = kube_prometheus_stack_values(
        grafana_admin_password="pw",
        alert_email="ops@shop.example.com",
        smtp=SmtpSettings("smtp.example.com:587", "alerts@shop.example.com", "apikey"),
        smtp_password="smtp-pw",
        retention_days=10,
        storage_gb=20,
    )
    yaml.safe_dump(v)  # plain data only
    assert v["grafana"]["adminPassword"] == "pw"
    spec = v["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "10d"
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    config = v["alertmanager"]["config"]
    assert config["route"]["receiver"] == "email"
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["email"]["email_configs"] == [{"to": "ops@shop.example.com", "send_resolved": True}]
    assert config["global"]["smtp_auth_password"] == "smtp-pw"
    for section in (spec, v["alertmanager"]["alertmanagerSpec"], v["grafana"], v["prometheusOperator"]):
        res = section["resources"]
        assert set(res) == {"requests", "limits"}
        assert {"cpu", "memory"} <= set(res["requests"])


def test_without_email_keeps_chart_receivers() -> None:
    v = kube_prometheus_stack_values(grafana_admin_password="pw", alert_email=None)
    assert "config" not in v["alertmanager"]


@pytest.mark.parametrize(
    "kwargs", [{"grafana_admin_password": ""}, {"grafana_admin_password": "x", "retention_days": 0}]
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        kube_prometheus_stack_values(alert_email=None, **kwargs)  # type: ignore[arg-type]
