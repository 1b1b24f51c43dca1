"""Hidden tests for notebook 02: zeros, small random, Xavier/Glorot and He/Kaiming initialization, init_params.

The random initializers are judged by what they draw, never by one particular sequence of draws:
shapes, reproducibility given ``rng`` (and independence from ``np.random``'s global state), and the
distribution of 100,000 weights: mean 0, a normal's tails (excess kurtosis 0, not a uniform's -1.2)
and the variance of PyTorch's initializers (``torch.nn.init.normal_(w, 0, scale)``,
``xavier_normal_`` and ``kaiming_normal_(mode="fan_in", nonlinearity="relu")``) within 4%, where the
sample variance of a correct answer is within 0.5% (one standard error) and every known wrong
factor is at least 25% away.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course.testing import Mistake, call, check_array, fail

SMALL_SHAPES = [(3, 5), (1, 1), (1, 7), (9, 1), (64, 10)]
# 100,000 weights each, fan_in != fan_out (Xavier's 2/(fan_in+fan_out) is 1/fan_in when they are equal),
# and fan_in/fan_out = 2.5 so that no two known mistakes share a variance.
STAT_SHAPES = [(500, 200), (200, 500)]
VAR_RTOL = 0.04       # about 9 standard errors of the sample variance of 100,000 normal draws
KURTOSIS_TOL = 0.25   # about 16 standard errors; a uniform distribution has excess kurtosis -1.2


def _fans(shape: tuple[int, int]) -> str:
    return f"fan_in={shape[0]}, fan_out={shape[1]}"


def _call_init(fn: Callable, name: str, fan_in: int, fan_out: int, rng: np.random.Generator,
               **kwargs: Any) -> Any:
    try:
        return call(fn, fan_in, fan_out, rng, name=name, **kwargs)
    except Mistake as exc:
        if "as a data type" in str(exc) or "data type not understood" in str(exc):
            fail(f"{exc}. NumPy takes the shape as one tuple: np.zeros((fan_in, fan_out)), "
                 "rng.standard_normal((fan_in, fan_out)).")
        raise


def _check_shape(W: Any, name: str, fan_in: int, fan_out: int) -> np.ndarray:
    what = f"{name}({fan_in}, {fan_out}, rng)"
    if isinstance(W, np.ndarray) and W.shape == (fan_out, fan_in) and fan_in != fan_out:
        fail(f"{what} returned shape {W.shape}: the weights are transposed. In this course samples are rows "
             f"and a layer computes x @ W, so W has shape (fan_in, fan_out) = ({fan_in}, {fan_out}).")
    W = check_array(W, what=what, shape=(fan_in, fan_out))
    if W.dtype.kind != "f":
        fail(f"{what} returned {W.dtype} integers; weights must be floating-point numbers "
             "(np.zeros and rng.standard_normal give float64).")
    return W


def _check_shapes(fn: Callable, name: str, **kwargs: Any) -> None:
    rng = np.random.default_rng(200)
    for fan_in, fan_out in SMALL_SHAPES:
        _check_shape(_call_init(fn, name, fan_in, fan_out, rng, **kwargs), name, fan_in, fan_out)


def _check_uses_rng(fn: Callable, name: str, **kwargs: Any) -> None:
    """Same seed -> same weights whatever np.random's global state; another seed -> other weights."""
    shape = (20, 30)
    state = np.random.get_state()
    try:
        np.random.seed(1)
        a = _check_shape(_call_init(fn, name, *shape, np.random.default_rng(5), **kwargs), name, *shape)
        np.random.seed(2)
        b = _call_init(fn, name, *shape, np.random.default_rng(5), **kwargs)
        if not np.array_equal(a, b):
            np.random.seed(1)
            c = _call_init(fn, name, *shape, np.random.default_rng(5), **kwargs)
            if np.array_equal(a, c):
                fail(f"{name} draws from the global np.random (np.random.randn, np.random.normal, ...) instead "
                     "of the rng argument: the same rng gave different weights after np.random.seed changed. "
                     "Use rng.standard_normal(...) or rng.normal(...), so that one seed reproduces a run.")
            fail(f"{name} is not reproducible: two generators seeded alike gave different weights. Draw from "
                 "the rng argument (rng.standard_normal(...)), not from a fresh np.random.default_rng() "
                 "created inside the function.")
        d = _call_init(fn, name, *shape, np.random.default_rng(6), **kwargs)
        if np.array_equal(a, d):
            fail(f"{name} ignores `rng`: generators with different seeds gave the same weights (a fixed seed "
                 "inside the function?). Draw from the rng argument.")
    finally:
        np.random.set_state(state)
    W = _call_init(fn, name, 64, 10, np.random.default_rng(7), **kwargs)
    W = np.asarray(W)
    if np.unique(W, axis=0).shape[0] < W.shape[0] or np.unique(W, axis=1).shape[1] < W.shape[1]:
        fail(f"{name}(64, 10, rng) repeats values: some rows or columns are identical. Every weight must be an "
             "independent draw (rng.standard_normal((fan_in, fan_out))), not one row or column copied or broadcast.")


