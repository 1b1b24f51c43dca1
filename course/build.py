"""Build the student release (nbgrader generate_assignment) and the executed solutions (nbclient)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets.config import Config

from course.nbgrader_run import run_nbgrader
from course.notebooks import read_notebook, solution_notebook, strip_outputs


def source_notebook(root: Path, assignment: str) -> Path:
    found = sorted((root / "source" / assignment).glob("*.ipynb"))
    if not found:
        raise FileNotFoundError(f"No notebook in source/{assignment}/. Known assignments: "
                                f"{', '.join(p.name for p in sorted((root / 'source').iterdir()) if p.is_dir())}")
    return found[0]


def build_release(root: Path, assignment: str) -> Path:
    """``nbgrader generate_assignment``: source/A -> release/A (solutions and hidden tests removed).

    It also records the assignment's cells in the gradebook, which autograding needs.
    """
    src = source_notebook(root, assignment)
    nb = read_notebook(src)
    if any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
        nbformat.write(strip_outputs(nb), src)
    run_nbgrader(root, "generate_assignment", assignment, "--force")
    return root / "release" / assignment / src.name


@contextmanager
def ipc_kernel_config() -> Iterator[Config]:
    """Kernel settings: talk over socket files in a private folder (IPC), not TCP ports.

    Nothing else on the machine can connect to such a kernel, and ipykernel has no reason to
    warn about unencrypted TCP on the console.
    """
    with tempfile.TemporaryDirectory(prefix="course-kernel-") as folder:
        config = Config()
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(Path(folder) / "kernel")
        yield config


def execute_notebook(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 300) -> nbformat.NotebookNode:
    """Run every cell in a fresh python3 kernel (raises :class:`CellExecutionError` on the first error).

    A cell's stream outputs are merged, stdout before stderr (a ``print`` reaches the notebook in
    one message or in several, depending on when the kernel flushes), so the same notebook gives
    the same bytes on every run.
    """
    with ipc_kernel_config() as config:
        client = NotebookClient(nb, config=config, timeout=timeout, kernel_name="python3", record_timing=False,
                                coalesce_streams=True, resources={"metadata": {"path": str(cwd)}})
        client.execute()
    return nb


# Packages whose version changes what a solution prints (the machine's BLAS is not an input: the committed
# solutions are compared with a fresh build within tolerances, tests/course/test_pipeline.py).
VERSIONED = ("numpy", "scipy", "matplotlib", "scikit-learn", "torch", "nbclient", "ipykernel", "nbformat")
# What of the course package a solution runs: its visible tests' helpers and checks, the %check loader, and how a
# solution is made. The grading machinery (ingest, jobs, sandbox, ...) changes no solution's outputs; a module the
# notebooks start importing must be added here (test_solutions_are_current compares with a fresh build anyway).
SOLUTION_CODE = ("__init__.py", "testing.py", "visible_checks.py", "call_log.py", "magic.py", "build.py", "notebooks.py",
                 "torch_wire.py", "checks")


def solution_inputs(root: Path, assignment: str) -> str:
    """A content hash of what a solution's execution depends on: the assignment's source folder, the library
    (``nnlab``), the course code it runs (:data:`SOLUTION_CODE`: its test helpers, checks and ``%check``), and
    the versions of Python and of :data:`VERSIONED`. File bytes only: the same on every machine."""
    import hashlib
    import importlib.metadata
    import platform

    import nnlab

    import course

    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(label.encode() + b"\0" + len(data).to_bytes(8, "big") + data)

    for path in sorted((root / "source" / assignment).iterdir()):
        if path.is_file():
            add(f"source/{path.name}", path.read_bytes())
    for package, parts in ((nnlab, None), (course, SOLUTION_CODE)):
        base = Path(package.__file__).parent
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base)
            if parts is not None and rel.parts[0] not in parts:
                continue
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
                add(f"{package.__name__}/{rel.as_posix()}", path.read_bytes())
    add("python", platform.python_version().encode())
    for name in VERSIONED:
        try:
            add(name, importlib.metadata.version(name).encode())
        except importlib.metadata.PackageNotFoundError:
            add(name, b"-")
    return digest.hexdigest()


def solution_is_current(root: Path, assignment: str) -> bool:
    """Whether ``solutions/A`` was executed from exactly today's inputs (:func:`solution_inputs`)."""
    src = source_notebook(root, assignment)
    path = root / "solutions" / assignment / src.name
    try:
        recorded = read_notebook(path).metadata.get("course", {}).get("inputs")
    except Exception:  # missing or unreadable: not current
        return False
    extras_current = all((root / "solutions" / assignment / p.name).is_file()
                         and (root / "solutions" / assignment / p.name).read_bytes() == p.read_bytes()
                         for p in src.parent.iterdir() if p.is_file() and p.suffix != ".ipynb")
    return recorded == solution_inputs(root, assignment) and extras_current


def build_solution(root: Path, assignment: str, execute: bool = True) -> tuple[Path, float]:
    """source/A -> solutions/A: solutions in place, markers and hidden tests removed, executed with outputs.

    The notebook's metadata records :func:`solution_inputs`, so that ``course build`` re-executes it only when
    they change. Returns the path written and the execution time in seconds.
    """
    src = source_notebook(root, assignment)
    inputs = solution_inputs(root, assignment)
    nb = solution_notebook(read_notebook(src))
    nb.metadata["course"] = {"inputs": inputs}
    out_dir = root / "solutions" / assignment
    out_dir.mkdir(parents=True, exist_ok=True)
    for extra in src.parent.iterdir():  # data files beside the notebook travel with it
        if extra.is_file() and extra.suffix != ".ipynb":
            shutil.copy2(extra, out_dir / extra.name)
    start = time.perf_counter()
    if execute:
        try:
            execute_notebook(nb, out_dir)
        except CellExecutionError as exc:
            raise RuntimeError(f"The solution of {assignment} does not run cleanly; fix source/{assignment}:\n"
                               f"{str(exc)[-1500:]}") from None
    elapsed = time.perf_counter() - start
    path = out_dir / src.name
    nbformat.write(nb, path)
    return path, elapsed
