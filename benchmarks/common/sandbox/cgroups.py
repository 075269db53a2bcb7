"""A throw-away cgroup per sandbox: caps its process count and memory, and kills everything in it.

Why: RLIMIT_NPROC alone counts processes, not memory, and a process that holds capabilities over the
host would be exempt from it; the ``pids`` and ``memory`` controllers hold the whole sandbox. cgroup v2 (one hierarchy) and v1 (one mount per
controller) are both handled; where no cgroup can be created the caller falls back to a watchdog.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
PREFIX = "agentflan-sandbox-"


def _sweep(min_age: float = 120.0) -> None:
    """Remove empty sandbox cgroups left by a killed run (a live sandbox's group is never empty for long)."""
    for parent in (ROOT, ROOT / "pids", ROOT / "memory"):
        try:
            stale = [d for d in parent.glob(f"{PREFIX}*") if time.time() - d.stat().st_mtime > min_age]
        except OSError:
            continue
        for d in stale:
            try:
                d.rmdir()  # fails while processes are in it
            except OSError:
                continue


class SandboxCgroup:
    """One cgroup directory per controller hierarchy (a single one under cgroup v2)."""

    def __init__(self, dirs: list[Path]):
        self.dirs = dirs

    @classmethod
    def create(cls, max_pids: int, memory_bytes: int) -> SandboxCgroup | None:
        """A new cgroup with the limits set, or None where cgroups cannot be written here."""
        _sweep()
        name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
        v2 = ROOT / "cgroup.controllers"
        try:
            if v2.is_file():
                return cls._create_v2(ROOT / name, max_pids, memory_bytes)
            return cls._create_v1(name, max_pids, memory_bytes)
        except OSError as e:
            log.info("no writable pids cgroup (%s); using the process watchdog instead", e)
            return None

    @classmethod
    def _create_v2(cls, path: Path, max_pids: int, memory_bytes: int) -> SandboxCgroup | None:
        if "pids" not in (ROOT / "cgroup.subtree_control").read_text().split():
            return None
        path.mkdir()
        group = cls([path])
        try:
            (path / "pids.max").write_text(str(max_pids))
            if (path / "memory.max").exists():
                (path / "memory.max").write_text(str(memory_bytes))
        except OSError:
            group.remove()
            raise
        return group

    @classmethod
    def _create_v1(cls, name: str, max_pids: int, memory_bytes: int) -> SandboxCgroup | None:
        if not (ROOT / "pids").is_dir():
            return None
        pids = ROOT / "pids" / name
        pids.mkdir()
        group = cls([pids])
        try:
            (pids / "pids.max").write_text(str(max_pids))
            mem_root = ROOT / "memory"
            if (mem_root / "memory.limit_in_bytes").is_file():
                mem = mem_root / name
                mem.mkdir()
                group.dirs.append(mem)
                (mem / "memory.limit_in_bytes").write_text(str(memory_bytes))
        except OSError:
            group.remove()
            raise
        return group

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs:
            try:
                out.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                continue
        return out

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every member until the group is empty (members may still be forking)."""
        deadline = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for d in reversed(self.dirs):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy until the last member is reaped
                    time.sleep(0.02)
