"""The real download code against a mirror served on 127.0.0.1 from ../shared/data: a fresh cache filled by
``data fetch``, checksums verified, an interrupted download resumed, a corrupted file refused, offline mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentflan_eval import benchmarks
from agentflan_eval import data as data_mod
from agentflan_eval.cli import main as cli_main
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataFile, DataResolver, lock
from agentflan_eval.download import sha256_file
from agentflan_eval.errors import DataChecksumError, DataMissingError
from tests.mirror import Mirror, mirror_of, serving

ATTRS = "webshop/data/items_ins_v2_1000.json"
MINIWOB_OWN = "agenttuning/miniwob++/"
PINNED = DataFile("agenttuning/agentbench_old/dbbench/standard.jsonl", "THUDM/AgentTuning dbbench")


def _all_files(resolver: DataResolver) -> list[tuple[str, DataFile]]:
    config = RunConfig()
    out = []
    for n in benchmarks.task_names():
        b = benchmarks.get(n)(config, resolver)
        out += [(n, f) for f in b.all_data_files()]
    return out


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path) -> Iterator[Mirror]:
    """The mirror, an empty cache, no local data dir, and every download pointed at the mirror."""
    from huggingface_hub import constants

    m = mirror_of(data_dir)
    with serving(m):
        monkeypatch.setenv("AGENTFLAN_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("AGENTFLAN_DATA_DIR", raising=False)
        monkeypatch.delenv("AGENTFLAN_OFFLINE", raising=False)
        monkeypatch.setenv("AGENTFLAN_DATA_MIRROR", m.root)
        monkeypatch.setattr(constants, "ENDPOINT", m.root)  # what HF_ENDPOINT sets
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(var, raising=False)
        data_mod._connects.cache_clear()
        # Files whose official host publishes no checksum and that ../shared/data lacks (Hub datasets,
        # Google Drive): stand-ins the mirror serves at their official paths; `fetch` records their sha256.
        for _task, f in _all_files(DataResolver(data_dir, offline=True)):
            url = f.official_url
            if url is not None and f.pin.sha256 is None:
                m.add_url(url, f"stand-in for {f.path}\n".encode())
        yield m


def test_fetch_suite_all_fills_a_fresh_cache_with_verified_files(
    mirror: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every task's files, from the mirror into an empty cache. AgentTuning's MiniWoB++ prompts and pages are
    pinned but not in ../shared/data, so this mirror cannot serve them: they, and only they, are reported."""
    code = cli_main(["data", "fetch", "--suite", "all"])
    failures = [line for line in capsys.readouterr().out.splitlines() if "is not in the cache" in line]
    cache = tmp_path / "cache" / "data"
    files = _all_files(DataResolver())
    absent = [f for _t, f in files if f.path.startswith(MINIWOB_OWN)]
    assert code == 1 and len(failures) == len(absent) == 651
    assert all(line.startswith("miniwob: data file " + MINIWOB_OWN) for line in failures)
    assert len(files) - len(absent) > 100
    for _task, f in files:
        if f.path.startswith(MINIWOB_OWN):
            continue
        got = cache / f.path
        assert got.is_file(), f.path
        if f.pin.sha256 is not None:
            assert sha256_file(got) == f.pin.sha256
        else:  # no published checksum: the one seen at download is kept beside it
            assert (cache / (f.path + ".sha256")).read_text().strip() == sha256_file(got)
    served = [p for p, _r in mirror.requests if "/miniwob++/" not in p]
    assert cli_main(["data", "verify"]) == 0
    cli_main(["data", "fetch", "--suite", "all"])
    again = [p for p, _r in mirror.requests if "/miniwob++/" not in p]
    assert again == served  # everything cached and verified: nothing downloaded again


def test_an_interrupted_download_resumes_where_it_stopped(mirror: Mirror, tmp_path: Path) -> None:
    url_path = "/" + PINNED.official_url.split("://", 1)[1]  # type: ignore[union-attr]
    mirror.cut_once.add(url_path)
    got = DataResolver(progress=False).path(PINNED)
    assert sha256_file(got) == PINNED.pin.sha256
    tries = [r for p, r in mirror.requests if p == url_path]
    assert len(tries) == 2 and tries[0] is None
    assert tries[1] == f"bytes={PINNED.pin.size // 2}-"  # the second request asked only for the rest


