"""The Kubernetes manifests: valid against the Kubernetes schemas (kubernetes-validate, strict),
the operator's resources against their documented fields (operator_schemas.py), and consistent
with each other, the image and the config schema."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from exporter.loader import parse_config
from tests.deploy.operator_schemas import SCHEMAS
from tests.support import dockerfile

REPO = Path(__file__).parents[2]
KUBE = REPO / "deploy/kubernetes"
RULES = REPO / "alerts/readiness.rules.yml"
PROMETHEUS_RULE = KUBE / "prometheusrule.yaml"
KUBERNETES_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
"""The oldest release still in wide use and the newest the package knows."""
NOT_API_OBJECTS = {"kustomization.yaml"}
"""Kustomize's own config, checked by test_kustomization_applies_everything_but_the_example."""

MANIFESTS = sorted(p for p in KUBE.glob("*.yaml") if p.name not in NOT_API_OBJECTS)


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def by_kind() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in MANIFESTS:
        for doc in documents(path):
            assert doc["kind"] not in out, f"two {doc['kind']} objects"
            out[doc["kind"]] = doc
    return out


def validate(doc: dict[str, Any]) -> None:
    """Raises on the first schema violation, with a short message."""
    if doc["kind"] in SCHEMAS:
        jsonschema.validate(doc, SCHEMAS[doc["kind"]])
        return
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        try:
            validate(doc)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            where = "/".join(str(p) for p in exc.path)
            pytest.fail(f"{path.name}: {doc['kind']} {where}: {exc.message}")


@pytest.mark.parametrize(
    ("kind", "break_it"),
    [
        ("Deployment", lambda d: d["spec"]["template"]["spec"].update(securityContxt={})),
        ("Service", lambda d: d["spec"]["ports"][0].update(port="http")),
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(intervall="30s")),
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(interval="30 seconds")),
    ],
)
def test_validation_would_catch_a_mistake(kind: str, break_it: Any) -> None:
    doc = by_kind()[kind]
    break_it(doc)
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        validate(doc)


def test_prometheus_rule_schema_catches_a_bad_rule() -> None:
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "x"},
        "spec": {
            "groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up", "for": "5 min"}]}]
        },
    }
    with pytest.raises(jsonschema.ValidationError):
        validate(rule)
    rule["spec"]["groups"][0]["rules"][0] = {"alert": "A", "expr": "up", "labels": {"n": 1}}
    with pytest.raises(jsonschema.ValidationError):
        validate(rule)