def _match(value: float, candidates: Sequence[tuple[float, str]], rtol: float = 0.05) -> str:
    for wrong, message in candidates:
        if wrong > 0 and abs(value / wrong - 1) < rtol:
            return message
    return ""


def _check_distribution(W: np.ndarray, shown: str, shape: tuple[int, int], var: float, formula: str,
                        wrong_variances: Sequence[tuple[float, str]], mean_hint: str = "") -> None:
    """Mean 0, normal tails, variance ``var`` within VAR_RTOL (wrong variances named); ``shown`` is the call."""
    x = np.asarray(W, dtype=np.float64).ravel()
    n = x.size
    m, v = float(x.mean()), float(x.var())
    what = f"the weights of {shown}"
    if v == 0:
        fail(f"{what} are all equal to {m:.3g}; they should be random draws with variance {formula} = {var:.4g}.")
    if abs(m) > 6 * np.sqrt(v / n):
        if x.min() >= 0:
            fail(f"{what} are all positive (mean {m:.3g}): rng.random() and rng.uniform(0, 1) draw from [0, 1). "
                 "Draw from a normal distribution centred at 0: rng.standard_normal(...) times the std.")
        fail(f"{what} have mean {m:.3g}, but they should be centred at 0. {mean_hint}".strip())
    kurtosis = float(np.mean((x - m) ** 4) / v ** 2 - 3)
    spread = float(np.max(np.abs(x - m)) / np.sqrt(v))
    if abs(kurtosis) > KURTOSIS_TOL:
        if kurtosis < -0.9 and spread < 1.9:
            fail(f"{what} look uniformly distributed (excess kurtosis {kurtosis:.2f}, every weight within "
                 f"{spread:.2f} standard deviations of the mean, as for a uniform distribution); this exercise "
                 "asks for a normal distribution: rng.standard_normal(...) times the standard deviation.")
        fail(f"{what} are not normally distributed (excess kurtosis {kurtosis:.2f}, largest weight {spread:.1f} "
             "standard deviations from the mean; a normal sample of this size has about 0 and 4.5). "
             "Use rng.standard_normal(...) times the standard deviation, untruncated.")
    if abs(v / var - 1) > VAR_RTOL:
        hint = _match(v, wrong_variances)
        fail(f"{what} have variance {v:.4g}, but it should be {formula} = {var:.4g} ({_fans(shape)}). "
             f"{hint}".strip())


def _std_as_variance(name: str, formula: str) -> str:
    return (f"{name} passes the variance where NumPy expects the standard deviation: rng.normal(0, s) and "
            f"s * rng.standard_normal(...) take s = sqrt({formula}).")


def check_zeros_init(zeros_init: Callable) -> None:
    """Shape (fan_in, fan_out), float, all zeros, a new array on every call."""
    name = "zeros_init"
    rng = np.random.default_rng(201)
    for fan_in, fan_out in SMALL_SHAPES + [(500, 200)]:
        W = _check_shape(_call_init(zeros_init, name, fan_in, fan_out, rng), name, fan_in, fan_out)
        if np.any(W != 0):
            fail(f"{name}({fan_in}, {fan_out}, rng) has {int(np.count_nonzero(W))} non-zero weights; "
                 "every weight should be 0.")
    a = _call_init(zeros_init, name, 4, 4, rng)
    b = _call_init(zeros_init, name, 4, 4, rng)
    if np.shares_memory(a, b):
        fail(f"{name} returns the same array on every call: two layers of one shape would share their weights, "
             "and updating one would change the other. Return a new array each time (np.zeros(...)).")


