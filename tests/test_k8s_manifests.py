"""deploy/k8s as Kubernetes gets it: the base and the example overlay rendered by `kubectl kustomize` (offline),
every object checked against the API schemas of a pinned Kubernetes version (kubernetes-validate, strict: an
unknown field fails), then what the schemas cannot say - probes, security context, the drain time, who may reach
the port - checked on the rendered objects."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import kubernetes_validate
import pytest
import trustme
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc

from regelmotor.server.config import Settings
from regelmotor.server.servicers import RULESET_SERVICE
from regelmotor.store import Checkpointer, FileWitness, load_or_create_key, open_log
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.auth_support import Issuer
from tests.conftest import ROOT
from tests.grpc_support import request
from tests.postgres_support import postgres_schema
from tests.server_process import running_server
from tests.test_decision_log import make_record

K8S = ROOT / "deploy" / "k8s"
OVERLAY = K8S / "overlays" / "example"
# The oldest Kubernetes these manifests are meant for: 1.31 (preStop's `sleep` action is on by default from 1.30).
KUBERNETES_VERSION = "1.31.0"
SERVICE_PORT = 50051
# What the server may still do after the grace period (server/app.py, Service.stop): stop the workers (up to
# 2 s), write the last records (up to 5 s), then sign the last checkpoint.
SHUTDOWN_AFTER_GRACE_SECONDS = 7
Objects = list[dict[str, Any]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def render(folder: str) -> Objects:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is not installed (CI is set, so deploy/k8s must be checked)")
        pytest.skip("kubectl is not installed")
    done = subprocess.run([kubectl, "kustomize", str(K8S / folder)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, Objects]:
    return {folder: render(folder) for folder in ("base", "overlays/example")}


@pytest.fixture(scope="module")
def example(rendered: dict[str, Objects]) -> Objects:
    return rendered["overlays/example"]


def one(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def pod_specs(objects: Objects) -> Iterator[tuple[str, dict[str, Any]]]:
    for o in objects:
        if o["kind"] in ("Deployment", "Job"):
            yield f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            yield f"{o['kind']}/{o['metadata']['name']}", o["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def server_container(objects: Objects) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "regelmotor")


def settings_env(objects: Objects) -> dict[str, str]:
    config_maps = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(
        "regelmotor-settings")]
    assert len(config_maps) == 1
    data: dict[str, str] = config_maps[0]["data"]
    return data


@pytest.mark.parametrize("folder", ["base", "overlays/example"])
def test_every_object_is_valid_for_the_pinned_kubernetes(rendered: dict[str, Objects], folder: str) -> None:
    objects = rendered[folder]
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
            "ConfigMap", "Job", "CronJob", "ServiceAccount"} <= kinds
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{folder}: {obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_the_settings_are_ones_the_server_knows_and_accepts(example: Objects,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt REGELMOTOR_* name would be ignored by nobody: the server refuses unknown settings - at start,
    in the cluster. Here instead."""
    env = settings_env(example)
    known = {f"REGELMOTOR_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in env if k.startswith("REGELMOTOR_")} - known == set()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert (settings.host, settings.port) == ("0.0.0.0", SERVICE_PORT)
    # A non-loopback host needs TLS and tokens (docs/security.md): both are configured, `insecure` is not.
    assert settings.tls_cert_file and settings.tls_key_file and settings.auth_jwks_file
    assert not settings.insecure
    assert settings.auth_issuer and settings.auth_audience


def test_probes_are_grpc_readiness_on_the_decisions_liveness_on_the_front(example: Objects) -> None:
    container = server_container(example)
    # The kubelet's gRPC probe speaks plaintext; the service port TLS only: the probes ask the health-only port
    # (server/health_port.py, tests/test_health_port.py).
    health_port = int(settings_env(example)["REGELMOTOR_HEALTH_PORT"])
    assert health_port != SERVICE_PORT
    assert sorted(p["containerPort"] for p in container["ports"]) == sorted([SERVICE_PORT, health_port])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert set(container[probe]) & {"grpc", "exec", "httpGet", "tcpSocket"} == {"grpc"}, probe
        assert container[probe]["grpc"]["port"] == health_port, probe
    # "" is SERVING only while a worker is ready and the log takes records (server/health.py) ...
    assert container["readinessProbe"]["grpc"]["service"] == ""
    # ... RulesetService until shutdown, so busy workers or a lost database do not get the pod killed.
    assert container["livenessProbe"]["grpc"]["service"] == RULESET_SERVICE


def test_workers_match_the_cpu_limit(example: Objects) -> None:
    resources = server_container(example)["resources"]
    assert set(resources) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(resources["limits"]) and {"cpu", "memory"} <= set(resources["requests"])
    assert int(settings_env(example)["REGELMOTOR_WORKERS"]) == int(resources["limits"]["cpu"])


def test_pods_run_unprivileged_on_a_read_only_root(example: Objects) -> None:
    specs = dict(pod_specs(example))
    assert set(specs) == {"Deployment/regelmotor", "Job/regelmotor-migrate", "CronJob/regelmotor-prune"}
    for where, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and isinstance(pod["runAsUser"], int) and pod["runAsUser"] > 0, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (where, container["name"])
            assert context["readOnlyRootFilesystem"] is True, (where, container["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (where, container["name"])
            assert context.get("privileged") is not True and context.get("runAsUser", 1) != 0


def test_images_are_pinned_to_a_tag(rendered: dict[str, Objects]) -> None:
    for folder, objects in rendered.items():
        for where, spec in pod_specs(objects):
            for container in spec.get("initContainers", []) + spec["containers"]:
                image = container["image"]
                name, _, tag = image.rpartition(":")
                assert name == "ghcr.io/regelmotor/regelmotor" and tag, f"{folder} {where}: {image} has no tag"
                assert tag != "latest", f"{folder} {where}: {image}"


def test_the_key_files_are_secrets_mounted_read_only_apart_from_the_data(example: Objects) -> None:
    spec = one(example, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in server_container(example)["volumeMounts"]}
    env = settings_env(example)
    file_settings = {k: v for k, v in env.items() if k.endswith("_FILE")}
    assert set(file_settings) == {"REGELMOTOR_TLS_CERT_FILE", "REGELMOTOR_TLS_KEY_FILE", "REGELMOTOR_AUTH_JWKS_FILE",
                                  "REGELMOTOR_PSEUDONYM_KEY_FILE", "REGELMOTOR_CHECKPOINT_KEY_FILE"}
    copied = {item["path"] for source in next(v for v in spec["volumes"] if v["name"] == "secrets-in")[
        "projected"]["sources"] for item in source["secret"]["items"]}
    for key, path in file_settings.items():
        folder, _, file = path.rpartition("/")
        assert mounts[folder]["readOnly"] is True, key
        assert file in copied, f"{key}: {file} comes from no Secret"
        assert not path.startswith(env["REGELMOTOR_DATA_DIR"] + "/"), f"{key} lies in the data directory"
    assert mounts[env["REGELMOTOR_DATA_DIR"]].get("readOnly") is not True


def referenced_secrets(objects: Objects) -> set[str]:
    names: set[str] = set()
    for _, spec in pod_specs(objects):
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                names.add(volume["secret"]["secretName"])
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    names.add(source["secret"]["name"])
        for container in spec.get("initContainers", []) + spec["containers"]:
            names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", [])
                      if "secretKeyRef" in e.get("valueFrom", {})}
            names |= {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
    return names


def test_every_secret_is_referenced_by_name_and_documented(example: Objects) -> None:
    assert [o for o in example if o["kind"] == "Secret"] == []  # no secret values in the repository
    names = referenced_secrets(example)
    assert names == {"regelmotor-database", "regelmotor-tls", "regelmotor-keys"}
    kustomization = (OVERLAY / "kustomization.yaml").read_text(encoding="utf-8")
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert name in kustomization and f"`{name}`" in readme, name


def test_only_the_hospital_and_the_monitoring_reach_the_port(example: Objects) -> None:
    policy = one(example, "NetworkPolicy")["spec"]
    pod_labels = one(example, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    [rule] = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": SERVICE_PORT}]
    # Each peer a namespace chosen by its name label, and nothing else (no ipBlock, no pods of any namespace).
    assert all(set(peer) == {"namespaceSelector"} and set(peer["namespaceSelector"]) == {"matchLabels"}
               for peer in rule["from"])
    assert [peer["namespaceSelector"]["matchLabels"] for peer in rule["from"]] == [
        {"kubernetes.io/metadata.name": "pasientflyt"}, {"kubernetes.io/metadata.name": "overvaking"}]
    egress_ports = sorted((p["protocol"], p["port"]) for r in policy["egress"] for p in r["ports"])
    assert egress_ports == [("TCP", 53), ("TCP", 4317), ("TCP", 5432), ("UDP", 53)]
    service = one(example, "Service")["spec"]
    assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(SERVICE_PORT, "grpc")]


def test_hpa_pdb_and_service_find_the_deployment_and_its_pods(example: Objects) -> None:
    deployment = one(example, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = one(example, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    pdb_selector = one(example, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    assert pdb_selector.items() <= pod_labels.items()
    assert one(example, "Service")["spec"]["selector"].items() <= pod_labels.items()
    # The migration Job's pods carry another component: no Service, PDB or Deployment counts them.
    job_labels = one(example, "Job")["spec"]["template"]["metadata"]["labels"]
    assert not pdb_selector.items() <= job_labels.items()
    assert not deployment["spec"]["selector"]["matchLabels"].items() <= job_labels.items()


def seconds(env: dict[str, str], name: str) -> float:
    """The setting as the pods get it, else the server's default (server/config.py)."""
    value = env.get(f"REGELMOTOR_{name.upper()}")
    default = Settings.model_fields[name].default
    assert isinstance(default, float)
    return float(value) if value is not None else default


def test_the_grace_period_covers_the_servers_drain(example: Objects) -> None:
    spec = one(example, "Deployment")["spec"]["template"]["spec"]
    env = settings_env(example)
    pre_stop = server_container(example)["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain, grace = seconds(env, "drain_delay_seconds"), seconds(env, "grace_seconds")
    assert drain > 0 and grace > 0
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + drain + grace + SHUTDOWN_AFTER_GRACE_SECONDS
    # The Job migrates and exits; it has no drain.
    assert one(example, "Job")["spec"]["template"]["spec"]["containers"][0]["command"] == ["regelmotor", "db",
                                                                                           "migrate"]


def write_secret_files(folder: Path, names: set[str]) -> trustme.CA:
    """The files the key-files init container leaves in the pod, made here (mode 0600, as it copies them)."""
    ca = trustme.CA()
    server = ca.issue_cert("0.0.0.0", "127.0.0.1", "localhost")
    files = {"tls.crt": b"".join(p.bytes() for p in server.cert_chain_pems), "tls.key": server.private_key_pem.bytes(),
             "pseudonym.key": secrets.token_hex(32).encode("ascii"),
             "checkpoint.key": Ed25519PrivateKey.generate().private_bytes(
                 serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        (folder / name).chmod(0o600)
    issuer = Issuer()
    issuer.add_rsa("k1")
    issuer.write_jwks(folder / "jwks.json")
    assert {p.name for p in folder.iterdir()} == names
    return ca


def test_the_rendered_settings_start_a_server_that_probes_can_ask(example: Objects, tmp_path: Path) -> None:
    """The example's ConfigMap as the pod gets it - non-loopback host, TLS, tokens, the key files, the health
    port - starts the real server on PostgreSQL, with the file paths moved from the pod's volumes to folders here
    and no OTLP export (its collector is in the cluster)."""
    with postgres_schema() as dsn:
        env = {k: v for k, v in settings_env(example).items() if k.startswith("REGELMOTOR_")}
        [pod_secrets] = {path.rpartition("/")[0] for key, path in env.items() if key.endswith("_FILE")}
        secrets_dir = tmp_path / "secrets"
        secrets_dir.mkdir()
        ca = write_secret_files(secrets_dir, {path.rpartition("/")[2] for key, path in env.items()
                                              if key.endswith("_FILE")})
        env = {k: v.replace(pod_secrets, str(secrets_dir)) for k, v in env.items()}
        health_port = free_port()
        env |= {"REGELMOTOR_DATA_DIR": str(tmp_path / "data"), "REGELMOTOR_DECISION_LOG": dsn,
                "REGELMOTOR_HEALTH_PORT": str(health_port)}
        credentials = grpc.ssl_channel_credentials(ca.cert_pem.bytes())
        with running_server(workers=1, drafts=False, env=env, credentials=credentials) as server:
            with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                                   timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with grpc.secure_channel(server.address, credentials) as channel:
                try:
                    pb_grpc.DecisionServiceStub(channel).Evaluate(request(), timeout=10)
                    refused = "answered"
                except grpc.RpcError as error:
                    refused = error.code().name
            assert refused == "UNAUTHENTICATED"  # TLS answered, and a call without a token is refused


def test_the_prune_cronjob_waits_for_a_retention_period_then_prunes_with_the_services_key(
        rendered: dict[str, Objects], tmp_path: Path) -> None:
    """Suspended until an installation has chosen its period; its command, as the container runs it, prunes a real
    PostgreSQL with the checkpoint key where the init container leaves it, so the cut verifies with the service's
    key."""
    for folder, objects in rendered.items():
        assert one(objects, "CronJob")["spec"]["suspend"] is True, folder
    example = rendered["overlays/example"]
    spec = one(example, "CronJob")["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["REGELMOTOR_CHECKPOINT_KEY_FILE"]["value"] == settings_env(example)["REGELMOTOR_CHECKPOINT_KEY_FILE"]
    sources = [(s["secret"]["name"], item["key"]) for v in pod["volumes"] if "projected" in v
               for s in v["projected"]["sources"] for item in s["secret"]["items"]]
    assert sources == [("regelmotor-keys", "checkpoint.key")]  # the Deployment's key, nothing more
    assert env["REGELMOTOR_DECISION_LOG"]["valueFrom"]["secretKeyRef"] == {"name": "regelmotor-database", "key": "dsn"}
    argv = [*container["command"], *container["args"]]
    assert argv[:3] == ["regelmotor", "db", "prune"]

    key_file = tmp_path / "checkpoint.key"
    with postgres_schema() as dsn:
        log = open_log(dsn)
        try:
            long_ago = datetime.now(UTC) - timedelta(days=int(argv[argv.index("--keep-days") + 1]) + 30)
            log.append([make_record(i, recorded_at=long_ago + timedelta(minutes=i)) for i in range(3)]
                       + [make_record(9, recorded_at=datetime.now(UTC))])
            load_or_create_key(key_file)
            source = os.pathsep.join(str(ROOT / p) for p in ("services/rules", "protos/python", "."))
            done = subprocess.run([sys.executable, "-m", "regelmotor.cli.main", *argv[1:]], capture_output=True,
                                  text=True, timeout=120, check=False, cwd=tmp_path,
                                  env={**os.environ, "PYTHONPATH": source, "REGELMOTOR_DECISION_LOG": dsn,
                                       "REGELMOTOR_CHECKPOINT_KEY_FILE": str(key_file)})
            assert done.returncode == 0, done.stderr
            assert "deleted: 3 records (seq 1–3)" in done.stdout
            checked = Checkpointer(log, load_or_create_key(key_file), FileWitness(tmp_path / "none.jsonl")).check()
            assert checked.result.ok and checked.result.cut is not None and checked.result.cut.seq == 3
        finally:
            log.close()
