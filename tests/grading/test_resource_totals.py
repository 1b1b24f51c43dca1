"""Totals per submission (issue 23): attacks that stay under every per-process limit, graded beside honest students.

Per-process limits let a submission add up: forked children that each stay under the memory cap,
files that each stay under the file-size cap, busy processes each in a session of their own, and a
request that makes the grader compute for it. One real batch (``course grade``'s own steps, two
workers) grades one attacker of each kind beside two honest students, who are also graded alone
first: their every cell must score the same. Each attacker gets 0 with a reason that names its
limit, and after the batch no control group, mount or process of any job is left.

The numbers fit a 24 GiB machine shared with others: 2 GiB of memory per submission (children of
600 MB), 256 MiB of disk. ``python -m tests.grading.test_resource_totals`` prints the figures
(peak memory of each job, the honest student's time, free disk), with and without the totals.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from course import cgroups, grade, jobs
from course import scratch as scratch_fs
from course.bench import filled_submission
from course.notebooks import grade_id, is_solution, read_notebook
from course.sandbox import SANDBOX_UID_BASE, Limits, protections
from tests.conftest import ROOT

A = "00_gradient_checking"
FULL = 18
ISOLATED = all(protections().values())
LIMITS = Limits(cell_seconds=10, wall_seconds=40, memory_bytes=2 * 1024 ** 3, disk_bytes=256 * 1024 ** 2)
NEEDS_TOTALS = pytest.mark.skipif(not ISOLATED, reason=f"needs bubblewrap, root and cgroups: {protections()}")

# Six children of 600 MB each (touched, so resident), held for a few seconds: 3.6 GB against a 2 GiB total.
FORK_MEMORY = """import os, time
children = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        block = b'x' * (600 * 1024 ** 2)
        time.sleep(4)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""
# Files of 1 GiB (the per-file limit) in its own folder and in /tmp, as many as it is allowed.
DISK_FILLER = """import os
chunk = b'\\0' * (64 * 1024 ** 2)
for folder in ('.', '/tmp'):
    for i in range(3):
        try:
            with open(os.path.join(folder, f'fill{i}.bin'), 'wb') as f:
                for _ in range(16):
                    f.write(chunk)
        except OSError as e:
            print('stopped:', e)
            break
"""
# 200 busy processes, each in a session of its own (out of reach of a process-group kill).
BUSY_200 = """import os
for _ in range(200):
    if os.fork() == 0:
        os.setsid()
        while True:
            pass
"""
WRONG_RELATIVE_ERROR = "def relative_error(a, b):\n    return 0.5\n"


def with_cell(nb, code: str, after: str = "relative_error"):
    i = next(i for i, c in enumerate(nb.cells) if grade_id(c) == after)
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(code))
    return nb


def with_answer(nb, exercise: str, code: str):
    for cell in nb.cells:
        if is_solution(cell) and grade_id(cell) == exercise:
            cell.source = code
    return nb


HONEST = {"honest-a": lambda nb: nb, "honest-b": lambda nb: with_answer(nb, "relative_error", WRONG_RELATIVE_ERROR)}
ATTACKS = {"fork-memory": lambda nb: with_cell(nb, FORK_MEMORY),
           "disk-filler": lambda nb: with_cell(nb, DISK_FILLER),
           "busy-200": lambda nb: with_cell(nb, BUSY_200)}
# student -> what its reason must say
REASONS = {"fork-memory": r"more than 2 GiB of memory in all its processes together",
           "disk-filler": r"wrote more than 256 MiB to disk",
           # whichever of its limits stops it first: time, processes, or (200 forked kernels) memory
           "busy-200": r"time|out of time|Kernel|died|processes|memory in all its processes together"}


def write(root: Path, students: dict) -> None:
    correct = filled_submission(root, A)
    for sid, build in students.items():
        folder = root / "submitted" / sid / A
        folder.mkdir(parents=True)
        nbformat.write(build(nbformat.reads(nbformat.writes(correct), as_version=4)), folder / f"{A}.ipynb")


