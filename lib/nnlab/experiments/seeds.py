"""Runs repeated over seeds: run in parallel where the platform can fork, summarized by their spread.

A conclusion drawn from one seed is a conclusion about that seed; the experiments repeat each run over a few
seeds and report the mean and the range. The runs are independent and deterministic given their seed, so
running them in worker processes changes nothing in the results, only the wall time.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

_JOBS: list[Callable[[], Any]] = []


def _run(i: int) -> Any:
    return _JOBS[i]()


def run_all(jobs: Sequence[Callable[[], Any]], processes: int | None = None) -> list[Any]:
    """The results of ``job()`` for each job, in order.

    With ``processes`` > 1 (default: the machine's cores, at most one per job) the jobs run in forked
    worker processes: a job need not be picklable (it is inherited through the fork: a student's function
    or a lambda is fine), its result must be. Where fork is unavailable or refused (Windows, a sandbox
    that limits processes) the jobs run one after the other, with the same results. A job's exception is
    raised here; a worker that dies (killed, ``os._exit``) raises ``BrokenProcessPool`` rather than hanging.
    """
    global _JOBS
    jobs = list(jobs)
    n = min(len(jobs), processes if processes is not None else (os.cpu_count() or 1))
    if n <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [job() for job in jobs]
    _JOBS = jobs
    try:
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as pool:
            try:
                futures = [pool.submit(_run, i) for i in range(len(jobs))]
            except OSError:  # no processes allowed here: the same runs, serially
                return [job() for job in jobs]
            return [f.result() for f in futures]
    finally:
        _JOBS = []


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """``(mean, min, max)`` of the values."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.min()), float(v.max())


def format_spread(values: Sequence[float], fmt: str = ".3g") -> str:
    """``"0.0087 (0.0080 to 0.0095)"``: the mean and, in parentheses, the range over the runs."""
    mean, lo, hi = spread(values)
    return f"{mean:{fmt}} ({lo:{fmt}} to {hi:{fmt}})"
