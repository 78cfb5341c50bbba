"""The compose stack: a valid Compose file (Debian's docker-compose parses it; no engine runs
here), every mounted path in the repository, and the mounted configs pointing at each other."""

from __future__ import annotations

import functools
import glob
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from exporter.loader import load_config
from tests.support import dockerfile

REPO = Path(__file__).parents[2]
COMPOSE = REPO / "deploy/docker-compose.yml"
RUNTIME = dockerfile.parse(REPO / "Dockerfile")[-1]


def compose(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is missing: scripts/test installs Debian's docker-compose"
    return subprocess.run(
        [tool, "-f", str(path), *args], capture_output=True, text=True, timeout=60, cwd=path.parent
    )


@functools.cache
def resolved() -> dict[str, Any]:
    """The file as Compose understands it: paths absolute, variables substituted."""
    result = compose(COMPOSE, "config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def binds(service: str) -> dict[str, Path]:
    """Container path → host path of a service's bind mounts."""
    out = {}
    for volume in resolved()["services"][service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("/"):
            out[target] = Path(source)
    return out


def on_host(service: str, container_path: str) -> Path | None:
    """Where a path inside a service's container comes from in the repository, if bind-mounted."""
    path = PurePosixPath(container_path)
    for target, source in sorted(binds(service).items(), key=lambda kv: -len(kv[0])):
        if path == PurePosixPath(target) or PurePosixPath(target) in path.parents:
            return source / path.relative_to(target)
    return None


def test_compose_file_is_valid() -> None:
    result = compose(COMPOSE, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert set(resolved()["services"]) == {"exporter", "prometheus", "alertmanager", "grafana"}


def test_compose_validation_would_catch_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("stop_grace_period:", "stop_grace_periode:"))
    result = compose(broken, "config", "--quiet")
    assert result.returncode != 0
    assert "stop_grace_periode" in result.stderr


@pytest.mark.parametrize("service", ["exporter", "prometheus", "alertmanager", "grafana"])
def test_every_mounted_path_exists_in_the_repo(service: str) -> None:
    mounts = binds(service)
    for target, source in mounts.items():
        assert source.exists(), f"{service} mounts {source.relative_to(REPO)} at {target}: missing"
        assert REPO in source.parents, f"{service} mounts {source} from outside the repository"


def test_images_are_pinned_and_ports_stay_on_loopback() -> None:
    services = resolved()["services"]
    for name, service in services.items():
        if "build" not in service:
            tag = service["image"].partition(":")[2]
            assert tag and tag != "latest", f"{name}: pin the image tag"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_exporter_service_runs_the_image_as_built() -> None:
    exporter = resolved()["services"]["exporter"]
    assert Path(exporter["build"]["context"]) == REPO
    assert exporter["build"]["dockerfile"] == "Dockerfile"
    grace = exporter["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) >= 60, "the 60 s a clean shutdown may take"
    command = RUNTIME.last("CMD").exec_form()
    config = on_host("exporter", command[command.index("--config") + 1])
    assert config is not None and config.is_file(), "mount a config where the image reads it"
    assert load_config(config).config.checklists
    state_dir = str(
        PurePosixPath(RUNTIME.env()["READINESS_STATE"].removeprefix("sqlite:///")).parent
    )
    named = {v.split(":")[1] for v in exporter["volumes"] if not v.startswith("/")}
    assert state_dir in named, "the state lives on a named volume"


def test_prometheus_loads_the_shipped_rules_and_scrapes_the_exporter() -> None:
    command = resolved()["services"]["prometheus"]["command"]
    config_in_container = next(
        a.split("=", 1)[1] for a in command if a.startswith("--config.file=")
    )
    config_path = on_host("prometheus", config_in_container)
    assert config_path is not None and config_path.is_file(), config_in_container
    prometheus = yaml.safe_load(config_path.read_text())
    base = PurePosixPath(config_in_container).parent
    rule_files = prometheus.get("rule_files") or []
    assert rule_files, "Prometheus must load the shipped alert rules"
    for pattern in rule_files:
        inside = PurePosixPath(pattern) if pattern.startswith("/") else base / pattern
        host = on_host("prometheus", str(inside))
        assert host is not None, f"rule_files {pattern}: not mounted"
        assert glob.glob(str(host)), f"rule_files {pattern}: matches nothing in the repository"
    targets = [
        target
        for job in prometheus["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert any(listener(t) == "exporter" for t in targets), f"no target is the exporter: {targets}"
    alertmanagers = [
        target
        for manager in prometheus["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    assert [listener(t) for t in alertmanagers] == ["alertmanager"] * len(alertmanagers)


def listeners() -> dict[int, str]:
    """Port → service, for the ports the services listen on in the shared network namespace."""
    services = resolved()["services"]

    def flag(service: str, name: str) -> int:
        value = next(a for a in services[service]["command"] if a.startswith(f"--{name}="))
        return int(value.rsplit(":", 1)[1])

    return {
        int(RUNTIME.env()["READINESS_LISTEN"].rsplit(":", 1)[1]): "exporter",
        flag("prometheus", "web.listen-address"): "prometheus",
        flag("alertmanager", "web.listen-address"): "alertmanager",
        int(services["grafana"]["environment"]["GF_SERVER_HTTP_PORT"]): "grafana",
    }


def listener(address: str) -> str | None:
    """The service behind a loopback address as the shipped configs write them."""
    host, _, port = address.removeprefix("http://").split("/")[0].rpartition(":")
    return listeners().get(int(port)) if host in {"127.0.0.1", "localhost"} else None


def test_all_services_share_the_exporters_network_and_its_published_ports() -> None:
    services = resolved()["services"]
    for name in ("prometheus", "alertmanager", "grafana"):
        assert services[name]["network_mode"] == "service:exporter", name
    published = {int(str(p).split(":")[2].split("/")[0]) for p in services["exporter"]["ports"]}
    assert published == set(listeners()), "publish each service's port on the exporter"


def test_grafana_gets_the_shipped_datasource_and_dashboards() -> None:
    provisioning = on_host("grafana", "/etc/grafana/provisioning/datasources")
    assert provisioning is not None
    urls = [
        source["url"]
        for path in sorted(provisioning.glob("*.y*ml"))
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    assert urls and all(listener(url) == "prometheus" for url in urls), urls
    providers = on_host("grafana", "/etc/grafana/provisioning/dashboards")
    assert providers is not None
    for path in sorted(providers.glob("*.y*ml")):
        for provider in yaml.safe_load(path.read_text())["providers"]:
            folder = on_host("grafana", provider["options"]["path"])
            assert folder is not None, f"{path.name}: {provider['options']['path']} is not mounted"
            assert sorted(folder.glob("*.json")), f"no dashboards in {folder}"
    home = resolved()["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert (on_host("grafana", home) or Path("/nonexistent")).is_file(), home