def check_random_init(random_init: Callable) -> None:
    """N(0, scale^2): shapes, rng honoured, mean 0, normal tails, std = scale (default 0.01 and others)."""
    name = "random_init"
    _check_shapes(random_init, name)
    _check_shapes(random_init, name, scale=3.0)
    _check_uses_rng(random_init, name)
    _check_uses_rng(random_init, name, scale=0.5)
    for shape, scale, seed in [(STAT_SHAPES[1], 2.5, 211), (STAT_SHAPES[0], None, 210), (STAT_SHAPES[0], 1e-3, 212)]:
        kwargs = {} if scale is None else {"scale": scale}
        s = 0.01 if scale is None else scale
        W = _check_shape(_call_init(random_init, name, *shape, np.random.default_rng(seed), **kwargs), name, *shape)
        label = "the default scale=0.01" if scale is None else f"scale={scale:g}"
        shown = f"{name}({shape[0]}, {shape[1]}, rng" + (")" if scale is None else f", scale={scale:g})")
        wrong = [(0.01 ** 2, f"{name} ignores its `scale` argument: with {label} the standard deviation stays "
                             "0.01. Multiply by scale, not by a fixed 0.01."),
                 (1.0, f"{name} ignores its `scale` argument: the weights have standard deviation 1. "
                       "Multiply the standard normal draws by scale."),
                 (s, f"{name} treats scale as the variance; scale is the standard deviation: "
                     "scale * rng.standard_normal(...) or rng.normal(0, scale, ...).")]
        if scale is None:
            wrong.insert(0, (0.1 ** 2, f"{name}'s default scale is not 0.01: the signature must read "
                                       "random_init(fan_in, fan_out, rng, scale=0.01)."))
        mean_hint = ""
        if abs(float(np.mean(W)) / s - 1) < 0.2:
            mean_hint = (f"The mean equals scale: rng.normal(loc, scale, size) takes the mean first, "
                         f"so call rng.normal(0.0, scale, size).")
        _check_distribution(W, shown, shape, s ** 2, f"scale^2 = {s:g}^2", wrong, mean_hint)


def _xavier_mistakes(name: str, fan_in: int, fan_out: int) -> list[tuple[float, str]]:
    v = 2.0 / (fan_in + fan_out)
    return [
        (1.0 / fan_in, f"{name} uses variance 1/fan_in (LeCun's initialization); Xavier/Glorot averages the "
                       "forward and backward conditions: variance 2/(fan_in + fan_out)."),
        (2.0 / fan_in, f"{name} uses variance 2/fan_in (He's initialization); Xavier/Glorot is "
                       "2/(fan_in + fan_out)."),
        (1.0 / fan_out, f"{name} uses variance 1/fan_out; Xavier/Glorot is 2/(fan_in + fan_out)."),
        (2.0 / fan_out, f"{name} uses variance 2/fan_out; Xavier/Glorot is 2/(fan_in + fan_out)."),
        (1.0 / (fan_in + fan_out), f"{name} uses variance 1/(fan_in + fan_out): the factor 2 is missing; "
                                   "Xavier/Glorot is 2/(fan_in + fan_out)."),
        (4.0 / (fan_in + fan_out), f"{name} uses variance 4/(fan_in + fan_out): the 2 belongs inside the square "
                                   "root, std = sqrt(2/(fan_in + fan_out))."),
        (6.0 / (fan_in + fan_out), f"{name} uses sqrt(6/(fan_in + fan_out)), the bound of Glorot's *uniform* "
                                   "version, as the standard deviation of a normal; the normal version has "
                                   "std sqrt(2/(fan_in + fan_out))."),
        (v ** 2, _std_as_variance(name, "2/(fan_in + fan_out)")),
        (2.0 / fan_in + fan_out, f"{name} has an operator-precedence bug: 2 / fan_in + fan_out means "
                                 "(2 / fan_in) + fan_out; write 2 / (fan_in + fan_out)."),
    ]


