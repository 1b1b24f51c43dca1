"""`make test` runs the suite with pytest-xdist (``--dist loadgroup``): a module's shared fixture (a graded batch,
a built course) must be computed on one worker, once, not once on every worker."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SHARED = '''
import os, pytest

@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    with open(os.environ["SETUPS"], "a") as f:
        f.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")
    return 1

@pytest.mark.parametrize("i", range(12))
def test_uses_batch(batch, i):
    with open(os.environ["RUNS"], "a") as f:
        f.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")
'''
OTHER = '''
import pytest

@pytest.mark.parametrize("i", range(12))
def test_free(i):
    pass
'''


def test_a_module_fixture_is_computed_once_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    (tmp_path / "test_shared.py").write_text(SHARED)
    (tmp_path / "test_other.py").write_text(OTHER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SETUPS": str(tmp_path / "setups"), "RUNS": str(tmp_path / "runs")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                          "--dist", "loadgroup", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len((tmp_path / "setups").read_text().split()) == 1, "the module fixture was computed on several workers"
    assert len(set((tmp_path / "runs").read_text().split())) == 1
