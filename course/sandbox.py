"""Running untrusted student code under limits, with existing tools: bubblewrap, setpriv and rlimits.

Layers, each used when this machine has it (:func:`protections` says which):

- ``bwrap`` (bubblewrap): an allow-list view of the file system. The sandbox sees the system
  (``/usr``, ``/etc``, ``/sys``), Python, the virtual environment and the course library
  (``course/``, ``lib/``), all read-only; its own writable folder; the folders passed as
  ``also_writable`` (the kernel's private folder for its connection file and sockets); a small
  private ``/tmp``; nothing else: no course, no gradebook, no other submission, no home. Its
  options go to bubblewrap through a file descriptor, so ``/proc/1/cmdline`` names no path. No
  network (a private loopback only), a PID namespace of its own.
- ``setpriv``: when we are root, the code runs as an unprivileged user id of its own, so the
  process limit applies and nothing of ours is writable;
- rlimits: address space (memory), number of processes (fork bombs), CPU seconds, file size, each
  process on its own;
- totals per submission (``course.cgroups``): the memory, number and CPU share of all the student's
  processes together, in the control group of the submission's job; and a file system of its own
  for its folders (``course.scratch``), so that what it writes never fills a disk a classmate needs;
- a wall-clock timeout that kills the whole process group;
- a minimal environment (:data:`ENV_ALLOWED`): no token of the grader's shell reaches the student.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from course import cgroups, scratch


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 600.0          # the whole stage (a notebook, or a trusted test run)
    cell_seconds: int = 60               # one cell (nbgrader's Execute.timeout)
    memory_bytes: int = 3 * 1024 ** 3    # address space of each process, and memory of all of them together
    processes: int = 256                 # processes and threads of the sandbox user (and of the submission)
    network: bool = False
    file_bytes: int = 1024 ** 3          # largest file the student's code may write (RLIMIT_FSIZE)
    disk_bytes: int = 512 * 1024 ** 2    # all it may write, its files together (its job's own file system)
    require_protections: bool = False    # refuse to grade where a protection layer is missing (`course grade`)


SANDBOX_UID_BASE = 41000
COURSE_ROOT = Path(__file__).resolve().parents[1]  # the checkout holding course/ and lib/ (editable install)
LIBRARY = (COURSE_ROOT / "course", COURSE_ROOT / "lib")   # code only: never the course root itself
SYSTEM = ("/usr", "/etc", "/sys", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
TMP_BYTES = 256 * 1024 ** 2  # the sandbox's private /tmp (memory-backed)

# The only variables of the grader's environment the student's processes get (plus PATH, HOME, TMPDIR).
ENV_ALLOWED = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "MPLBACKEND", "PYTHONHASHSEED", "PYTHONWARNINGS",
               "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "NBGRADER_EXECUTION", "OMP_NUM_THREADS",
               "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "JPY_SESSION_NAME")


TOTALS = "memory, process and CPU totals per submission (cgroups)"
DISK = "a size-limited file system per submission (tmpfs)"
# What a missing layer lets a student do (for the report's warning).
CONSEQUENCES = {TOTALS: "one submission's processes together can use all the memory and CPU of this machine and "
                        "slow down or stop the grading of its classmates",
                DISK: "one submission can fill the disk its classmates' grading needs"}


class UnprotectedError(RuntimeError):
    """Grading was asked to run with every protection, and this machine lacks some."""


def protections() -> dict[str, bool]:
    """Which protection layers this machine provides."""
    bwrap = shutil.which("bwrap") is not None and _bwrap_works()
    # the unprivileged user needs bubblewrap's view of the file system (root's home is private)
    switch_user = bwrap and os.geteuid() == 0 and shutil.which("setpriv") is not None
    return {"filesystem and network isolation (bubblewrap)": bwrap,
            "separate unprivileged user (setpriv)": switch_user,
            "memory, process and CPU limits (rlimit)": True,
            TOTALS: bool(cgroups.backend()),
            DISK: scratch.available(),
            "wall-clock timeout": True,
            "minimal environment": True}


def missing_protections() -> list[str]:
    return [name for name, on in protections().items() if not on]


def _consequences(missing: list[str]) -> str:
    """What the missing layers let a student do, in one sentence."""
    isolation = [m for m in missing if m not in CONSEQUENCES]
    parts = (["a student's code can read the hidden tests and other submissions and change the gradebook"]
             if isolation else []) + [CONSEQUENCES[m] for m in missing if m in CONSEQUENCES]
    return "; ".join(parts)


def require_protections() -> None:
    """Raise :class:`UnprotectedError` naming the missing layers, if any."""
    missing = missing_protections()
    if missing:
        raise UnprotectedError(
            "grading refused: this machine lacks " + "; ".join(missing) + ". Without them " + _consequences(missing)
            + ". Install bubblewrap (`make sandbox-deps`) and run as root (with /sys/fs/cgroup writable), or pass "
            "--allow-unprotected to grade anyway.")


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
    """Let the sandbox user write ``folder`` (and only it). Called before the student's code runs."""
    if os.geteuid() == 0:
        uid = sandbox_uid()
        os.chown(folder, uid, uid, follow_symlinks=False)
        for base, dirs, files in os.walk(folder):  # never follows links
            for name in dirs + files:
                os.chown(os.path.join(base, name), uid, uid, follow_symlinks=False)


