"""The run directory, behind one small class so reports never depend on its file layout.

Layout: ``manifest.json``, ``episodes/<task>.jsonl`` (one EpisodeRecord a line, appended, flushed
and fsynced as each episode ends), ``timing.json`` (WallTime figures of every invocation) and
``results.json``. A kill -9 can leave at most a torn last
line, which is dropped (and cut off the file) the next time the run is opened.

A sharded run (one process per GPU) appends to ``episodes/shards/<task>.rank<N>.jsonl`` instead;
readers see the union, and the main process merges the shards into the task file at the end.
An episode whose model call failed (``model_error``) is not done: a re-run retries it, and the
newer record replaces it. Episodes are keyed by (sample id, repeat) (``EpisodeRecord.key``): with
``--repeats N`` a sample has N episodes, and records written before repeats existed are repeat 0.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic_core import PydanticSerializationError

from agentflan_eval.errors import AgentFlanError, DataFormatError
from agentflan_eval.records import EpisodeRecord, EpisodeStatus, RunManifest, RunResults, WallTime

log = logging.getLogger(__name__)

RETRIED = {EpisodeStatus.MODEL_ERROR}  # statuses a re-run generates again


class RunStore:
    def __init__(self, root: Path, shard_rank: int | None = None):
        self.root = Path(root)
        self.episodes_dir = self.root / "episodes"
        self.shards_dir = self.episodes_dir / "shards"
        self.shard_rank = shard_rank  # None: write the task files directly

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def results_path(self) -> Path:
        return self.root / "results.json"

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    # -- one writer ----------------------------------------------------------------------------
    def lock(self) -> RunDirLock:
        """Claim the run dir for this process until ``release()``; AgentFlanError if another run holds it.

        A single process holds ``run.lock`` exclusively. The ranks of a sharded run share it (each holds
        its own ``run.rank<N>.lock`` exclusively), so a second run of either kind is refused."""
        self.root.mkdir(parents=True, exist_ok=True)
        held = []
        try:
            if self.shard_rank is None:
                held.append(_flock(self.root / "run.lock", fcntl.LOCK_EX, self.root))
            else:
                held.append(_flock(self.root / "run.lock", fcntl.LOCK_SH, self.root))
                held.append(_flock(self.root / f"run.rank{self.shard_rank}.lock", fcntl.LOCK_EX, self.root))
        except BaseException:
            for fd in held:
                os.close(fd)
            raise
        return RunDirLock(held)

    # -- manifest and results --------------------------------------------------------------
    def read_manifest(self) -> RunManifest:
        if not self.exists():
            raise AgentFlanError(f"{self.root} is not a run directory (no manifest.json)")
        return RunManifest.model_validate_json(self.manifest_path.read_text(encoding="utf-8"))

    def write_manifest(self, manifest: RunManifest) -> None:
        self._write_atomic(self.manifest_path, manifest.model_dump_json(indent=2))

    def read_results(self) -> RunResults | None:
        if not self.results_path.is_file():
            return None
        return RunResults.model_validate_json(self.results_path.read_text(encoding="utf-8"))

    def write_results(self, results: RunResults) -> None:
        self._write_atomic(self.results_path, results.model_dump_json(indent=2))

    def _write_atomic(self, path: Path, text: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    # -- wall-clock time -----------------------------------------------------------------------
    def _timing_path(self) -> Path:
        if self.shard_rank is None:
            return self.root / "timing.json"
        return self.shards_dir / f"timing.rank{self.shard_rank}.json"

    def record_wall(self, entry: WallTime) -> None:
        """Keep ``entry``, replacing this invocation's earlier figure for the same task and rank."""
        path = self._timing_path()
        key = (entry.invocation, entry.rank, entry.task)
        kept = [e for e in self._read_timing(path) if (e.invocation, e.rank, e.task) != key]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_atomic(path, json.dumps([e.model_dump() for e in [*kept, entry]], indent=1))

    def wall_times(self) -> list[WallTime]:
        paths = [self.root / "timing.json"]
        if self.shards_dir.is_dir():
            paths += sorted(self.shards_dir.glob("timing.rank*.json"))
        return [e for p in paths for e in self._read_timing(p)]

    def wall_seconds(self) -> dict[str, float]:
        """Seconds per task (and MODEL_LOAD): summed over invocations, the slowest rank within one."""
        return self._slowest_rank_summed(lambda e: e.task)

    def total_wall_seconds(self) -> float:
        """The whole run: per invocation its slowest rank (ranks are not in step between tasks), summed."""
        return sum(self._slowest_rank_summed(lambda e: "run").values())

    def _slowest_rank_summed(self, group: Callable[[WallTime], str]) -> dict[str, float]:
        """Per group: each rank's seconds added up within an invocation, the slowest rank kept, then the
        invocations added up (they ran one after another)."""
        per_rank: dict[tuple[str, str, int], float] = {}
        for e in self.wall_times():
            key = (group(e), e.invocation, e.rank)
            per_rank[key] = per_rank.get(key, 0.0) + e.seconds
        slowest: dict[tuple[str, str], float] = {}
        for (name, invocation, _), seconds in per_rank.items():
            slowest[(name, invocation)] = max(slowest.get((name, invocation), 0.0), seconds)
        total: dict[str, float] = {}
        for (name, _), seconds in slowest.items():
            total[name] = total.get(name, 0.0) + seconds
        return total

    def timed_episodes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.wall_times():
            counts[e.task] = counts.get(e.task, 0) + e.episodes
        return counts

    @staticmethod
    def _read_timing(path: Path) -> list[WallTime]:
        """Only bookkeeping: a corrupt file is set aside with a warning, never a reason to stop a run."""
        try:
            return [WallTime.model_validate(e) for e in json.loads(path.read_text(encoding="utf-8"))]
        except FileNotFoundError:  # none yet, or a rank's file folded in by the main process just now
            return []
        except (ValueError, TypeError) as e:
            aside = path.with_name(path.name + ".corrupt")
            log.warning(
                "%s is not a list of wall times (%s); moved to %s, and wall times restart",
                path,
                str(e).splitlines()[0],
                aside.name,
            )
            os.replace(path, aside)
            return []

    # -- episodes ----------------------------------------------------------------------------
    def episode_path(self, task: str) -> Path:
        return self.episodes_dir / f"{task}.jsonl"

    def shard_paths(self, task: str) -> list[Path]:
        return sorted(self.shards_dir.glob(f"{task}.rank*.jsonl")) if self.shards_dir.is_dir() else []

    def _write_path(self, task: str) -> Path:
        if self.shard_rank is None:
            return self.episode_path(task)
        return self.shards_dir / f"{task}.rank{self.shard_rank}.jsonl"

    def tasks(self) -> list[str]:
        names = {p.stem for p in self.episodes_dir.glob("*.jsonl")} if self.episodes_dir.is_dir() else set()
        names |= (
            {p.name.split(".rank")[0] for p in self.shards_dir.glob("*.rank*.jsonl")}
            if self.shards_dir.is_dir()
            else set()
        )
        return sorted(names)

    def append(self, record: EpisodeRecord) -> None:
        path = self._write_path(record.task)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._append_lines(path, [dump_record(record)])

    def _append_lines(self, path: Path, lines: list[str]) -> None:
        self._repair_tail(path)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())

    def episodes(self, task: str) -> Iterator[EpisodeRecord]:
        """Every finished episode of ``task``, one per (sample, repeat): a later record replaces a
        retried one."""
        yield from self._latest([self.episode_path(task), *self.shard_paths(task)]).values()

    def _latest(self, paths: list[Path]) -> dict[tuple[str, int], EpisodeRecord]:
        latest: dict[tuple[str, int], EpisodeRecord] = {}
        for path in paths:
            for rec in self._read(path):
                old = latest.get(rec.key)
                if old is None or old.status in RETRIED:
                    latest[rec.key] = rec
        return latest

    @staticmethod
    def _read(path: Path) -> Iterator[EpisodeRecord]:
        if not path.is_file():
            return
        lines = path.read_bytes().split(b"\n")  # bytes: a kill can cut the last line inside a character
        for i, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                yield parse_record(raw.decode("utf-8"))
            except ValueError as e:  # UnicodeDecodeError included
                if i == len(lines):  # a torn final line from a killed run: that episode never finished
                    continue
                raise DataFormatError(path, i, f"not an episode record ({str(e).splitlines()[0]})") from None

    def done_ids(self, task: str) -> set[str]:
        """Samples with a finished episode (of any repeat)."""
        return {r.sample_id for r in self.episodes(task) if r.status not in RETRIED}

    def done_keys(self, task: str) -> set[tuple[str, int]]:
        """(sample id, repeat) of every finished episode: what a resumed run skips."""
        return {r.key for r in self.episodes(task) if r.status not in RETRIED}

    def merge_shards(self) -> int:
        """Fold every shard file into its task file (main process only, after all ranks are done)."""
        merged = 0
        for task in self.tasks():
            shards = self.shard_paths(task)
            if not shards:
                continue
            kept = {r.key: r.status for r in self._read(self.episode_path(task))}
            new = [r for r in self._latest(shards).values() if r.key not in kept or kept[r.key] in RETRIED]
            if new:
                self._append_lines(self.episode_path(task), [dump_record(r) for r in new])
            merged += len(new)
            for p in shards:
                p.unlink()
        shard_timing = sorted(self.shards_dir.glob("timing.rank*.json")) if self.shards_dir.is_dir() else []
        if shard_timing:
            self._write_atomic(
                self.root / "timing.json", json.dumps([e.model_dump() for e in self.wall_times()], indent=1)
            )
            for p in shard_timing:
                p.unlink()
        return merged

    @staticmethod
    def _repair_tail(path: Path) -> None:
        """Cut a torn last line so the next append starts on a clean line; a last line that lacks only
        its newline (the kill came between the record and the ``\\n``) is a whole record: it is kept."""
        if not path.is_file() or path.stat().st_size == 0:
            return
        with open(path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            fh.seek(0)
            data = fh.read()
            start = data.rfind(b"\n") + 1
            try:
                parse_record(data[start:].decode("utf-8"))
            except ValueError:
                fh.truncate(start)
            else:
                fh.write(b"\n")
                fh.flush()
                os.fsync(fh.fileno())


def dump_record(record: EpisodeRecord) -> str:
    """One JSON line. Text holding a lone surrogate (``\\ud800``, which a model or a replayed file can
    produce) is not UTF-8, so pydantic cannot write it: such a record is written with every non-ASCII
    character escaped, and the text is kept exactly."""
    try:
        return record.model_dump_json()
    except PydanticSerializationError:
        return json.dumps(record.model_dump(mode="json"))


def parse_record(line: str) -> EpisodeRecord:
    try:
        return EpisodeRecord.model_validate_json(line)
    except ValueError:
        if "\\ud" not in line.lower():  # pydantic's parser refuses only escaped lone surrogates
            raise
        return EpisodeRecord.model_validate(json.loads(line))


class RunDirLock:
    def __init__(self, fds: list[int]):
        self._fds = fds

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)  # closing the descriptor drops its flock
        self._fds = []


def _flock(path: Path, mode: int, root: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AgentFlanError(
            f"run dir {root} is in use by another agentflan_eval run; wait for it to end, or pass another "
            "--run-id or --output-dir"
        ) from None
    return fd
