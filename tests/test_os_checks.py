"""The rewritten OS check scripts decide as AgentBench.old's originals on the originals' inputs.

Each case was derived by reading the original (THUDM/AgentTuning @ e33a45d,
``AgentBench.old/data/os_interaction/scripts/``: ``7/check/size-match.py``, ``5/checking/{0,1,2}.sh``) and
confirmed by running the original beside ours in the same sandbox (outside the project).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentflan_eval.benchmarks.common.sandbox import Sandbox, SandboxLimits, sandbox_unavailable
from agentflan_eval.benchmarks.os.judge import compare
from agentflan_eval.benchmarks.os.scripts import (
    CHECK_CALC,
    CHECK_COUNT,
    CHECK_DATE_FORMAT,
    COUNT_DIRS,
    EXAMPLE_CALC,
    EXAMPLE_COUNT,
    EXAMPLE_DATE_FORMAT,
)


@pytest.mark.parametrize(
    ("answer", "expected", "ok"),
    [
        ("4K", "4096\n", True),
        ("4096", "4K", True),
        ("12M", "12582912", True),
        ("1G", "1024M", True),
        (" 4 K ", "4096", True),  # int() takes the space before the unit
        ("12Byte", "12", True),
        ("4.0K", "4096", False),  # no decimals: int("4.0") fails, as upstream
        ("4096", "4.0K\n", False),  # ... so `du -h`'s 4.0K fails whatever the answer
        ("4KB", "4096", False),  # "B" is tried first: int("4K") fails
        ("4MB", "4194304", False),
        ("None", "1K", False),
        ("4k", "4096", False),  # units are case-sensitive
    ],
)
def test_size_match_as_upstream(answer: str, expected: str, ok: bool) -> None:
    assert compare("check/size-match.py", [answer, expected]) == (0 if ok else 1)


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    reason = sandbox_unavailable()
    if reason:
        pytest.fail(f"sandbox cannot run: {reason}")
    with Sandbox(SandboxLimits(exec_timeout=600)) as b:
        yield b


def _install(box: Sandbox, name: str, body: str) -> None:
    script = f"#!/bin/bash\n{body}\n"
    res = box.exec(
        [
            "bash",
            "-c",
            f'printf %s "$1" > /usr/local/bin/{name}; chmod +x /usr/local/bin/{name}',
            "--",
            script,
        ]
    )
    assert res.returncode == 0, res.output


def _verdict(box: Sandbox, check: str) -> int:
    res = box.exec(["bash", "-c", check])
    assert not res.timed_out
    return res.returncode


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (None, True),  # the gold solution (example/0.sh's behaviour)
        ('python3 -c "print($*)"', True),  # full precision is within 1e-5 of the rounded value
        ('echo "$*"', True),  # the expression itself: pasted into Python source, it evaluates
        ('python3 -c "print(round($*, 4))"', False),  # 1.8571 is 4.3e-5 from 20 / (5 + 2) - 1
        ('python3 -c "print(int($*))"', False),  # 3 + (6.7 * 9) - 5.5 = 57.8, not 57
        ("echo 113", False),
        ('python3 -c "print($*)"; echo done', False),  # two lines: not Python any more
        ("", False),  # no calc at all
    ],
)
def test_calc_check(box: Sandbox, body: str | None, ok: bool) -> None:
    if body is None:
        assert box.exec(["bash", "-c", EXAMPLE_CALC]).returncode == 0
    elif body:
        _install(box, "calc", body)
    else:
        box.exec(["rm", "-f", "/usr/local/bin/calc"])
    assert (_verdict(box, CHECK_CALC) == 0) is ok


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (None, True),
        ('date -d "$1" +"$2"', True),
        ("echo 2023-05", True),  # only the first case (2023-5-1, %Y-%m) ever runs upstream
        ('date -d "$1" +%Y/%m', False),
        ('date -d "$1" +"$2"; exit 3', False),  # a failing command fails, whatever it printed
        ('date -d "$1" +"$2 "', False),  # compared quoted: the trailing space counts
    ],
)
def test_date_format_check(box: Sandbox, body: str | None, ok: bool) -> None:
    if body is None:
        assert box.exec(["bash", "-c", EXAMPLE_DATE_FORMAT]).returncode == 0
    else:
        _install(box, "date-format", body)
    assert (_verdict(box, CHECK_DATE_FORMAT) == 0) is ok


SMALL_DIRS = ("/usr/local/bin", "/root", "/dev", "/work")


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (None, True),  # the gold solution: the same walk as the check's own
        ('find "$1" -type f | wc -l', False),  # counts hidden files (/root/.bashrc), not linked ones
        ('find -L "$1" -type f -not -name ".*" | wc -l', False),  # hidden directories' files still count
        ('echo "$(find "$1" -type f | wc -l) files"', True),  # two words: `[` errors, no mismatch upstream
        ("echo", False),  # nothing: "Nx" != "x"
        ('echo "   $(bash /usr/local/bin/.gold "$1")"', True),  # leading spaces go with word splitting
    ],
)
def test_count_check(box: Sandbox, body: str | None, ok: bool) -> None:
    """On small directories, plus one with hidden files, links and a fifo (the full six-directory walk of
    the host's /lib takes minutes: ``test_count_check_covers_the_original_directories`` pins the list)."""
    setup = (
        "rm -rf /work; mkdir -p /work/a/.hid /work/b; touch /work/f /work/.h /work/a/g /work/a/.hid/x; "
        "ln -s /work/f /work/lf; ln -s /work/a /work/b/la; mkfifo /work/p; ln -s /nowhere /work/dangling"
    )
    assert box.exec(["bash", "-c", setup]).returncode == 0
    assert box.exec(["bash", "-c", EXAMPLE_COUNT]).returncode == 0
    box.exec(["cp", "/usr/local/bin/count", "/usr/local/bin/.gold"])
    if body is not None:
        _install(box, "count", body)
    check = CHECK_COUNT.replace(" ".join(COUNT_DIRS), " ".join(SMALL_DIRS))
    assert check != CHECK_COUNT
    assert (_verdict(box, check) == 0) is ok
    gold = box.exec(["bash", "-c", "/usr/local/bin/.gold /work"]).output.strip()
    assert gold == "4"  # f, a/g, lf -> f, b/la/g; not .h, a/.hid/x, the fifo, the dangling link


def test_count_check_covers_the_original_directories() -> None:
    assert COUNT_DIRS == ("/usr/local/bin", "/root", "/bin", "/lib", "/dev", "/usr/include")
    assert f"for dir in {' '.join(COUNT_DIRS)}; do" in CHECK_COUNT
