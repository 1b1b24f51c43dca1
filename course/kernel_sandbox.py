"""A Jupyter kernel launcher that runs ipykernel inside the grading sandbox.

nbgrader (trusted, outside) talks to the kernel (the student's code, inside) over IPC
sockets in a shared folder, so the kernel needs no network at all. Settings come from
the environment that :func:`course.jobs.run_job` prepares:
``COURSE_SANDBOX_DIR`` (writable folder), ``COURSE_SANDBOX_IPC`` (socket folder),
``COURSE_SANDBOX_HIDE`` (folders to hide, ``os.pathsep``-separated),
``COURSE_SANDBOX_WALL`` (seconds the kernel may live), ``COURSE_SANDBOX_MEMORY`` (bytes).
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


def main(argv: list[str]) -> int:
    conn = Path(argv[argv.index("-f") + 1]).resolve()
    work = Path(os.environ["COURSE_SANDBOX_DIR"])
    ipc = Path(os.environ["COURSE_SANDBOX_IPC"])
    hide = [Path(p) for p in os.environ.get("COURSE_SANDBOX_HIDE", "").split(os.pathsep) if p]
    limits = sandbox.Limits(wall_seconds=float(os.environ.get("COURSE_SANDBOX_WALL", "600")),
                            memory_bytes=int(os.environ.get("COURSE_SANDBOX_MEMORY", str(3 * 1024 ** 3))))
    os.chmod(conn, 0o644)  # the sandbox user must read its connection file (it holds only this kernel's key)
    sandbox.prepare_writable(ipc)
    # JPY_PARENT_PID: inside its own PID namespace the kernel cannot see its parent and would quit
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_SANDBOX_") and k != "JPY_PARENT_PID"}
    log = open(ipc / "kernel.log", "ab")  # the kernel process's own messages (not the cells' outputs)
    proc = sandbox.popen([sys.executable, "-m", "ipykernel_launcher", "-f", str(conn)], writable=work,
                         also_writable=[ipc], hide=hide, reveal=[conn.parent], limits=limits, env=env,
                         stdout=subprocess.DEVNULL, stderr=log)

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
