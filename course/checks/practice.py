"""Hidden tests for notebook 08: initial loss, update ratio, log-uniform sampling, random search, ensembles.

Values are compared with the library's references (:mod:`nnlab.practice`); random draws are judged by their
distribution (a Kolmogorov-Smirnov distance with a bound that a correct sampler exceeds with probability below
1e-6, and that every known wrong sampler exceeds by far), never by one particular sequence of draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from course.testing import (call, check_array, check_close, check_scalar, check_unchanged, describe, diagnose, fail,
                            snapshot)
from nnlab import practice as ref


# --------------------------------------------------------------------------- shared helpers

def _ks_uniform(values: np.ndarray, low: float, high: float) -> float:
    """Kolmogorov-Smirnov distance between the values' empirical CDF and the uniform one on [low, high]."""
    u = np.sort((np.asarray(values, dtype=np.float64) - low) / (high - low))
    n = len(u)
    return float(max(np.max(np.arange(1, n + 1) / n - u), np.max(u - np.arange(n) / n)))


def _ks_bound(n: int) -> float:
    """A KS distance that a correct sampler of n values exceeds with probability below 1e-6."""
    return math.sqrt(-0.5 * math.log(0.5e-6) / n) + 1e-9


def _check_uses_rng(draw: Callable[[np.random.Generator], Any], name: str, what: str) -> None:
    """``draw(rng)`` depends on ``rng`` only: same seed -> same result whatever np.random's state, other seed -> other."""
    state = np.random.get_state()
    try:
        np.random.seed(1)
        a = draw(np.random.default_rng(5))
        np.random.seed(2)
        b = draw(np.random.default_rng(5))
        if not _same(a, b):
            np.random.seed(1)
            if _same(a, draw(np.random.default_rng(5))):
                fail(f"{name} draws from the global np.random (np.random.uniform, np.random.rand, ...) instead of "
                     f"the rng argument: the same rng gave different {what} after np.random.seed changed. Use "
                     "rng.uniform(...) or rng.random(...), so that one seed reproduces a run.")
            fail(f"{name} is not reproducible: two generators seeded alike gave different {what}. Draw from the "
                 "rng argument, not from a fresh np.random.default_rng() created inside the function.")
        if _same(a, draw(np.random.default_rng(6))):
            fail(f"{name} ignores `rng`: generators with different seeds gave the same {what} (a fixed seed inside "
                 "the function?). Draw from the rng argument.")
    finally:
        np.random.set_state(state)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)))
    except (TypeError, ValueError):
        return a == b


# --------------------------------------------------------------------------- expected_initial_loss

def check_expected_initial_loss(expected_initial_loss: Callable) -> None:
    """log(C), natural log, for many C (2 to 1000), as one number."""
    name = "expected_initial_loss"
    for C in (2, 3, 5, 7, 10, 26, 100, 1000):
        got = check_scalar(call(expected_initial_loss, C, name=name), what=f"{name}({C})")
        hint = diagnose(got, [
            (math.log10(C), f"{name} uses log10; the cross-entropy uses the natural logarithm (np.log): log(C)."),
            (math.log2(C), f"{name} uses log2; the cross-entropy uses the natural logarithm (np.log): log(C)."),
            (1 / C, f"{name} returns 1/C, the probability of each class at the start; the loss of that prediction "
                    "is -log(1/C) = log(C)."),
            (-math.log(C), f"{name} has the wrong sign: the loss -log(1/C) is +log(C), a positive number."),
            (math.log(1 / C) if C > 1 else None, f"{name} returns log(1/C); the loss is -log(1/C) = log(C)."),
            (float(C), f"{name} returns C; the loss is log(C)."),
            (math.log(C - 1), f"{name} returns log(C - 1); every one of the C classes gets probability 1/C, "
                              "so the loss is log(C)."),
        ], rtol=1e-9, atol=0)
        check_close(got, ref.expected_initial_loss(C), what=f"{name}({C})", rtol=1e-9, atol=0, hint=hint)


# --------------------------------------------------------------------------- update_ratio