def visible_paths() -> list[Path]:
    """What the sandbox shows read-only besides its own folders: Python, the venv, the library."""
    return sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), *LIBRARY})


def bwrap_options(*, writable: Path, also_writable=(), hide=(), limits: Limits = Limits()) -> list[str]:
    """bubblewrap's options for an allow-list view of the file system (see the module docstring)."""
    opts: list[str] = []
    for path in SYSTEM:
        if os.path.islink(path):
            opts += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            opts += ["--ro-bind", path, path]
    opts += ["--dev", "/dev", "--proc", "/proc", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
             "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]  # no tty: setsid() detaches
    if not limits.network:
        opts.append("--unshare-net")
    shown = visible_paths()
    binds = [*shown, *map(Path, also_writable), Path(writable)]
    parents = {a for p in binds for a in p.parents if a != Path("/") and a != Path("/tmp") and a not in binds
               and not any(a == Path(s) or Path(s) in a.parents for s in SYSTEM)}
    for path in sorted(parents, key=lambda a: len(a.parts)):  # the binds' parents, which the user must traverse
        opts += ["--perms", "0755", "--dir", str(path)]
    for path in shown:
        opts += ["--ro-bind", str(path), str(path)]
    for path in map(Path, hide):  # only what lies inside a shown folder needs hiding; the rest is not there
        if any(path == p or p in path.parents for p in shown) and path.exists():
            opts += ["--ro-bind", "/dev/null", str(path)] if path.is_file() else ["--tmpfs", str(path)]
    for path in also_writable:
        opts += ["--bind", str(path), str(path)]
    opts += ["--bind", str(writable), str(writable), "--chdir", str(writable)]
    return opts


def command(argv: list[str], *, writable: Path, also_writable=(), hide=(), limits: Limits = Limits()) -> list[str]:
    """``argv`` wrapped in the available layers, options inline (for reading; :func:`popen` hides them)."""
    prot = protections()
    cmd: list[str] = []
    if prot["filesystem and network isolation (bubblewrap)"]:
        cmd = ["bwrap", *bwrap_options(writable=writable, also_writable=also_writable, hide=hide, limits=limits)]
    return cmd + _user_switch(prot) + argv


def _user_switch(prot: dict[str, bool]) -> list[str]:
    if not prot["separate unprivileged user (setpriv)"]:
        return []
    uid = str(sandbox_uid())
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all"]


def minimal_env(env: dict[str, str] | None, writable: Path) -> dict[str, str]:
    """The student's environment: a few harmless variables of ``env``, PATH, and HOME/TMPDIR = its folder."""
    env = os.environ if env is None else env
    out = {k: env[k] for k in ENV_ALLOWED if k in env}
    out["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"])
    out["HOME"] = out["TMPDIR"] = str(writable)
    return out


def _limit(limits: Limits, groups: list[str] = ()):
    def preexec() -> None:
        cgroups.join_files(groups)  # first: everything it starts is counted in the submission's totals
        os.setsid()
        os.umask(0o022)  # bubblewrap creates the mount points' parents: the sandbox user must traverse them
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        cpu = int(limits.wall_seconds * 2) + 10
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    return preexec


def popen(argv: list[str], *, writable: Path, also_writable=(), hide=(), limits: Limits = Limits(),
          env=None, **kwargs) -> subprocess.Popen:
    """Start ``argv`` in the sandbox (its own process group, limits applied, minimal environment).

    bubblewrap reads its options from an unlinked file (``--args FD``): the paths it binds never
    appear in a command line that the student's code could read in ``/proc``.
    """
    writable = Path(writable)
    prepare_writable(writable)
    for folder in also_writable:
        prepare_writable(Path(folder))
    prot = protections()
    env = minimal_env(env, writable)
    groups = cgroups.student_procs_files()  # read here: the child only writes
    if not prot["filesystem and network isolation (bubblewrap)"]:
        return subprocess.Popen(_user_switch(prot) + argv, cwd=writable, env=env, preexec_fn=_limit(limits, groups),
                                **kwargs)
    opts = bwrap_options(writable=writable, also_writable=also_writable, hide=hide, limits=limits)
    with tempfile.TemporaryFile() as args_file:
        args_file.write(b"".join(o.encode() + b"\0" for o in opts))
        args_file.flush()
        args_file.seek(0)
        fd = args_file.fileno()
        return subprocess.Popen(["bwrap", "--args", str(fd), *_user_switch(prot), *argv], cwd=writable, env=env,
                                preexec_fn=_limit(limits, groups), pass_fds=(fd,), **kwargs)


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
    """For reports: which layers were active on this machine; loud when one was off."""
    prot = protections()
    active = [name for name, on in prot.items() if on]
    missing = [name for name, on in prot.items() if not on]
    text = "Grading protections active: " + "; ".join(active) + "."
    if missing:
        text = ("!" * 78 + "\n!! WARNING: GRADED WITHOUT " + "; ".join(missing).upper() + ".\n"
                "!! Without them " + _consequences(missing) + ":\n!! do not trust these grades. Install bubblewrap "
                "(`make sandbox-deps`) and grade as root.\n" + "!" * 78 + "\n" + text)
    return text
