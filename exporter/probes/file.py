"""`file`: whether a path (or newest glob match) exists, its age, size and who may read it."""

from __future__ import annotations

import asyncio
import glob
import grp
import os
import pwd
import stat

from pydantic import Field

from exporter.probes.base import Facts, ProbeContext, ProbeFailure, ProbeSpec
from exporter.reasons import Reason

KIND = "file"
DEFAULT_EXPECT: tuple[str, ...] = ("exists == true",)
FACTS: tuple[str, ...] = (
    "exists",
    "count",
    "path",
    "age",
    "size",
    "total_size",
    "mode",
    "owner",
    "group",
    "world_readable",
    "world_writable",
    "is_dir",
)


class Spec(ProbeSpec):
    path: str = Field(min_length=1, description="A path or a glob such as /var/backups/*.dump")


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    now = ctx.clock.now()
    # stat() on a hung NFS mount blocks: keep it off the event loop.
    return await asyncio.to_thread(_measure, spec.path, now)


def _measure(pattern: str, now: float) -> Facts:
    pattern = os.path.expanduser(pattern)
    is_glob = glob.escape(pattern) != pattern
    candidates = glob.glob(pattern, recursive=True) if is_glob else [pattern]
    found: list[tuple[str, os.stat_result]] = []
    for path in candidates:
        try:
            found.append((path, os.stat(path)))
        except FileNotFoundError:
            continue  # removed since the glob, or a dangling symlink: not there
        except OSError as exc:
            # e.g. a directory on the way is not searchable: whether it exists is unknown.
            raise ProbeFailure(Reason.ERROR, f"cannot stat {path}: {exc.strerror}") from exc
    if not found:
        return {"exists": False, "count": 0}
    path, newest = max(found, key=lambda match: match[1].st_mtime)
    mode = stat.S_IMODE(newest.st_mode)
    return {
        "exists": True,
        "count": len(found),
        "path": path,
        "age": now - newest.st_mtime,
        "size": newest.st_size,
        "total_size": sum(st.st_size for _, st in found),
        "mode": f"{mode:04o}",
        "owner": _user_name(newest.st_uid),
        "group": _group_name(newest.st_gid),
        "world_readable": bool(mode & stat.S_IROTH),
        "world_writable": bool(mode & stat.S_IWOTH),
        "is_dir": stat.S_ISDIR(newest.st_mode),
    }


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry, common in containers
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
