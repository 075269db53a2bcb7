"""An interactive bash on a pseudo-terminal, driven one command at a time.

AgentBench typed each command into ``bash --login`` on a docker TTY, so state (cwd, variables, a
``su - jack`` from the problem's start script) carries over between turns. This does the same on a
pty. A command is sent base64-encoded inside ``eval`` between two markers that only the shell can
print (the marker words are joined at run time), so the output between them is exactly the
command's, whatever it contains. The end marker is a separate input line: if the command started a
new interactive shell (``su - jack``), that shell reads and runs it. A command that outlives its
timeout gets Ctrl-C, as a person at the terminal would do.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import os
import pty
import re
import secrets
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_KEEP = 64 * 1024  # output bytes kept per command; the observation shows far fewer
_CHUNK = 3000  # base64 characters per input line, well under the tty's 4095-byte line limit


@dataclass(frozen=True)
class ShellOutput:
    text: str
    timed_out: bool = False
    shell_exited: bool = False


class PtyShell:
    """``setsid --ctty`` makes the pty the shell's controlling terminal, so Ctrl-C reaches its jobs."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], setup: str = ""):
        self.master, slave = pty.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO  # no echo of what is typed (bash runs without readline)
        attrs[1] &= ~termios.ONLCR  # plain "\n" line ends
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        try:
            self.proc = subprocess.Popen(
                ["setsid", "--ctty", *argv],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=dict(env),
                close_fds=True,
            )
        finally:
            os.close(slave)
        self.nonce = secrets.token_hex(8)
        self.alive = True
        if setup:
            self.run(setup, timeout=15.0)

    def _marker(self, word: str) -> tuple[bytes, bytes]:
        """The marker the shell prints, and the command line that prints it (which differs)."""
        return f"{word}_{self.nonce}".encode(), f"printf '\\n%s_%s\\n' {word} {self.nonce}".encode()

    def _input_lines(self, command: str) -> list[bytes]:
        b64 = base64.b64encode(command.encode()).decode()
        begin = self._marker("AFB")[1]
        if len(b64) <= _CHUNK:
            return [begin + f'; eval "$(printf %s {b64} | base64 -d)"'.encode()]
        chunks = [b64[i : i + _CHUNK] for i in range(0, len(b64), _CHUNK)]
        lines = [f"__af_cmd={chunks[0]}".encode()] + [f"__af_cmd+={c}".encode() for c in chunks[1:]]
        return [*lines, begin + b'; eval "$(printf %s "$__af_cmd" | base64 -d; unset __af_cmd)"']

    def run(self, command: str, timeout: float) -> ShellOutput:
        if not self.alive:
            return ShellOutput("", shell_exited=True)
        self._write(b"\n".join([*self._input_lines(command), self._marker("AFE")[1]]) + b"\n")
        out, done = self._read_until_end(time.monotonic() + timeout)
        timed_out = not done and self.alive
        if timed_out:
            self._write(b"\x03")  # Ctrl-C to the foreground job; the interrupted line never prints the end
            self._write(self._marker("AFE")[1] + b"\n")
            more, done = self._read_until_end(time.monotonic() + 3.0, started=True)
            out = (out + more)[:_KEEP]
            if not done:
                log.info("shell did not come back after Ctrl-C; it will be restarted")
                self.close()
        return ShellOutput(self._clean(out), timed_out=timed_out, shell_exited=not self.alive)

    def _write(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except OSError:
            self.alive = False

    def _read_until_end(self, deadline: float, started: bool = False) -> tuple[bytes, bool]:
        """Bytes after the begin marker up to the end marker, and whether the end marker came."""
        begin, end = self._marker("AFB")[0], self._marker("AFE")[0]
        kept, scan_from = bytearray(), 0
        while self.alive:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.master], [], [], remaining)[0]:
                return bytes(kept[:_KEEP]) if started else b"", False
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            if not data:  # the shell exited (e.g. the command was `exit`)
                self.alive = False
                break
            kept += data
            if not started:
                if begin not in kept:
                    continue
                started = True
                del kept[: kept.index(begin) + len(begin)]
                kept[:] = kept.removeprefix(b"\r").removeprefix(b"\n")
            pos = kept.find(end, scan_from)
            if pos >= 0:
                return bytes(kept[:pos][:_KEEP]), True
            if len(kept) > 4 * _KEEP:  # a flood: keep the head and the bytes where the marker may begin
                kept[_KEEP:] = kept[-len(end) :]
            scan_from = max(0, len(kept) - len(end))
        return (bytes(kept[:_KEEP]) if started else b""), False

    def _clean(self, raw: bytes) -> str:
        text = _ANSI.sub(b"", raw).replace(b"\r\n", b"\n").replace(b"\r", b"").decode("utf-8", "replace")
        lines = [
            ln for ln in text.split("\n") if f"AFE {self.nonce}" not in ln and f"AFB {self.nonce}" not in ln
        ]
        return "\n".join(lines).removesuffix("\n")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        self.alive = False