def leftovers(students) -> dict[str, list]:
    """This batch's job groups, job mounts, scratch folders and sandboxed processes that are still there.

    (Other batches may run on this machine: only this process's groups and these students' folders count.)
    """
    import psutil

    marks = [f"/grade-{sid}-" for sid in students]
    groups = []
    for hierarchy in (*cgroups.V1_CONTROLLERS, "unified"):
        folder = cgroups._folder(hierarchy)
        if folder is not None:
            groups += [str(p) for p in folder.iterdir() if p.name.startswith(f"{cgroups.PREFIX}{os.getpid()}-")]
    mounts = [line for line in Path("/proc/self/mounts").read_text().splitlines() if any(m in line for m in marks)]
    procs = []
    for proc in psutil.process_iter(["uids"]):
        try:
            if SANDBOX_UID_BASE <= proc.info["uids"].real < SANDBOX_UID_BASE + 20000 \
                    and any(m in proc.cwd() + "/" for m in marks):
                procs.append(proc.pid)
        except (psutil.Error, AttributeError, TypeError):
            pass
    scratch = [p.name for p in Path(tempfile.gettempdir()).glob("grade-*") if any(m in f"/{p.name}" for m in marks)]
    return {"groups": groups, "mounts": mounts, "processes": procs, "scratch": scratch}


def graded_batch(root: Path, students: list[str], monkeypatch=None) -> tuple[dict, dict]:
    """Grade ``students`` (two workers); their results, and the outcome of each job (seconds, log)."""
    outcomes = {}
    original = grade.run_jobs

    def recording(*args, **kwargs):
        for outcome in original(*args, **kwargs):
            outcomes[outcome.student] = outcome
            yield outcome

    patch = monkeypatch or pytest.MonkeyPatch()
    patch.setattr(grade, "run_jobs", recording)
    try:
        problems = grade.autograde(root, A, students, workers=2, progress=False, limits=LIMITS)
    finally:
        if monkeypatch is None:
            patch.undo()
    return {r.student_id: r for r in grade.results(root, A, students, problems)}, outcomes


@pytest.fixture(scope="module")
def batch(tmp_path_factory, shared_build):
    root = tmp_path_factory.mktemp("resource-totals")
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", root / "source")
    shared_build.release_into(root, A)
    grade.ensure_gradebook(root, A)
    write(root, HONEST)
    alone, _ = graded_batch(root, sorted(HONEST))
    write(root, ATTACKS)
    free_before = shutil.disk_usage(tempfile.gettempdir()).free
    start = time.perf_counter()
    together, outcomes = graded_batch(root, sorted({**HONEST, **ATTACKS}))
    seconds = time.perf_counter() - start
    free_after = shutil.disk_usage(tempfile.gettempdir()).free
    print(f"\nresource totals: {len(together)} submissions in {seconds:.0f} s; free disk {free_before / 1e9:.1f} -> "
          f"{free_after / 1e9:.1f} GB; " + "; ".join(f"{s}: {o.seconds:.0f} s" for s, o in sorted(outcomes.items())))
    for sid, r in sorted(together.items()):
        print(f"  {sid}: {r.score:g}  {r.problem or '; '.join(c.reason for c in r.cells if c.reason)[:300]}")
    return {"alone": alone, "together": together, "outcomes": outcomes, "left": leftovers({**HONEST, **ATTACKS})}


def cells(result) -> dict[str, float]:
    return {c.grade_id: c.score for c in result.cells}


@pytest.mark.parametrize("sid", sorted(HONEST))
@pytest.mark.slow
@pytest.mark.serial
@NEEDS_TOTALS
def test_honest_grades_do_not_move(batch, sid):
    alone, together = batch["alone"][sid], batch["together"][sid]
    assert not together.problem, together.problem
    assert cells(together) == cells(alone)
    assert together.score == (FULL if sid == "honest-a" else FULL - 3)


