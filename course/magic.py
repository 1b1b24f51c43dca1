"""``%check``: every test of the notebook you are editing, hidden ones included, without leaving JupyterLab.

The first cell of every notebook loads it (``%load_ext course.magic``); then, in any cell::

    %check

runs ``course check`` on the notebook's saved file, exactly as the instructor's grader would, and prints the
points per exercise and, for each failure, what is wrong in words (never the hidden tests' code). In a class
(``COURSE_CHECK_URL`` set) the saved file goes to the instructor's check service instead
(``course.check_client``), which grades it and says how many checks are left. JupyterLab
tells the kernel which notebook it belongs to (``__session__``); ``%check path/to/notebook.ipynb`` names one.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def notebook_path(user_ns: dict[str, Any]) -> Path | None:
    """The notebook this kernel runs, from JupyterLab's session (``__session__`` / ``JPY_SESSION_NAME``)."""
    for value in (user_ns.get("__session__"), os.environ.get("JPY_SESSION_NAME")):
        if value and str(value).endswith(".ipynb"):
            path = Path(str(value)).expanduser()
            if path.is_absolute():
                return path
            # Relative to the server's root; the kernel runs in the notebook's own folder.
            return next((p for p in (Path.cwd() / path.name, Path.cwd() / path) if p.exists()), Path.cwd() / path.name)
    return None


def unsaved_cells(path: Path, executed: list[str]) -> list[str]:
    """Code this kernel ran that the saved notebook does not contain (edited and run, then not saved)."""
    import nbformat  # here, not at the top: it costs a second of every kernel's start (jsonschema's formats)

    try:
        saved = nbformat.read(path, as_version=4)
    except Exception:  # an unreadable file is course check's to explain
        return []
    saved_code = {_normal(c.source) for c in saved.cells if c.cell_type == "code"}
    ours = [s for s in executed if s.strip() and not s.lstrip().startswith(("%check", "get_ipython().run_line_magic('check'"))]
    return [s for s in ours if _normal(s) not in saved_code and "def " in s]


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def check(line: str, user_ns: dict[str, Any] | None = None) -> int:
    """Run ``course check`` on the notebook (``line``: an optional path); print its report; return its exit code."""
    user_ns = user_ns if user_ns is not None else {}
    path = Path(line.strip()).expanduser() if line.strip() else notebook_path(user_ns)
    if path is None:
        print("%check cannot tell which notebook this is (JupyterLab did not say). Name it: "
              "%check path/to/notebook.ipynb")
        return 2
    if not path.exists():
        print(f"%check: {path} does not exist. Save the notebook first (Ctrl+S), or name it: %check PATH")
        return 2
    saved_at = datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%H:%M:%S")
    remote = bool(os.environ.get("COURSE_CHECK_URL", "").strip())
    print(f"{'Sending' if remote else 'Checking'} the saved file {path.name} (saved at {saved_at}) "
          f"{'to the check service, which runs' if remote else 'with'} every test, hidden ones included ...")
    # The kernel's history, with the "In" list IPython keeps: code run here but absent from the saved file.
    unsaved = unsaved_cells(path, [str(s) for s in user_ns.get("In", [])])
    if unsaved:
        first = unsaved[-1].strip().splitlines()[0][:70]
        print(f"Warning: this notebook has unsaved changes (you ran code that is not in the saved file, e.g. "
              f"`{first}`). %check grades the SAVED file: save (Ctrl+S) and run %check again.")
    if remote:  # a class: the instructor's check service grades it
        from course import check_client  # the student edition's only course module here: no grader in it

        return check_client.print_check(path)
    if importlib.util.find_spec("course.cli") is None:  # the student edition, with no service named
        print("%check cannot run here: this server has the student edition of the course (no hidden tests in it) "
              "and no check service is set (COURSE_CHECK_URL). Ask your instructor for the check service's "
              "address; in the meantime, the visible tests in the notebook still run.")
        return 2
    proc = subprocess.run([sys.executable, "-m", "course.cli", "check", str(path)], capture_output=True, text=True,
                          cwd=path.parent)
    out = proc.stdout.strip().splitlines()
    print("\n".join(line for line in out if not line.startswith("Running every test")))
    if proc.returncode not in (0, 1) or not out:
        print(proc.stderr.strip()[-2000:])
    return proc.returncode


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext course.magic``: registers ``%check``."""
    def check_magic(line: str) -> None:
        check(line, ipython.user_ns)
    check_magic.__doc__ = check.__doc__
    ipython.register_magic_function(check_magic, "line", "check")
