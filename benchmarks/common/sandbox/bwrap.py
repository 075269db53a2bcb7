"""A throw-away Linux sandbox per episode: bubblewrap over copy-on-write overlays of the host system.

What a sandbox sees: the host's /usr, /etc, /var and /opt (and /bin, /lib... where they are real
directories) through overlayfs whose upper layer is a size-capped tmpfs, so a task may change
anything (``chmod u+s /usr/bin/find``, ``useradd jack``) without touching the host; empty tmpfs at
/root, /home, /tmp, /run, /mnt, /srv and /media; a fresh /proc (its /proc/sys read-only) and a minimal
/dev. Nothing else of the host (its /root and /home, the project, /sys) exists inside, nor any file
only the host's root may read (/etc/shadow is made afresh: the same users, no passwords).

Who runs it: root inside is *not* the host's root. Run as root, ``rootfs.py`` makes a user namespace
whose ids 0-65535 are the unprivileged host ids from ``HOST_ID_BASE``, shows the system directories
through idmapped mounts (so files keep their owners, as in a container image), then becomes that
namespace's root and runs ``bwrap``. Run as another user, ``unshare`` maps that user to root. ``bwrap``
adds new PID, network (loopback only), IPC, UTS and cgroup namespaces, ``--die-with-parent``, and runs a
keeper (``bash`` as pid 1, like the image's ``CMD ["bash"]``). Commands enter with ``nsenter``, so a model that runs ``exit`` ends its shell, not the
sandbox, with docker's default capabilities (no mount, no setns). Limits: rlimits through ``prlimit``
(CPU time, address space, file size, open files, processes: counted per sandbox, as each has its own user
namespace), a pids+memory cgroup where one can be created, else a watchdog that kills the sandbox past
the process cap; a timeout on every command. ``close()`` kills every process of the sandbox; the
overlays vanish with its mount namespace.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from typing_extensions import Self

from agentflan_eval.benchmarks.common.sandbox.cgroups import SandboxCgroup
from agentflan_eval.benchmarks.common.sandbox.shell import PtyShell, ShellOutput

log = logging.getLogger(__name__)

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_DIRS = ("usr", "etc", "var", "opt", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
EMPTY_DIRS = ("root", "home", "tmp", "run", "mnt", "srv", "media")
ID_RANGE = 65536
HOST_ID_BASE = 1 << 30  # run as root: the sandbox's ids 0-65535 are these unprivileged host ids
HOST_ONLY_DIRS = ("etc", "var", "opt")  # scanned for files only the host's root may read, which are hidden
ROOTFS = Path(__file__).with_name("rootfs.py")
TOOLS = ("bwrap", "unshare", "nsenter", "setsid", "setpriv", "prlimit", "mount", "bash")
# What root may do inside: docker's default set (no CAP_SYS_ADMIN: no mount, no setns), and CAP_SYS_PTRACE so
# that root reads all of /proc as there (it reaches only the sandbox's own processes)
CAPS = "-all," + ",".join(
    "+" + c
    for c in (
        "chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
        "net_bind_service", "net_raw", "sys_chroot", "mknod", "audit_write", "setfcap", "sys_ptrace",
    )
)  # fmt: skip

# Not root: runs inside the new user+mount namespace once the parent has written the id maps.
_SETUP = r"""set -eu
eval "read -r _ <&$AF_SYNC_FD; exec $AF_SYNC_FD<&-"
mount -t tmpfs -o "size=$1,mode=0755" agentflan-sandbox /tmp
shift
mkdir -p /tmp/.o/root
for d in $AF_OVERLAY; do
  mkdir -p "/tmp/.o/$d.u" "/tmp/.o/$d.w" "/tmp/.o/$d.m"
  mount -t overlay overlay -o "lowerdir=$AF_ROOT/$d,upperdir=/tmp/.o/$d.u,workdir=/tmp/.o/$d.w" "/tmp/.o/$d.m"
