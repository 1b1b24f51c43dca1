"""Shared fixtures: the course root and a scratch copy of the course for nbgrader runs."""

import shutil
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def scratch_course(tmp_path: Path) -> Path:
    """A copy of the course's nbgrader setup (config, source/, examples/) in a temporary folder."""
    shutil.copy2(ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", tmp_path / "source")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path
