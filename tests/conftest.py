"""Shared fixtures: the course root, a scratch copy of the course for nbgrader runs, and the notebooks
built once per test run (shared by every test and every pytest-xdist worker)."""

import os
import shutil
from pathlib import Path

import matplotlib
import pytest
from filelock import FileLock

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


# Fixtures that grade a whole class with two grading workers: the tests that use one run in the serial
# pass of `make test` (where the fixture is computed once), never beside other tests.
SERIAL_FIXTURES = {"class_under_attack"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the marks into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``), the tests that share a module-scoped fixture run on one
    worker, so the fixture is computed once, not once in every worker (tests/test_parallel_suite.py).
    Tests that use a fixture of :data:`SERIAL_FIXTURES` are marked ``serial`` and ``slow``."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info and any(d.scope == "module" for defs in info.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
        if info and SERIAL_FIXTURES & set(info.names_closure):
            item.add_marker(pytest.mark.serial)
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def scratch_course(tmp_path: Path) -> Path:
    """A copy of the course's nbgrader setup (config, source/, examples/) in a temporary folder."""
    shutil.copy2(ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", tmp_path / "source")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


class SharedBuild:
    """``course build`` of each notebook, done once per test run by the first test that asks for it.

    Every notebook is built in a scratch course of its own under the run's temporary folder, which
    all xdist workers share (``make test`` names one folder for both of its passes in
    ``COURSE_TEST_BUILD``); a file lock per notebook lets one worker build while the others wait,
    and workers build different notebooks at the same time. A build that fails is not recorded as
    done: the next test that asks tries again and fails with the same error.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _once(self, kind: str, name: str, build) -> Path:
        root = self.folder / kind / name
        with FileLock(str(self.folder / f"{kind}-{name}.lock")):
            if not (root / ".built").exists():
                if root.exists():
                    shutil.rmtree(root)
                (root / "source").mkdir(parents=True)
                shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
                shutil.copytree(ROOT / "source" / name, root / "source" / name)
                build(root, name)
                (root / ".built").touch()
        return root

    def release(self, name: str) -> Path:
        """A course root with ``release/<name>/`` and a ``gradebook.db`` that knows the assignment."""
        from course.build import build_release
        return self._once("release", name, build_release)

    def release_into(self, root: Path, name: str) -> Path:
        """Make ``root`` (a course with ``source/<name>``) released: ``release/<name>/`` and ``gradebook.db``."""
        built = self.release(name)
        shutil.copytree(built / "release", root / "release", dirs_exist_ok=True)
        shutil.copy2(built / "gradebook.db", root / "gradebook.db")
        return root

    def solution(self, name: str) -> Path:
        """A course root with the executed ``solutions/<name>/`` (raises if a cell of the solution fails)."""
        from course.build import build_solution
        return self._once("solutions", name, build_solution)


@pytest.fixture(scope="session")
def shared_build(tmp_path_factory: pytest.TempPathFactory) -> SharedBuild:
    if os.environ.get("COURSE_TEST_BUILD"):
        return SharedBuild(Path(os.environ["COURSE_TEST_BUILD"]))
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker has a folder of its own under the run's folder
        base = base.parent
    return SharedBuild(base / "shared-build")


@pytest.fixture
def released_course(scratch_course: Path, shared_build: SharedBuild) -> Path:
    """A scratch course in which ``00_gradient_checking`` is released (its gradebook ready for grading)."""
    return shared_build.release_into(scratch_course, "00_gradient_checking")
