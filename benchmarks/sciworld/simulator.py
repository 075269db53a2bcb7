"""One ScienceWorld simulator per episode, in its own JVM, that never outlives its owner.

The PyPI ``scienceworld`` package starts its jar through py4j on an ephemeral port (``port=0``), so
any number of simulators can start side by side without port clashes. Each JVM gets a bounded heap
(``JAVA_TOOL_OPTIONS`` is set only while the JVM is launched: the package's constructor offers no
option for it, and a default JVM grows to a quarter of the machine's memory). ``close`` ends the
gateway, then terminates and finally kills the process; every live simulator is also closed at
interpreter exit, and py4j's ``--die-on-broken-pipe`` ends a JVM whose Python parent died.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JAVA_OPTS = "-Xms64m -Xmx1g -XX:+UseSerialGC"  # measured: ~0.3-0.5 GB resident per simulator
_LIVE: weakref.WeakSet[Simulator] = weakref.WeakSet()
_LAUNCH_LOCK = threading.Lock()


def missing_requirement() -> str | None:
    """Why no simulator can start here (no Java, or the package is missing), else None."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "needs a Java runtime (Debian: default-jre-headless) for the ScienceWorld simulator"
    try:
        import scienceworld  # noqa: F401
    except ImportError:
        return "needs the scienceworld package: pip install 'agentflan-eval[heldout]'"
    return None


def child_jvms() -> set[int]:
    """Running simulator JVMs started by this process (Linux /proc; empty elsewhere)."""
    pids = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if (
                int(ppid) == os.getpid()
                and state != "Z"
                and b"scienceworld.jar" in (entry / "cmdline").read_bytes()
            ):
                pids.add(int(entry.name))
        except (OSError, ValueError):
            continue
    return pids


@contextlib.contextmanager
def _java_options(opts: str) -> Iterator[None]:
    old = os.environ.get("JAVA_TOOL_OPTIONS")
    os.environ["JAVA_TOOL_OPTIONS"] = f"{old} {opts}" if old else opts
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("JAVA_TOOL_OPTIONS", None)
        else:
            os.environ["JAVA_TOOL_OPTIONS"] = old


class Simulator:
    """A started ScienceWorld JVM; ``env`` is the package's ``ScienceWorldEnv``."""

    def __init__(self, step_limit: int = 100, java_opts: str = JAVA_OPTS, attempts: int = 2):
        from scienceworld import ScienceWorldEnv

        self.env: Any = None
        self.proc: subprocess.Popen | None = None
        for attempt in range(1, attempts + 1):
            with _LAUNCH_LOCK:
                before = child_jvms()
                try:
                    with _java_options(java_opts):
                        self.env = ScienceWorldEnv("", envStepLimit=step_limit)
                    break
                except Exception as e:  # py4j raises plain Exceptions: retry once, never leak a JVM
                    for pid in child_jvms() - before:  # a JVM launched before the gateway failed
                        os.kill(pid, signal.SIGKILL)
                    if attempt == attempts:
                        raise RuntimeError(f"ScienceWorld simulator failed to start: {e}") from e
                    log.warning(
                        "ScienceWorld JVM failed to start (%s); retrying", str(e)
                    )  # no traceback kept
        self.proc = self.env._gateway.java_process
        _LIVE.add(self)

    def close(self) -> None:
        """Shut the gateway down and make sure the JVM is gone; safe to call twice."""
        env, proc, self.env, self.proc = self.env, self.proc, None, None
        _LIVE.discard(self)
        if env is not None:
            try:
                env.close()
            except Exception as e:  # noqa: BLE001 - the JVM may already be dead; we kill it below anyway
                log.debug("ScienceWorld gateway shutdown failed: %s", e)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@atexit.register
def _close_all() -> None:
    for sim in list(_LIVE):
        sim.close()