def test_objects_point_at_each_other() -> None:
    kinds = by_kind()
    deployment, service, monitor = kinds["Deployment"], kinds["Service"], kinds["ServiceMonitor"]
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= service_ports
    (container,) = pod["spec"]["containers"]
    container_ports = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert {m["name"] for m in container["volumeMounts"]} == set(volumes)
    assert volumes["config"]["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]
    claim = volumes["state"]["persistentVolumeClaim"]["claimName"]
    assert claim == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    assert pod["spec"]["serviceAccountName"] == kinds["ServiceAccount"]["metadata"]["name"]
    secret_refs = [e["secretRef"]["name"] for e in container.get("envFrom", [])]
    assert secret_refs == [kinds["Secret"]["metadata"]["name"]]


def test_pod_runs_like_the_image_non_root_read_only_with_probes() -> None:
    kinds = by_kind()
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    runtime = dockerfile.parse(REPO / "Dockerfile")[-1]
    uid = int(runtime.last("USER").args.split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["terminationGracePeriodSeconds"] == 60
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    # Every path the exporter writes is a volume; the config file is where args say.
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    state_dir = str(Path(runtime.env()["READINESS_STATE"].removeprefix("sqlite:///")).parent)
    assert state_dir in mounts and not mounts[state_dir].get("readOnly")
    assert "/tmp" in mounts
    config = container["args"][container["args"].index("--config") + 1]
    assert str(Path(config).parent) in mounts
    assert Path(config).name in kinds["ConfigMap"]["data"]
    assert container["args"] == runtime.last("CMD").exec_form(), "same command as the image"
    assert "command" not in container, "keep the image's ENTRYPOINT"


def test_configmap_checklist_is_a_valid_config() -> None:
    kinds = by_kind()
    loaded = parse_config(kinds["ConfigMap"]["data"]["readiness.yaml"], "configmap.yaml")
    exporter = loaded.config.exporter
    assert exporter.host == "0.0.0.0", "in a pod the exporter must listen beyond loopback"
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert exporter.port == container["ports"][0]["containerPort"]
    secret_keys = set(kinds["Secret"]["stringData"])
    assert {t.token_env for t in exporter.api_tokens} <= secret_keys
    # The exporter refuses to start with a token whose secret is missing: no optional Secret.
    assert not any(e["secretRef"].get("optional") for e in container["envFrom"])
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    for item in (i for c in loaded.config.checklists for s in c.sections for i in s.items):
        ca_file = getattr(item.spec, "ca_file", None)
        if ca_file:
            assert str(Path(ca_file).parent) in mounts, f"{item.id}: {ca_file} is not mounted"


def test_kustomization_applies_everything_but_the_example() -> None:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert all((KUBE / r).is_file() for r in resources), resources
    expected = {p.name for p in MANIFESTS} - {"secret.example.yaml"}
    assert set(resources) == expected
    assert ("prometheusrule.yaml" in resources) == RULES.exists(), (
        "alerts/readiness.rules.yml and the generated PrometheusRule come together: "
        "run scripts/gen-prometheusrule.py and list prometheusrule.yaml in kustomization.yaml"
    )


# --- the PrometheusRule, generated from alerts/readiness.rules.yml ---------------------------


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen", REPO / "scripts/gen-prometheusrule.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prometheus_rule_matches_the_shipped_rule_file() -> None:
    if not RULES.exists():
        # Until the rule file lands, nothing may stand in for it: no hand-written copy.
        assert not PROMETHEUS_RULE.exists(), f"{PROMETHEUS_RULE.name} without {RULES.name}"
        return
    assert PROMETHEUS_RULE.exists(), "run scripts/gen-prometheusrule.py"
    committed = PROMETHEUS_RULE.read_text()
    assert committed == generator().render(RULES.read_text()), (
        "deploy/kubernetes/prometheusrule.yaml is stale: run scripts/gen-prometheusrule.py"
    )
    (resource,) = documents(PROMETHEUS_RULE)
    assert resource["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    validate(resource)


SAMPLE_RULES = """\
groups:
  - name: readiness.rules
    rules:
      - record: readiness:checklist_score:min
        expr: min by (checklist) (readiness_checklist_score_ratio)
  - name: readiness.alerts
    interval: 30s
    rules:
      - alert: ReadinessItemRegressed
        expr: |
          readiness_item_passing == 0
          and on (checklist) readiness_checklist_live == 1
        for: 5m
        labels:
          severity: "{{ $labels.severity }}"
        annotations:
          summary: "{{ $labels.checklist }}/{{ $labels.item }} regressed after go-live"
          description: |
            Item {{ $labels.item }} of {{ $labels.checklist }} is failing.
            Reason: see /status.
          runbook_url: https://example.invalid/docs/runbook.md#readinessitemregressed
"""


def test_generator_carries_a_rule_file_over_unchanged() -> None:
    text = generator().render(SAMPLE_RULES)
    assert text.startswith("# Generated by scripts/gen-prometheusrule.py")
    (resource,) = yaml.safe_load_all(text)
    assert resource["spec"]["groups"] == yaml.safe_load(SAMPLE_RULES)["groups"]
    validate(resource)
    assert "description: |" in text, "multi-line strings stay readable"
    with pytest.raises(ValueError, match="no top-level groups"):
        generator().render("rules: []\n")


def test_generator_cli_reports_stale_output() -> None:
    cli = generator()
    code = cli.main(["--check"])
    assert code == (0 if RULES.exists() and PROMETHEUS_RULE.exists() else 1)


# --- the replicas overlay, built as kustomize builds it ----------------------------------------


def build(directory: Path) -> list[dict[str, Any]]:
    """`kustomize build` for what the overlays use: resources (files and bases) and
    strategic-merge patches (lists of named objects merge by name, null deletes a field,
    `$patch: delete` deletes the object)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        path = directory / resource
        objects += build(path) if path.is_dir() else documents(path)
    for patch in kustomization.get("patches", []):
        for change in documents(directory / patch["path"]):
            key = (change["kind"], change["metadata"]["name"])
            targets = [o for o in objects if (o["kind"], o["metadata"]["name"]) == key]
            assert len(targets) == 1, f"{patch['path']}: no single {key} to patch"
            if change.get("$patch") == "delete":
                objects.remove(targets[0])
            else:
                merge(targets[0], change)
    return objects


def merge(base: dict[str, Any], change: dict[str, Any]) -> None:
    for key, value in change.items():
        current = base.get(key)
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            merge(current, value)
        elif isinstance(value, list) and isinstance(current, list) and _named(value + current):
            for entry in value:
                same = next((c for c in current if c["name"] == entry["name"]), None)
                if same is None:
                    current.append(entry)
                else:
                    merge(same, entry)
        else:
            base[key] = value


def _named(entries: list[Any]) -> bool:
    return all(isinstance(e, dict) and "name" in e for e in entries)


def test_base_builds_into_valid_objects() -> None:
    objects = build(KUBE)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ConfigMap", "ServiceMonitor"} <= kinds
    assert "Secret" not in kinds, "the Secret is the user's: only its example ships"
    for doc in objects:
        validate(doc)


def test_replicas_overlay_shares_postgresql_state() -> None:
    objects = build(KUBE / "replicas")
    for doc in objects:
        validate(doc)
    kinds = {o["kind"]: o for o in objects}
    assert "PersistentVolumeClaim" not in kinds, "replicas keep no SQLite volume"
    deployment = kinds["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["state"] == {"name": "state", "emptyDir": {}}
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    ref = env["READINESS_STATE"]["valueFrom"]["secretKeyRef"]
    (secret,) = documents(KUBE / "secret.example.yaml")
    assert ref["name"] == secret["metadata"]["name"]
    assert f"# {ref['key']}: " in (KUBE / "secret.example.yaml").read_text(), "show the key"
    assert not ref.get("optional"), "without the shared state a replica must not start"
    assert "READINESS_LISTEN" in env, "the patch adds to the base's env, not replaces it"
    budget = kinds["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert budget["minAvailable"] < deployment["spec"]["replicas"]