done
exec bwrap "$@"
"""
# Joins the sandbox's cgroups before anything else runs, so every descendant is counted.
_JOIN_CGROUP = 'for f in $AF_CGROUP_PROCS; do echo $$ > "$f"; done; exec "$@"'
# The sandbox's pid 1 once bwrap has built everything: says so on the fd it is given, then becomes ``bash``
# waiting on its stdin, as AgentBench's image ran ``CMD ["bash"]`` (`ps` inside shows the same processes).
_KEEPER = 'echo ready >&"$1"; eval "exec $1>&-"; exec bash'
# First thing inside: what a container runtime would have done (hosts entry, root's dotfiles).
_PREPARE = (
    'printf "127.0.0.1\\t%s\\n" "$(hostname)" >> /etc/hosts; cp -a /etc/skel/. /root/ 2>/dev/null; true'
)


class SandboxError(RuntimeError):
    pass


@dataclass(frozen=True)
class SandboxLimits:
    command_timeout: float = 10.0  # seconds for one command in the interactive shell
    exec_timeout: float = 60.0  # seconds for one independent script (init, example, check)
    max_processes: int = 256
    memory_bytes: int = 2 << 30  # cgroup memory cap for the whole sandbox
    address_space_bytes: int = 4 << 30  # per process (RLIMIT_AS)
    cpu_seconds: int = 300  # per process (RLIMIT_CPU)
    file_bytes: int = 512 << 20  # largest file a process may write (RLIMIT_FSIZE)
    open_files: int = 1024
    tmpfs_bytes: int = 512 << 20  # all writes to the system directories together


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    output: str  # stdout and stderr together, as ``docker exec`` returns them
    timed_out: bool = False


def sandbox_unavailable() -> str | None:
    """Why no sandbox can run on this machine, or None; probes once by starting one."""
    return _probe()


@cache
def _probe() -> str | None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"needs {', '.join(missing)} (Debian packages bubblewrap and util-linux)"
    try:
        with Sandbox() as box:
            result = box.exec(["true"], timeout=20)
    except (SandboxError, OSError) as e:
        return f"cannot start a bubblewrap sandbox here: {e}"
    if result.returncode != 0:
        return f"bubblewrap sandbox does not run commands: {result.output.strip()[:200]}"
    return None


class Sandbox:
    """Start with ``with Sandbox() as box:`` (or ``start()``/``close()``); one per episode."""

    def __init__(self, limits: SandboxLimits | None = None, image: Path | None = None):
        """``image``: a system image directory (``image.build_image``) to show instead of the host's own."""
        self.limits = limits or SandboxLimits()
        self.root = str(image.resolve()) if image is not None else "/"
        if image is not None and (image.resolve().is_relative_to("/tmp") or not image.is_dir()):
            raise SandboxError(f"{image}: not a usable system image (a directory outside /tmp)")
        self.hostname = uuid.uuid4().hex[:12]  # docker names a container's host after its id
        self.cgroup: SandboxCgroup | None = None
        self.killed: str | None = None  # why the watchdog killed the sandbox
        self._proc: subprocess.Popen[bytes] | None = None
        self._child = 0  # host pid of the sandbox's first process
        self._shell: PtyShell | None = None
        self._stop = threading.Event()
        self._errlog = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the sandbox; close() closes it
        # the keeper's stdin (held open here: it reads nothing until the sandbox closes) and /proc/meminfo's pipe
        self._keeper_r = self._keeper_w = self._meminfo_r = -1
        self._namespaces: list[str] = []  # nsenter's options for the namespaces the sandbox does not share

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> Self:
        if os.geteuid() == 0:
            self.cgroup = SandboxCgroup.create(self.limits.max_processes, self.limits.memory_bytes)
        info_r, info_w = os.pipe()
        ready_r, ready_w = os.pipe()
        self._meminfo_r = self._meminfo_pipe()
        try:
            if os.geteuid() == 0:
                self._start_as_root(info_w, ready_w)
            else:
                self._start_unprivileged(info_w, ready_w)
            for fd in (info_w, ready_w):
                os.close(fd)
            self._child = int(self._read_info(info_r)["child-pid"])
            self._wait_ready(ready_r)
            self._namespaces = _own_namespaces(self._child)
        except BaseException:
            self.close()
            raise
        finally:
            for fd in (info_r, info_w, ready_r, ready_w, self._keeper_r, self._meminfo_r):
                _close_fd(fd)
        if self.cgroup is None and os.geteuid() == 0:
            threading.Thread(target=self._watchdog, daemon=True).start()
        self.exec(["bash", "-c", _PREPARE], timeout=20)
        return self

    def _start_as_root(self, info_w: int, ready_w: int) -> None:
        """``rootfs.py`` builds the file system as the host's root, then runs bwrap as an unprivileged one."""
        overlay = _overlay_dirs(self.root)
        spec = {
            "root": self.root,
            "base": HOST_ID_BASE,
            "count": ID_RANGE,
            "size": self.limits.tmpfs_bytes,
            "overlay": overlay,
            "hide": _host_only_paths(self.root, tuple(d for d in HOST_ONLY_DIRS if d in overlay)),
            "bwrap": shutil.which("bwrap"),
        }
        argv = [*self._host_prefix(), sys.executable, "-I", "-S", str(ROOTFS), json.dumps(spec)]
        self._proc = subprocess.Popen(
            [*argv, *self._bwrap_args(overlay, info_w, ready_w)],
            pass_fds=(info_w, ready_w, self._meminfo_r),
            stdin=self._keeper_stdin(),
            stdout=subprocess.DEVNULL,
            stderr=self._errlog,
            env=self._host_env(),
            start_new_session=True,
        )

    def _start_unprivileged(self, info_w: int, ready_w: int) -> None:
        """Not root: the caller's own uid becomes the sandbox's root, so nothing more is needed."""
        sync_r, sync_w = os.pipe()
        overlay = _overlay_dirs(self.root)
        argv = [
            *self._host_prefix(),
            "unshare",
            "--user",
            "--mount",
            "--propagation",
            "private",
            "--",
            "bash",
            "-c",
            _SETUP,
            "bash",
            str(self.limits.tmpfs_bytes),
            *self._bwrap_args(overlay, info_w, ready_w),
        ]
        env = {
            **self._host_env(),
            "AF_SYNC_FD": str(sync_r),
            "AF_OVERLAY": " ".join(overlay),
            "AF_ROOT": self.root,
        }
        try:
            self._proc = subprocess.Popen(
                argv,
                pass_fds=(sync_r, info_w, ready_w, self._meminfo_r),
                stdin=self._keeper_stdin(),
                stdout=subprocess.DEVNULL,
                stderr=self._errlog,
                env=env,
                start_new_session=True,
            )
            self._map_ids(self._proc.pid)
            os.write(sync_w, b"go\n")
        finally:
            for fd in (sync_r, sync_w):
                _close_fd(fd)

    def _keeper_stdin(self) -> int:
        """A pipe whose write end only this object holds: the keeper (a ``bash`` reading commands from it)
        waits on it for ever, and ends with the sandbox's owner, as docker's ``bash`` on its tty does."""
        self._keeper_r, self._keeper_w = os.pipe()
        return self._keeper_r

    def _meminfo_pipe(self) -> int:
        """The sandbox's /proc/meminfo, on a pipe for bwrap: its own memory cap as the total, all of it free.
        The kernel's file shows the host's memory, which the machine's other work changes between two
        ``free`` calls of one episode; this one never changes."""
        kib = self.limits.memory_bytes // 1024
        fields = {"MemTotal": kib, "MemFree": kib, "MemAvailable": kib, "Buffers": 0, "Cached": 0}
        fields |= {"SwapCached": 0, "Shmem": 0, "SReclaimable": 0, "SwapTotal": 0, "SwapFree": 0}
        read, write = os.pipe()
        os.write(write, "".join(f"{k + ':':<16}{v:>8} kB\n" for k, v in fields.items()).encode())
        os.close(write)
        return read

    def _host_env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", PATH), "LANG": "C.UTF-8"}
        if self.cgroup is not None:
            env["AF_CGROUP_PROCS"] = " ".join(self.cgroup.procs_files)
        return env

    def _host_prefix(self) -> list[str]:
        lim = self.limits
        join = ["sh", "-c", _JOIN_CGROUP, "sh"] if self.cgroup is not None else []
        return [
            *join,
            "prlimit",
            f"--nproc={lim.max_processes}",
            f"--as={lim.address_space_bytes}",
            f"--cpu={lim.cpu_seconds}",
            f"--fsize={lim.file_bytes}",
            f"--nofile={lim.open_files}",
            "--",
        ]

    def _bwrap_args(self, overlay: Sequence[str], info_fd: int, ready_fd: int) -> list[str]:
        args = [
            "--die-with-parent",
            "--unshare-ipc",
            "--unshare-pid",
            "--as-pid-1",  # the keeper is pid 1, as a container's command is: no extra reaper in `ps`
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            self.hostname,
            "--info-fd",
            str(info_fd),
            "--clearenv",
            "--setenv",
            "PATH",
            PATH,
            "--chdir",
            "/",
            "--bind",
            "/tmp/.o/root",
            "/",
        ]  # the root directory itself on the size-capped tmpfs
        for d in overlay:
            args += ["--bind", f"/tmp/.o/{d}.m", f"/{d}"]
        for d in SYSTEM_DIRS:  # merged-/usr systems: /bin -> usr/bin and so on
            if os.path.islink(os.path.join(self.root, d)):
                args += ["--symlink", os.readlink(os.path.join(self.root, d)), f"/{d}"]
        for d in EMPTY_DIRS:
            args += ["--size", str(self.limits.tmpfs_bytes), "--tmpfs", f"/{d}"]
        args += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev"]
        args += ["--ro-bind-data", str(self._meminfo_r), "/proc/meminfo"]
        if os.geteuid() == 0:  # /proc's one directory only the host's root may read: empty, not an error
            args += ["--tmpfs", "/proc/tty/driver"]
        return [*args, "--", "bash", "-c", _KEEPER, "keeper", str(ready_fd)]  # bash: dash takes fds 0-9 only

    def _map_ids(self, pid: int) -> None:
        """Write the new user namespace's id maps from outside, once ``unshare`` has made it."""
        own = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{pid}/ns/user") == own:
            if self._proc is not None and self._proc.poll() is not None or time.monotonic() > deadline:
                raise SandboxError(f"unshare failed: {self._stderr()}")
            time.sleep(0.002)
        Path(f"/proc/{pid}/setgroups").write_text("deny")
        Path(f"/proc/{pid}/uid_map").write_text(f"0 {os.geteuid()} 1\n")
        Path(f"/proc/{pid}/gid_map").write_text(f"0 {os.getegid()} 1\n")

    def _read_info(self, fd: int) -> dict:
        data, deadline = b"", time.monotonic() + 20
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.05)[0]:
                chunk = os.read(fd, 4096)
                data += chunk
                try:
                    return json.loads(data)
                except json.JSONDecodeError:
                    if not chunk:
                        break
            elif self._proc is not None and self._proc.poll() is not None:
                break
        raise SandboxError(f"bubblewrap did not start: {self._stderr()}")

    def _wait_ready(self, fd: int) -> None:
        """Wait for the keeper's word: bwrap reports the child's pid before that child has built the file
        system, and a command entering it earlier finds a half-made root (``setpriv: No such file``)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.05)[0]:
                if os.read(fd, 16):
                    return
                break
            if self._proc is not None and self._proc.poll() is not None:
                break
        raise SandboxError(f"the sandbox did not get ready: {self._stderr()}")

    def _stderr(self) -> str:
        self._errlog.seek(0)
        return self._errlog.read().decode("utf-8", "replace").strip()[-500:] or "no error output"

    # -- use -----------------------------------------------------------------------------------
    def _enter(self, argv: Sequence[str], env: dict[str, str]) -> list[str]:
        if not self.running:
            raise SandboxError(f"the sandbox is not running ({self.killed or 'stopped'})")
        env_args = [f"{k}={v}" for k, v in env.items()]
        return [
            *self._host_prefix(),
            "nsenter",
            *self._namespaces,
            # not root: the caller is the sandbox's root by the id map and may not call setgroups
            *(["--preserve-credentials"] if os.geteuid() != 0 else []),
            f"--target={self._child}",
            "--root",
            "--wd",
            "--",
            "setpriv",
            f"--bounding-set={CAPS}",
            "--",
            "env",
            "-i",
            *env_args,
            *argv,
        ]

    def _guest_env(self, **extra: str) -> dict[str, str]:
        return {"PATH": PATH, "HOME": "/root", "HOSTNAME": self.hostname, "LANG": "C.UTF-8", **extra}

    def exec(self, argv: Sequence[str], timeout: float | None = None) -> ExecResult:
        """Run a command on its own (not in the shell) as root in /, like ``docker exec``."""
        timeout = self.limits.exec_timeout if timeout is None else timeout
        with tempfile.TemporaryFile() as out:
            # Output goes to a file, not a pipe: background jobs an init script leaves running
            # (``sleep 60 &``) would hold a pipe open; the command ends when its process does.
            proc = subprocess.Popen(
                self._enter(argv, self._guest_env()),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._host_env(),
                start_new_session=True,
            )
            try:
                rc, timed_out = proc.wait(timeout=timeout), False
            except subprocess.TimeoutExpired:
                _killpg(proc.pid)
                rc, timed_out = proc.wait(), True
            out.seek(0)
            text = out.read(1 << 20).decode("utf-8", "replace")
        return ExecResult(returncode=rc, output=text, timed_out=timed_out)

    def shell(self, command: str, timeout: float | None = None) -> ShellOutput:
        """Run one command in the episode's interactive login shell (restarted if it exited)."""
        if self._shell is not None and not self._shell.alive:
            self._shell.close()
            self._shell = None
        if self._shell is None:
            argv = self._enter(["bash", "--login", "--noediting"], self._guest_env(TERM="xterm"))
            self._shell = PtyShell(argv, self._host_env(), setup="PS1=''; PS2=''; unset PROMPT_COMMAND")
        return self._shell.run(command, self.limits.command_timeout if timeout is None else timeout)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self.killed is None

    def _watchdog(self) -> None:
        """Without a pids cgroup, root's processes ignore RLIMIT_NPROC: count them and kill past the cap."""
        try:
            ns = os.readlink(f"/proc/{self._child}/ns/pid")
        except OSError:
            return
        while not self._stop.wait(0.05):
            if pidns_members(ns, stop_above=self.limits.max_processes) > self.limits.max_processes:
                self.killed = f"more than {self.limits.max_processes} processes"
                log.warning("sandbox %s killed: %s", self.hostname, self.killed)
                self._kill()
                return

    # -- stop ----------------------------------------------------------------------------------
    def _kill(self) -> None:
        """SIGKILL the sandbox's first process: the kernel kills the rest of its PID namespace, and bwrap,
        still its parent, reaps it and exits (killing bwrap first would leave the reaping to the host's init)."""
        if self._proc is None or self._proc.poll() is not None:
            return
        if self._child:
            try:
                os.kill(self._child, signal.SIGKILL)
                self._proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        _killpg(self._proc.pid)

    def close(self) -> None:
        self._stop.set()
        self._kill()  # first: with the shell's pty closed first, the namespace takes a second to go away
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        if self._proc is not None:
            self._proc.wait()
        _close_fd(self._keeper_w)
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        self._errlog.close()