@pytest.mark.parametrize("sid", sorted(ATTACKS))
@pytest.mark.slow
@pytest.mark.serial
@NEEDS_TOTALS
def test_attacker_gets_nothing_with_its_reason(batch, sid):
    r = batch["together"][sid]
    explained = " | ".join([r.problem, *[c.reason for c in r.cells]])
    assert r.score == 0 if sid != "busy-200" else r.score < FULL, f"{sid}: {r.score}; {explained[:800]}"
    assert re.search(REASONS[sid], explained), f"{sid}: no reason matching {REASONS[sid]!r} in {explained[:800]}"


@pytest.mark.slow
@pytest.mark.serial
@NEEDS_TOTALS
def test_memory_of_all_the_processes_is_bounded(batch):
    """The fork bomb's job never held more than its total (2 GiB + files + /tmp) and the grader's allowance."""
    log = batch["outcomes"]["fork-memory"].log
    peak = int(re.search(r"job's memory peak, all its processes together: (\d+) bytes", log).group(1))
    student = LIMITS.memory_bytes + LIMITS.disk_bytes + 256 * 1024 ** 2
    assert 0 < peak <= student + jobs.WORKER_MEMORY_BYTES
    assert peak < 6 * 600 * 1024 ** 2  # what the six children would have held together


@pytest.mark.slow
@pytest.mark.serial
@NEEDS_TOTALS
def test_nothing_is_left_behind(batch):
    assert batch["left"] == {"groups": [], "mounts": [], "processes": [], "scratch": []}


# -- the test's random generator ----------------------------------------------------------------------

