"""Config of the service probes: credentials from the environment are allowed and collected
for redaction; a password written in the file is not."""

from __future__ import annotations

import pytest

from exporter.loader import ConfigError, parse_config
from exporter.probes import postgres, prometheus
from exporter.probes.base import ProbeFailure
from exporter.reasons import Reason


def one_item(probe: str) -> str:
    return f"""
checklists:
  - name: app
    sections:
      - name: services
        items:
          - id: service
            title: A service
{probe}
"""


@pytest.mark.parametrize(
    "probe",
    [
        '            postgres: {dsn: "postgresql://app:${ISSUE3_PGPASSWORD}@db:5432/app"}',
        '            redis: {url: "redis://:${ISSUE3_PGPASSWORD}@cache:6379/0"}',
        '            postgres: {dsn: "${ISSUE3_DATABASE_URL}"}',
    ],
)
def test_a_password_from_the_environment_is_accepted(
    probe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISSUE3_PGPASSWORD", "from-env")
    monkeypatch.setenv("ISSUE3_DATABASE_URL", "postgresql://app:from-env@db/app")

    loaded = parse_config(one_item(probe))

    assert "from-env" in loaded.secrets


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://app:hunter22@db/app", "postgresql://app:x${ISSUE3_PGPASSWORD}@db/app"],
)
def test_a_password_in_the_file_is_an_error_with_its_line(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISSUE3_PGPASSWORD", "from-env")

    with pytest.raises(ConfigError) as error:
        parse_config(one_item(f'            postgres: {{dsn: "{dsn}"}}'), "readiness.yaml")

    assert str(error.value).startswith("readiness.yaml:9: item service: a password is written")


def test_dsn_passwords_and_env_credentials_are_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # The variable's name says nothing secret: the DSN's password is found in the DSN itself.
    monkeypatch.setenv("ISSUE3_DATABASE_URL", "postgresql://app:p%40ss%2Fword@db/app")
    monkeypatch.setenv("ISSUE3_PROM_BEARER", "bearer-value")
    monkeypatch.setenv("ISSUE3_PROM_BASIC", "basic-value")
    text = (
        one_item('            postgres: {dsn: "${ISSUE3_DATABASE_URL}"}')
        + """
          - id: prometheus-bearer
            title: Prometheus with a token
            prometheus:
              url: http://prometheus:9090
              query: up
              bearer_token_env: ISSUE3_PROM_BEARER
          - id: prometheus-basic
            title: Prometheus with basic auth
            prometheus:
              url: http://prometheus:9090
              query: up
              basic_auth: {username: grafana, password_env: ISSUE3_PROM_BASIC}
"""
    )

    secrets = parse_config(text).secrets

    assert {"p%40ss%2Fword", "p@ss/word", "bearer-value", "basic-value"} <= secrets


@pytest.mark.parametrize(
    ("number", "version"), [(150004, "15.4"), (170000, "17.0"), (90624, "9.6.24")]
)
def test_server_version_num_reads_as_a_version(number: int, version: str) -> None:
    assert postgres._version(number) == version


def test_a_prometheus_vector_gives_value_series_min_max() -> None:
    sample = {"metric": {"job": "app"}, "value": [1700000000.0, "0.5"]}
    other = {"metric": {"job": "db"}, "value": [1700000000.0, "NaN"]}

    one = prometheus.result_facts({"resultType": "vector", "result": [sample]}, "p:9090")
    two = prometheus.result_facts({"resultType": "vector", "result": [sample, other]}, "p:9090")
    none = prometheus.result_facts({"resultType": "vector", "result": []}, "p:9090")

    assert one == {"result_type": "vector", "series": 1, "value": 0.5, "min": 0.5, "max": 0.5}
    assert two == {"result_type": "vector", "series": 2, "value": None, "min": 0.5, "max": 0.5}
    assert none == {"result_type": "vector", "series": 0, "value": None, "min": None, "max": None}


def test_a_prometheus_matrix_is_an_error() -> None:
    with pytest.raises(ProbeFailure) as failure:
        prometheus.result_facts({"resultType": "matrix", "result": []}, "p:9090")

    assert failure.value.reason is Reason.ERROR
