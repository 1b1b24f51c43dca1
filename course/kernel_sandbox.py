"""A Jupyter kernel launcher that runs ipykernel inside the grading sandbox.

nbgrader (trusted, outside) talks to the kernel (the student's code, inside) over IPC
sockets, so the kernel needs no network at all. Settings come from the environment that
:func:`course.jobs.run_job` prepares:
``COURSE_SANDBOX_DIR`` (the kernel's working folder: never nbgrader's output folder),
``COURSE_SANDBOX_IPC`` (the kernel's private folder: a copy of its connection file and its sockets),
``COURSE_SANDBOX_LOG`` (where the kernel process's own messages go, outside the sandbox),
``COURSE_SANDBOX_WALL`` (seconds the kernel may live), ``COURSE_SANDBOX_MEMORY`` (bytes),
``COURSE_SANDBOX_FILE`` (largest file it may write, bytes).

jupyter_client writes the connection file in a shared folder (``/tmp``); the kernel gets a copy
in its private folder instead, so it sees neither ``/tmp`` nor any other kernel's key.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from course import sandbox


def kernel_spec(folder: Path) -> Path:
    """Write the ``course-sandbox`` kernelspec under ``folder/kernels`` (for ``JUPYTER_PATH``)."""
    spec = folder / "kernels" / "course-sandbox"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "course.kernel_sandbox", "-f", "{connection_file}"],
        "display_name": "Python 3 (grading sandbox)", "language": "python"}))
    return folder


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
    work = Path(os.environ["COURSE_SANDBOX_DIR"])
    ipc = Path(os.environ["COURSE_SANDBOX_IPC"])
    limits = sandbox.Limits(wall_seconds=float(os.environ.get("COURSE_SANDBOX_WALL", "600")),
                            memory_bytes=int(os.environ.get("COURSE_SANDBOX_MEMORY", str(3 * 1024 ** 3))),
                            file_bytes=int(os.environ.get("COURSE_SANDBOX_FILE", str(1024 ** 3))))
    private = private_connection_file(conn, ipc)
    log = open(os.environ.get("COURSE_SANDBOX_LOG", os.devnull), "ab")  # outside the sandbox's folders
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
