"""``course bench``: the course's speed on this machine, measured (never asserted by a test).

1. every solution notebook executed headless: seconds and the kernel's peak memory, and the total;
2. autograding N synthetic correct submissions: sequential ``nbgrader autograde`` vs this course's
   parallel grader, and one submission's grading cost vs executing its notebook;
3. one training step of the library's network vs the same architecture in PyTorch (float64, float32).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import numpy as np

from course.build import source_notebook
from course.notebooks import grade_id, is_solution, read_notebook, reference_answers, solution_notebook
from course.paths import assignments


class PeakMemory:
    """Samples the resident memory of a process and its children every 20 ms; ``peak`` in bytes."""

    def __init__(self, pid_fn):
        self.pid_fn, self.peak, self._stop = pid_fn, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil
        while not self._stop.is_set():
            try:
                pid = self.pid_fn()
                if pid:
                    proc = psutil.Process(pid)
                    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                    self.peak = max(self.peak, rss)
            except Exception:  # the kernel starts or exits between two samples
                pass
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_notebook_measured(nb: nbformat.NotebookNode, cwd: Path) -> tuple[float, int]:
    """Execute a notebook in a fresh kernel: (seconds including kernel start, peak kernel memory in bytes)."""
    from nbclient import NotebookClient

    from course.build import ipc_kernel_config

    with ipc_kernel_config() as config:
        client = NotebookClient(nb, config=config, timeout=600, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(cwd)}})

        def kernel_pid():
            km = client.km
            prov = getattr(km, "provisioner", None) if km is not None else None
            return getattr(getattr(prov, "process", None), "pid", None)

        start = time.perf_counter()
        with PeakMemory(kernel_pid) as mem:
            client.execute()
        return time.perf_counter() - start, mem.peak


def bench_notebooks(root: Path, names: list[str], progress: bool = True) -> list[tuple[str, float, int]]:
    from tqdm.auto import tqdm

    rows = []
    for name in tqdm(names, desc="notebooks", disable=not progress):
        nb = solution_notebook(read_notebook(source_notebook(root, name)))
        with tempfile.TemporaryDirectory() as tmp:
            seconds, peak = run_notebook_measured(nb, Path(tmp))
        rows.append((name, seconds, peak))
    return rows


def filled_submission(root: Path, assignment: str) -> nbformat.NotebookNode:
    """The release notebook with every solution cell answered by the source's solution (a correct student)."""
    src = read_notebook(source_notebook(root, assignment))
    answers = reference_answers(src)
    nb = read_notebook(root / "release" / assignment / f"{assignment}.ipynb")
    for cell in nb.cells:
        if is_solution(cell):
            cell.source = answers[grade_id(cell)]
    return nb


def bench_grading(root: Path, assignment: str, n: int, workers: int) -> dict[str, float]:
    """Sequential ``nbgrader autograde`` vs the parallel grader on ``n`` copies of a correct submission."""
    from course import grade
    from course.build import build_release
    from course.jobs import make_job, run_job
    from course.nbgrader_run import run_nbgrader

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        scratch = Path(tmp)
        shutil.copy2(root / "nbgrader_config.py", scratch / "nbgrader_config.py")
        shutil.copytree(root / "source" / assignment, scratch / "source" / assignment)
        build_release(scratch, assignment)
        nb = filled_submission(scratch, assignment)
        students = [f"s{i:03d}" for i in range(n)]
        for sid in students:
            dest = scratch / "submitted" / sid / assignment
            dest.mkdir(parents=True)
            nbformat.write(nb, dest / f"{assignment}.ipynb")

        start = time.perf_counter()
        run_nbgrader(scratch, "autograde", assignment, "--force")
        out["sequential_nbgrader_s"] = time.perf_counter() - start

        start = time.perf_counter()
        problems = grade.autograde(scratch, assignment, students, workers=workers, progress=False)
        out["parallel_s"] = time.perf_counter() - start
        out["parallel_failures"] = float(len(problems))

        start = time.perf_counter()
        grade.autograde(scratch, assignment, students, workers=workers, progress=False, trusted=False)
        out["parallel_no_trusted_rerun_s"] = time.perf_counter() - start

        one = run_job(make_job(scratch, assignment, students[0]))  # warm: nbgrader imported here already
        out["grade_one_s"] = one.seconds
        with tempfile.TemporaryDirectory() as run_dir:
            out["execute_one_s"], _ = run_notebook_measured(filled_submission(scratch, assignment), Path(run_dir))
    return out


