"""A kernel whose only nnlab and course are a stage's student edition, and the release notebook answered in it.

Used by tests/course/test_student_edition.py, and runnable by hand to see a stage at work:
``.venv/bin/python -m tests.course.student_kernel 05`` builds the edition, installs it in a scratch virtual
environment, runs release/05's notebook with its solution's answers pasted in, and prints how its outputs compare
with solutions/.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course import outputs
from course.build import ipc_kernel_config
from course.notebooks import BEGIN_SOLUTION, END_SOLUTION, grade_id, is_solution, strip_markers
from course.student_edition import assignment_of, build

ROOT = Path(__file__).resolve().parents[2]
KERNEL = "nnlab-student-edition"
#: What the editable install of this repository leaves in site-packages (its finder, .pth and dist-info).
EDITABLE = ("__editable__", "__editable___nn_training_course", "nn_training_course")


def course_packages(folder: Path) -> Path:
    """``folder`` filled with a link to each package of the course's environment (numpy, torch, ipykernel...),
    except the editable install of this repository (its finder module and .pth, which map ``nnlab`` and ``course``
    to lib/ and course/, and its dist-info, whose files name the repository's folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(EDITABLE) or entry.name in ("nnlab", "course", "__pycache__"):
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


def scratch_env(folder: Path) -> Path:
    """A virtual environment with the course's pinned packages and neither this repository's nnlab and course nor
    a way to them (:func:`course_packages`): returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    course_packages(site)
    return python


def install(python: Path, edition: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--disable-pip-version-check", str(edition)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})


def kernel_spec(folder: Path, python: Path) -> Path:
    """A kernelspec for ``python`` under ``folder`` (put ``folder`` on JUPYTER_PATH)."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "student edition", "language": "python",
        "env": {"PYTHONPATH": "", "COURSE_ROOT": "", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}}))
    return folder


def answered_release(assignment: str) -> nbformat.NotebookNode:
    """release/<assignment>'s notebook with every answer cell replaced by the solution's (markers removed)."""
    release = nbformat.read(next((ROOT / "release" / assignment).glob("*.ipynb")), as_version=4)
    source = nbformat.read(next((ROOT / "source" / assignment).glob("*.ipynb")), as_version=4)
    answers = {grade_id(c): strip_markers(c.source, BEGIN_SOLUTION, END_SOLUTION) for c in source.cells
               if is_solution(c)}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if is_solution(cell) and cell.cell_type == "code":
            cell.source = answers[grade_id(cell)]
    return nb


PROBE = """\
import importlib.util, json, sys
import nnlab, course
print(json.dumps({"nnlab": nnlab.__file__, "course": course.__file__,
                  "importable": [m for m in ("course.checks", "course.cli", "course.grade", "course.mistakes",
                                             "__editable___nn_training_course_0_1_0_finder")
                                 if importlib.util.find_spec(m) is not None],
                  "path": sys.path}))
"""


def run_answered(assignment: str, python: Path, jupyter_path: Path, workdir: Path,
                 timeout: int = 600) -> tuple[nbformat.NotebookNode, dict]:
    """Run the answered release in the edition's kernel; returns the notebook (the probe cell removed) and what
    the probe cell saw (``nnlab.__file__``, the course modules importable, ``sys.path``)."""
    nb = answered_release(assignment)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    for extra in (ROOT / "release" / assignment).iterdir():
        if extra.suffix != ".ipynb" and extra.is_file():
            (workdir / extra.name).write_bytes(extra.read_bytes())
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(jupyter_path)
    try:
        with ipc_kernel_config() as config:
            NotebookClient(nb, config=config, timeout=timeout, kernel_name=KERNEL, record_timing=False,
                           coalesce_streams=True, resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
    probe = json.loads(nb.cells.pop(0).outputs[0]["text"])
    return nb, probe


def compared_with_solution(nb: nbformat.NotebookNode, assignment: str) -> list[str]:
    """How the answered notebook's outputs differ from solutions/ for a reader (course.outputs), code cells only."""
    solution = nbformat.read(next((ROOT / "solutions" / assignment).glob("*.ipynb")), as_version=4)
    fresh, committed = copy.deepcopy(nb), copy.deepcopy(solution)
    for a, b in zip(fresh.cells, committed.cells):
        if a.cell_type != "code" or b.cell_type != "code":
            a.cell_type = b.cell_type = "markdown"
            a.source = b.source = ""
            a.pop("outputs", None), b.pop("outputs", None)
        a.source = b.source  # a stub's text vs the solution's: the outputs are what is compared
    return outputs.differences(fresh, committed)


def main(argv: list[str]) -> int:
    import tempfile

    assignment = assignment_of(ROOT, argv[0])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        build(ROOT, assignment, tmp / "edition")
        t1 = time.perf_counter()
        python = scratch_env(tmp / "venv")
        result = install(python, tmp / "edition")
        if result.returncode:
            print(result.stderr)
            return 1
        t2 = time.perf_counter()
        (tmp / "work").mkdir()
        nb, probe = run_answered(assignment, python, kernel_spec(tmp / "jupyter", python), tmp / "work")
        t3 = time.perf_counter()
        print(f"{assignment}: build {t1 - t0:.1f} s, venv + install {t2 - t1:.1f} s, notebook {t3 - t2:.1f} s")
        print("nnlab:", probe["nnlab"], "| course modules importable:", probe["importable"])
        diffs = compared_with_solution(nb, assignment)
        print(f"{len(diffs)} cells differ from solutions/ for a reader" + "".join(f"\n  {d}" for d in diffs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
