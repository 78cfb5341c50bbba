"""A history record as GET /api/v1/history and /status show it."""

from __future__ import annotations

import json

from exporter.history import ATTESTED, Change
from exporter.redact import MASK, Redactor
from exporter.web.status import change_document

SECRET = "s3cret-password-0123456789"


def test_an_events_token_name_shows_and_its_free_text_is_masked() -> None:
    detail = {"id": 3, "by": "alice", "note": f"rota {SECRET}", "token": "oncall"}
    change = Change("app", "on-call", 5.0, ATTESTED, detail=json.dumps(detail))
    shown = change_document(change, Redactor([SECRET]))["detail"]
    assert shown["token"] == "oncall"
    assert shown["by"] == "alice" and shown["id"] == 3
    assert SECRET not in shown["note"] and shown["note"].startswith("rota ")


def test_a_secret_under_another_secret_named_key_is_still_masked_whole() -> None:
    detail = {"token": "oncall", "password": "hunter2-hunter2"}
    change = Change("app", "on-call", 5.0, ATTESTED, detail=json.dumps(detail))
    shown = change_document(change, Redactor())["detail"]
    assert shown == {"token": "oncall", "password": MASK}


def test_a_token_name_that_holds_a_secret_is_masked() -> None:
    change = Change("app", "x", 5.0, ATTESTED, detail=json.dumps({"token": SECRET}))
    assert SECRET not in json.dumps(change_document(change, Redactor([SECRET])))
