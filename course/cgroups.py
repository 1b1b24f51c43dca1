"""One control group per submission: the memory, number and CPU share of all its processes, counted together.

Per-process limits (``course.sandbox``'s rlimits) let a submission fork its way past them: six
children of 1.8 GB each stay under any per-process cap, and 200 busy processes out-compete a
classmate's one. A :class:`JobGroup` bounds them together:

- ``<job>`` holds the job's grading process (nbgrader, the trusted re-run) and everything it
  starts; its memory limit is the student's total plus the grader's own allowance;
- ``<job>/student`` holds the student's processes (the kernel's sandbox, the trusted re-run's
  sandboxed process: :func:`student_procs_files` names it to ``course.sandbox``): its memory and
  process limits are the student's, so the kernel's out-of-memory killer only ever picks one of
  them, and never the grader;
- every job has the same CPU weight, whatever the number of its processes.

The group is made by the batch's process before the job's process starts, joined by the job's
process as its first step (:meth:`JobGroup.join`: so no child is ever left outside), and killed
(every process in it, sessions and daemons included) and removed when the job ends.

cgroup v2 is used where its memory and pids controllers can be enabled for our subtree, v1
(``/sys/fs/cgroup/<controller>``) otherwise; each job's folders sit under this process's own
group in each hierarchy, so a container's limits still hold. Where neither can be written (not
root, a read-only ``/sys/fs/cgroup``), :func:`backend` is ``""`` and only the per-process limits hold.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "course-job-"  # the name of every job's group: how a process finds that it is in one
STUDENT = "student"
V1_CONTROLLERS = ("memory", "pids", "cpu", "freezer")  # freezer: optional (kill without racing forks)
V1_REQUIRED = ("memory", "pids", "cpu")
V2_CONTROLLERS = ("memory", "pids", "cpu")


def _mounts() -> dict[str, tuple[Path, str]]:
    """Each cgroup hierarchy's mount point and the root it shows: v1 by controller, v2 as ``"unified"``."""
    out: dict[str, tuple[Path, str]] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        root, point, fstype = fields[3], Path(fields[4]), rest[0]
        if fstype == "cgroup2":
            out.setdefault("unified", (point, root))
        elif fstype == "cgroup":
            for opt in rest[2].split(","):
                if opt in V1_CONTROLLERS:
                    out.setdefault(opt, (point, root))
    return out


def _own_groups() -> dict[str, str]:
    """This process's group in each hierarchy (``/proc/self/cgroup``): v1 by controller, v2 as ``"unified"``."""
    out: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        num, _, rest = line.partition(":")
        names, _, path = rest.partition(":")
        if num == "0" and not names:
            out["unified"] = path
        for name in names.split(","):
            if name in V1_CONTROLLERS:
                out[name] = path
    return out


def _folder(hierarchy: str, mounts=None, own=None) -> Path | None:
    """This process's own group's folder in ``hierarchy``, or None where it is not mounted here."""
    mounts = _mounts() if mounts is None else mounts
    own = _own_groups() if own is None else own
    if hierarchy not in mounts or hierarchy not in own:
        return None
    point, root = mounts[hierarchy]
    path = own[hierarchy]
    if root != "/" and (path + "/").startswith(root.rstrip("/") + "/"):
        path = path[len(root.rstrip("/")):]
    folder = point / path.lstrip("/")
    return folder if folder.is_dir() else None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: Path) -> str:
    with open(path) as f:
        return f.read()


def _probe(base: Path) -> bool:
    """Whether a child group can be made (and removed) under ``base``."""
    probe = base / f"{PREFIX}probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        probe.rmdir()
    except OSError:
        pass
    return True


_BACKEND: str | None = None


def backend() -> str:
    """``"v2"``, ``"v1"`` or ``""`` (neither can be written here); tried once per process."""
    global _BACKEND
    if _BACKEND is None:
        _BACKEND = ""
        if os.geteuid() == 0:
            mounts, own = _mounts(), _own_groups()
            unified = _folder("unified", mounts, own)
            v1 = {c: _folder(c, mounts, own) for c in V1_REQUIRED}
            if unified is not None and _v2_ready(unified):
                _BACKEND = "v2"
            elif all(v1.values()) and all(_probe(f) for f in v1.values()):
                _BACKEND = "v1"
    return _BACKEND


