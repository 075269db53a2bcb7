"""Builds a sandbox's file system as the host's root, then becomes the sandbox's unprivileged root and
runs bubblewrap. Run as a script (``python -I -S rootfs.py SPEC BWRAP-ARGS...``), never imported by the
package: it changes its own namespaces and credentials.

Steps, in a private mount namespace (nothing reaches the host's mount table):
1. a new user namespace whose ids 0-65535 are the host's ``base``..``base+65535``, unprivileged ids;
2. each system directory cloned as an *idmapped* mount through that namespace, so a file the host's root
   owns is owned by the sandbox's root (``chmod u+s``, ``useradd`` work as in a container image), and
   overlaid with a size-capped tmpfs: writes land in memory, never on the host;
3. files only the host's root may read (``/etc/shadow``, ``/etc/ssl/private``, ``/var/lib/mysql``...)
   deleted from the overlay, and a fresh ``/etc/shadow`` and ``/etc/gshadow`` (names, no passwords);
4. the process joins that user namespace as its root and executes bubblewrap, which adds the PID, network,
   IPC, UTS and mount namespaces. The sandbox's root is the host's uid ``base``: the kernel's settings, the
   host's processes and files are as out of reach as for any other unprivileged user.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE = -100, 0x1000, 0x8000
OPEN_TREE_CLONE, MOVE_MOUNT_F_EMPTY_PATH, MOUNT_ATTR_IDMAP = 1, 0x4, 0x00100000
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442  # the same on every architecture
O = "/tmp/.o"

libc = ctypes.CDLL(None, use_errno=True)


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64)]
    _fields_ += [("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    args = (source.encode(), target.encode(), fstype.encode() if fstype else None, flags)
    check(libc.mount(*args, data.encode() if data else None), f"mount {target}")


def user_namespace(base: int, count: int) -> int:
    """A file descriptor of a new user namespace mapping 0..count-1 to the host's base..base+count-1."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(ready_w, b"1" if libc.unshare(CLONE_NEWUSER) == 0 else b"0")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError("cannot create a user namespace")
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as fh:
                fh.write(f"0 {base} {count}\n")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.write(go_w, b"1")
        os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, go_r, go_w):
            os.close(fd)


def clone_tree(path: str) -> int:
    """A detached copy of the mount tree at ``path``: taken before /tmp is covered, so an image there counts."""
    return check(
        libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(), OPEN_TREE_CLONE | AT_RECURSIVE), "open_tree"
    )


def idmapped_overlay(d: str, fd: int, st: os.stat_result, userns: int, base: int) -> None:
    """``fd`` (a ``clone_tree``) idmapped through ``userns`` as the lower layer; ``st``: its top's stat."""
    lower, upper, work, merged = (f"{O}/{d}.{s}" for s in ("l", "u", "w", "m"))
    for path in (lower, upper, work, merged):
        os.makedirs(path)
    try:
        attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns)
        flags = AT_EMPTY_PATH | AT_RECURSIVE
        check(
            libc.syscall(SYS_MOUNT_SETATTR, fd, b"", flags, ctypes.byref(attr), ctypes.sizeof(attr)), "idmap"
        )
        check(
            libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, lower.encode(), MOVE_MOUNT_F_EMPTY_PATH), "move"
        )
    finally:
        os.close(fd)
    # the merged directory takes the upper one's owner and mode
    os.chown(upper, base + st.st_uid, base + st.st_gid)
    os.chmod(upper, stat.S_IMODE(st.st_mode))
    mount("overlay", merged, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}")


def hide(paths: list[str]) -> None:
    """Delete host-only files from the overlays (whiteouts in the upper layer; the host keeps them)."""
    for path in paths:
        top, _, rest = path.lstrip("/").partition("/")
        target = f"{O}/{top}.m/{rest}"
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target, ignore_errors=True)
        elif os.path.lexists(target):
            os.unlink(target)


def fresh_shadow(base: int) -> None:
    """/etc/shadow and /etc/gshadow listing the same users and groups, with no password."""
    etc = f"{O}/etc.m"
    if not os.path.isfile(f"{etc}/passwd"):
        return
    groups = [ln.split(":") for ln in Path(f"{etc}/group").read_text().splitlines() if ln.count(":") >= 3]
    shadow_gid = next((int(g[2]) for g in groups if g[0] == "shadow"), 0)
    day = int(time.time() // 86400)
    users = [ln.split(":")[0] for ln in Path(f"{etc}/passwd").read_text().splitlines() if ":" in ln]
    for name, text in (
        ("shadow", "".join(f"{u}:*:{day}:0:99999:7:::\n" for u in users)),
        ("gshadow", "".join(f"{g[0]}:*::\n" for g in groups)),
    ):
        path = f"{etc}/{name}"
        if os.path.lexists(path):
            os.unlink(path)
        Path(path).write_text(text)
        os.chown(path, base, base + shadow_gid)
        os.chmod(path, 0o640)


def main() -> None:
    spec = json.loads(sys.argv[1])
    base = spec["base"]
    userns = user_namespace(base, spec["count"])
    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    trees = {
        d: (clone_tree(os.path.join(spec["root"], d)), os.stat(os.path.join(spec["root"], d)))
        for d in spec["overlay"]
    }
    mount("agentflan-sandbox", "/tmp", "tmpfs", 0, f"size={spec['size']},mode=0755")
    os.makedirs(f"{O}/root")
    os.chown(f"{O}/root", base, base)
    for d, (fd, st) in trees.items():
        idmapped_overlay(d, fd, st, userns, base)
    hide(spec["hide"])
    fresh_shadow(base)
    check(libc.setns(userns, CLONE_NEWUSER), "setns")
    os.close(userns)
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    os.execv(through_overlay(spec["bwrap"], spec["overlay"]), ["bwrap", *sys.argv[2:]])


def through_overlay(path: str, overlay: list[str]) -> str:
    """``path`` as seen in the idmapped overlays: a program run from the host's own mount would be owned by
    a user unknown to the namespace, and the kernel would keep its /proc entries from the sandbox's root."""
    top, _, rest = os.path.realpath(path).lstrip("/").partition("/")
    return f"{O}/{top}.m/{rest}" if top in overlay else path


if __name__ == "__main__":
    main()
