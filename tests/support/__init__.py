"""Shared helpers for tests: real servers on loopback and the exporter as a subprocess."""
