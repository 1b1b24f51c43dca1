"""A job's scratch folder as a file system of its own, of a fixed size: filling it costs that student only.

Without it a submission's files land on the grading machine's shared disk (the per-file limit,
``RLIMIT_FSIZE``, does not bound a thousand files), and a classmate graded beside it finds the
disk full. With it, each job's process (root) first takes a mount namespace of its own
(:func:`private_mounts`), then mounts a ``tmpfs`` of the job's size on its scratch folder
(:func:`mount`): the student's folders, the kernel's log and the trusted re-run's folder live
there. A ``tmpfs`` is memory: its pages count in the submission's memory total
(``course.cgroups``), and they are freed when the namespace goes, with the job's last process:
a job killed at its deadline leaves no mount behind, on this machine or anywhere.

bubblewrap 0.8 (Debian's) can size its own ``/tmp`` (``--size``) but not a folder bound from
outside, so the job's folder is mounted here, before the sandbox starts.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import tempfile
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x4000, 0x40000
MNT_DETACH = 0x2
FULL_BYTES = 1024 ** 2  # less free space than this after the job: it filled its file system
MAX_INODES = 100_000    # files and folders (each costs memory too)

_libc = None


def _call(name: str, *args) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if getattr(_libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


_AVAILABLE: bool | None = None


def available() -> bool:
    """Whether a job's process here can mount a file system of its own (root, mount namespaces); tried once."""
    global _AVAILABLE
    if _AVAILABLE is None:
        _AVAILABLE = False
        if os.geteuid() == 0:
            with tempfile.TemporaryDirectory(prefix="course-mount-probe-") as folder:
                try:  # in a child: this process's own namespace stays as it is
                    _AVAILABLE = subprocess.run(
                        ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "-o", "size=1m",
                         "tmpfs", folder], capture_output=True, timeout=20).returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    pass
    return _AVAILABLE


def private_mounts() -> bool:
    """Give this process (and all it starts) a mount namespace of its own; False where that is not possible.

    Only for a process of its own (a job's), single-threaded: the namespace's mounts vanish with its
    last process, and none of them ever shows in the machine's namespace.
    """
    if os.geteuid() != 0:
        return False
    try:
        _call("unshare", CLONE_NEWNS)
        _call("mount", b"none", b"/", None, MS_REC | MS_PRIVATE, None)  # nothing propagates back to the machine
    except OSError:
        return False
    return True


def mount(folder: Path, size_bytes: int) -> None:
    """A ``tmpfs`` of ``size_bytes`` on ``folder`` (root-only, like a ``mkdtemp`` folder); ``OSError`` if it fails."""
    options = f"size={int(size_bytes)},nr_inodes={MAX_INODES},mode=0700".encode()
    _call("mount", b"tmpfs", str(folder).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options)


def unmount(folder: Path) -> None:
    try:
        _call("umount2", str(folder).encode(), MNT_DETACH)
    except OSError:
        pass  # its namespace goes with the job's process anyway


def is_full(folder: Path) -> bool:
    """Whether ``folder``'s file system has (almost) no space or no file left."""
    try:
        info = os.statvfs(folder)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < FULL_BYTES or info.f_favail == 0
