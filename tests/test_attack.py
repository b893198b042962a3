"""Hostile values against every config field that reaches a script, unit, Caddyfile, compose
file, env file or manifest (tools/attack.py): refused with the key path, or rendered so the
real parsers see no injection. `pytest -s tests/test_attack.py` (or `make attack`) prints
the numbers."""

from __future__ import annotations

import base64
import json
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tools import attack
from tools.judge import MARK, Judge


@pytest.fixture(scope="module")
def outcomes() -> list[attack.Outcome]:
    judge = Judge()
    found = attack.run_attack(judge=judge)
    if judge.skipped and os.environ.get("LADDER_REQUIRE_VALIDATORS") == "1":
        pytest.fail(f"the attack ran without {sorted(judge.skipped)} (validators are required in CI)")
    return found


def test_hostile_values_are_refused_or_harmless(outcomes: list[attack.Outcome]) -> None:
    report = attack.summary(outcomes)
    broken = [o for o in outcomes if o.status == "broken" and not o.known_elsewhere]
    known = [o for o in outcomes if o.known_elsewhere]
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "attack-report.json").write_text(json.dumps(report, indent=2))
    print(
        f"\nhostile values: tried {report['tried']}, refused {report['refused']}, accepted {report['accepted']}, "
        f"broken {len(broken)} (+{len(known)} known in deploy.py) over {report['fields']} fields"
    )
    assert report["fields"] == len(attack.FIELDS) and report["tried"] >= 3000
    assert report["accepted"] > 100  # the attack reaches the sinks, not only the validators
    assert not broken, "\n".join(f"{o.field} {o.value!r}: {o.detail}" for o in broken[:20])
    for field, text in attack.KNOWN_ELSEWHERE:
        assert any(o.field == field and text in o.detail for o in known), (
            f"fixed? remove {field} from attack.KNOWN_ELSEWHERE"
        )


def test_every_field_is_reached(outcomes: list[attack.Outcome]) -> None:
    """A field whose hostile values all get refused must at least have its valid value accepted
    and rendered cleanly, or the attack proves nothing about its sink."""
    judge = Judge()
    for field in attack.FIELDS:
        outcome = attack.try_value(judge, field, field.valid)
        assert outcome.status == "accepted", (field.key_path, outcome.detail)


def test_the_judge_catches_injections() -> None:
    """The oracle itself can fail: feed it renders with a planted injection."""
    judge = Judge()
    base = {"x.sh": "#!/usr/bin/env bash\necho 'hi'\n"}
    assert judge.problems({"x.sh": "#!/usr/bin/env bash\necho 'hi'\nladderpwn\n"}, base, {})
    assert judge.problems({"x.sh": "#!/usr/bin/env bash\necho 'hi' $(ladderpwn)\n"}, base, {})
    rc = {"watch.curlrc": 'user = "a:b"\n'}
    assert judge.problems({"watch.curlrc": "user = a b:b\n"}, rc, {"smtpUser": "a b", "smtpPassword": "b"})
    assert not judge.problems(rc, rc, {"smtpUser": "a", "smtpPassword": "b"})
    unit = {"u.service": "[Unit]\nDescription=x\n\n[Service]\nType=oneshot\nExecStart=/usr/local/sbin/ladder-backup\n"}
    planted = {"u.service": unit["u.service"] + "ExecStartPre=/bin/ladderpwn\n"}
    assert judge.problems(planted, unit, {})
    caddy = {"Caddyfile": ":80 {\n\treverse_proxy 127.0.0.1:3000\n}\n"}
    served = {"Caddyfile": ":80 {\n\treverse_proxy 127.0.0.1:3000\n}\n:81 {\n\tfile_server\n}\n"}
    if judge.caddy:
        assert judge.problems(served, caddy, {})


HYPOTHESIS_FIELDS = [f for f in attack.FIELDS if f.base is attack.vps_base]
HOSTILE_ALPHABET = st.sampled_from([*"\n\r\t\x00 '\"`$(){};|&<>#%*\\/:=!~@.,-_aZ09\u2028\u0085", MARK])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(HYPOTHESIS_FIELDS),
    text=st.lists(HOSTILE_ALPHABET, min_size=1, max_size=12).map("".join),
    before=st.booleans(),
)
def test_random_hostile_text(field: attack.Field, text: str, before: bool) -> None:
    value = field.valid + text if before else text
    outcome = attack.try_value(_JUDGE, field, value)
    assert outcome.status != "broken" or outcome.known_elsewhere, (field.key_path, value, outcome.detail)


_JUDGE = Judge()


# --- the cluster rung: hostile accepted values reach manifests as data, byte for byte ------

MANIFEST_PAYLOADS = [
    "\nladderpwn: true\n",
    "'$(ladderpwn)' \"`ladderpwn`\"",
    "--- !!python/object:os.system ladderpwn",
    "{{ .Values.ladderpwn }} ${ladderpwn}",
    "p@ss$word\n-----BEGIN KEY-----\nAAA=\n",
]


@pytest.mark.parametrize("payload", MANIFEST_PAYLOADS)
def test_hostile_values_reach_manifests_unchanged(payload: str) -> None:
    from tools.harness import run_program, unwrap
    from tools.manifests import manifests_from

    result = run_program(
        "production",
        # production's worker command lives in its ladder:appOverrides (merged last by the program)
        overrides={
            "ladder:app.env.LOG_LEVEL": payload,
            "ladder:appOverrides.services.worker.command": ["node", payload],
        },
        secrets={"ladder:secrets.SESSION_SECRET": payload},
    )
    assert result.error is None, result.error
    for manifest in manifests_from(result):
        text = yaml.safe_dump(manifest, sort_keys=False)
        assert yaml.safe_load(text) == manifest  # YAML round trip, no extra keys or documents
    deployments = {r.name: unwrap(r.inputs) for r in result.of_type("kubernetes:apps/v1:Deployment")}
    worker = next(d for name, d in deployments.items() if name.endswith("worker"))
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["node", payload]
    (env,) = [unwrap(r.inputs) for r in result.of_type("kubernetes:core/v1:ConfigMap") if r.name.endswith("-env")]
    assert env["data"]["LOG_LEVEL"] == payload
    (secret,) = [unwrap(r.inputs) for r in result.of_type("kubernetes:core/v1:Secret") if r.name.endswith("-secrets")]
    data = secret.get("stringData") or {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    assert data["SESSION_SECRET"] == payload
