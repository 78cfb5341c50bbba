"""readiness-exporter: a production-readiness checklist as live Prometheus gauges."""

__version__ = "0.1.0"
