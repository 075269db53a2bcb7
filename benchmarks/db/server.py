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


def _find(names: tuple[str, ...]) -> str | None:
    for n in names:
        path = shutil.which(n) or next(
            (p for p in (f"/usr/sbin/{n}", f"/usr/libexec/{n}") if os.path.exists(p)), None
        )
        if path:
            return path
    return None


def server_unavailable() -> str | None:
    if _find(_SERVERS) is None or _find(_INSTALLERS) is None:
        return "needs a MariaDB server (Debian package mariadb-server)"
    return None


class LocalMariaDB:
    def __init__(self, root: Path | None = None):
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="agentflan-mariadb-")
        self.root = Path(root or self._tmp.name)  # type: ignore[union-attr]
        self.socket = self.root / "mysqld.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql://root@localhost/?unix_socket={self.socket}"

    def start(self, timeout: float = 60.0) -> Self:
        reason = server_unavailable()
        if reason:
            raise AgentFlanError(reason)
        as_root = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root without it
        data = self.root / "data"
        files = self.root / "files"
        files.mkdir(exist_ok=True)
        install = subprocess.run(
            [
                _find(_INSTALLERS),
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
                _find(_SERVERS),
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
