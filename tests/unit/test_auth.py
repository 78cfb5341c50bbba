"""API tokens: secrets from the environment, hashed, with roles; reads open when none exist."""

from __future__ import annotations

import pytest

from exporter.config import ApiToken, Role
from exporter.web.auth import Forbidden, Tokens, Unauthorized

SECRETS = {"ATTEST_TOKEN": "a" * 32, "ADMIN_TOKEN": "b" * 32, "READ_TOKEN": "c" * 32}


@pytest.fixture
def tokens() -> Tokens:
    return Tokens.from_config(
        [
            ApiToken(name="oncall", token_env="ATTEST_TOKEN", roles=(Role.ATTEST,)),
            ApiToken(name="ops", token_env="ADMIN_TOKEN", roles=(Role.ADMIN,)),
            ApiToken(name="grafana", token_env="READ_TOKEN", roles=(Role.READ,)),
        ],
        SECRETS,
    )


def test_each_token_gets_its_roles(tokens: Tokens) -> None:
    attest = f"Bearer {SECRETS['ATTEST_TOKEN']}"
    principal = tokens.authorize(attest, Role.ATTEST)
    assert principal is not None and principal.name == "oncall"
    assert tokens.authorize(attest, Role.READ) is not None
    with pytest.raises(Forbidden, match="oncall lacks role admin"):
        tokens.authorize(attest, Role.ADMIN)
    admin = tokens.authorize(f"bearer {SECRETS['ADMIN_TOKEN']}", Role.ATTEST)
    assert admin is not None and admin.name == "ops"
    with pytest.raises(Forbidden, match="grafana lacks role attest"):
        tokens.authorize(f"Bearer {SECRETS['READ_TOKEN']}", Role.ATTEST)


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic abc", f"Token {'a' * 32}", "Bearer wrong"]
)
def test_missing_or_unknown_tokens_are_unauthorized(tokens: Tokens, header: str | None) -> None:
    with pytest.raises(Unauthorized):
        tokens.authorize(header, Role.READ)


def test_without_tokens_reads_are_open_and_writes_refused() -> None:
    tokens = Tokens.from_config([], {})
    assert tokens.authorize(None, Role.READ) is None
    with pytest.raises(Forbidden, match=r"configure exporter\.api_tokens"):
        tokens.authorize(None, Role.ATTEST)


def test_missing_and_short_secrets_are_config_errors() -> None:
    configured = [
        ApiToken(name="unset", token_env="UNSET_TOKEN", roles=(Role.ATTEST,)),
        ApiToken(name="short", token_env="SHORT_TOKEN", roles=(Role.ATTEST,)),
    ]
    with pytest.raises(ValueError, match="UNSET_TOKEN is not set") as caught:
        Tokens.from_config(configured, {"SHORT_TOKEN": "abc"})
    assert "SHORT_TOKEN is shorter than 16" in str(caught.value)


def test_secrets_are_kept_only_as_hashes(tokens: Tokens) -> None:
    kept = repr(vars(tokens))
    assert all(secret not in kept for secret in SECRETS.values())