UPDATE_CASES = [  # (shape, dtype, scale of w, scale of the step)
    ((64, 100), np.float64, 0.1, 1e-4),
    ((3,), np.float64, 1.0, 0.5),
    ((1, 1), np.float64, 2.0, 1e-3),
    ((5, 4), np.float32, 1.0, 1e-2),
    ((2, 3, 4), np.float64, 3.0, 1.0),
    ((10,), np.float64, 1e-3, 1e-6),
]


def check_update_ratio(update_ratio: Callable) -> None:
    """||w_next - w|| / ||w|| (Frobenius norms over all entries) for many shapes and dtypes, inputs unchanged."""
    name = "update_ratio"
    rng = np.random.default_rng(800)
    for shape, dtype, scale, step in UPDATE_CASES:
        w = (scale * rng.standard_normal(shape)).astype(dtype)
        w_next = (w + step * rng.standard_normal(shape)).astype(dtype)
        before = snapshot(w, w_next)
        got = check_scalar(call(update_ratio, w, w_next, name=name),
                           what=f"{name}({describe(w)}, {describe(w_next)})")
        check_unchanged(before, [w, w_next], ["w", "w_next"], fn_name=name)
        w64, n64 = w.astype(np.float64), w_next.astype(np.float64)
        d = n64 - w64
        norm = np.linalg.norm
        hint = diagnose(got, [
            (norm(d) / norm(n64), f"{name} divides by the norm of the new weights `w_next`; the ratio compares the "
                                  "update with the weights it is applied to: ||w_next - w|| / ||w||."),
            (norm(w64) / norm(d), f"{name} is upside down: ||w_next - w|| / ||w||, the update over the weights."),
            *[(diff / norm(w64), f"{name} takes the difference of the norms, ||w_next|| - ||w||; take the norm of the "
               "difference, ||w_next - w|| (an update can move every entry without changing the norm).")
              for diff in (norm(n64) - norm(w64), abs(norm(n64) - norm(w64)))],
            ((norm(d) / norm(w64)) ** 2, f"{name} divides squared norms; use the norms themselves "
                                         "(np.linalg.norm, the square root of the sum of squares)."),
            (np.mean(np.abs(d)) / np.mean(np.abs(w64)), f"{name} compares mean absolute values; use the Frobenius "
             "norms, np.linalg.norm(w_next - w) / np.linalg.norm(w)."),
            (abs(np.sum(d)) / abs(np.sum(w64)), f"{name} divides plain sums; use the norms, "
                                                "np.linalg.norm(w_next - w) / np.linalg.norm(w)."),
            (norm(d), f"{name} returns ||w_next - w|| without dividing by ||w||."),
        ], rtol=1e-4 if dtype == np.float32 else 1e-9, atol=0)
        check_close(got, ref.update_ratio(w, w_next), what=f"{name}({describe(w)}, {describe(w_next)})",
                    rtol=1e-4 if dtype == np.float32 else 1e-9, atol=0, hint=hint)
    w = np.array([[3.0, 0.0], [0.0, 4.0]])
    rotated = np.array([[0.0, 3.0], [4.0, 0.0]])  # same norm, a large update
    check_close(call(update_ratio, w, rotated, name=name), math.sqrt(50) / 5,
                what=f"{name} for an update that keeps the norm of w (entries moved)", rtol=1e-9,
                hint=f"{name} must measure the norm of the difference, not the difference of the norms.")


# --------------------------------------------------------------------------- sample_log_uniform

LOG_RANGES = [(1e-4, 1e-1), (1e-6, 1e2), (0.5, 2.0), (3.0, 3000.0)]


