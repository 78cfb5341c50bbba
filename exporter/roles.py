"""What an API token may do: plain data shared by the config and the web edge."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    READ = "read"
    ATTEST = "attest"
    ADMIN = "admin"
