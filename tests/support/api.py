"""Requests to the exporter's write API, as a person's script or curl would make them."""

from __future__ import annotations

import httpx

from tests.support.exporter import Exporter


def post_attestation(exporter: Exporter, token: str, **fields: str) -> httpx.Response:
    """POST /api/v1/attestations with `fields` as the JSON body and `token` as the bearer."""
    return httpx.post(
        f"{exporter.url}/api/v1/attestations",
        json={"checklist": "app", **fields},
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,  # past the store's 5 s deadline: a slow store answers 503, not silence
    )