def bench_training_step(sizes=(784, 512, 512, 10), batch: int = 256, repeats: int = 30) -> dict[str, float]:
    """Median seconds of one training step (forward, backward, SGD update), library vs PyTorch."""
    import torch

    from nnlab.network import FullyConnectedNet
    from nnlab.optim import sgd

    out = {}
    for dtype, tdtype in ((np.float64, torch.float64), (np.float32, torch.float32)):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((batch, sizes[0])).astype(dtype)
        y = rng.integers(0, sizes[-1], size=batch)
        net = FullyConnectedNet(list(sizes), rng=rng, dtype=dtype)
        configs = {k: {"learning_rate": 1e-3} for k in net.params}

        def lib_step():
            _, grads = net.loss(X, y)
            for k, w in net.params.items():
                net.params[k], configs[k] = sgd(w, grads[k], configs[k])

        layers = []
        for i in range(len(sizes) - 1):
            layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers).to(tdtype)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)
        loss_fn = torch.nn.CrossEntropyLoss()

        def torch_step():
            opt.zero_grad()
            loss_fn(model(tX), ty).backward()
            opt.step()

        name = np.dtype(dtype).name
        out[f"nnlab_{name}_ms"] = _median_time(lib_step, repeats) * 1e3
        out[f"torch_{name}_ms"] = _median_time(torch_step, repeats) * 1e3
        out[f"ratio_{name}"] = out[f"nnlab_{name}_ms"] / out[f"torch_{name}_ms"]
    return out


def _median_time(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_bench(root: Path, *, submissions: int = 8, workers: int | None = None, assignment: str | None = None,
              skip: tuple[str, ...] = ()) -> str:
    """Run the benchmarks and return the report as text."""
    workers = workers or os.cpu_count() or 1
    assignment = assignment or assignments(root)[0]
    lines = [f"course bench on {os.cpu_count()} cores", ""]
    if "notebooks" not in skip:
        rows = bench_notebooks(root, assignments(root))
        lines += ["Solution notebooks, executed headless (target: each <= 30 s, <= 1 GB; total <= 180 s)",
                  f"  {'notebook':<24} {'seconds':>8} {'peak MB':>8}"]
        lines += [f"  {n:<24} {s:>8.1f} {m / 1e6:>8.0f}" for n, s, m in rows]
        lines += [f"  {'total':<24} {sum(r[1] for r in rows):>8.1f} {max(r[2] for r in rows) / 1e6:>8.0f} (max)", ""]
    if "grading" not in skip:
        g = bench_grading(root, assignment, submissions, workers)
        ratio = g["sequential_nbgrader_s"] / g["parallel_s"]
        lines += [f"Autograding {submissions} correct submissions of {assignment}",
                  f"  sequential `nbgrader autograde`: {g['sequential_nbgrader_s']:6.1f} s "
                  f"({g['sequential_nbgrader_s'] / submissions:.2f} s/submission)",
                  f"  course grade --workers {workers}:      {g['parallel_s']:6.1f} s "
                  f"({g['parallel_s'] / submissions:.2f} s/submission)   speed-up {ratio:.2f}x (target >= 1.8x)"
                  "  [sandbox + trusted re-run]",
                  f"  same, --no-trusted-rerun:         {g['parallel_no_trusted_rerun_s']:6.1f} s "
                  f"({g['parallel_no_trusted_rerun_s'] / submissions:.2f} s/submission)   speed-up "
                  f"{g['sequential_nbgrader_s'] / g['parallel_no_trusted_rerun_s']:.2f}x  [sandbox only]",
                  f"  one submission: graded in {g['grade_one_s']:.1f} s vs executing its notebook in "
                  f"{g['execute_one_s']:.1f} s: {g['grade_one_s'] / g['execute_one_s']:.2f}x (target <= 1.3x)", ""]
    if "training" not in skip:
        t = bench_training_step()
        lines += ["One training step, [784, 512, 512, 10], batch 256 (median ms)",
                  f"  float64: nnlab {t['nnlab_float64_ms']:.2f}  torch {t['torch_float64_ms']:.2f}  "
                  f"ratio {t['ratio_float64']:.2f} (target <= 1.0)",
                  f"  float32: nnlab {t['nnlab_float32_ms']:.2f}  torch {t['torch_float32_ms']:.2f}  "
                  f"ratio {t['ratio_float32']:.2f} (target <= 1.5)"]
    return "\n".join(lines)
