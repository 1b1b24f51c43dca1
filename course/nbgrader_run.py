"""Running nbgrader's own commands, as subprocesses, on a course root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message carries the end of its log."""


def nbgrader_env() -> dict[str, str]:
    """The environment nbgrader needs: the venv's bin/ on PATH (nbgrader shells out to alembic)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    return env


def run_nbgrader(root: Path, *args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in ``root`` (which holds ``nbgrader_config.py``)."""
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}"]
    proc = subprocess.run(cmd, cwd=root, env=nbgrader_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise NbgraderError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}):\n{tail}")
    return proc
