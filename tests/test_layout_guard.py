"""Issue 12 item 9: `vps.count` 1 -> N (or back) is refused from the stack's own last outputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components.layout_guard import LAYOUT_OUTPUT, refusal, vps_layout
from components.settings import parse_settings
from tests.helpers import SECRET_KEYS, vps_config
from tools.harness import LadderMocks, PlainMocks, run_program


def _layout(count: int, provider: str = "hetzner", **vps: Any) -> dict[str, Any]:
    raw = vps_config(provider=provider, vps={**vps_config()["vps"], "count": count, **vps})
    if provider == "digitalocean" and count > 1:
        raw.update(postgres={"mode": "managed"}, redis={"mode": "managed"})
    return vps_layout(parse_settings(raw, SECRET_KEYS))


class PreviousOutputs(LadderMocks):
    """The backend's answer to the stack reading its own last outputs."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self.outputs = outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"name": args.inputs.get("name"), "outputs": self.outputs, "secretOutputNames": []}
        return super().new_resource(args)


def test_one_to_several_and_back_are_refused() -> None:
    one, three = _layout(1), _layout(3)
    for before, after in ((one, three), (three, one)):
        reason = refusal(before, after)
        assert reason is not None and "ladder:vps.count" in reason and "docs/migration.md" in reason


@pytest.mark.parametrize(
    ("before", "after"),
    [(None, 3), (2, 3), (3, 2), (1, 1)],
)
def test_safe_changes_pass(before: int | None, after: int) -> None:
    assert refusal(_layout(before) if before else None, _layout(after)) is None


def test_digitalocean_one_to_several_is_refused_too() -> None:
    assert refusal(_layout(1, "digitalocean"), _layout(2, "digitalocean")) is not None


def test_the_program_refuses_before_touching_a_server() -> None:
    previous = {LAYOUT_OUTPUT: _layout(1), "url": "https://staging.shop.example.com"}
    refused = run_program("staging", overrides={"ladder:vps.count": 3}, mocks=PreviousOutputs(previous))
    assert isinstance(refused.error, pulumi.RunError), refused.error
    assert "docs/migration.md" in str(refused.error) and "ladder:vps.count" in str(refused.error)
    assert not [r for r in refused.resources if r.type.startswith(("hcloud:", "command:", "ladder:index:VpsStack"))]
    same = run_program("staging", mocks=PreviousOutputs(previous))
    assert same.error is None, same.error
    assert same.outputs[LAYOUT_OUTPUT] == _layout(1)
    assert same.of_type("hcloud:index/server:Server")


@pytest.mark.parametrize("preview", [False, True])
def test_plainest_mock_has_no_previous_layout(preview: bool) -> None:
    result = run_program("staging", overrides={"ladder:vps.count": 3}, mocks=PlainMocks(), preview=preview)
    assert result.error is None, result.error
    assert result.outputs[LAYOUT_OUTPUT]["appServers"] == 3
