"""Where the course lives on disk."""

from __future__ import annotations

import os
from pathlib import Path


def course_root(start: Path | None = None) -> Path:
    """The course root: the folder holding ``nbgrader_config.py``.

    Looks in ``$COURSE_ROOT``, then upward from ``start`` (default: the current
    folder), then beside this package (an editable install of the repository).
    """
    if os.environ.get("COURSE_ROOT"):
        return Path(os.environ["COURSE_ROOT"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file() and (folder / "source").is_dir():
            return folder
    beside = Path(__file__).resolve().parent.parent
    if (beside / "nbgrader_config.py").is_file():
        return beside
    raise FileNotFoundError(
        "Cannot find the course (a folder with nbgrader_config.py and source/). "
        "Run the command inside the course repository or set COURSE_ROOT."
    )


def assignments(root: Path) -> list[str]:
    """Names of the assignments in ``source/``, sorted (``00_gradient_checking``, ...)."""
    return sorted(p.name for p in (root / "source").iterdir() if p.is_dir() and any(p.glob("*.ipynb")))
