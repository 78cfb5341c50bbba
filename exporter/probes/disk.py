"""`disk`: free space and inodes of the filesystem holding a path."""

from __future__ import annotations

import asyncio
import os

from pydantic import Field

from exporter.probes.base import Facts, ProbeContext, ProbeFailure, ProbeSpec
from exporter.reasons import Reason

KIND = "disk"
DEFAULT_EXPECT: tuple[str, ...] = ("free_ratio > 0.1",)
FACTS: tuple[str, ...] = (
    "free",
    "total",
    "used",
    "free_ratio",
    "inodes_free",
    "inodes_total",
    "inodes_free_ratio",
)


class Spec(ProbeSpec):
    path: str = Field(default="/", min_length=1, description="Any path on the filesystem")


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    # statvfs() on a hung NFS mount blocks: keep it off the event loop.
    return await asyncio.to_thread(_measure, spec.path)


def _measure(path: str) -> Facts:
    path = os.path.expanduser(path)
    try:
        fs = os.statvfs(path)
    except FileNotFoundError as exc:
        raise ProbeFailure(Reason.ERROR, f"no such path: {path}") from exc
    except OSError as exc:
        raise ProbeFailure(
            Reason.ERROR, f"cannot read filesystem at {path}: {exc.strerror}"
        ) from exc
    free = fs.f_bavail * fs.f_frsize
    used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
    # The ratio df shows (100% - Use%): blocks reserved for root count as neither used nor free.
    usable = used + free
    return {
        "free": free,
        "total": fs.f_blocks * fs.f_frsize,
        "used": used,
        "free_ratio": free / usable if usable else None,
        "inodes_free": fs.f_favail,
        "inodes_total": fs.f_files,
        # Some filesystems (btrfs, vfat, tmpfs with nr_inodes=0) report no inode limit at all.
        "inodes_free_ratio": fs.f_favail / fs.f_files if fs.f_files else None,
    }
