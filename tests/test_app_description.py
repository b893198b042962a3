"""One app description: Pulumi.yaml's project config merged under each stack as the CLI does.

`tests/fixtures/stacks_before_app_merge/` holds the three stack files as they were before
the app moved to Pulumi.yaml (commit 616c992, each with its own full `ladder:app`): what
every stack evaluates to must not have changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.app_overrides import merge_patch
from components.settings import ConfigError, parse_settings
from tools.harness import ROOT, STACKS, merge_project_config, placeholder_secrets, project_config, stack_config

BEFORE = Path(__file__).parent / "fixtures" / "stacks_before_app_merge"
PROJECT_YAML = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
# What a `config:` entry may hold (pulumi/pulumi sdk/go/common/workspace/project.json,
# configTypeDeclaration, additionalProperties false).
DECLARATION_ATTRS = {"type", "items", "description", "secret", "default", "value"}


def _before(stack: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((BEFORE / f"Pulumi.{stack}.yaml").read_text())["config"]
    return config


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """The validated settings a config map gives the program (placeholder secrets in)."""
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("ladder:")}
    secret_keys = set()
    for path, value in placeholder_secrets(config).items():
        top, _, rest = path.partition(".")
        raw.setdefault(top.split(":", 1)[1], {})[rest] = value
        secret_keys.add(top)
    dumped: dict[str, Any] = parse_settings(raw, secret_keys, project_dir=ROOT).model_dump(mode="json")
    return dumped


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_evaluates_to_what_its_file_used_to_say(stack: str) -> None:
    before = _before(stack)
    merged = stack_config(stack)
    assert {k: v for k, v in merged.items() if k != "ladder:appOverrides"} | {
        "ladder:app": merge_patch(merged["ladder:app"], merged.get("ladder:appOverrides", {}))
    } == before
    assert _settings(merged) == _settings(before)


@pytest.mark.parametrize("stack", STACKS)
def test_the_app_is_written_once(stack: str) -> None:
    stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert "ladder:app" not in stack_file
    assert stack_config(stack)["ladder:app"] == PROJECT_YAML["config"]["app"]["value"]


def test_pulumi_yaml_entries_are_what_the_project_schema_allows() -> None:
    for key, decl in PROJECT_YAML["config"].items():
        assert isinstance(decl, dict) and set(decl) <= DECLARATION_ATTRS, key
        assert not ("default" in decl and "value" in decl), key


def test_a_stack_value_replaces_the_project_value_whole() -> None:
    app = {"name": "other", "services": {"web": {"image": "nginx:1.29.3", "port": 80}}}
    merged = merge_project_config(PROJECT_YAML, {"ladder:app": app, "ladder:phase": "vps"})
    # No deep merge: nothing of the project's services (api, worker) or release survives.
    assert merged["ladder:app"] == app
    assert merged["ladder:phase"] == "vps"


def test_project_keys_fill_in_only_what_the_stack_lacks() -> None:
    merged = merge_project_config(PROJECT_YAML, {"ladder:provider": "docker"})
    assert merged["ladder:phase"] == "local"  # `type: string` with a `default`
    assert merged["ladder:provider"] == "docker"
    assert "ladder:domain" not in merged  # typed, neither default nor value: stays unset
    assert merged["ladder:app"]["name"] == "shop"


def test_typed_keys_and_the_shorthand_follow_the_cli() -> None:
    project = {
        "name": "ladder",
        "config": {
            "size": "t3.micro",  # shorthand, project key: a default
            "aws:region": "eu-west-1",  # shorthand, other namespace: a value
            "tags": ["a", "b"],
            "count": {"type": "integer", "default": 2},
            "mode": {"type": "string", "value": "x"},
            "ladder:app": {"value": {"name": "n"}},
        },
    }
    assert project_config(project) == {
        "ladder:size": "t3.micro",
        "aws:region": "eu-west-1",
        "ladder:tags": ["a", "b"],
        "ladder:count": 2,
        "ladder:mode": "x",
        "ladder:app": {"name": "n"},
    }
    # Unnamespaced stack keys belong to the project too.
    assert merge_project_config(project, {"count": 5})["ladder:count"] == 5


def test_default_and_value_together_are_refused() -> None:
    with pytest.raises(ValueError, match="both a 'default' and 'value'"):
        project_config({"config": {"app": {"default": 1, "value": 2}}})


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_patch(target, {"a": {"c": [3], "e": 2}, "d": None}) == {"a": {"b": 1, "c": [3], "e": 2}}
    assert target == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # not mutated
    assert merge_patch(target, ["x"]) == ["x"]


def test_app_overrides_change_one_detail_and_keep_the_rest() -> None:
    config = {**stack_config("dev"), "ladder:appOverrides": {"services": {"web": {"replicas": 5}}}}
    settings = _settings(config)
    assert settings["app"]["services"]["web"]["replicas"] == 5
    assert settings["app"]["services"]["api"]["image"] == "mendhak/http-https-echo:37"


def test_app_overrides_must_be_a_map() -> None:
    raw = {"app": PROJECT_YAML["config"]["app"]["value"], "appOverrides": ["x"]}
    with pytest.raises(ConfigError, match="ladder:appOverrides: expected a map"):
        parse_settings(raw, project_dir=ROOT)


def test_a_bad_override_is_named_by_its_app_path() -> None:
    raw = {"app": PROJECT_YAML["config"]["app"]["value"], "appOverrides": {"services": {"web": {"port": 0}}}}
    with pytest.raises(ConfigError, match=r"ladder:app\.services\.web\.port"):
        parse_settings(raw, project_dir=ROOT)
