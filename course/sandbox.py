"""Running untrusted student code under limits, with existing tools: bubblewrap, setpriv and rlimits.

Layers, each used when this machine has it (:func:`protections` says which):

- ``bwrap`` (bubblewrap): the whole file system read-only, a private ``/tmp``, only the job's
  scratch folder writable, chosen folders hidden, no network (a private loopback only);
- ``setpriv``: when we are root, the code runs as an unprivileged user id of its own, so the
  process limit applies and nothing of ours is writable;
- rlimits: address space (memory), number of processes (fork bombs), CPU seconds;
- a wall-clock timeout that kills the whole process group.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sys
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 600.0          # the whole stage (a notebook, or a trusted test run)
    cell_seconds: int = 60               # one cell (nbgrader's Execute.timeout)
    memory_bytes: int = 3 * 1024 ** 3    # address space of each process
    processes: int = 256                 # processes and threads of the sandbox user
    network: bool = False


SANDBOX_UID_BASE = 41000
COURSE_ROOT = Path(__file__).resolve().parents[1]  # the checkout holding course/ and lib/ (editable install)


def protections() -> dict[str, bool]:
    """Which protection layers this machine provides."""
    bwrap = shutil.which("bwrap") is not None and _bwrap_works()
    # the unprivileged user needs bubblewrap's view of the file system (root's home is private)
    switch_user = bwrap and os.geteuid() == 0 and shutil.which("setpriv") is not None
    return {"filesystem and network isolation (bubblewrap)": bwrap,
            "separate unprivileged user (setpriv)": switch_user,
            "memory, process and CPU limits (rlimit)": True,
            "wall-clock timeout": True}


_BWRAP_OK: bool | None = None


def _bwrap_works() -> bool:
    global _BWRAP_OK
    if _BWRAP_OK is None:
        try:
            _BWRAP_OK = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "true"],
                                       capture_output=True, timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _BWRAP_OK = False
    return _BWRAP_OK


def sandbox_uid() -> int:
    """A user id per grading process, so that one sandbox's processes never count against another's."""
    return SANDBOX_UID_BASE + os.getpid() % 20000


def prepare_writable(folder: Path) -> None:
    """Let the sandbox user write ``folder`` (and only it)."""
    for parent in folder.parents:  # the sandbox user must be able to reach it
        if parent == Path(parent.anchor) or not parent.exists():
            break
        if parent.stat().st_uid == os.geteuid():
            parent.chmod(parent.stat().st_mode | 0o111)
    if os.geteuid() == 0:
        uid = sandbox_uid()
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, uid, uid, follow_symlinks=False)


def command(argv: list[str], *, writable: Path, also_writable: list[Path] = (), hide: list[Path] = (),
            reveal: list[Path] = (), limits: Limits = Limits()) -> list[str]:
    """``argv`` wrapped in the available layers (see the module docstring)."""
    prot = protections()
    cmd: list[str] = []
    if prot["filesystem and network isolation (bubblewrap)"]:
        cmd += ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                "--unshare-pid", "--unshare-ipc", "--die-with-parent"]  # no tty: setsid() below detaches
        if not limits.network:
            cmd.append("--unshare-net")
        home = Path.home()
        if home != Path("/") and os.geteuid() == 0:
            cmd += ["--tmpfs", str(home)]  # root's private home: hidden, but for what Python needs below
        # Python, the virtual environment and the course's own packages, wherever they live (a clone
        # in /tmp, an interpreter in root's home): read-only, and visible despite the tmpfs above.
        for path in sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), COURSE_ROOT}):
            cmd += ["--ro-bind", str(path), str(path)]
        for path in hide:
            if Path(path).is_file():
                cmd += ["--ro-bind", "/dev/null", str(path)]  # a hidden file reads as empty
            elif Path(path).exists():
                cmd += ["--tmpfs", str(path)]
        for path in reveal:
            cmd += ["--ro-bind", str(path), str(path)]
        for path in also_writable:
            cmd += ["--bind", str(path), str(path)]
        cmd += ["--bind", str(writable), str(writable), "--chdir", str(writable),
                "--setenv", "HOME", str(writable), "--setenv", "TMPDIR", str(writable)]
    if prot["separate unprivileged user (setpriv)"]:
        uid = str(sandbox_uid())
        cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all"]
    return cmd + argv


def _limit(limits: Limits):
    def preexec() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        cpu = int(limits.wall_seconds * 2) + 10
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return preexec


def popen(argv: list[str], *, writable: Path, also_writable=(), hide=(), reveal=(), limits: Limits = Limits(),
          env=None, **kwargs) -> subprocess.Popen:
    """Start ``argv`` in the sandbox (its own process group, limits applied)."""
    prepare_writable(writable)
    env = dict(env or os.environ)
    env.setdefault("HOME", str(writable))
    return subprocess.Popen(command(argv, writable=writable, also_writable=also_writable, hide=hide, reveal=reveal,
                                    limits=limits),
                            cwd=writable, env=env, preexec_fn=_limit(limits), **kwargs)


def kill(proc: subprocess.Popen) -> None:
    """Kill the sandbox's whole process group (children, forks and kernels included)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def describe_protections() -> str:
    """One line for reports: which layers were active on this machine."""
    prot = protections()
    active = [name for name, on in prot.items() if on]
    missing = [name for name, on in prot.items() if not on]
    text = "Grading protections active: " + "; ".join(active) + "."
    if missing:
        text += " Not available here: " + "; ".join(missing) + " (install bubblewrap and run as root for all)."
    return text