def _log_uniform_mistakes(values: np.ndarray, low: float, high: float, name: str) -> str:
    """Why a batch of draws is not log-uniform on [low, high], in a student's words ("" if not recognized)."""
    v = np.asarray(values, dtype=np.float64)
    lo10, hi10, lo_e, hi_e = math.log10(low), math.log10(high), math.log(low), math.log(high)
    if np.all((v >= min(lo10, lo_e) - 1e-9) & (v <= max(hi10, hi_e) + 1e-9)) and np.any(v < low):
        return (f"{name} returns the exponents (values between log(low) and log(high)); exponentiate them back: "
                "np.exp(u) for u drawn between np.log(low) and np.log(high) (or 10 ** u with np.log10).")
    if np.all((v >= math.exp(lo10) - 1e-12) & (v <= math.exp(hi10) + 1e-12)) and \
            _ks_uniform(np.log(v), lo10, hi10) < 0.05:
        return (f"{name} mixes bases: it draws between np.log10(low) and np.log10(high) but exponentiates with "
                "np.exp. Use the same base both ways (np.log with np.exp, or np.log10 with 10 **).")
    if np.all(v > 0) and np.all((v >= 10 ** lo_e - 1e-12) & (v <= 10 ** hi_e + 1e-12)) and \
            _ks_uniform(np.log(v) / math.log(10), lo_e, hi_e) < 0.05:
        return (f"{name} mixes bases: it draws between np.log(low) and np.log(high) but exponentiates with 10 **. "
                "Use the same base both ways (np.log with np.exp, or np.log10 with 10 **).")
    if np.all((v >= low) & (v <= high)) and _ks_uniform(v, low, high) < 0.05:
        return (f"{name} samples uniformly between low and high; on [1e-4, 1e-1] almost every draw then lands in "
                "the top decade. Draw the exponent uniformly and exponentiate: np.exp(rng.uniform(np.log(low), "
                "np.log(high))).")
    return ""


def check_sample_log_uniform(sample_log_uniform: Callable) -> None:
    """Log-uniform on [low, high] for several ranges (KS test on log values), shapes from `size`, a float for
    size=None, reproducible from `rng` and independent of np.random."""
    name = "sample_log_uniform"
    n = 20000
    for i, (low, high) in enumerate(LOG_RANGES):
        what = f"{name}({low:g}, {high:g}, rng, size={n})"
        values = check_array(call(sample_log_uniform, low, high, np.random.default_rng(810 + i), size=n, name=name),
                             what=what, shape=(n,))
        hint = _log_uniform_mistakes(values, low, high, name)
        if hint:
            fail(f"{what}: {hint}")
        if np.any(values < low) or np.any(values > high):
            fail(f"{what} returned values outside [low, high] = [{low:g}, {high:g}] (from {values.min():.3g} to "
                 f"{values.max():.3g}).")
        d = _ks_uniform(np.log(values), math.log(low), math.log(high))
        if d > _ks_bound(n):
            decade = np.mean(np.log10(values) < math.log10(low) + (math.log10(high) - math.log10(low)) / 2)
            fail(f"{what}: the logarithms of the values are not uniform between log(low) and log(high) "
                 f"(Kolmogorov-Smirnov distance {d:.3f}; a correct sampler stays below {_ks_bound(n):.3f}). "
                 f"{100 * decade:.0f}% of the values lie in the lower half of the log range, where half belong.")
    for size, shape in ((5, (5,)), ((2, 3), (2, 3)), (1, (1,))):
        check_array(call(sample_log_uniform, 1e-3, 1.0, np.random.default_rng(820), size=size, name=name),
                    what=f"{name}(1e-3, 1, rng, size={size!r})", shape=shape)
    one = call(sample_log_uniform, 1e-3, 1.0, np.random.default_rng(821), name=name)
    value = check_scalar(one, what=f"{name}(1e-3, 1, rng) (size=None: a single number)")
    if np.ndim(one) != 0:
        fail(f"{name}(1e-3, 1, rng) with size=None should return one number, but it returned an array of shape "
             f"{np.shape(one)}; pass size through to the generator (rng.uniform(a, b, size=size)).")
    if not 1e-3 <= value <= 1.0:
        fail(f"{name}(1e-3, 1, rng) returned {value:g}, outside [1e-3, 1].")
    _check_uses_rng(lambda rng: call(sample_log_uniform, 1e-4, 1.0, rng, size=50, name=name), name, "values")


# --------------------------------------------------------------------------- random_search

SPACE = {"learning_rate": (1e-5, 1e-1, "log"), "dropout_keep": (0.3, 0.9, "linear"), "lam": (1e-6, 1e-2, "log")}


