"""The 144 standard OS-interaction problems of AgentTuning's AgentBench copy, as typed records.

Loading follows AgentBench's OS task: a script object is a string (bash), ``{"code", "language"}``
or ``{"file"}``; ``create.init`` (one or a list) runs on its own before the episode, ``start`` runs in
the episode's shell; ``evaluation.match`` (a string, ``{"answer", "strip"}`` or ``{"regex"}``) wins
over ``evaluation.check``, whose ``null`` entries mean "run ``evaluation.example``". Files named by
``{"file"}`` are upstream code that the data copy leaves out: the generic comparators are in
``judge.py``, the rest in ``scripts.py``; a problem that needs something neither has is skipped with
its reason (none of the 144 does). Three problems need the network or a package; see OVERRIDES.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentflan_eval.benchmark import Sample
from agentflan_eval.benchmarks.os.judge import COMPARATORS
from agentflan_eval.benchmarks.os.scripts import RECONSTRUCTED
from agentflan_eval.data import read_json
from agentflan_eval.errors import DataFormatError

DATA_ROOT = "agenttuning/agentbench_old/os_interaction/data"
STD_FILES = (
    "1/stock.json",
    "2/environment.json",
    "3/ac.json",
    "4/N11.json",
    "4/N225.json",
    "4/N37.json",
    "4/N4.json",
    "4/N41.json",
    "4/Q09.json",
    "4/Q19.json",
    "4/Q30.json",
    "4/Q47.json",
    "4/Q49.json",
    "5/new.json",
    "6/new.json",
    "7/2023-06-07-00-13-14.json",
)

_SUDO_INIT = "apt update && apt install sudo -y && echo '' > /etc/sudoers"
# (file, index) -> what changes and why. The sandbox has no network, so `apt install` cannot run.
OVERRIDES: dict[tuple[str, int], dict[str, str]] = {
    ("6/new.json", 5): {
        "init": "echo '' > /etc/sudoers",
        "why": f"init `{_SUDO_INIT}` without the network: "
        "sudo comes preinstalled (Debian package sudo), then the same empty /etc/sudoers",
    },
    ("6/new.json", 6): {
        "init": "echo '' > /etc/sudoers",
        "why": f"init `{_SUDO_INIT}` without the network: "
        "sudo comes preinstalled (Debian package sudo), then the same empty /etc/sudoers",
    },
    ("6/new.json", 8): {
        "skip": "needs the network: sudo is absent from AgentBench's image and the only fix is "
        "`apt update && apt install sudo -y`"
    },
}

# Problems that even their own example solution fails, in AgentBench's container as here: the checker re-runs
# the example in a new `bash -c`, one process more than the episode's shell saw (nearly always: `ps` may miss
# the `wc` its pipeline starts beside it, in the shell or in the check). Kept and scored as upstream.
UNSOLVABLE: dict[str, str] = {
    "os-7-2023-06-07-00-13-14-0": "`ps -A | wc -l`: the checker's own `bash -c` is one process more",
    "os-7-2023-06-07-00-13-14-75": "`ps -e | wc -l` + `who | wc -l`: the checker's own `bash -c` is one "
    "process more",
    "os-7-2023-06-07-00-13-14-8": "`find $TARGET_DIR ...`: the variable exists only in the init script, so "
    "it counts the whole file system from /, /proc included, where the checker's `bash -c` adds entries",
    "os-7-2023-06-07-00-13-14-29": "`find . -type d` and `-type f` from /: the whole file system, /proc "
    "included, where the checker's `bash -c` adds entries",
}
# ... and those that fail only over the host's own file system (no image built: see sandbox/image.py)
HOST_VIEW_UNSOLVABLE: dict[str, str] = {
    "os-5-new-1": "checking/1.sh walks the host's /lib in bash: minutes, past the check's time limit",
    "os-5-new-5": '`du -sh /usr` prints "6.0G" on the host, which check/size-match.py cannot read',
    "os-7-2023-06-07-00-13-14-9": "grep reads the host's binary *.txt/*.log files and prints "
    '"binary file matches" to stderr, which lands in the expected output',
    "os-7-2023-06-07-00-13-14-57": "`find .` from / over the host's 6 GB outlasts the shell's 10 s",
}


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str = "bash"  # bash | python | comparator (one of judge.COMPARATORS, run here, not inside)
    code: str  # the source, or the comparator's file name
    origin: str = "inline"  # inline | reconstructed:<upstream file>


class OSProblem(Sample):
    description: str
    init: list[Script] = Field(default_factory=list)
    start: Script | None = None
    match: str | None = None  # exact answer
    match_regex: str | None = None
    match_strip: bool = True
    check: list[Script | None] | None = None  # None entries run `example`
    example: Script | None = None  # evaluation.example: the gold solution
    labels: list[str] = Field(default_factory=list)
    file: str
    index: int
    skip: str | None = None  # why this problem cannot run here
    note: str | None = None  # how it was adapted


class _Unresolvable(Exception):
    pass


def load_problems(paths: Mapping[str, Path]) -> list[OSProblem]:
    """All problems of the standard files (``STD_FILES`` -> local path), in file order; skipped ones marked."""
    out = []
    for rel in STD_FILES:
        path = paths[rel]
        raw = read_json(path)
        items = raw if isinstance(raw, list) else [raw]
        for index, item in enumerate(items):
            try:
                out.append(_problem(rel, index, item))
            except (KeyError, TypeError) as e:
                raise DataFormatError(path, None, f"problem {index}: {type(e).__name__} {e}") from None
    return out


def _problem(rel: str, index: int, item: dict[str, Any]) -> OSProblem:
    pid = "os-" + rel.removesuffix(".json").replace("/", "-") + f"-{index}"
    fields: dict[str, Any] = {
        "id": pid,
        "subset": rel.removesuffix(".json"),
        "file": rel,
        "index": index,
        "description": item["description"],
        "labels": item.get("labels", []),
    }
    try:
        create = item.get("create")
        if (
            isinstance(create, dict) and "init" in create
        ):  # a non-dict `create` (one item in 5/new.json) has none
            inits = create["init"] if isinstance(create["init"], list) else [create["init"]]
            fields["init"] = [s for s in (_script(x) for x in inits) if s is not None]
        if "start" in item:
            fields["start"] = _script(item["start"])
        evaluation = item["evaluation"]
        if "match" in evaluation:
            match = evaluation["match"]
            match = {"answer": match, "strip": True} if isinstance(match, str) else match
            fields.update(
                match=match.get("answer"),
                match_regex=match.get("regex"),
                match_strip=match.get("strip", False),
            )
        else:
            checks = evaluation["check"] if isinstance(evaluation["check"], list) else [evaluation["check"]]
            fields["check"] = [_script(c) for c in checks]
        if "example" in evaluation:  # the judge runs it for `null` checks; the gold agent always
            try:
                fields["example"] = _script(evaluation["example"])
            except _Unresolvable:
                if None in fields.get("check", []):
                    raise
    except _Unresolvable as e:
        fields["skip"] = f"upstream script file {e} has no equivalent here"
    override = OVERRIDES.get((rel, index), {})
    if "skip" in override:
        fields["skip"] = override["skip"]
    if "init" in override:
        fields["init"], fields["note"] = [Script(code=override["init"], origin="adapted")], override["why"]
        if shutil.which("sudo") is None:
            fields["skip"] = "needs sudo in the sandbox (Debian package sudo)"
    return OSProblem(**fields)


def _script(obj: Any) -> Script | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        return Script(code=obj)
    language = obj.get("language", "bash")
    if "code" in obj:
        return Script(language=language, code=obj["code"])
    name = obj["file"]
    if name in COMPARATORS:
        return Script(language="comparator", code=name, origin="comparator")
    if name in RECONSTRUCTED:
        return Script(code=RECONSTRUCTED[name], origin=f"reconstructed:{name}")
    raise _Unresolvable(name)


def reconstructed_files(problems: list[OSProblem]) -> Iterator[str]:
    """Upstream script files that these problems use, replaced by the equivalents in scripts.py."""
    seen: set[str] = set()
    for p in problems:
        for s in [*p.init, *(p.check or []), p.example]:
            if s is not None and s.origin.startswith("reconstructed:") and s.origin not in seen:
                seen.add(s.origin)
                yield s.origin.removeprefix("reconstructed:")
