"""What an episode sees is its own: processes, /proc, memory and (with the system image) files do not move
with the machine's other work, so that answers counting them are the same in the episode and in its check."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentflan_eval.benchmarks.common.sandbox import Sandbox, sandbox_unavailable
from agentflan_eval.benchmarks.common.sandbox.image import built_image


@pytest.fixture(scope="module", autouse=True)
def _sandbox_works() -> None:
    reason = sandbox_unavailable()
    if reason:
        pytest.fail(f"the OS sandbox cannot run here: {reason}")


@pytest.fixture()
def host_load() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Twenty host processes started and ended around the sandbox's commands (the machine's other work)."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait()


_PROC_PIDS = "exec python3 -c 'import os; print(sum(n.isdigit() for n in os.listdir(\"/proc\")))'"


def _count(box: Sandbox, command: str) -> str:
    return box.exec(["bash", "-c", command]).output.strip()


def test_process_counts_ignore_the_host(host_load: list[subprocess.Popen[bytes]]) -> None:
    """pid 1 is a `bash`, as a container's `CMD ["bash"]`; nothing of the host shows in ps or /proc."""
    with Sandbox() as box:
        box.exec(["bash", "-c", "for i in 1 2 3 4 5; do (sleep 60) & done"])  # 7/2023-06-07 #0's init
        shown = box.shell("ps -A | wc -l; ps -o comm= -p 1").text.split()
        before = (_count(box, "ps -A | wc -l"), _count(box, _PROC_PIDS))
        host_load.extend(subprocess.Popen(["sleep", "300"]) for _ in range(20))
        after = (_count(box, "ps -A | wc -l"), _count(box, _PROC_PIDS))
    # header, bash (pid 1), five sleeps, the login shell, ps, wc: what AgentBench's container showed
    assert shown == ["10", "bash"]
    # one process more (the checker's own `bash -c`), and the same with 20 more host processes
    assert before == after == ("11", "8")  # /proc: bash, five sleeps, the shell, python


def test_memory_is_the_sandboxs_and_fixed() -> None:
    with Sandbox() as box:
        first = box.shell("free -b | awk '/Mem:/ {print $2, $3, $4, $7}'").text.split()
        hog = subprocess.Popen(["python3", "-c", "b = bytearray(300 << 20); import time; time.sleep(30)"])
        try:
            again = _count(box, "free -b | awk '/Mem:/ {print $2, $3, $4, $7}'").split()
        finally:
            hog.kill()
            hog.wait()
    cap = str(box.limits.memory_bytes)
    assert first == again == [cap, "0", cap, cap]  # total, used, free, available: the cgroup's cap


def test_the_image_is_what_the_episode_sees() -> None:
    """With the system image built (scripts/install.sh builds it), the host's own files are absent and host
    changes do not reach the episode."""
    image = built_image()
    assert image is not None, (
        "no system image built: python -m agentflan_eval.benchmarks.common.sandbox.image"
    )
    token = f"agentflan-probe-{uuid.uuid4().hex}"
    host_file = Path("/var/tmp") / token
    with Sandbox(image=image) as box:
        count = "find /usr /etc /var -xdev -type f 2>/dev/null | wc -l"
        before = _count(box, count)
        host_file.write_text("host work")
        try:
            after = _count(box, count)
            seen = box.exec(["ls", f"/var/tmp/{token}"]).returncode
        finally:
            host_file.unlink()
        os_release = _count(box, "cat /etc/os-release")
        local_bin = _count(box, "ls -A /usr/local/bin | wc -l")
    assert before == after and seen != 0
    assert "ID=debian" in os_release and local_bin == "0"  # the image's /usr/local/bin is empty, as upstream