def _he_mistakes(name: str, fan_in: int, fan_out: int) -> list[tuple[float, str]]:
    v = 2.0 / fan_in
    return [
        (2.0 / fan_out, f"{name} uses fan_out; He/Kaiming's variance is 2/fan_in, the number of inputs of each "
                        "unit (mode='fan_in' in PyTorch), which keeps the forward signal's variance constant."),
        (1.0 / fan_in, f"{name} uses variance 1/fan_in: the factor 2 is missing (ReLU zeroes half of its inputs, "
                       "so He doubles LeCun's 1/fan_in): variance 2/fan_in."),
        (1.0 / fan_out, f"{name} uses variance 1/fan_out: He/Kaiming is 2/fan_in."),
        (2.0 / (fan_in + fan_out), f"{name} uses Xavier's variance 2/(fan_in + fan_out); He/Kaiming is 2/fan_in."),
        (4.0 / fan_in, f"{name} uses variance 4/fan_in: the 2 belongs inside the square root, "
                       "std = sqrt(2/fan_in)."),
        (6.0 / fan_in, f"{name} uses sqrt(6/fan_in), the bound of He's *uniform* version, as the standard "
                       "deviation of a normal; the normal version has std sqrt(2/fan_in)."),
        (v ** 2, _std_as_variance(name, "2/fan_in")),
    ]


def _check_scheme(fn: Callable, name: str, var_of: Callable[[int, int], float], formula: str,
                  mistakes: Callable[[str, int, int], list[tuple[float, str]]]) -> None:
    _check_shapes(fn, name)
    _check_uses_rng(fn, name)
    for k, shape in enumerate(STAT_SHAPES):
        W = _check_shape(_call_init(fn, name, *shape, np.random.default_rng(220 + k)), name, *shape)
        _check_distribution(W, f"{name}({shape[0]}, {shape[1]}, rng)", shape, var_of(*shape), formula,
                            mistakes(name, *shape))


def check_xavier_init(xavier_init: Callable) -> None:
    """N(0, 2/(fan_in + fan_out)) (torch.nn.init.xavier_normal_): shapes, rng, mean, tails, variance."""
    _check_scheme(xavier_init, "xavier_init", lambda i, o: 2.0 / (i + o), "2/(fan_in + fan_out)", _xavier_mistakes)


def check_he_init(he_init: Callable) -> None:
    """N(0, 2/fan_in) (torch.nn.init.kaiming_normal_, fan_in, relu): shapes, rng, mean, tails, variance."""
    _check_scheme(he_init, "he_init", lambda i, o: 2.0 / i, "2/fan_in", _he_mistakes)


# --------------------------------------------------------------------------- init_params

_MISSING = object()


