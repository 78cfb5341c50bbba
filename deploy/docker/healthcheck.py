"""Container HEALTHCHECK: exit 0 when the exporter's /health/live answers 200, else 1.

Standard library only (the slim image has no curl); the port comes from READINESS_LISTEN."""

from __future__ import annotations

import os
import sys
import urllib.request

WILDCARDS = {"", "0.0.0.0", "::"}  # noqa: S104 - a listen address, to be replaced by loopback


def live_url(listen: str) -> str:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in WILDCARDS:
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/health/live"


def main() -> int:
    url = live_url(os.environ.get("READINESS_LISTEN", "0.0.0.0:9840"))
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - http on loopback
            ok = response.status == 200
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