class _Recorder:
    """A ``train_fn`` that records every config it is called with and returns a distinct score for each."""

    def __init__(self, space: Mapping[str, tuple[float, float, str]]) -> None:
        self.space, self.calls = space, []

    def __call__(self, config: Any) -> float:
        if not isinstance(config, Mapping):
            fail(f"random_search called train_fn with {type(config).__name__}; call it with a dict name -> value "
                 "(one entry per dimension of `space`).")
        self.calls.append(dict(config))
        return self.score(config)

    def score(self, config: Mapping) -> float:
        score = 0.0
        for k, (low, high, scale) in self.space.items():
            v = config.get(k)
            if isinstance(v, (int, float, np.integer, np.floating)) and v > 0:
                t = (math.log(v) - math.log(low)) / (math.log(high) - math.log(low)) if scale == "log" else \
                    (v - low) / (high - low)
                score -= (t - 0.37) ** 2  # best near 37% of each range
        return score


def _search(random_search: Callable, space: Mapping, n_trials: int, rng: np.random.Generator
            ) -> tuple[list, _Recorder]:
    name = "random_search"
    train_fn = _Recorder(space)
    space_before = {k: tuple(v) for k, v in space.items()}
    results = call(random_search, train_fn, space, n_trials, rng, name=name)
    if {k: tuple(v) for k, v in space.items()} != space_before:
        fail(f"{name} changed its argument `space`; leave the caller's dict as it is.")
    if not isinstance(results, (list, tuple)):
        fail(f"{name} should return a list of (config, score) pairs, but it returned {type(results).__name__}.")
    results = list(results)
    if len(train_fn.calls) != n_trials:
        fail(f"{name}(train_fn, space, n_trials={n_trials}, rng) called train_fn {len(train_fn.calls)} times; "
             "call it exactly once per trial.")
    if len(results) != n_trials:
        fail(f"{name} returned {len(results)} results for n_trials={n_trials}; return one (config, score) pair per "
             "trial.")
    for item in results:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], Mapping)):
            fail(f"{name} should return pairs (config, score) with config a dict; one item is {item!r:.80}.")
    return results, train_fn