def _overlay_dirs(root: str) -> list[str]:
    paths = {d: os.path.join(root, d) for d in SYSTEM_DIRS}
    return [d for d, p in paths.items() if os.path.isdir(p) and not os.path.islink(p)]


def _host_only_paths(root: str, dirs: tuple[str, ...]) -> list[str]:
    """Files and directories under ``dirs`` that others may not read (``/etc/shadow``, ``/etc/ssl/private``,
    ``/var/lib/mysql/...``): the host keeps them to its root, so the sandbox does not get them. Looked up
    at every start (about 0.1 s), so a file made since is hidden too."""
    hidden: list[str] = []
    for d in dirs:
        for top, subdirs, files in os.walk(os.path.join(root, d)):
            here = [os.path.join(top, n) for n in [*subdirs, *files] if _host_only(os.path.join(top, n))]
            hidden += ["/" + os.path.relpath(p, root) for p in here]
            subdirs[:] = [n for n in subdirs if os.path.join(top, n) not in here]  # gone as a whole
    return hidden


def _host_only(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return not stat.S_ISLNK(st.st_mode) and not st.st_mode & stat.S_IROTH


def pidns_members(ns: str, stop_above: int | None = None) -> int:
    """How many host processes live in the PID namespace ``ns`` (a ``/proc/<pid>/ns/pid`` link target);
    counting stops once past ``stop_above``, so a watchdog facing a fork bomb does not scan thousands."""
    count = 0
    for p in os.listdir("/proc"):
        try:
            count += p.isdigit() and os.readlink(f"/proc/{p}/ns/pid") == ns
        except OSError:
            continue
        if stop_above is not None and count > stop_above:
            break
    return count


_NSENTER = {
    "user": "--user",
    "mnt": "--mount",
    "uts": "--uts",
    "ipc": "--ipc",
    "net": "--net",
    "pid": "--pid",
}
_NSENTER |= {"cgroup": "--cgroup", "time": "--time"}


def _own_namespaces(pid: int) -> list[str]:
    """nsenter's options for the namespaces of ``pid`` that this process is not in. Not ``--all``: it would also
    re-enter the shared ones, and a user other than root may not re-enter the host's time namespace."""
    out = []
    for name, option in _NSENTER.items():
        try:
            if os.readlink(f"/proc/{pid}/ns/{name}") != os.readlink(f"/proc/self/ns/{name}"):
                out.append(option)
        except FileNotFoundError:  # a kernel without this namespace type
            continue
    return out


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:  # already closed
        pass


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