def _v2_ready(base: Path) -> bool:
    """v2 only where our group already hands memory, pids and cpu to its children (a delegated subtree)."""
    try:
        enabled = _read(base / "cgroup.subtree_control").split()
    except OSError:
        return False
    if not all(c in enabled for c in V2_CONTROLLERS):
        try:  # allowed only where our group holds no process itself (the no-internal-process rule)
            _write(base / "cgroup.subtree_control", " ".join("+" + c for c in V2_CONTROLLERS))
        except OSError:
            return False
    return _probe(base)


@dataclass
class JobGroup:
    """A submission's group in every hierarchy we use (picklable: it travels to the job's process)."""

    name: str
    version: str                                   # "v1" or "v2"
    folders: dict[str, str] = field(default_factory=dict)  # hierarchy -> the job's folder

    @classmethod
    def create(cls, name: str, *, student_memory: int, student_processes: int, grader_memory: int,
               grader_processes: int) -> JobGroup | None:
        """Make ``<job>`` and ``<job>/student`` with their limits; None where this machine has no backend.

        ``student_*`` bound the student's processes together; the job as a whole may hold the
        grader's share on top of them.
        """
        version = backend()
        if not version:
            return None
        hierarchies = ("unified",) if version == "v2" else V1_CONTROLLERS
        group = cls(PREFIX + name, version)
        try:
            for h in hierarchies:
                base = _folder(h)
                if base is None:
                    if h in V1_REQUIRED:
                        raise OSError(f"no {h} hierarchy")
                    continue
                _remove_stale(base)
                job = base / group.name
                job.mkdir()
                group.folders[h] = str(job)
                (job / STUDENT).mkdir()
                if version == "v2":
                    (job / "grader").mkdir()
                    _write(job / "cgroup.subtree_control", " ".join("+" + c for c in V2_CONTROLLERS))
            group._set_limits(student_memory, student_processes, grader_memory, grader_processes)
        except BaseException:
            group.remove()
            raise
        return group

    def _set_limits(self, student_memory: int, student_processes: int, grader_memory: int,
                    grader_processes: int) -> None:
        total_memory, total_processes = student_memory + grader_memory, student_processes + grader_processes
        if self.version == "v2":
            job = Path(self.folders["unified"])
            for folder, memory, processes in ((job, total_memory, total_processes),
                                              (job / STUDENT, student_memory, student_processes)):
                _write(folder / "memory.max", str(memory))
                if (folder / "memory.swap.max").exists():
                    _write(folder / "memory.swap.max", "0")
                _write(folder / "pids.max", str(processes))
            return
        memory, pids = Path(self.folders["memory"]), Path(self.folders["pids"])
        for folder, limit in ((memory, total_memory), (memory / STUDENT, student_memory)):
            _write(folder / "memory.limit_in_bytes", str(limit))
            if (folder / "memory.memsw.limit_in_bytes").exists():  # no swapping past the limit either
                _write(folder / "memory.memsw.limit_in_bytes", str(limit))
        _write(pids / "pids.max", str(total_processes))
        _write(pids / STUDENT / "pids.max", str(student_processes))
        _write(Path(self.folders["cpu"]) / "cpu.shares", "1024")  # every job the same weight

    # -- membership -------------------------------------------------------------------------------
    def join(self) -> None:
        """Move this process into the job's group (the grader's part of it): call before starting anything."""
        if self.version == "v2":
            _write(Path(self.folders["unified"]) / "grader" / "cgroup.procs", "0")
            return
        for folder in self.folders.values():
            _write(Path(folder) / "cgroup.procs", "0")

    def _groups(self) -> list[Path]:
        """Every folder of this job, the deepest first."""
        out = []
        for folder in self.folders.values():
            job = Path(folder)
            out += [p for p in (job / STUDENT, job / "grader") if p.is_dir()] + [job]
        return out

    def pids(self) -> set[int]:
        out: set[int] = set()
        for folder in self._groups():
            try:
                out.update(int(p) for p in _read(folder / "cgroup.procs").split())
            except OSError:
                pass
        return out

    # -- what happened ----------------------------------------------------------------------------
    def _events(self, folder: Path, file: str) -> dict[str, int]:
        try:
            pairs = (line.split() for line in _read(folder / file).splitlines())
            return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].lstrip("-").isdigit()}
        except OSError:
            return {}

    def oom_kills(self, part: str = STUDENT) -> int:
        """Processes of the job's ``part`` (``"student"`` or ``"grader"``) the kernel killed for lack of memory."""
        if self.version == "v2":  # memory.events counts a group's descendants too
            job = Path(self.folders["unified"])
            student = self._events(job / STUDENT, "memory.events").get("oom_kill", 0)
            return student if part == STUDENT else self._events(job, "memory.events").get("oom_kill", 0) - student
        folder = Path(self.folders["memory"])  # v1 counts a group's own processes only
        return self._events(folder / STUDENT if part == STUDENT else folder, "memory.oom_control").get("oom_kill", 0)

    def peak_memory(self) -> int:
        """The most memory the job's processes held at once, all together (bytes; page cache included)."""
        try:
            if self.version == "v2":
                return int(_read(Path(self.folders["unified"]) / "memory.peak"))
            return int(_read(Path(self.folders["memory"]) / "memory.max_usage_in_bytes"))
        except (OSError, ValueError):
            return 0

    # -- the end ----------------------------------------------------------------------------------
    def _freeze(self, frozen: bool) -> None:
        try:
            if self.version == "v2":
                _write(Path(self.folders["unified"]) / "cgroup.freeze", "1" if frozen else "0")
            elif "freezer" in self.folders:
                _write(Path(self.folders["freezer"]) / "freezer.state", "FROZEN" if frozen else "THAWED")
        except OSError:
            pass

    def kill_all(self, timeout: float = 10.0) -> bool:
        """Kill every process of the job (its own sessions and daemons too); True once none is left."""
        me = os.getpid()
        end = time.monotonic() + timeout
        while True:
            pids = self.pids() - {me}
            if not pids:
                return True
            if time.monotonic() > end:
                return False
            if self.version == "v2" and (Path(self.folders["unified"]) / "cgroup.kill").exists():
                try:
                    _write(Path(self.folders["unified"]) / "cgroup.kill", "1")
                except OSError:
                    pass
            self._freeze(True)  # frozen, a process cannot fork between our reading the list and the kill
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self._freeze(False)  # a frozen process does not die until thawed
            time.sleep(0.05)

    def remove(self) -> None:
        """Remove the job's folders (after :meth:`kill_all`); a folder still busy is retried for a moment."""
        for folder in self._groups():
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _remove_stale(base: Path) -> None:
    """Empty groups left by a batch that was killed (its pid, in the name, is gone): removed, never entered."""
    for folder in base.glob(PREFIX + "*-*"):
        pid = folder.name[len(PREFIX):].split("-")[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for sub in (folder / STUDENT, folder / "grader", folder):
            try:
                sub.rmdir()
            except OSError:
                pass  # not empty (still running), or already gone


def student_procs_files() -> list[str]:
    """The ``cgroup.procs`` files of the student's part of the job this process belongs to, if it is in one.

    A child that writes ``0`` into each of them (``course.sandbox``'s pre-exec step) moves itself,
    and so everything it starts, into the student's group. Found from ``/proc/self/cgroup``, so
    that nbgrader's kernel launcher (a grandchild of the job's process) needs no setting passed.
    """
    mounts, own = _mounts(), _own_groups()
    files = []
    for h in (*V1_CONTROLLERS, "unified"):
        folder = _folder(h, mounts, own)
        if folder is None:
            continue
        job = folder.parent if h == "unified" and folder.name == "grader" else folder
        if job.name.startswith(PREFIX) and (job / STUDENT / "cgroup.procs").exists():
            files.append(str(job / STUDENT / "cgroup.procs"))
    return files


def join_files(files: list[str]) -> None:
    """Write ``0`` (this process) into each ``cgroup.procs`` file: in a child, before it runs the student's code."""
    for path in files:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def describe() -> str:
    """For the grade report."""
    version = backend()
    return f"memory, process and CPU totals per submission (cgroup {version})" if version else ""
