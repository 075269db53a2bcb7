"""A throw-away MariaDB (or MySQL) server in a temporary directory, for tests and one-off runs.

``mariadb-install-db`` makes a data directory whose root user has no password, ``mariadbd`` serves
it on a unix socket only (no TCP port, so parallel runs never collide), and ``stop()`` shuts it down
and deletes everything. ``url`` is what ``--db-url`` takes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from typing_extensions import Self

from agentflan_eval.errors import AgentFlanError

_SERVERS = ("mariadbd", "mysqld")
_INSTALLERS = ("mariadb-install-db", "mysql_install_db")
_NEEDS_SERVER = "needs a MariaDB server (Debian package mariadb-server)"


def _find(names: tuple[str, ...]) -> str | None:
    for n in names:
        path = shutil.which(n) or next(
            (p for p in (f"/usr/sbin/{n}", f"/usr/libexec/{n}") if os.path.exists(p)), None
        )
        if path:
            return path
    return None


def _binaries() -> tuple[str, str] | None:
    """(server, installer) paths, or None when either is missing."""
    server, installer = _find(_SERVERS), _find(_INSTALLERS)
    return None if server is None or installer is None else (server, installer)


def server_unavailable() -> str | None:
    return _NEEDS_SERVER if _binaries() is None else None


class LocalMariaDB:
    def __init__(self, root: Path | None = None):
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if root:
            self.root = Path(root)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="agentflan-mariadb-")
            self.root = Path(self._tmp.name)
        self.socket = self.root / "mysqld.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql://root@localhost/?unix_socket={self.socket}"

    def start(self, timeout: float = 60.0) -> Self:
        binaries = _binaries()
        if binaries is None:
            raise AgentFlanError(_NEEDS_SERVER)
        server, installer = binaries
        as_root = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root without it
        data = self.root / "data"
        files = self.root / "files"
        files.mkdir(exist_ok=True)
        install = subprocess.run(
            [
                installer,
                "--no-defaults",
                f"--datadir={data}",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
                *as_root,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if install.returncode != 0:
            raise AgentFlanError(f"mariadb-install-db failed: {install.stderr.strip()[-500:]}")
        self.proc = subprocess.Popen(
            [
                server,
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={self.socket}",
                "--skip-networking",
                f"--pid-file={self.root / 'mysqld.pid'}",
                f"--log-error={self.root / 'error.log'}",
                "--innodb-buffer-pool-size=32M",
                "--skip-name-resolve",
                "--character-set-server=utf8mb4",
                f"--secure-file-priv={files}",  # INTO OUTFILE, LOAD_FILE: only this empty directory
                *as_root,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (
                    (self.root / "error.log").read_text(errors="replace")[-800:]
                    if (self.root / "error.log").exists()
                    else ""
                )
                self.stop()
                raise AgentFlanError(f"mariadbd did not start: {log}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
