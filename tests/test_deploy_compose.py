"""deploy/compose.yaml, read as compose reads it (YAML, merge keys): every service has a health check, every image a
pinned tag, secrets come from files documented in deploy/README.md and never from an environment literal, and both
Regelmotor instances use the same PostgreSQL as decision log and ruleset store. No container runtime here can pull
images and compose itself is not installed, so the stack is checked, not started."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

COMPOSE = ROOT / "deploy" / "compose.yaml"
README = ROOT / "deploy" / "README.md"
SECRET_NAME = re.compile(r"KEY|PASS|SECRET|TOKEN", re.IGNORECASE)
PASSWORD_IN_URL = re.compile(r"://[^/@\s]*:[^/@\s]*@")
INSTANCES = ("regelmotor-1", "regelmotor-2")


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_every_service_has_a_health_check(stack: dict[str, Any]) -> None:
    missing = [name for name, service in stack["services"].items() if not service.get("healthcheck", {}).get("test")]
    assert missing == []


def test_every_image_has_a_pinned_tag(stack: dict[str, Any]) -> None:
    unpinned = {}
    for name, service in stack["services"].items():
        image = service["image"]
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        if not re.fullmatch(r"v?\d+\.\d+(\.\d+)?[\w.-]*", tag):  # x.y or x.y.z: never latest, nor a bare major
            unpinned[name] = image
    assert unpinned == {}


def test_every_secret_is_defined_as_a_file_that_the_readme_names(stack: dict[str, Any]) -> None:
    defined = stack["secrets"]
    used = {secret if isinstance(secret, str) else secret["source"]
            for service in stack["services"].values() for secret in service.get("secrets", [])}
    assert used == set(defined)  # nothing used undefined, nothing defined unused
    readme = README.read_text(encoding="utf-8")
    undocumented = [entry["file"] for entry in defined.values()
                    if f"`{entry['file'].removeprefix('./')}`" not in readme]
    assert undocumented == []


def test_no_environment_value_is_a_secret_literal(stack: dict[str, Any]) -> None:
    literals = {}
    for name, service in stack["services"].items():
        mounted = {f"/run/secrets/{s if isinstance(s, str) else s.get('target', s['source'])}"
                   for s in service.get("secrets", [])}
        for key, value in service.get("environment", {}).items():
            named_secret = SECRET_NAME.search(key) and not (key.endswith("FILE") and value in mounted)
            if named_secret or PASSWORD_IN_URL.search(str(value)):
                literals[f"{name}.{key}"] = value
    assert literals == {}


def test_both_instances_share_one_postgresql_and_reach_it_healthy(stack: dict[str, Any]) -> None:
    services = stack["services"]
    logs = {services[name]["environment"]["REGELMOTOR_DECISION_LOG"] for name in INSTANCES}
    assert len(logs) == 1
    (dsn,) = logs
    database = services["postgres"]["environment"]
    assert dsn == f"postgresql://{database['POSTGRES_USER']}@postgres:5432/{database['POSTGRES_DB']}"
    assert services["regelmotor-1"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    # Each its own data volume: the witness file is per instance (docs/configuration.md).
    assert len({tuple(services[name]["volumes"]) for name in INSTANCES}) == 2


def test_both_instances_share_one_checkpoint_key_from_a_secret(stack: dict[str, Any]) -> None:
    # A retention cut signed with one instance's key is "cut invalid" to an instance with another
    # (tests/test_retention_instances.py): the key is one secret, not made in each data volume.
    services = stack["services"]
    keys = {services[name]["environment"].get("REGELMOTOR_CHECKPOINT_KEY_FILE") for name in INSTANCES}
    assert keys == {"/run/secrets/checkpoint_key"}
    assert all("checkpoint_key" in services[name]["secrets"] for name in INSTANCES)
    assert stack["secrets"]["checkpoint_key"] == {"file": "./secrets/checkpoint.key"}


def test_the_balancer_sends_to_both_instances(stack: dict[str, Any]) -> None:
    config = ROOT / "deploy" / stack["configs"]["nginx"]["file"]
    upstreams = re.findall(r"^\s*server (\S+);", config.read_text(encoding="utf-8"), re.MULTILINE)
    assert upstreams == [f"{name}:50051" for name in INSTANCES]

