"""The run directory, behind one small class so reports never depend on its file layout.

Layout: ``manifest.json``, ``episodes/<task>.jsonl`` (one EpisodeRecord a line, appended, flushed
and fsynced as each episode ends) and ``results.json``. A kill -9 can leave at most a torn last
line, which is dropped (and cut off the file) the next time the run is opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from agentflan_eval.errors import AgentFlanError, DataFormatError
from agentflan_eval.records import EpisodeRecord, RunManifest, RunResults


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.episodes_dir = self.root / "episodes"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def results_path(self) -> Path:
        return self.root / "results.json"

    def exists(self) -> bool:
        return self.manifest_path.is_file()

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

    # -- episodes ----------------------------------------------------------------------------
    def episode_path(self, task: str) -> Path:
        return self.episodes_dir / f"{task}.jsonl"

    def tasks(self) -> list[str]:
        return sorted(p.stem for p in self.episodes_dir.glob("*.jsonl")) if self.episodes_dir.is_dir() else []

    def append(self, record: EpisodeRecord) -> None:
        path = self.episode_path(record.task)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail(path)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(record.model_dump_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def episodes(self, task: str) -> Iterator[EpisodeRecord]:
        """Every finished episode of ``task``; the first record of a sample wins over later ones."""
        path = self.episode_path(task)
        if not path.is_file():
            return
        seen: set[str] = set()
        lines = path.read_text(encoding="utf-8").split("\n")
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = EpisodeRecord.model_validate_json(line)
            except ValueError as e:
                if i == len(lines):  # a torn final line from a killed run: that episode never finished
                    continue
                raise DataFormatError(path, i, f"not an episode record ({str(e).splitlines()[0]})") from None
            if rec.sample_id not in seen:
                seen.add(rec.sample_id)
                yield rec

    def done_ids(self, task: str) -> set[str]:
        return {r.sample_id for r in self.episodes(task)}

    @staticmethod
    def _repair_tail(path: Path) -> None:
        """Cut a torn last line (no trailing newline) so the next append starts on a clean line."""
        if not path.is_file() or path.stat().st_size == 0:
            return
        with open(path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            fh.seek(0)
            data = fh.read()
            fh.truncate(data.rfind(b"\n") + 1)
