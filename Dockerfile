# syntax=docker/dockerfile:1
# readiness-exporter as a container:
#   docker build -t readiness-exporter .
#   docker run -p 9840:9840 -v "$PWD/my-checklist.yaml:/etc/readiness-exporter/readiness.yaml:ro" \
#     -v readiness-state:/var/lib/readiness-exporter readiness-exporter
# Stop with a grace period of 60 s (`docker stop -t 60`, compose `stop_grace_period: 60s`,
# Kubernetes `terminationGracePeriodSeconds: 60`): SIGTERM ends in a clean exit 0 well within it.

# --- build: the package and its dependencies into a venv, without pip in it ----------------------
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter/ exporter/
RUN python -m venv --without-pip /opt/readiness-exporter \
    && pip --python /opt/readiness-exporter/bin/python install --no-cache-dir .

# --- runtime: the venv, the default config, a non-root user; no pip, setuptools or compilers ------
FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="readiness-exporter" \
      org.opencontainers.image.description="Turns a production-readiness checklist into live Prometheus gauges." \
      org.opencontainers.image.licenses="Apache-2.0"
RUN PIP_ROOT_USER_ACTION=ignore python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 readiness \
    && useradd --system --uid 10001 --gid readiness --no-create-home \
        --home-dir /var/lib/readiness-exporter --shell /usr/sbin/nologin readiness \
    && install -d -o readiness -g readiness -m 0750 /var/lib/readiness-exporter \
    && rm -rf /root/.cache /tmp/*
COPY --from=build /opt/readiness-exporter /opt/readiness-exporter
COPY deploy/docker/healthcheck.py /opt/readiness-exporter/healthcheck.py
COPY config/readiness.example.yaml /etc/readiness-exporter/readiness.yaml
ENV PATH="/opt/readiness-exporter/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    READINESS_LISTEN="0.0.0.0:9840" \
    READINESS_STATE="sqlite:////var/lib/readiness-exporter/readiness-state.db" \
    READINESS_LOG_FORMAT="json"
WORKDIR /var/lib/readiness-exporter
VOLUME ["/etc/readiness-exporter", "/var/lib/readiness-exporter"]
USER 10001:10001
EXPOSE 9840
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/readiness-exporter/healthcheck.py"]
ENTRYPOINT ["readiness-exporter"]
CMD ["serve", "--config", "/etc/readiness-exporter/readiness.yaml"]
