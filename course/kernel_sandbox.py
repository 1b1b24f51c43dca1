"""A Jupyter kernel launcher that runs ipykernel inside the grading sandbox.

nbgrader (trusted, outside) talks to the kernel (the student's code, inside) over IPC
sockets, so the kernel needs no network at all. Its settings come from a file of the job's own
scratch folder, named on its command line (``--settings``), never from the environment: jobs
graded by threads of one process (a Dask worker) would overwrite each other's. nbgrader finds
this launcher through :class:`SandboxKernelManager` (``Execute.kernel_manager_class``), which is
configured per job, not through ``JUPYTER_PATH``. The settings (:class:`SandboxSettings`):
the kernel's working folder (never nbgrader's output folder), its private folder (a copy of its
connection file and its sockets), where the kernel process's own messages go (outside the
sandbox), and its limits: seconds the kernel may live, memory, largest file it may write.

jupyter_client writes the connection file in the job's scratch folder; the kernel gets a copy
in its private folder instead, so it sees neither that folder nor any other kernel's key.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec
from traitlets import Unicode

from course import sandbox

SETTINGS_FILE = "sandbox.json"  # in the job's scratch folder


@dataclass(frozen=True)
class SandboxSettings:
    work: str           # the kernel's working folder
    ipc: str            # its private folder: connection file copy and sockets
    log: str            # the launcher's own messages (outside the sandbox)
    wall_seconds: float
    memory_bytes: int
    file_bytes: int

    def limits(self) -> sandbox.Limits:
        return sandbox.Limits(wall_seconds=self.wall_seconds, memory_bytes=self.memory_bytes,
                              file_bytes=self.file_bytes)


def write_settings(path: Path, settings: SandboxSettings) -> Path:
    """The settings file of one job (created fresh; only the grader's own processes read it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(settings), out)
    return path


def read_settings(path: Path) -> SandboxSettings:
    values = json.loads(Path(path).read_text())
    return SandboxSettings(work=str(values["work"]), ipc=str(values["ipc"]), log=str(values["log"]),
                           wall_seconds=float(values["wall_seconds"]), memory_bytes=int(values["memory_bytes"]),
                           file_bytes=int(values["file_bytes"]))


def launcher_argv(settings_file: Path) -> list[str]:
    return [sys.executable, "-m", "course.kernel_sandbox", "--settings", str(settings_file), "-f", "{connection_file}"]


class SandboxKernelManager(AsyncKernelManager):
    """nbgrader's kernel manager for one job: this launcher with the job's settings file, whatever JUPYTER_PATH says."""

    settings_file = Unicode("", config=True, help="the job's settings file (see SandboxSettings)")

    @property
    def kernel_spec(self) -> KernelSpec:
        if not self.settings_file:
            raise RuntimeError("SandboxKernelManager.settings_file is not configured")
        if self._kernel_spec is None:
            self._kernel_spec = KernelSpec(argv=launcher_argv(Path(self.settings_file)), language="python",
                                           display_name="Python 3 (grading sandbox)")
        return self._kernel_spec

    def write_connection_file(self, **kwargs) -> None:
        if not self.connection_file:  # in the job's scratch folder, not the machine's shared /tmp
            runtime = Path(self.settings_file).parent / "runtime"
            self.connection_file = str(runtime / f"kernel-{self.kernel_id or os.getpid()}.json")
        super().write_connection_file(**kwargs)


def private_connection_file(conn: Path, ipc: Path) -> Path:
    """A copy of the connection file in the kernel's private folder (created fresh, before the kernel runs)."""
    info = json.loads(conn.read_text())
    copy = ipc / "kernel.json"
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(info, out)
    return copy


def main(argv: list[str]) -> int:
    conn = Path(argv[argv.index("-f") + 1])
    settings = read_settings(Path(argv[argv.index("--settings") + 1]))
    work, ipc, limits = Path(settings.work), Path(settings.ipc), settings.limits()
    private = private_connection_file(conn, ipc)
    log = open(settings.log, "ab")  # outside the sandbox's folders
    # the environment is reduced to an allow-list by sandbox.popen; JPY_PARENT_PID never reaches the kernel
    # (inside its own PID namespace it cannot see its parent and would quit)
    proc = sandbox.popen([sys.executable, "-m", "ipykernel_launcher", "-f", str(private)], writable=work,
                         also_writable=[ipc], limits=limits, stdout=subprocess.DEVNULL, stderr=log)

    def forward(signum, _frame):
        """An interrupt goes to the kernel itself: bubblewrap's own processes would die of it."""
        import psutil
        try:
            for child in psutil.Process(proc.pid).children(recursive=True):
                if child.name() != "bwrap":
                    child.send_signal(signum)
        except psutil.Error:
            pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, lambda *_: (sandbox.kill(proc), sys.exit(143)))
    try:
        return proc.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        print(f"grading sandbox: the kernel ran for {limits.wall_seconds:g} s and was stopped", file=sys.stderr)
        return 124
    finally:
        sandbox.kill(proc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
