"""Data files: list what each task needs and where it is, fetch it from its official source, verify it.

  python -m agentflan_eval data list                      # per task: files, size, where found, what is missing
  python -m agentflan_eval data fetch --suite held-in     # download into the cache (progress bar, resumable)
  python -m agentflan_eval data verify --tasks os,db      # sha256 of every local copy against its pin

Downloads go to the cache (``$AGENTFLAN_CACHE``/data, default ~/.cache/agentflan_eval/data) from the pinned
official URL, or from ``$AGENTFLAN_DATA_MIRROR`` (laid out as ``<mirror>/<host>/<path>``) and ``$HF_ENDPOINT``
for Hub datasets. ``run`` fetches what a task needs on first use; ``--offline`` never downloads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agentflan_eval.benchmark import Benchmark
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataFile, DataResolver, lock
from agentflan_eval.errors import AgentFlanError, DataChecksumError, DataMissingError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("action", choices=["list", "fetch", "verify"])
    p.add_argument("--tasks", help="comma-separated task names (default: every task)")
    p.add_argument("--suite", help="held-in, held-out, hallucination or all")
    p.add_argument("--data-dir", type=Path, help="a local data root searched before the cache")
    p.add_argument("--force", action="store_true", help="fetch: download again even when a copy is cached")
    p.add_argument(
        "--all-files",
        action="store_true",
        help="fetch/verify every pinned file, also those no task reads (training data, the tests' samples); "
        "with --tasks/--suite, those tasks' other files too",
    )


def main(a: argparse.Namespace) -> int:
    from agentflan_eval import benchmarks

    names = benchmarks.suite_tasks(a.suite) if a.suite else benchmarks.task_names()
    if a.tasks:
        names = [t.strip() for t in a.tasks.split(",") if t.strip()]
        for n in names:
            benchmarks.get(n)  # an unknown name is a one-line error
    data = DataResolver(a.data_dir, offline=True if a.action != "fetch" else None)
    config = RunConfig(data_dir=a.data_dir)
    benches = [benchmarks.get(n)(config, data) for n in names]
    groups = [(b.name, _files(b)) for b in benches]
    if a.all_files and not (a.tasks or a.suite):
        groups = []  # every pinned file is what was asked for; tasks' unpinned files need --tasks/--suite
    if a.all_files:
        groups.append(("pinned", tuple(DataFile(p, url) for p, (url, _pin) in sorted(lock().items()))))
    if a.action == "list":
        return _list(benches, data)
    return (_fetch if a.action == "fetch" else _verify)(groups, data, a.force)


def _files(b: Benchmark) -> tuple[DataFile, ...]:
    try:
        return b.all_data_files()
    except AgentFlanError:  # the index that names the rest is missing: its own files are what we know
        return b.data_files


def _size(files: tuple[DataFile, ...]) -> str:
    sizes = [f.pin.size for f in files]
    total = sum(s for s in sizes if s)
    return f"{total / 1e6:.1f} MB" + ("+" if None in sizes else "")


def _list(benches: list[Benchmark], data: DataResolver) -> int:
    print(f"{'task':<12}{'files':>6}{'size':>11}  {'found':<8}where / missing")
    for b in benches:
        files = _files(b)
        found = {f.path: data.find(f) for f in files}
        missing = [p for p, loc in found.items() if loc is None]
        roots = sorted({_root(data, p, loc) for p, loc in found.items() if loc is not None})
        where = ", ".join(roots) or "-"
        if missing:
            where += f"; missing {len(missing)}: {missing[0]}" + (" ..." if len(missing) > 1 else "")
        found_share = f"{len(files) - len(missing)}/{len(files)}"
        print(f"{b.name:<12}{len(files):>6}{_size(files):>11}  {found_share:<8}{where}")
        if not missing and (reason := b.unavailable()) is not None:
            print(f"{'':<12}also needs: {reason}")
    return 0


def _root(data: DataResolver, path: str, loc: Path) -> str:
    return str(loc)[: -len(path)].rstrip("/") or "/"


def _fetch(groups: list[tuple[str, tuple[DataFile, ...]]], data: DataResolver, force: bool) -> int:
    failed = 0
    for name, files in groups:
        got = 0
        for f in files:
            try:
                local = None if force else data.find(f)
                if local is None or _bad(data, f, local):
                    data.fetch(f, force=True)
                got += 1
            except (DataMissingError, DataChecksumError) as e:
                failed += 1
                print(f"{name}: {e}")
        print(f"{name}: {got}/{len(files)} files present and verified")
    return 1 if failed else 0


def _bad(data: DataResolver, f: DataFile, local: Path) -> bool:
    """A cached copy that fails its checksum is fetched again; one in a --data-dir is the user's to fix."""
    try:
        data.verify(f, local)
        return False
    except DataChecksumError:
        if data.cache in local.parents:
            local.unlink()
            return True
        raise


def _verify(groups: list[tuple[str, tuple[DataFile, ...]]], data: DataResolver, force: bool) -> int:
    bad = missing = ok = 0
    for name, files in groups:
        for f in files:
            local = data.find(f)
            if local is None:
                missing += 1
                continue
            try:
                data.verify(f, local)
                ok += 1
            except DataChecksumError as e:
                bad += 1
                print(f"{name}: {e}")
    print(f"{ok} files verified, {bad} failed their checksum, {missing} missing")
    return 1 if bad else 0
