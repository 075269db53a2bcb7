"""A system image for the sandbox: Debian with the packages of AgentBench's OS image, built once, read-only.

Why: AgentBench.old ran every OS problem in its own container of ``FROM ubuntu`` plus ``apt install python3
python3-pip git vim curl wget unzip zip tree`` (THUDM/AgentTuning @ e33a45d,
``AgentBench.old/data/os_interaction/res/dockerfiles/default``). The host's own /usr is no stand-in: it is
gigabytes (``du -sh /usr`` prints "6.0G", which check/size-match.py cannot read; a bash walk of /lib takes
minutes) and other work on the machine changes it while an episode runs. This image is a fixed directory
that nothing changes after the build; each sandbox overlays it copy-on-write.

Built with ``mmdebstrap`` (Debian package mmdebstrap) from the Debian archive, as root:
``python -m agentflan_eval.benchmarks.common.sandbox.image [DEST]``. Debian, not Ubuntu: only Debian's
archive is reachable here. Beyond the Dockerfile's packages it has ``procps`` (``ps``, ``free``),
``sudo`` (two problems install it from the network in their init) and ``bubblewrap`` (the sandbox runs
bwrap from the image's own idmapped /usr).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from agentflan_eval.data import cache_root

IMAGE_ENV = "AGENTFLAN_SANDBOX_IMAGE"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
DOCKERFILE_PACKAGES = ("python3", "python3-pip", "git", "vim", "curl", "wget", "unzip", "zip", "tree")
EXTRA_PACKAGES = ("procps", "sudo", "bubblewrap")
_DONE = ".agentflan-image-complete"


def image_dir() -> Path:
    """Where the image is (or would be built): ``$AGENTFLAN_SANDBOX_IMAGE`` or the cache."""
    env = os.environ.get(IMAGE_ENV)
    return Path(env) if env else cache_root() / "sandbox" / f"agentbench-{SUITE}"


def built_image() -> Path | None:
    """The image's directory when a build has completed there, else None."""
    path = image_dir()
    return path if (path / _DONE).is_file() else None


def build_image(dest: Path | None = None) -> Path:
    """Build into ``dest`` (default ``image_dir()``) through a temporary sibling, renamed when complete."""
    dest = dest or image_dir()
    if dest.resolve().is_relative_to("/tmp"):
        raise ValueError(f"{dest}: the sandbox mounts its own /tmp; build the image elsewhere")
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("needs mmdebstrap (Debian package mmdebstrap)")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    include = ",".join(DOCKERFILE_PACKAGES + EXTRA_PACKAGES)
    cmd = ["mmdebstrap", "--variant=minbase", f"--include={include}", SUITE, str(partial), MIRROR]
    subprocess.run(cmd, check=True)
    (partial / _DONE).write_text(" ".join(cmd) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    return dest


if __name__ == "__main__":
    print(build_image(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
