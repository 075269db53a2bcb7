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
    else:  # RLIMIT_NPROC holds the sandbox's root (an unprivileged host user, counted per user namespace);
        # the watchdog, polling every 50 ms, is the fallback that kills the whole sandbox
        assert box.killed == "more than 64 processes" or max(peak) <= limits.max_processes
        assert max(peak) < 2000
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


# -- issue 22: the sandbox's root is not the host's root ------------------------------------------------
SYSCTLS = ("/proc/sys/kernel/printk_ratelimit_burst", "/proc/sys/kernel/core_pattern")


def test_kernel_settings_stay_untouched(box: Sandbox) -> None:
    """Probe: write host kernel settings (core_pattern would run a program as the host's root)."""
    before = {p: Path(p).read_text() for p in SYSCTLS}
    try:
        burst = int(before[SYSCTLS[0]]) + 7
        out = box.shell(
            f"echo {burst} > {SYSCTLS[0]}; echo '|/bin/sh -c id' > {SYSCTLS[1]}; "
            f"mount -o remount,rw /proc/sys; echo {burst} > {SYSCTLS[0]}; "
            f"umount /proc/sys; echo {burst} > {SYSCTLS[0]}; "
            "[ -w /proc/sysrq-trigger ] && echo SYSRQ-WRITABLE; cat /proc/sys/kernel/printk_ratelimit_burst"
        )
        assert "SYSRQ-WRITABLE" not in out.text
        assert {p: Path(p).read_text() for p in SYSCTLS} == before  # measured on the host
    finally:
        for p, v in before.items():  # put back what a failing run changed
            if Path(p).read_text() != v:
                Path(p).write_text(v)


def test_no_host_secrets_in_etc() -> None:
    """Probe: the host's password hashes (and any file only root may read) stay on the host."""
    secret = Path(f"/etc/agentflan-probe-{uuid.uuid4().hex}")
    secret.write_text("host secret")
    secret.chmod(0o600)
    try:
        with Sandbox(SandboxLimits(command_timeout=3.0)) as box:
            shadow = box.exec(["cat", "/etc/shadow"]).output
            out = box.exec(
                ["bash", "-c", f"cat {secret} /etc/gshadow /etc/shadow- 2>&1; ls -A /etc/ssl/private"]
            )
            # a task can still add users and set passwords, as in AgentBench's container
            res = box.exec(
                ["bash", "-c", "useradd -m jack && echo jack:pw | chpasswd && su - jack -c whoami"]
            )
    finally:
        secret.unlink()
    host = Path("/etc/shadow").read_text()
    assert shadow != host and shadow.startswith("root:*:")  # made for the sandbox: names, no hashes
    assert "host secret" not in out.output and Path("/etc/gshadow").read_text() not in out.output
    assert res.returncode == 0 and res.output.strip().endswith("jack"), res.output


def test_runs_as_an_unprivileged_host_user(box: Sandbox) -> None:
    """Probe: root inside is an ordinary, unmapped user outside, with no capability over the host."""
    out = box.exec(["bash", "-c", "id -u; cat /proc/self/uid_map"]).output.split()
    assert out[:2] == ["0", "0"] and out[2] != "0"  # uid 0 inside is not uid 0 outside
    keeper = box._child
    assert os.stat(f"/proc/{keeper}").st_uid != 0  # measured on the host


def test_mount_and_nsenter_are_refused(box: Sandbox, tmp_path: Path) -> None:
    """Probe: mount (the host's disk, a bind of /, a new proc) and nsenter into other namespaces."""
    token = f"agentflan-probe-{uuid.uuid4().hex}"
    root_dev = os.stat("/").st_dev
    out = box.shell(
        "mkdir -p /mnt/a /mnt/b; mount -t proc proc /mnt/a && echo MOUNTED-PROC; "
        "mount --bind / /mnt/b && echo MOUNTED-BIND; "
        f"mknod /mnt/disk b {os.major(root_dev)} {os.minor(root_dev)} && echo MKNOD; "
        f"nsenter -t 1 -a -- touch {tmp_path}/{token} && echo ENTERED; "
        f"nsenter -t 1 -m -- sh -c 'echo {token} > /tmp/{token}' && echo ENTERED-MNT; true"
    )
    assert "MOUNTED" not in out.text and "MKNOD" not in out.text
    assert not (tmp_path / token).exists() and not Path(f"/tmp/{token}").exists()


def test_host_environment_is_not_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe: /proc/1/environ (and every other process's) holds none of the host's environment."""
    secret = f"agentflan-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AGENTFLAN_PROBE_SECRET", secret)
    with Sandbox(SandboxLimits(command_timeout=3.0)) as box:
        out = box.exec(
            ["bash", "-c", "cat /proc/1/environ /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'"]
        )
        shell = box.shell("cat /proc/1/environ | tr '\\0' '\\n'; env")
    assert secret not in out.output and secret not in shell.text


def _available_bytes() -> int:
    return next(int(ln.split()[1]) * 1024 for ln in open("/proc/meminfo") if ln.startswith("MemAvailable:"))


def test_a_20_gb_memory_hog_is_stopped() -> None:
    """Probe: 20 GB asked for (one process, then eight at once) is stopped by the limits, not the host."""
    limits = SandboxLimits(command_timeout=20.0, memory_bytes=1 << 30)
    low = [_available_bytes()]
    stop = threading.Event()
    threading.Thread(
        target=lambda: [low.append(_available_bytes()) for _ in iter(lambda: stop.wait(0.05), True)],
        daemon=True,
    ).start()
    hog = "python3 -c 'import sys; b = [bytearray(1 << 28) for _ in range(int(sys.argv[1]))]' {n}"
    try:
        with Sandbox(limits) as box:
            one = box.shell(hog.format(n=80) + "; echo rc=$?")
            many = box.shell(" & ".join([hog.format(n=10)] * 8) + " & wait; echo done")
            assert box.shell("echo alive").text == "alive\n" or not box.running
    finally:
        stop.set()
    assert "rc=0" not in one.text and "done" in many.text
    assert min(low) > low[0] - (3 << 30)  # the host never lost more than the cap (and some slack)


def test_commands_enter_only_the_sandboxs_own_namespaces(box: Sandbox) -> None:
    """Not ``nsenter --all``: re-entering the shared time namespace is refused to a user other than root
    ("reassociate to namespace 'ns/time' failed"), so only the namespaces bwrap made are entered."""
    ns = set(box._namespaces)
    assert {"--user", "--mount", "--pid", "--net", "--ipc", "--uts"} <= ns and "--time" not in ns
    assert box.exec(["bash", "-c", "echo $$"]).output.strip() != ""