def test_a_corrupted_download_is_refused_and_not_kept(
    mirror: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url_path = "/" + PINNED.official_url.split("://", 1)[1]  # type: ignore[union-attr]
    good = mirror.files[url_path]
    assert isinstance(good, Path)
    bad = bytearray(good.read_bytes())
    bad[100] ^= 1  # one flipped bit, same size
    mirror.files[url_path] = bytes(bad)
    with pytest.raises(
        DataChecksumError, match="dbbench/standard.jsonl: sha256 .* does not match the pinned"
    ):
        DataResolver(progress=False).path(PINNED)
    cached = tmp_path / "cache" / "data" / PINNED.path
    assert not cached.exists() and not cached.with_name(cached.name + ".part").exists()
    assert cli_main(["data", "fetch", "--tasks", "db"]) == 1
    out = capsys.readouterr().out
    assert "standard.jsonl" in out and "shared" not in out


def test_a_corrupted_cached_file_is_refused_then_fetched_again(
    mirror: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cached = tmp_path / "cache" / "data" / PINNED.path
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x" * (PINNED.pin.size or 1))
    with pytest.raises(DataChecksumError, match="standard.jsonl"):
        DataResolver().path(PINNED)
    assert cli_main(["data", "verify", "--tasks", "db"]) == 1
    assert cli_main(["data", "fetch", "--tasks", "db"]) == 0  # a bad cached copy is replaced
    assert sha256_file(cached) == PINNED.pin.sha256
    err = capsys.readouterr()
    assert err.out.count("\n") >= 2


def test_an_unpinned_file_is_held_to_its_first_checksum(mirror: Mirror, data_dir: Path) -> None:
    unpinned = _all_files(DataResolver(data_dir, offline=True))
    f = next(f for _t, f in unpinned if f.hub_repo and f.pin.sha256 is None)
    got = DataResolver(progress=False).path(f)
    got.write_bytes(got.read_bytes() + b"changed")
    with pytest.raises(DataChecksumError, match=f.path):
        DataResolver().path(f)


def test_offline_never_touches_the_network(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTFLAN_OFFLINE", "1")
    with pytest.raises(DataMissingError, match="offline: not downloaded") as e:
        DataResolver().path(PINNED)
    assert "shared" not in str(e.value)
    assert cli_main(["run", "--tasks", "db", "--offline", "--backend", "replay", "--limit", "1"]) == 2
    assert "dbbench/standard.jsonl" in capsys.readouterr().err
    assert mirror.requests == []


def test_every_pinned_url_is_at_a_fixed_commit() -> None:
    for path, (url, pin) in lock().items():
        assert url.startswith("https://"), path
        assert pin.sha256 is not None and len(pin.sha256) == 64 and pin.size is not None, path
        if "raw.githubusercontent.com" in url:
            assert len(url.split("/")[5]) == 40, url  # a commit, not a branch


def test_tasks_whose_data_cannot_be_here_load_it_through_the_same_path(
    mirror: Mirror, tmp_path: Path, data_dir: Path
) -> None:
    """WebShop's Google Drive catalogue and T-Eval's Hub files, built in their official format, served at their
    official paths by the mirror: each task downloads, checks and loads them as it would from the real hosts."""
    from agentflan_eval.benchmarks.teval.benchmark import FULL_FILES, TEval
    from agentflan_eval.benchmarks.webshop.benchmark import CATALOGUE, HUMAN_INSTRUCTIONS, WebShop
    from tests.test_teval import RECORDS
    from tests.test_webshop import write_catalogue

    built = write_catalogue(tmp_path / "built", json.loads((data_dir / ATTRS).read_text())) / "webshop/data"
    for f in (CATALOGUE, HUMAN_INSTRUCTIONS):
        mirror.add_url(f.official_url, (built / Path(f.path).name).read_bytes())  # type: ignore[arg-type]
    for stem, f in FULL_FILES.items():
        mirror.add_url(f.official_url, json.dumps(RECORDS[stem]).encode())  # type: ignore[arg-type]

    shop = WebShop(RunConfig(), DataResolver(progress=False))
    assert shop.unavailable() is None and len(shop.load_samples()) > 0
    teval = TEval(RunConfig(), DataResolver(progress=False))
    assert teval.unavailable() is None
    assert len(teval.load_samples()) == sum(len(r) for r in RECORDS.values())
    drive = [p for p, _ in mirror.requests if p.startswith("/drive.google.com/")]
    hub = [p for p, _ in mirror.requests if p.startswith("/datasets/lovesnowbest/T-Eval/resolve/")]
    assert len(drive) == 2 and len(hub) == len(FULL_FILES)


def test_an_empty_pinned_file_downloads(mirror: Mirror, data_dir: Path) -> None:
    path, (_url, pin) = next((p, e) for p, e in lock().items() if e[1].size == 0 and (data_dir / p).is_file())
    got = DataResolver(progress=False).path(DataFile(path, "an empty upstream file"))
    assert got.is_file() and got.stat().st_size == 0 and sha256_file(got) == pin.sha256
