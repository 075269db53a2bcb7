"""The OS task's sandbox: escape probes that must all fail, limits, and nothing outliving an episode."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from agentflan_eval.benchmarks.common.sandbox import Sandbox, SandboxLimits, bwrap, sandbox_unavailable
from agentflan_eval.benchmarks.common.sandbox.bwrap import pidns_members


@pytest.fixture(scope="module", autouse=True)
def _sandbox_works() -> None:
    reason = sandbox_unavailable()
    if reason:
        pytest.fail(f"the OS sandbox cannot run here: {reason} (install scripts/apt-packages.txt)")


@pytest.fixture()
def box():
    with Sandbox(SandboxLimits(command_timeout=3.0, exec_timeout=10.0)) as b:
        yield b


def test_shell_keeps_state_between_commands(box: Sandbox) -> None:
    assert box.shell("cd /usr && x=41").text == ""
    assert box.shell("echo $((x + 1)) $PWD").text == "42 /usr\n"
    assert box.shell("for i in 1 2; do echo $i; done\necho multi-line").text == "1\n2\nmulti-line\n"
    assert box.shell("printf 'a\\tb'").text == "a\tb"


def test_writes_stay_inside(box: Sandbox, tmp_path: Path) -> None:
    """Probe: write host files (through the overlay, through /tmp, into the project): the host never changes."""
    token = f"agentflan-probe-{uuid.uuid4().hex}"
    here = Path(__file__).resolve()
    out = box.shell(
        f"echo {token} > /usr/{token}; echo {token} > /etc/{token}; chmod u+s /usr/bin/env; "
        f"echo {token} > {tmp_path}/{token}; echo {token} >> {here}; cat /usr/{token}; ls -l /usr/bin/env"
    )
    assert "No such file" in out.text and f"{token}\n-rws" in out.text  # the sandbox sees its own writes...
    assert not Path(f"/usr/{token}").exists() and not Path(f"/etc/{token}").exists()  # ...the host does not
    assert not (tmp_path / token).exists()
    assert token not in here.read_text()
    assert not os.stat("/usr/bin/env").st_mode & 0o4000
    assert box.exec(["bash", "-c", f"test -e {here}"]).returncode != 0  # the project is not even visible


def test_host_root_home_is_not_readable(box: Sandbox) -> None:
    """Probe: the host's /root (here: the home directory of whoever runs the tests) stays hidden."""
    secret = Path.home() / f".agentflan-probe-{uuid.uuid4().hex}"
    secret.write_text("host secret")
    try:
        out = box.exec(["bash", "-c", f"cat /root/{secret.name} {secret} 2>&1; ls -A /root"])
        assert "host secret" not in out.output
        assert set(out.output.split()) & {secret.name} == set()
        assert box.shell(f"cat {secret} /root/{secret.name}").text.count("No such file") == 2
    finally:
        secret.unlink()


def test_no_network(box: Sandbox) -> None:
    """Probe: neither the host's loopback services nor the outside world can be reached."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(6)
    port = server.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True).start()
    probe = (
        f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo LOCAL-OPEN; "
        "(timeout 3 bash -c 'exec 3<>/dev/tcp/1.1.1.1/80') 2>/dev/null && echo REMOTE-OPEN; "
        "getent hosts example.com || echo NO-DNS; ls /sys/class/net 2>/dev/null; cat /proc/net/dev"
    )
    out = box.exec(["bash", "-c", probe])
    assert "OPEN" not in out.output and "NO-DNS" in out.output
    interfaces = [ln.split(":")[0].strip() for ln in out.output.splitlines() if ":" in ln and "|" not in ln]
    assert interfaces == ["lo"]
    time.sleep(0.5)
    server.close()
    assert accepted in ([], [None])


def _accept(server: socket.socket) -> object:
    try:
        return server.accept()
    except OSError:
        return None


def test_command_that_never_ends(box: Sandbox) -> None:
    """Probe: an endless command is interrupted after the timeout and the shell stays usable."""
    start = time.monotonic()
    out = box.shell("while true; do :; done")
    assert out.timed_out and time.monotonic() - start < 10
    flood = box.shell("yes")
    assert flood.timed_out and len(flood.text) <= 64 * 1024
    assert box.shell("echo still here").text == "still here\n"
    ended = box.exec(["sleep", "1000"], timeout=1)
    assert ended.timed_out and ended.returncode != 0


def test_exit_ends_the_shell_not_the_sandbox(box: Sandbox) -> None:
    box.shell("touch /root/kept; exit")
    assert box.running
    assert box.shell("ls /root/kept").text == "/root/kept\n"


@pytest.mark.parametrize("forced_watchdog", [False, True], ids=["as-configured", "watchdog"])
def test_fork_bomb_is_contained(forced_watchdog: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe: a fork bomb stays under the process cap (pids cgroup where one can be made, else the
    watchdog) and dies with the episode."""
    if forced_watchdog:
        monkeypatch.setattr(bwrap.SandboxCgroup, "create", classmethod(lambda cls, *a: None))
    limits = SandboxLimits(command_timeout=3.0, max_processes=64)
    box = Sandbox(limits).start()
    ns = os.readlink(f"/proc/{box._child}/ns/pid")
    peak = []
    stop = threading.Event()
    threading.Thread(
        target=lambda: [peak.append(pidns_members(ns)) for _ in iter(lambda: stop.wait(0.05), True)],
        daemon=True,
    ).start()
    try:
        box.shell(":(){ :|:& };:")
        time.sleep(1.0)
        deadline = time.monotonic() + 15  # on a loaded machine the bomb and the watchdog both run late
        while box.cgroup is None and box.killed is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        start = time.monotonic()
        cgroup = box.cgroup
        box.close()
    assert time.monotonic() - start < 10
    if cgroup is not None:
        assert max(peak) <= limits.max_processes
    else:  # the watchdog acts after the fact: it polls every 50 ms, then kills the whole sandbox
        assert box.killed == "more than 64 processes" and max(peak) < 2000
    assert pidns_members(ns) == 0
    assert not box.running


def test_nothing_outlives_the_sandbox() -> None:
    box = Sandbox().start()
    box.shell("sleep 1000 & sleep 1001 &")
    box.exec(["bash", "-c", "sleep 1002 &"])
    ns = os.readlink(f"/proc/{box._child}/ns/pid")
    cgroup_dirs = list(box.cgroup.dirs) if box.cgroup else []
    assert pidns_members(ns) >= 5  # bwrap, keeper, shell, three sleeps
    box.close()
    assert pidns_members(ns) == 0
    assert not any(d.exists() for d in cgroup_dirs)
    with pytest.raises(bwrap.SandboxError):
        box.exec(["true"])