def check_random_search(random_search: Callable) -> None:
    """n_trials distinct configs, each evaluated once; log and linear dimensions sampled right (KS tests);
    pairs (config, score) sorted best first; reproducible from `rng`, independent of np.random."""
    name = "random_search"
    results, train_fn = _search(random_search, SPACE, 12, np.random.default_rng(830))
    for config in train_fn.calls:
        if set(config) != set(SPACE):
            missing, extra = sorted(set(SPACE) - set(config)), sorted(set(config) - set(SPACE))
            fail(f"{name} called train_fn with the keys {sorted(config)}; every config has exactly the names of "
                 f"`space` ({sorted(SPACE)})" + (f"; missing {missing}" if missing else "") +
                 (f"; extra {extra}" if extra else "") + ".")
        for k, (low, high, _) in SPACE.items():
            v = config[k]
            if not isinstance(v, (int, float, np.integer, np.floating)) or not low <= float(v) <= high:
                fail(f"{name} gave train_fn {k}={v!r}, outside its range [{low:g}, {high:g}].")
    distinct = {tuple(sorted(c.items())) for c in train_fn.calls}
    if len(distinct) < len(train_fn.calls):
        fail(f"{name} evaluated the same configuration more than once: draw a new config for every trial "
             "(inside the loop over n_trials).")
    scores = [check_scalar(s, what=f"the score in a pair returned by {name}") for _, s in results]
    by_config = {tuple(sorted(c.items())): train_fn.score(c) for c in train_fn.calls}
    for config, score in results:
        key = tuple(sorted(dict(config).items()))
        if key not in by_config:
            fail(f"{name} returned a config that train_fn was never called with: {dict(config)!r:.120}. Return "
                 "each config together with the score train_fn gave it.")
        if not np.isclose(score, by_config[key], rtol=1e-12, atol=1e-12):
            fail(f"{name} pairs a config with a score that is not the one train_fn returned for it; keep each "
                 "(config, score) together when sorting.")
    if scores == sorted(scores):
        fail(f"{name} returns the worst configuration first (sorted ascending); the best (highest score) comes "
             "first: sorted(results, key=lambda r: r[1], reverse=True).")
    if scores != sorted(scores, reverse=True):
        fail(f"{name} does not sort its results by score, highest first: sort the (config, score) pairs with "
             "sorted(results, key=lambda r: r[1], reverse=True).")

    n = 1500
    results, train_fn = _search(random_search, SPACE, n, np.random.default_rng(831))
    for k, (low, high, scale) in SPACE.items():
        values = np.array([float(c[k]) for c in train_fn.calls])
        if scale == "log":
            d = _ks_uniform(np.log(values), math.log(low), math.log(high))
            if d > _ks_bound(n):
                hint = _log_uniform_mistakes(values, low, high, name)
                fail(f"{name}: the values of the log dimension {k!r} ({low:g} to {high:g}) are not log-uniform "
                     f"(Kolmogorov-Smirnov distance {d:.3f} over {n} trials). " +
                     (hint or "Draw them with sample_log_uniform(low, high, rng)."))
        else:
            d = _ks_uniform(values, low, high)
            if d > _ks_bound(n):
                why = ("it samples this linear dimension on a log scale: draw it with rng.uniform(low, high)"
                       if _ks_uniform(np.log(values), math.log(low), math.log(high)) < _ks_bound(n) else
                       "draw it with rng.uniform(low, high)")
                fail(f"{name}: the values of the linear dimension {k!r} ({low:g} to {high:g}) are not uniform "
                     f"(Kolmogorov-Smirnov distance {d:.3f} over {n} trials): {why}.")
    for space in ({"lr": (1e-3, 1.0, "log")}, {"momentum": (0.5, 0.99, "linear")}):
        results, train_fn = _search(random_search, space, 3, np.random.default_rng(832))
        for config in train_fn.calls:
            if set(config) != set(space):
                fail(f"{name} with space {space!r} called train_fn with the keys {sorted(config)}; use the names of "
                     "the space it is given.")
    results, _ = _search(random_search, SPACE, 1, np.random.default_rng(833))

    def draw(rng: np.random.Generator) -> list:
        return [dict(c) for c, _ in _search(random_search, SPACE, 5, rng)[0]]
    _check_uses_rng(draw, name, "configurations")


# --------------------------------------------------------------------------- ensemble_predict

ENSEMBLE_CASES = [  # (members M, samples N, classes C, dtype)
    (5, 7, 10, np.float64),
    (2, 1, 2, np.float64),
    (1, 4, 3, np.float64),
    (3, 6, 4, np.float32),
    (4, 30, 10, np.float64),
]


def _probabilities(rng: np.random.Generator, N: int, C: int, dtype: Any, sharp: float = 2.0) -> np.ndarray:
    z = sharp * rng.standard_normal((N, C))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(dtype)