class _RecordingInit:
    """An initializer that records its calls and returns recognisable weights."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any, Any]] = []
        self.returned: list[np.ndarray] = []

    def __call__(self, fan_in: Any = _MISSING, fan_out: Any = _MISSING, rng: Any = _MISSING) -> np.ndarray:
        if fan_in is _MISSING or fan_out is _MISSING:
            fail("init_params calls init_fn without fan_in and fan_out: call init_fn(fan_in, fan_out, rng).")
        if rng is _MISSING:
            fail("init_params calls init_fn without its rng: pass the generator on, init_fn(fan_in, fan_out, rng), "
                 "so that one seed fixes every layer's weights.")
        self.calls.append((fan_in, fan_out, rng))
        k = len(self.calls)
        # Every call returns different values: W == k + (i * fan_out + j) / 1e4.
        W = k + np.arange(int(fan_in) * int(fan_out), dtype=np.float64).reshape(int(fan_in), int(fan_out)) / 1e4
        self.returned.append(W)
        return W.copy()


def _check_init_params_case(init_params: Callable, layer_sizes: Any) -> None:
    name = "init_params"
    sizes = [int(s) for s in layer_sizes]
    L = len(sizes) - 1
    pairs = list(zip(sizes[:-1], sizes[1:]))
    rng = np.random.default_rng(230)
    recorder = _RecordingInit()
    before = list(layer_sizes)
    params = call(init_params, layer_sizes, recorder, rng, name=name)
    shown = f"{name}({sizes}, init_fn, rng)"
    if list(layer_sizes) != before:
        fail(f"{shown} changed layer_sizes in place; leave the caller's list as it is.")
    if not isinstance(params, dict):
        fail(f"{shown} should return a dict {{'W1': ..., 'b1': ..., ...}}, but it returned {type(params).__name__}.")

    # The calls to init_fn: one per layer, with (fan_in, fan_out) and the rng it was given.
    for fan_in, fan_out, r in recorder.calls:
        if r is not rng:
            if isinstance(r, np.random.Generator):
                fail(f"{shown} passes a new generator to init_fn instead of the rng it was given: pass rng itself, "
                     "so that one seed reproduces every layer (and layers get different draws).")
            fail(f"{shown} passes {type(r).__name__} {r!r} to init_fn where the rng should go: "
                 "call init_fn(fan_in, fan_out, rng).")
    got = sorted((int(i), int(o)) for i, o, _ in recorder.calls)
    if not recorder.calls:
        fail(f"{shown} never calls init_fn: every weight matrix must come from init_fn(fan_in, fan_out, rng).")
    if got == sorted((o, i) for i, o in pairs) and got != sorted(pairs):
        fail(f"{shown} calls init_fn(fan_out, fan_in, rng): the first argument is the layer's input size. "
             f"Layer l gets init_fn(layer_sizes[l-1], layer_sizes[l], rng), expected calls {pairs}.")
    extra = sorted((Counter(got) - Counter(pairs)).elements())
    if len(got) > L and not Counter(pairs) - Counter(got):
        if any(1 in p for p in extra) and all(p not in pairs for p in extra):
            fail(f"{shown} calls init_fn {len(got)} times for {L} layers, also with {extra}: init_fn is for the "
                 "weights only; the biases start at zero (np.zeros(fan_out)).")
        fail(f"{shown} calls init_fn {len(got)} times for {L} layers (again with {extra}): call it once per layer "
             "and keep what it returns.")
    if got != sorted(pairs):
        fail(f"{shown} calls init_fn with (fan_in, fan_out) = {[(int(i), int(o)) for i, o, _ in recorder.calls]}, "
             f"but it should call it once per layer with {pairs}.")

    # The keys.
    expected_keys = {f"{p}{i}" for i in range(1, L + 1) for p in "Wb"}
    keys = set(params)
    if keys != expected_keys:
        if "W0" in keys or "b0" in keys:
            fail(f"{shown} numbers the layers from 0 ({sorted(keys)}); the first layer's parameters are W1 and b1, "
                 f"the last ones W{L} and b{L}.")
        fail(f"{shown} returned the keys {sorted(keys)}, but it should return exactly {sorted(expected_keys)}.")

    # The weights: exactly what init_fn returned for that layer (any order of calls is fine).
    unused = list(zip(recorder.calls, recorder.returned))
    for i, (fan_in, fan_out) in enumerate(pairs, start=1):
        W = params[f"W{i}"]
        if isinstance(W, np.ndarray) and W.shape == (fan_out, fan_in) and fan_in != fan_out:
            fail(f"W{i} from {shown} has shape {W.shape}: it is transposed. Weights have shape (fan_in, fan_out) "
                 f"= ({fan_in}, {fan_out}): keep init_fn's result as it is.")
        W = check_array(W, what=f"W{i} from {shown}", shape=(fan_in, fan_out))
        W64 = np.asarray(W, dtype=np.float64)
        match = next((k for k, ((ci, co, _), R) in enumerate(unused)
                      if (int(ci), int(co)) == (fan_in, fan_out) and np.array_equal(W64, R)), None)
        if match is None:
            fail(f"W{i} from {shown} is not the array init_fn returned for layer {i}: store init_fn(fan_in, "
                 "fan_out, rng) as it is (no scaling, no transposing, no second draw).")
        unused.pop(match)

    # The biases: zeros of shape (fan_out,).
    for i, (fan_in, fan_out) in enumerate(pairs, start=1):
        b = params[f"b{i}"]
        what = f"b{i} from {shown}"
        if isinstance(b, np.ndarray) and b.shape != (fan_out,) and b.size == fan_out:
            fail(f"{what} has shape {b.shape}; biases are 1-D arrays of shape (fan_out,) = ({fan_out},): "
                 "np.zeros(fan_out).")
        b = check_array(b, what=what, shape=(fan_out,))
        if b.dtype.kind != "f":
            fail(f"{what} has dtype {b.dtype}; biases must be floating-point zeros (np.zeros(fan_out)).")
        if np.any(b != 0):
            fail(f"{what} is not zero: the biases start at zero (np.zeros(fan_out)). Random weights already break "
                 "the symmetry between units; random biases only add noise.")
    shared = [k for k in params for j in params if k < j and np.shares_memory(params[k], params[j])]
    if shared:
        fail(f"{shown} returns arrays that share memory ({shared[0]}): every parameter needs its own array.")


def check_init_params(init_params: Callable) -> None:
    """One init_fn(fan_in, fan_out, rng) call per layer with the given rng; W1..WL from it, b1..bL zeros."""
    name = "init_params"
    for layer_sizes in ([5, 7, 3, 2], [3, 1], (4, 4, 4, 4), [2] * 12, [1, 6, 1], np.array([10, 6, 3])):
        _check_init_params_case(init_params, layer_sizes)
    # With a real initializer: reproducible given rng, and different layers get different draws.
    from nnlab.init import he_init  # the reference only stands in for init_fn here
    a = call(init_params, [30, 30, 30], he_init, np.random.default_rng(9), name=name)
    b = call(init_params, [30, 30, 30], he_init, np.random.default_rng(9), name=name)
    for k in a:
        if not np.array_equal(a[k], b[k]):
            fail(f"{name}([30, 30, 30], he_init, rng) is not reproducible: {k} differs between two generators "
                 "seeded alike. Pass the rng you were given to init_fn.")
    if np.array_equal(a["W1"], a["W2"]):
        fail(f"{name}([30, 30, 30], he_init, rng) gives W1 and W2 the same values: every layer must draw new "
             "weights from the same rng (do not create a new generator with a fixed seed per layer).")


# Named mistakes (course.mistakes): identifier -> a phrase of its message above.
MISTAKES = {
    "zeros_init:transposed-shape": "transposed",
    "zeros_init:integer-zeros": "integers",
    "zeros_init:shape-as-two-arguments": "one tuple",
    "zeros_init:a-list-of-lists": "NumPy array",
    "random_init:global-np-random": "global np.random",
    "random_init:a-fresh-unseeded-generator": "not reproducible",
    "random_init:a-fixed-seed-inside": "ignores `rng`",
    "random_init:ignores-scale": "ignores its `scale`",
    "random_init:scale-used-as-the-variance": "scale as the variance",
    "random_init:scale-passed-as-the-mean": "takes the mean first",
    "random_init:uniform-with-the-right-std": "uniformly distributed",
    "random_init:rng-random-on-0-1": "all positive",
    "random_init:a-wrong-default-scale": "default scale is not 0.01",
    "random_init:one-row-broadcast-to-every-row": "repeats values",
    "xavier_init:variance-1-fan-in-lecun": "1/fan_in (LeCun",
    "xavier_init:variance-2-fan-in-he": "2/fan_in (He",
    "xavier_init:the-variance-passed-as-the-std": "where NumPy expects the standard deviation",
    "xavier_init:glorot-uniform": "uniformly distributed",
    "xavier_init:the-uniform-bound-as-the-std": "bound of Glorot's",
    "xavier_init:operator-precedence": "precedence",
    "xavier_init:transposed-shape": "transposed",
    "xavier_init:global-np-random": "global np.random",
    "he_init:fan-out-instead-of-fan-in": "uses fan_out",
    "he_init:the-factor-2-missing": "factor 2 is missing",
    "he_init:the-2-outside-the-square-root": "inside the square root",
    "he_init:he-uniform": "uniformly distributed",
    "he_init:clipped-at-two-standard-deviations": "not normally distributed",
    "he_init:global-np-random": "global np.random",
    "he_init:transposed-shape": "transposed",
    "init_params:random-biases": "is not zero",
    "init_params:biases-from-init-fn": "the biases start at zero",
    "init_params:a-new-generator-per-layer": "new generator",
    "init_params:rng-not-passed": "without its rng",
    "init_params:fans-swapped": "init_fn(fan_out, fan_in, rng)",
    "init_params:weights-transposed": "transposed",
    "init_params:layers-numbered-from-0": "numbers the layers from 0",
    "init_params:2-d-biases": "1-D",
    "init_params:init-fn-ignored": "never calls init_fn",
}
