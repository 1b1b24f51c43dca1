"""The class under attack: one real batch that grades every attack catalog beside honest students.

The attack tests (``test_symlink_attacks``, ``test_html_attacks``, ``test_protocol_attacks``,
``test_class_under_attack``) all read this one batch instead of grading a batch each: the class is graded
once per test run, in the serial pass of ``make test`` (tests/conftest.py marks every test that uses it).
Student ids are the catalogs' own case names (they are unique across catalogs: a test proves it).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import pytest

from course import grade
from course.bench import filled_submission
from course.sandbox import Limits, protections
from tests.conftest import ROOT

A = "00_gradient_checking"
FULL = 18
ISOLATED = all(protections().values())
# Students who wait (in a call, while loading) cost up to their limits: honest cells of notebook 00 take
# well under a second and a whole submission about 6 s, so the limits are short.
LIMITS = Limits(cell_seconds=10, wall_seconds=90, memory_bytes=2 * 1024 ** 3)


@dataclass(frozen=True)
class Case:
    build: Callable  # a correct submission -> the attack (or an honest student's notebook)
    score: float     # the score it must get


@dataclass
class ClassBatch:
    root: Path
    targets: object                       # tests.grading.test_symlink_attacks.Targets
    catalog: dict[str, str]               # student id -> "honest", "symlink", "issue12", "html" or "protocol"
    cases: dict[str, Case]                # student id -> how it was built, the score it must get
    alone: dict[str, dict[str, float]]    # the honest students graded alone: id -> cell -> score
    together: dict[str, dict[str, float]]  # everyone graded together: id -> cell -> score
    problems: dict[str, str]
    results: dict                         # id -> course.grade result
    report: str                           # the console report of the batch
    before: dict                          # fingerprints taken before grading
    seconds: float                        # wall time of the batch (everyone together)

    def ids(self, catalog: str) -> list[str]:
        return sorted(sid for sid, c in self.catalog.items() if c == catalog)


def digest(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def assignment_definition(db_path: Path) -> list:
    """The gradebook's copy of the assignment: its cells, points and checksums (hidden tests included)."""
    with sqlite3.connect(db_path) as db:
        return [db.execute(f"select * from {table} order by id").fetchall()
                for table in ("assignment", "notebook", "base_cell", "grade_cells", "solution_cells",
                              "task_cells", "source_cell")]


def the_class(root: Path, targets) -> tuple[dict[str, str], dict[str, Case]]:
    """Every student of the batch: id -> catalog, and id -> case."""
    from tests.grading import test_class_under_attack as issue12
    from tests.grading import test_html_attacks as html
    from tests.grading import test_protocol_attacks as protocol
    from tests.grading import test_symlink_attacks as symlinks

    catalogs: dict[str, dict[str, Case]] = {
        "honest": {sid: Case(build, None) for sid, build in issue12.honest_students().items()},
        "html": {sid: Case(c.build, c.score) for sid, c in {**html.CASES, **html.HONEST}.items()},
        "protocol": {sid: Case(lambda nb, b=c.build: b(nb, root), c.score) for sid, c in protocol.CASES.items()},
    }
    if ISOLATED:  # links planted for a grader that is root are only safe to plant when the sandbox is there
        catalogs["symlink"] = {sid: Case(lambda nb, c=c: symlinks.build(c, nb, targets), c.score)
                               for sid, c in symlinks.CASES.items()}
        catalogs["issue12"] = {sid: Case(c.build, c.score) for sid, c in issue12.ISSUE_12.items()}
    catalog, cases = {}, {}
    for name, members in catalogs.items():
        for sid, case in members.items():
            assert sid not in catalog, f"{sid} is in the {catalog.get(sid)} and the {name} catalogs: rename one"
            catalog[sid], cases[sid] = name, case
    return catalog, cases


def write_submissions(root: Path, cases: dict[str, Case]) -> None:
    correct = filled_submission(root, A)
    for sid, case in cases.items():
        folder = root / "submitted" / sid / A
        folder.mkdir(parents=True)
        nb = nbformat.reads(nbformat.writes(correct), as_version=4)
        nbformat.write(case.build(nb), folder / f"{A}.ipynb")


def cell_scores(root: Path, students: list[str], problems: dict) -> dict[str, dict[str, float]]:
    return {r.student_id: {c.grade_id: c.score for c in r.cells} for r in grade.results(root, A, students, problems)}


@pytest.fixture(scope="session")
def class_under_attack(tmp_path_factory, shared_build) -> ClassBatch:
    from tests.grading import test_symlink_attacks as symlinks

    root = tmp_path_factory.mktemp("class-under-attack")
    outside = tmp_path_factory.mktemp("class-outside")
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", root / "source")  # every notebook: a submission of another is named
    shared_build.release_into(root, A)
    grade.ensure_gradebook(root, A)
    targets = symlinks.make_targets(root, outside)
    catalog, cases = the_class(root, targets)
    honest = sorted(sid for sid, c in catalog.items() if c == "honest")
    # the honest class alone, then everyone together
    write_submissions(root, {sid: cases[sid] for sid in honest})
    alone = cell_scores(root, honest, grade.autograde(root, A, honest, workers=2, progress=False, limits=LIMITS))
    write_submissions(root, {sid: c for sid, c in cases.items() if sid not in honest})
    everyone = sorted(cases)
    before = {"source": digest(root / "source"), "submitted": digest(root / "submitted"),
              "config": digest(root / "nbgrader_config.py"), "targets": symlinks.fingerprint(targets.files()),
              "gradebook": assignment_definition(root / "gradebook.db")}
    start = time.perf_counter()
    try:
        problems = grade.autograde(root, A, everyone, workers=2, progress=False, limits=LIMITS)
        grade.feedback_and_export(root, A)
        seconds = time.perf_counter() - start
        results = {r.student_id: r for r in grade.results(root, A, everyone, problems)}
        together = {sid: {c.grade_id: c.score for c in r.cells} for sid, r in results.items()}
        report = grade.format_report(A, list(results.values()))
        print(f"\nthe class under attack: {len(everyone)} submissions (2 workers) in {seconds:.0f} s")
        yield ClassBatch(root, targets, catalog, cases, alone, together, problems, results, report, before, seconds)
    finally:  # should a trap ever work, this machine's sandbox binaries get their modes back
        for path, (mode, _) in before["targets"].items():
            Path(path).chmod(mode)