def _draws_in_child(he_init: str, queue, max_draws: int | None = None) -> None:
    import resource

    from course import remote
    from course.trusted import submission_with, trusted_run

    if max_draws is not None:
        remote.MAX_DRAWS = max_draws
    name = "02_initialization"
    src = read_notebook(ROOT / "source" / name / f"{name}.ipynb")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = trusted_run(src, submission_with(src, {"he_init": he_init}), Limits(cell_seconds=60))
    queue.put((out, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


HUGE_DRAW = ("def he_init(fan_in, fan_out, rng):\n    rng.standard_normal(437_500_000)  # 3.5 GB of float64\n"
             "    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)\n")
BROADCAST_DRAW = ("def he_init(fan_in, fan_out, rng):\n    rng.normal(np.zeros((250_000, 1)), np.ones((1, 250_000)))\n"
                  "    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)\n")


def draws(he_init: str, max_draws: int | None = None) -> tuple[dict, int]:
    """The trusted re-run's verdicts for an ``he_init`` of notebook 02, and how much the grader's process grew."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_draws_in_child, args=(he_init, queue, max_draws))
    proc.start()
    out, before, after = queue.get(timeout=300)
    proc.join(30)
    return out, after - before


# A shape of its own that answers small when counted and huge (7.2 GB of float64) when numpy reads it.
LYING_SIZE = ("class Size:\n    reads = 0\n    def __len__(self):\n        return 2\n"
              "    def __getitem__(self, i):\n        if i > 1:\n            raise IndexError(i)\n"
              "        Size.reads += 1\n        return 2 if Size.reads <= 2 else 30_000\n"
              "def he_init(fan_in, fan_out, rng):\n    rng.standard_normal(Size())\n"
              "    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)\n")
TOO_MANY = r"asked the test's random generator for [\d,]+ values; at most 8,388,608 per call"


@pytest.mark.serial  # starts the trusted re-run's sandboxed process
@pytest.mark.parametrize("code,reason", [(HUGE_DRAW, TOO_MANY), (BROADCAST_DRAW, TOO_MANY),
                                         (LYING_SIZE, "not objects of your code")],
                         ids=["3.5-GB", "broadcast", "lying-size"])
def test_the_grader_computes_only_what_it_may_send(code, reason):
    out, grew = draws(code)
    assert re.search(reason, out["hidden_he_init"]), out
    assert grew < 512 * 1024 ** 2, f"the grader's process grew by {grew / 1024 ** 2:.0f} MiB"


def test_generator_draws_counts_what_numpy_would_make():
    import numpy as np

    from course.remote import generator_draws as count

    assert count("random", (437_500_000,), {}) == 437_500_000
    assert count("integers", (0, 10), {"size": (1000, 1000)}) == 10 ** 6
    assert count("normal", (np.zeros((500, 1)), np.ones((1, 400))), {}) == 200_000
    assert count("permutation", (10 ** 10,), {}) == 10 ** 10
    assert count("choice", (10 ** 10, 5), {"replace": False}) == 10 ** 10 and count("choice", (10 ** 10, 5), {}) == 5
    assert count("choice", (np.zeros((100, 70)), 50), {}) == 50 * 70
    assert count("multinomial", (10, [0.1] * 10), {"size": 1000}) == 10_000
    assert count("bytes", (10 ** 9,), {}) == 10 ** 9
    assert count("standard_normal", (), {"size": (3, 4)}) == 12


def _without_totals(limits: Limits):
    """Today's grading before issue 23: no limits on a job's processes together (its memory only counted)."""
    name = f"{cgroups.PREFIX}{os.getpid()}-{next(jobs._JOB_NUMBERS)}"
    folder = cgroups._folder("memory") / name
    folder.mkdir()
    return cgroups.JobGroup(name, "v1", {"memory": str(folder)})


def measure(root: Path, attacker: str, totals: bool) -> dict:
    """Grade ``attacker`` beside honest-a (two workers); the job's peak, the honest time, the least free disk."""
    import threading

    patch = pytest.MonkeyPatch()
    if not totals:
        patch.setattr(jobs, "job_group", _without_totals)
        patch.setattr(jobs.scratch_fs, "available", lambda: False)
    for sid in (attacker, "honest-a"):
        shutil.rmtree(root / "submitted" / sid, ignore_errors=True)
    write(root, {attacker: ATTACKS[attacker], "honest-a": HONEST["honest-a"]})
    least, done = [shutil.disk_usage(tempfile.gettempdir()).free], threading.Event()

    def watch():
        while not done.wait(0.2):
            least.append(shutil.disk_usage(tempfile.gettempdir()).free)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        results, outcomes = graded_batch(root, [attacker, "honest-a"], patch)
    finally:
        done.set()
        thread.join()
        patch.undo()
    peak = re.search(r"job's memory peak, all its processes together: (\d+) bytes", outcomes[attacker].log)
    why = results[attacker].problem or "; ".join(c.reason for c in results[attacker].cells if c.reason)
    return {"attacker": results[attacker].score, "why": why[:160], "honest": results["honest-a"].score,
            "honest s": round(outcomes["honest-a"].seconds, 1), "attacker s": round(outcomes[attacker].seconds, 1),
            "job peak GB": round(int(peak.group(1)) / 1e9, 2) if peak else None,
            "disk used GB": round((least[0] - min(least)) / 1e9, 2)}


# -- the pieces: control groups, the job's file system, the fallback ---------------------------------

@pytest.mark.serial
@pytest.mark.skipif(cgroups.backend() == "", reason="no cgroups here")
def test_a_job_group_bounds_its_processes_and_leaves_nothing():
    """The student's part holds its limits; its processes (a session of their own) are all killed; nothing remains."""
    import subprocess

    group = cgroups.JobGroup.create(f"{os.getpid()}-unit", student_memory=256 * 1024 ** 2, student_processes=20,
                                    grader_memory=256 * 1024 ** 2, grader_processes=40)
    try:
        child = os.fork()
        if child == 0:  # the job's process: joins, then starts "the student's" processes as course.sandbox does
            try:
                group.join()
                files = cgroups.student_procs_files()
                hog = subprocess.Popen([sys.executable, "-c", "b = b'x' * (512 * 1024 ** 2)"],
                                       preexec_fn=lambda: cgroups.join_files(files))
                hog.wait()
                subprocess.Popen(["setsid", "sh", "-c", "for i in $(seq 40); do sleep 60 & done; sleep 60"],
                                 preexec_fn=lambda: cgroups.join_files(files))
                time.sleep(1)
                os._exit(0 if files and hog.returncode == -9 else 1)
            except BaseException:
                os._exit(2)
        assert os.waitpid(child, 0)[1] == 0
        assert group.oom_kills("student") == 1 and group.oom_kills("grader") == 0
        assert 0 < len(group.pids()) <= 20  # the 40 sleeps did not all start: the student's part has 20 at most
    finally:
        assert group.kill_all()
        group.remove()
    assert not any(Path(f).exists() for f in group.folders.values())


@pytest.mark.serial
@pytest.mark.skipif(not scratch_fs.available(), reason="no mount namespaces here")
def test_a_job_file_system_is_bounded_and_vanishes_with_its_process(tmp_path):
    child = os.fork()
    if child == 0:
        try:
            assert scratch_fs.private_mounts()
            scratch_fs.mount(tmp_path, 8 * 1024 ** 2)
            try:
                (tmp_path / "big").write_bytes(b"x" * (16 * 1024 ** 2))
                os._exit(1)
            except OSError:
                pass
            os._exit(0 if scratch_fs.is_full(tmp_path) else 3)  # killed here: no unmount of our own
        except BaseException:
            os._exit(2)
    assert os.waitpid(child, 0)[1] == 0
    assert str(tmp_path) not in Path("/proc/self/mounts").read_text() and list(tmp_path.iterdir()) == []


def test_without_totals_the_report_says_so(monkeypatch):
    from course import sandbox

    sandbox.protections()  # bubblewrap's check, done before the patches
    monkeypatch.setattr(cgroups, "backend", lambda: "")
    monkeypatch.setattr(scratch_fs, "available", lambda: False)
    text = sandbox.describe_protections()
    assert "GRADED WITHOUT" in text and sandbox.TOTALS.upper() in text and sandbox.DISK.upper() in text
    assert "slow down or stop the grading of its classmates" in text and "fill the disk" in text
    if ISOLATED:  # only what is missing is named: the isolation layers are there
        assert "read the hidden tests" not in text
    assert jobs.job_group(LIMITS) is None  # and the jobs run with the per-process limits alone


def test_v2_limits_are_written_where_v2_reads_them(tmp_path):
    """cgroup v2 is not writable on this machine: check the files its backend writes, in a folder laid out like it."""
    job = tmp_path / "course-job-x"
    (job / "student").mkdir(parents=True)
    group = cgroups.JobGroup("course-job-x", "v2", {"unified": str(job)})
    group._set_limits(2 * 1024 ** 3, 100, 4 * 1024 ** 3, 50)
    assert (job / "memory.max").read_text() == str(6 * 1024 ** 3) and (job / "pids.max").read_text() == "150"
    assert (job / "student" / "memory.max").read_text() == str(2 * 1024 ** 3)
    assert (job / "student" / "pids.max").read_text() == "100"
    (job / "student" / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (job / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 3\n")
    assert group.oom_kills("student") == 1 and group.oom_kills("grader") == 2


def main() -> None:
    """Before/after figures: each attack beside an honest student, without the totals and with them."""
    from course.build import build_release

    print(f"protections: {protections()}")
    root = Path(tempfile.mkdtemp(prefix="totals-measure-"))
    try:
        shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
        shutil.copytree(ROOT / "source", root / "source")
        build_release(root, A)
        write(root, HONEST)
        print("honest-a alone:", {s: o.seconds for s, o in graded_batch(root, ["honest-a"])[1].items()})
        for attacker in sys.argv[1:] or sorted(ATTACKS):
            for totals in (False, True):
                print(attacker, "with totals" if totals else "without totals", measure(root, attacker, totals),
                      flush=True)
        for code, label in ((HUGE_DRAW, "3.5 GB draw"), (BROADCAST_DRAW, "broadcast draw"), (LYING_SIZE, "lying size")):
            for cap in (10 ** 12, None):
                out, grew = draws(code, cap)
                print(label, "without cap" if cap else "with cap", f"grader grew {grew / 1e9:.2f} GB;",
                      out["hidden_he_init"][:120], flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