def check_ensemble_predict(ensemble_predict: Callable) -> None:
    """The mean of the members' probabilities, for 1 to 5 members, one sample or many, float32 and float64;
    shape (N, C) and the members' dtype; members unchanged."""
    name = "ensemble_predict"
    rng = np.random.default_rng(840)
    for M, N, C, dtype in ENSEMBLE_CASES:
        members = [_probabilities(rng, N, C, dtype) for _ in range(M)]
        before = snapshot(*members)
        what = f"{name}(a list of {M} arrays ({N}, {C}), {np.dtype(dtype)})"
        got = call(ensemble_predict, members, name=name)
        check_unchanged(before, members, [f"probs_list[{i}]" for i in range(M)], fn_name=name)
        stack = np.stack([m.astype(np.float64) for m in members])
        expected = ref.ensemble_predict(members)
        if isinstance(got, np.ndarray) and got.shape == (N,):
            fail(f"{what} returned shape ({N},), one label per sample; return the averaged probabilities, shape "
                 f"({N}, {C}) (the predicted class is their argmax, taken later).")
        votes = np.zeros((N, C))
        for m in stack:
            votes[np.arange(N), m.argmax(axis=1)] += 1 / M
        geo = np.exp(np.log(stack).mean(axis=0))
        logit_mean = np.log(stack).mean(axis=0)
        prod = stack.prod(axis=0)
        hint = diagnose(got, [
            (votes, f"{name} averages the members' predicted labels (one-hot votes); average their probabilities, "
                    "which keeps how sure each member is."),
            (geo / geo.sum(axis=1, keepdims=True) if M > 1 else None,
             f"{name} averages log-probabilities (logits) and normalizes again (a geometric mean); the ensemble's "
             "probabilities are the plain mean of the members' probabilities."),
            (logit_mean if M > 1 else None, f"{name} averages log-probabilities (logits); average the probabilities."),
            (prod if M > 1 else None, f"{name} multiplies the members' probabilities; average them (their mean)."),
            (prod / prod.sum(axis=1, keepdims=True) if M > 1 else None,
             f"{name} multiplies the members' probabilities and normalizes; the asked ensemble is their mean."),
            (stack.sum(axis=0) if M > 1 else None, f"{name} sums the members' probabilities without dividing by "
                                                  "the number of members: the rows must sum to 1."),
            (np.median(stack, axis=0) if M > 2 else None, f"{name} takes the median; average (np.mean) instead."),
            (stack.max(axis=0) if M > 1 else None, f"{name} takes the largest probability of any member; average "
                                                   "them instead."),
            (stack.mean(axis=1) if N > 1 and M == N else None, f"{name} averages over the wrong axis."),
        ], rtol=1e-5 if dtype == np.float32 else 1e-9, atol=1e-9)
        check_array(got, what=what, shape=(N, C), dtype=dtype)
        check_close(got, expected, what=what, rtol=1e-5 if dtype == np.float32 else 1e-9, atol=1e-7, hint=hint)


# Named mistakes (course.mistakes): identifier -> a phrase of its message above.
MISTAKES = {
    "expected_initial_loss:log10": "log10",
    "expected_initial_loss:log2": "log2",
    "expected_initial_loss:one-over-c": "returns 1/C",
    "expected_initial_loss:log-of-one-over-c": "log(1/C)",
    "expected_initial_loss:wrong-sign": "wrong sign",
    "update_ratio:against-the-new-weights": "new weights",
    "update_ratio:difference-of-the-norms": "difference of the norms",
    "update_ratio:mean-absolute-values": "mean absolute values",
    "update_ratio:squared-norms": "squared norms",
    "update_ratio:upside-down": "upside down",
    "update_ratio:not-divided": "without dividing by ||w||",
    "update_ratio:modifies-its-input": "changed its argument",
    "sample_log_uniform:uniform": "samples uniformly",
    "sample_log_uniform:returns-the-exponents": "returns the exponents",
    "sample_log_uniform:mixed-bases": "mixes bases",
    "sample_log_uniform:global-random-state": "global np.random",
    "sample_log_uniform:ignores-rng": "ignores `rng`",
    "sample_log_uniform:array-for-size-none": "one number",
    "sample_log_uniform:out-of-range": "outside [low, high]",
    "random_search:worst-first": "worst configuration first",
    "random_search:one-config-many-times": "same configuration more than once",
    "random_search:wrong-keys": "exactly the names of",
    "random_search:linear-on-log-scale": "on a log scale",
    "random_search:log-on-linear-scale": "samples uniformly",
    "random_search:not-sorted": "does not sort",
    "random_search:scores-apart-from-configs": "keep each",
    "random_search:global-random-state": "global np.random",
    "random_search:not-pairs": "pairs (config, score)",
    "random_search:calls-per-trial": "times; call it exactly once per trial",
    "ensemble_predict:votes-on-labels": "predicted labels",
    "ensemble_predict:returns-labels": "one label per sample",
    "ensemble_predict:product": "multiplies",
    "ensemble_predict:averages-logits": "log-probabilities",
    "ensemble_predict:sum": "without dividing",
    "ensemble_predict:dtype": "dtype",
    "ensemble_predict:modifies-members": "changed its argument",
}
