"""Hidden tests for notebook 04: inverted dropout (forward and backward) and random shifts of images.

Random functions are judged by what they draw, never by one particular sequence of draws: the values
an output may take, the fraction of units kept (within 6 standard errors of ``keep_prob``: a correct
answer fails about once in 500 million runs, and every known wrong fraction is at least 13 standard
errors away), masks drawn independently for every entry, offsets that identify each shifted image,
and a chi-square test of the offsets against the uniform distribution at a false-alarm rate of 1e-9.
Reproducibility given ``rng`` and independence from ``np.random``'s global state are checked too.
Every check function takes a ``seed`` (default 0) that moves all its random inputs, so the tests can
prove that correct answers pass for many seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course.testing import Mistake, call, check_array, check_gradient, check_unchanged, describe, fail, snapshot
from course.visible_checks import _is_value_error, check_offsets_cover, check_raises_value_error, find_offsets  # noqa: F401
from nnlab.gradcheck import numerical_gradient_array

Z = 6.0  # standard errors allowed for a fraction of Bernoulli draws (two-sided false alarm about 2e-9)
CHI2_ALPHA = 1e-9


# --------------------------------------------------------------------------- shared helpers

def _nonzero(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """Values of either sign, at least 0.5 away from 0: a dropped unit (0) is never mistaken for a kept one."""
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return (sign * (0.5 + rng.random(shape))).astype(dtype)


def _pair(result: Any, name: str) -> tuple[Any, Any]:
    if not (isinstance(result, tuple) and len(result) == 2):
        fail(f"{name} should return a pair (out, cache), but it returned {type(result).__name__}.")
    return result


def _forward(fn: Callable, x: np.ndarray, keep_prob: float, mode: str, rng: Any) -> tuple[np.ndarray, Any]:
    out, cache = _pair(call(fn, x, keep_prob, mode, rng, name="dropout_forward"), "dropout_forward")
    return out, cache


def _arrays_in(obj: Any, depth: int = 0) -> list[np.ndarray]:
    """The NumPy arrays inside a cache (tuples, lists and dicts searched a few levels deep)."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if depth > 3:
        return []
    if isinstance(obj, (tuple, list)):
        return [a for v in obj for a in _arrays_in(v, depth + 1)]
    if isinstance(obj, dict):
        return [a for v in obj.values() for a in _arrays_in(v, depth + 1)]
    return []


def _check_rng_use(fn: Callable, name: str, args: Callable[[np.random.Generator], tuple], first: Callable) -> None:
    """Same seed -> same result whatever np.random's global state; another seed -> another result.

    ``args(rng)`` builds the call's arguments, ``first(result)`` extracts the random array.
    """
    state = np.random.get_state()
    try:
        np.random.seed(1)
        a = first(call(fn, *args(np.random.default_rng(5)), name=name))
        np.random.seed(2)
        b = first(call(fn, *args(np.random.default_rng(5)), name=name))
        if not np.array_equal(a, b):
            np.random.seed(1)
            c = first(call(fn, *args(np.random.default_rng(5)), name=name))
            if np.array_equal(a, c):
                fail(f"{name} draws from NumPy's global random state (np.random.rand, np.random.randint, ...) "
                     "instead of the rng argument: the same rng gave different results after np.random.seed "
                     "changed. Draw from rng (rng.random(...), rng.integers(...)) so that one seed reproduces "
                     "a run.")
            fail(f"{name} is not reproducible: two generators seeded alike gave different results. Draw from "
                 "the rng argument, not from NumPy's global random state (np.random.rand, np.random.randint, ...) "
                 "or a new np.random.default_rng() created inside the function.")
        d = first(call(fn, *args(np.random.default_rng(6)), name=name))
        if np.array_equal(a, d):
            fail(f"{name} ignores `rng`: generators with different seeds gave the same result (a fixed seed "
                 "inside the function?). Draw from the rng argument.")
    finally:
        np.random.set_state(state)


# --------------------------------------------------------------------------- dropout_forward

SHAPES = [(1, 1), (1, 7), (9, 1), (4, 5), (20, 30)]


def _train_values_hint(out: np.ndarray, x: np.ndarray, keep_prob: float, rtol: float) -> str:
    """What the kept values of a train-mode output look like, when they are not x / keep_prob."""
    kept = out != 0
    got, xs = out[kept].astype(np.float64), x[kept].astype(np.float64)
    for factor, message in [
        (1.0, "dropout_forward does not scale the kept units: inverted dropout divides them by keep_prob "
              "(out = x * mask / keep_prob), so that the expected value of out is x and the test pass needs "
              "no rescaling."),
        (keep_prob, "dropout_forward multiplies the kept units by keep_prob; inverted dropout divides them by "
                    "keep_prob (out = x * mask / keep_prob)."),
        (1 / (1 - keep_prob), "dropout_forward divides the kept units by 1 - keep_prob (the drop probability); "
                              "divide them by keep_prob."),
    ]:
        if np.allclose(got, xs * factor, rtol=rtol, atol=0):
            return message
    return ("Each entry of out should be 0 (a dropped unit) or x / keep_prob (a kept unit).")


def _check_train_values(out: np.ndarray, x: np.ndarray, keep_prob: float, what: str) -> None:
    rtol = 1e-5 if x.dtype == np.float32 else 1e-12
    kept = out != 0
    if not np.allclose(out[kept], x[kept].astype(np.float64) / keep_prob, rtol=rtol, atol=0):
        fail(f"{what} is wrong. {_train_values_hint(out, x, keep_prob, rtol)}")


def _check_out(out: Any, x: np.ndarray, what: str) -> np.ndarray:
    if isinstance(out, np.ndarray) and out.shape == x.shape and out.dtype != x.dtype:
        fail(f"out of {what} has dtype {out.dtype}, but it should keep x's dtype {x.dtype} (a mask from "
             "rng.binomial is int64, and float32 * int64 gives float64: convert the mask with .astype(x.dtype)).")
    return check_array(out, what=f"out of {what}", shape=x.shape, dtype=x.dtype)


def _check_fraction(kept: np.ndarray, keep_prob: float, what: str) -> None:
    n = kept.size
    frac = float(kept.mean())
    se = math.sqrt(keep_prob * (1 - keep_prob) / n)
    if abs(frac - keep_prob) <= Z * se:
        return
    phi = 0.5 * (1 + math.erf(keep_prob / math.sqrt(2)))
    if abs(frac - (1 - keep_prob)) <= Z * se:
        hint = ("It keeps each unit with probability 1 - keep_prob (it drops with probability keep_prob): keep a "
                "unit where rng.random(x.shape) < keep_prob.")
    elif abs(frac - phi) <= Z * math.sqrt(phi * (1 - phi) / n):
        hint = ("That is the fraction of a standard normal draw below keep_prob: the mask comes from a normal "
                "generator (rng.standard_normal, rng.normal). Compare a *uniform* draw on [0, 1): "
                "rng.random(x.shape) < keep_prob.")
    else:
        hint = "Keep each unit, independently, with probability keep_prob: rng.random(x.shape) < keep_prob."
    fail(f"{what} keeps {100 * frac:.2f}% of the {n} units, but it should keep about {100 * keep_prob:g}% "
         f"(keep_prob = {keep_prob:g}; a correct mask is within {100 * Z * se:.2f} points of it). {hint}")


def _check_independent(kept: np.ndarray, what: str) -> None:
    """Two samples (rows) or two units (columns) agree as often as independent draws with the observed rate do."""
    f = float(kept.mean())
    expected = f ** 2 + (1 - f) ** 2
    rows = float(np.mean(kept[1:] == kept[:-1]))
    cols = float(np.mean(kept[:, 1:] == kept[:, :-1]))
    if abs(rows - expected) > 0.05:
        fail(f"{what}: consecutive samples (rows) have the same mask for {100 * rows:.1f}% of the units, where "
             f"independent draws agree for {100 * expected:.1f}%. Draw a mask of the full shape of x "
             "(rng.random(x.shape)), not one row of shape (D,) shared by every sample.")
    if abs(cols - expected) > 0.05:
        fail(f"{what}: neighbouring units (columns) of a sample are kept or dropped together {100 * cols:.1f}% of "
             f"the time, where independent draws agree {100 * expected:.1f}% of the time: the mask drops whole "
             "samples. Draw one independent number per unit: rng.random(x.shape).")


def check_dropout_forward(dropout_forward: Callable, seed: int = 0) -> None:
    """Values 0 or x / keep_prob, kept fraction, independence, test mode, keep_prob=1, ValueError, rng use."""
    name = "dropout_forward"
    rng = np.random.default_rng(400 + seed)
    # Many shapes and both dtypes: out has x's shape and dtype, kept units are x / keep_prob, x unchanged.
    for dtype in (np.float64, np.float32):
        for shape in SHAPES:
            for keep_prob in (0.6, 0.25):
                x = _nonzero(rng, shape, dtype)
                before = snapshot(x)
                what = f"{name}(x, keep_prob={keep_prob:g}, 'train', rng) for x {describe(x)}"
                out, _ = _forward(dropout_forward, x, keep_prob, "train", rng)
                check_unchanged(before, [x], ["x"], fn_name=name)
                out = _check_out(out, x, what)
                _check_train_values(out, x, keep_prob, what)
    # The fraction kept and its independence, on 200,000 units, for keep_probs that tell the mistakes apart.
    for keep_prob in (0.8, 0.3, 0.55):
        x = (1.0 + rng.random((400, 500)))
        what = f"{name}(x, keep_prob={keep_prob:g}, 'train', rng) for x of shape {x.shape}"
        out = _check_out(_forward(dropout_forward, x, keep_prob, "train", rng)[0], x, what)
        _check_train_values(out, x, keep_prob, what)
        kept = out != 0
        _check_independent(kept, what)  # first: masks shared by rows or columns make the fraction noisy
        _check_fraction(kept, keep_prob, what)
    # Test mode is the identity (the same array or a copy), whatever keep_prob.
    for dtype in (np.float64, np.float32):
        for shape, keep_prob in [((4, 5), 0.5), ((1, 3), 0.8), ((30, 20), 0.25)]:
            x = _nonzero(rng, shape, dtype)
            before = snapshot(x)
            what = f"{name}(x, keep_prob={keep_prob:g}, 'test', rng) for x {describe(x)}"
            out, _ = _forward(dropout_forward, x, keep_prob, "test", rng)
            check_unchanged(before, [x], ["x"], fn_name=name)
            out = _check_out(out, x, what)
            if not np.array_equal(out, before[0]):
                if np.any(out == 0):
                    hint = ("It drops units in test mode: the mask is for training only; at test time every unit "
                            "is used.")
                elif np.allclose(out, before[0] * keep_prob, rtol=1e-5):
                    hint = ("It multiplies by keep_prob at test time, as the original (non-inverted) dropout "
                            "does; inverted dropout already divided by keep_prob during training, so the test "
                            "pass is the identity: out = x.")
                elif np.allclose(out, before[0] / keep_prob, rtol=1e-5):
                    hint = "It divides by keep_prob at test time too; in test mode out = x."
                else:
                    hint = "In test mode out = x."
                fail(f"{what} should return x unchanged (the same array or a copy). {hint}")
    # keep_prob = 1 keeps every unit, unscaled, in training too.
    for dtype in (np.float64, np.float32):
        x = _nonzero(rng, (6, 8), dtype)
        what = f"{name}(x, keep_prob=1, 'train', rng) for x {describe(x)}"
        out = _check_out(_forward(dropout_forward, x, 1.0, "train", rng)[0], x, what)
        if not np.allclose(out, x, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=0):
            fail(f"{what} should return x: with keep_prob = 1 every unit is kept and divided by 1.")
    # Invalid keep_prob raises ValueError.
    x = _nonzero(rng, (3, 4))
    for bad in (0.0, -0.5, 1.5):
        try:
            dropout_forward(x, bad, "train", np.random.default_rng(0))
        except Exception as exc:  # noqa: BLE001 - any other exception is the mistake
            if _is_value_error(exc):
                continue
            fail(f"{name}(x, keep_prob={bad:g}, 'train', rng) raised {type(exc).__name__} ({exc}); it should raise "
                 "ValueError: keep_prob must satisfy 0 < keep_prob <= 1. Check it first: "
                 "if not 0 < keep_prob <= 1: raise ValueError(...).")
        else:
            fail(f"{name}(x, keep_prob={bad:g}, 'train', rng) returned without an error; it should raise ValueError "
                 "(keep_prob must satisfy 0 < keep_prob <= 1).")
    # Reproducible from rng, independent of np.random's global state.
    x = _nonzero(rng, (30, 40))
    _check_rng_use(dropout_forward, name, lambda r: (x, 0.5, "train", r), lambda res: _pair(res, name)[0])


# --------------------------------------------------------------------------- dropout_backward

def _check_dx(dx: Any, dout: np.ndarray, what: str) -> np.ndarray:
    if isinstance(dx, np.ndarray) and dx.shape == dout.shape and dx.dtype != dout.dtype:
        fail(f"dx of {what} has dtype {dx.dtype}, but it should keep dout's dtype {dout.dtype}.")
    return check_array(dx, what=f"dx of {what}", shape=dout.shape, dtype=dout.dtype)


def _backward(fn: Callable, dout: np.ndarray, cache: Any, what: str) -> np.ndarray:
    """Call backward, check dout and the cache were left alone, and check dx's type, shape and dtype."""
    name = "dropout_backward"
    before_dout = snapshot(dout)
    arrays = _arrays_in(cache)
    before_cache = snapshot(*arrays)
    dx = call(fn, dout, cache, name=name)
    check_unchanged(before_dout, [dout], ["dout"], fn_name=name)
    for i, (old, new) in enumerate(zip(before_cache, arrays)):
        if not np.array_equal(old, new, equal_nan=True):
            fail(f"{name} changed an array in its `cache` in place (array {i} of the cache); backward must leave "
                 "the cache as the forward pass made it (it may be used again). Compute dx as a new array.")
    return _check_dx(dx, dout, what)


def check_dropout_backward(dropout_forward: Callable, dropout_backward: Callable, seed: int = 0) -> None:
    """dx = dout * mask / keep_prob with the forward pass's mask (taken from your forward's output), test mode,
    keep_prob = 1, float32, dout and cache unchanged, a numerical gradient check."""
    name = "dropout_backward"
    rng = np.random.default_rng(410 + seed)
    for dtype in (np.float64, np.float32):
        for shape, keep_prob in [((4, 5), 0.6), ((1, 1), 0.5), ((1, 9), 0.3), ((7, 1), 0.8), ((50, 40), 0.4)]:
            x = _nonzero(rng, shape, dtype)
            try:
                out, cache = _forward(dropout_forward, x, keep_prob, "train", rng)
            except Mistake as exc:
                fail(f"{name} is checked with the cache of your dropout_forward, which failed: {exc}")
            out = check_array(out, what=f"out of dropout_forward(x, {keep_prob:g}, 'train', rng) (needed to check "
                              f"{name})", shape=shape)
            kept = out != 0  # x has no zeros: a zero in out is a dropped unit
            dout = rng.standard_normal(shape).astype(dtype)
            what = f"{name}(dout, cache) after dropout_forward(x, {keep_prob:g}, 'train', rng), x {describe(x)}"
            dx = _backward(dropout_backward, dout, cache, what)
            d64 = dout.astype(np.float64)
            expected = d64 * kept / keep_prob
            rtol = 1e-5 if dtype == np.float32 else 1e-12
            if np.allclose(dx, expected, rtol=rtol, atol=1e-30):
                dx2 = _backward(dropout_backward, dout, cache, what)
                if not np.array_equal(dx, dx2):
                    fail(f"{what}: two calls with the same cache gave different dx; backward must use the forward "
                         "pass's mask, stored in the cache, and draw nothing.")
                continue
            dx2 = _backward(dropout_backward, dout, cache, what)
            if not np.array_equal(dx, dx2):
                hint = ("Two calls with the same cache gave different dx: it draws a new mask. Use the forward "
                        "pass's mask, saved in the cache: the units dropped in the forward pass get no gradient.")
            elif np.allclose(dx, d64 / keep_prob, rtol=rtol):
                hint = ("It ignores the mask: dx = dout / keep_prob for every unit, but a unit dropped in the forward "
                        "pass did not affect the output, so its gradient is 0. dx = dout * mask / keep_prob.")
            elif np.allclose(dx, d64 * kept, rtol=rtol):
                hint = ("It forgets the scale: the forward pass multiplied the kept units by 1 / keep_prob, so their "
                        "gradient is multiplied by it too: dx = dout * mask / keep_prob.")
            elif np.allclose(dx, d64 * kept / keep_prob ** 2, rtol=rtol):
                hint = ("It divides by keep_prob twice (is the mask in your cache already divided by keep_prob?): "
                        "dx = dout * mask / keep_prob, once.")
            elif np.allclose(dx, d64, rtol=rtol):
                hint = "It returns dout unchanged; in train mode dx = dout * mask / keep_prob."
            elif np.any(dx[~kept] != 0):
                hint = ("dx is not 0 for units that the forward pass dropped: use the forward pass's mask (saved in "
                        "the cache), not a new one.")
            else:
                hint = "dx = dout * mask / keep_prob, with the mask of the forward pass."
            fail(f"{what} is wrong (largest difference {np.max(np.abs(dx - expected)):.3g}). {hint}")
    # Test mode and keep_prob = 1: the gradient passes through unchanged.
    for dtype in (np.float64, np.float32):
        for mode, keep_prob in (("test", 0.5), ("train", 1.0)):
            x = _nonzero(rng, (5, 6), dtype)
            try:
                out, cache = _forward(dropout_forward, x, keep_prob, mode, rng)
            except Mistake:
                continue  # dropout_forward is wrong here; its own test says so
            if not (isinstance(out, np.ndarray) and out.shape == x.shape and np.allclose(out, x, rtol=1e-6)):
                continue  # dropout_forward is wrong here; its own test says so
            dout = rng.standard_normal(x.shape).astype(dtype)
            what = f"{name}(dout, cache) after dropout_forward(x, {keep_prob:g}, {mode!r}, rng), x {describe(x)}"
            dx = _backward(dropout_backward, dout, cache, what)
            if not np.allclose(dx, dout, rtol=1e-6, atol=0):
                fail(f"{what} should be dout (the same array or a copy): the forward pass was the identity, so the "
                     "gradient passes through unchanged.")
    # A numerical gradient check in float64, through your own forward pass with a fixed seed.
    for shape, keep_prob in [((3, 4), 0.5), ((2, 6), 0.7)]:
        x = _nonzero(rng, shape)
        s = int(rng.integers(2**31))

        def f(z: np.ndarray) -> np.ndarray:
            return np.asarray(_pair(dropout_forward(z, keep_prob, "train", np.random.default_rng(s)), "f")[0])

        try:
            out, cache = _forward(dropout_forward, x, keep_prob, "train", np.random.default_rng(s))
            again = f(x.copy())
        except Exception:  # noqa: BLE001 - dropout_forward is wrong here; its own test says so
            continue
        kept = out != 0
        if not (np.array_equal(out, again) and np.allclose(out[kept], x[kept] / keep_prob, rtol=1e-12)):
            continue  # dropout_forward is not reproducible or not right; its own test says so
        dout = rng.standard_normal(shape)
        dx = _backward(dropout_backward, dout, cache, f"{name} for x of shape {shape}")
        numeric = numerical_gradient_array(f, x.copy(), dout)
        check_gradient(dx, numeric, what=f"dx from {name} (keep_prob={keep_prob:g}, x of shape {shape})", tol=1e-8)


# --------------------------------------------------------------------------- random_shift

def shift_images(images: np.ndarray, dy: Any, dx: Any) -> np.ndarray:
    """Images (N, H, W) moved by (dy, dx) (numbers or (N,) arrays) with zeros in the uncovered border:
    ``out[i, r, c] = images[i, r - dy, c - dx]`` where that pixel exists."""
    N, H, W = images.shape
    dy = np.broadcast_to(np.asarray(dy), (N,))
    dx = np.broadcast_to(np.asarray(dx), (N,))
    rows = np.arange(H)[None, :] - dy[:, None]
    cols = np.arange(W)[None, :] - dx[:, None]
    valid = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]
    src = images[np.arange(N)[:, None, None], np.clip(rows, 0, H - 1)[:, :, None], np.clip(cols, 0, W - 1)[:, None, :]]
    return np.where(valid, src, 0).astype(images.dtype)


def _distinct_images(rng: np.random.Generator, n: int, h: int, w: int, dtype: Any = np.float64) -> np.ndarray:
    """n images whose pixels are 1, ..., h*w in a random order (all different, none 0)."""
    return np.stack([rng.permutation(h * w) + 1 for _ in range(n)]).reshape(n, h, w).astype(dtype)


def _explain_image(image: np.ndarray, out: np.ndarray, max_shift: int, what: str, i: int) -> str:
    """Why output image ``i`` is not a zero-filled shift of its input by at most max_shift."""
    H, W = image.shape
    if out.shape == image.shape and np.all(out == 0) and max_shift < min(H, W):
        return (f"Image {i} of {what} came back all zeros. Check an offset of 0: a slice such as img[:-dy] is "
                "empty when dy == 0 (use img[:H - dy]), and a shifted image keeps most of its pixels.")
    smallest_first = sorted(((dy, dx) for dy in range(-H + 1, H) for dx in range(-W + 1, W)),
                            key=lambda o: (abs(o[0]) + abs(o[1]), o))
    for dy, dx in smallest_first:
        if (dy, dx) != (0, 0) and np.array_equal(np.roll(image, (dy, dx), axis=(0, 1)), out):
            return (f"Image {i} of {what} is rolled by ({dy}, {dx}): the pixels that leave one side come back "
                    "on the other (np.roll wraps around). Fill the uncovered border with 0 instead: slice into a "
                    "zero array, or pad with zeros and crop.")
    for dy in range(-H + 1, H):
        for dx in range(-W + 1, W):
            if max(abs(dy), abs(dx)) > max_shift and np.array_equal(shift_images(image[None], dy, dx)[0], out):
                return (f"Image {i} of {what} is moved by ({dy}, {dx}), further than max_shift = {max_shift}: "
                        "each offset must be an integer in [-max_shift, max_shift].")
    return (f"Image {i} of {what} is not its input image moved by an integer offset (dy, dx) with |dy|, |dx| <= "
            f"max_shift = {max_shift} and 0 in the uncovered border.")


def _shift_and_identify(random_shift: Callable, images: np.ndarray, max_shift: int, rng: Any) -> np.ndarray:
    """Call random_shift, check the result's type, shape, dtype and the input, and return the (N, 2) offsets."""
    name = "random_shift"
    before = snapshot(images)
    what = f"{name}(images {describe(images)}, max_shift={max_shift}, rng)"
    out = call(random_shift, images, max_shift, rng, name=name)
    check_unchanged(before, [images], ["images"], fn_name=name)
    if out is images or (isinstance(out, np.ndarray) and np.shares_memory(out, images)):
        fail(f"{what} returned the input array itself (or a view of it); return a new array, so that changing "
             "the shifted images never changes the originals.")
    if isinstance(out, np.ndarray) and out.shape == images.shape and out.dtype != images.dtype:
        fail(f"{what} returned dtype {out.dtype}; the shifted images keep the input's dtype {images.dtype} "
             "(np.zeros_like(images) keeps it, np.zeros(images.shape) does not).")
    out = check_array(out, what=what, shape=images.shape, dtype=images.dtype)
    offsets = find_offsets(images, out, max_shift)
    bad = np.flatnonzero(offsets[:, 0] == -999)
    if len(bad):
        i = int(bad[0])
        fail(_explain_image(images[i], out[i], max_shift, what, i))
    return offsets


def _check_offset_distribution(offsets: np.ndarray, max_shift: int, what: str) -> None:
    """Every image its own offset; dy and dx independent and uniform on -max_shift..max_shift (chi-square)."""
    from scipy.stats import chi2

    n, s = len(offsets), max_shift
    dy, dx = offsets[:, 0], offsets[:, 1]
    if len(np.unique(offsets, axis=0)) == 1:
        fail(f"{what} moved all {n} images by the same offset {tuple(int(v) for v in offsets[0])}: draw one offset "
             "per image (rng.integers(..., size=N), or a draw inside the loop over the images).")
    for v, axis in ((dy, "dy (rows)"), (dx, "dx (columns)")):
        if np.all(v == 0):
            fail(f"{what} never moves the images along {axis}: draw dy and dx, each uniform in "
                 "[-max_shift, max_shift].")
        for end in (-s, s):
            if not np.any(v == end):
                fail(f"{what}: among {n} images, no offset {axis} equals {end:+d}; the offsets must reach both "
                     f"-max_shift and +max_shift. rng.integers(low, high) excludes high: use "
                     f"rng.integers(-max_shift, max_shift + 1) (or endpoint=True).")
    if np.all(dy == dx) or np.all(dy == -dx):
        fail(f"{what}: dy and dx are {'equal' if np.all(dy == dx) else 'opposite'} for every image, so images only "
             "move diagonally; draw dy and dx independently.")
    k = 2 * s + 1
    counts = np.zeros((k, k))
    np.add.at(counts, (dy + s, dx + s), 1)
    stat = float(np.sum((counts - n / k ** 2) ** 2 / (n / k ** 2)))
    if stat > chi2.isf(CHI2_ALPHA, k * k - 1):
        marg = ", ".join(f"{int(c)}" for c in np.bincount(dy + s, minlength=k))
        ends = ""
        if np.mean(np.abs(offsets) == s) < 0.75 * 2 / k:
            ends = ("The offsets +-max_shift come up too rarely: rounding a continuous draw "
                    "(np.round(rng.uniform(...))) gives the two ends half the chance of the others.")
        fail(f"{what}: the {n} offsets (dy, dx) are not uniform over the {k * k} pairs with |dy|, |dx| <= "
             f"{s} (chi-square {stat:.0f}; counts of dy = {-s}..{s}: {marg}). Draw dy and dx independently, "
             f"each uniform over the integers -max_shift..max_shift: rng.integers(-max_shift, max_shift + 1). "
             f"{ends}".strip())


def check_random_shift(random_shift: Callable, seed: int = 0) -> None:
    """Zero-filled integer shifts within max_shift, a new array of the same dtype and shape, images unchanged,
    one uniform offset per image (chi-square), max_shift = 0, reproducible from rng."""
    name = "random_shift"
    rng = np.random.default_rng(420 + seed)
    # Shapes and dtypes, and each output image a zero-filled shift of its input within max_shift.
    for (n, h, w), s, dtype in [((1, 5, 5), 2, np.float64), ((3, 4, 6), 1, np.float32), ((6, 8, 8), 3, np.float64),
                                ((4, 3, 7), 2, np.uint8), ((40, 8, 8), 1, np.float32)]:
        _shift_and_identify(random_shift, _distinct_images(rng, n, h, w, dtype), s, rng)
    # The offsets' distribution, on thousands of images.
    for n, (h, w), s in [(1000, (5, 6), 1), (2500, (6, 7), 2)]:
        images = _distinct_images(rng, n, h, w)
        offsets = _shift_and_identify(random_shift, images, s, rng)
        _check_offset_distribution(offsets, s, f"{name}(images of shape {images.shape}, max_shift={s}, rng)")
    # max_shift = 0: a copy.
    for (n, h, w), dtype in [((2, 1, 1), np.float64), ((5, 6, 4), np.float32)]:
        _shift_and_identify(random_shift, _distinct_images(rng, n, h, w, dtype), 0, rng)
    # Reproducible from rng, independent of np.random's global state.
    images = _distinct_images(rng, 30, 6, 6)
    _check_rng_use(random_shift, name, lambda r: (images, 2, r), lambda res: np.asarray(res))


# Named mistakes (course.mistakes): identifier -> a phrase of its message above. Order matters where one
# message holds two phrases: "not reproducible" before "global random state".
MISTAKES = {
    "dropout_forward:no-scaling": "does not scale the kept units",
    "dropout_forward:scales-at-test-time": "multiplies by keep_prob at test time",
    "dropout_forward:divides-at-test-time": "divides by keep_prob at test time",
    "dropout_forward:multiplies-by-keep-prob": "multiplies the kept units by keep_prob",
    "dropout_forward:divides-by-drop-probability": "divides the kept units by 1 - keep_prob",
    "dropout_forward:drops-with-probability-keep-prob": "probability 1 - keep_prob",
    "dropout_forward:normal-mask": "normal generator",
    "dropout_forward:masks-in-test-mode": "drops units in test mode",
    "dropout_forward:not-reproducible": "not reproducible",
    "dropout_forward:global-random-state": "global random state",
    "dropout_forward:ignores-rng": "ignores `rng`",
    "dropout_forward:one-mask-per-feature": "not one row of shape (D,)",
    "dropout_forward:drops-whole-samples": "drops whole samples",
    "dropout_forward:dtype-changed": "should keep x's dtype",
    "dropout_forward:no-value-error": "should raise ValueError",
    "dropout_forward:changes-x": "changed its argument `x`",
    "dropout_backward:new-mask": "draws a new mask",
    "dropout_backward:ignores-the-mask": "ignores the mask",
    "dropout_backward:forgets-the-scale": "forgets the scale",
    "dropout_backward:divides-twice": "divides by keep_prob twice",
    "dropout_backward:returns-dout": "returns dout unchanged",
    "dropout_backward:changes-dout": "changed its argument `dout`",
    "dropout_backward:changes-the-cache": "changed an array in its `cache`",
    "dropout_backward:dtype-changed": "should keep dout's dtype",
    "dropout_backward:gradient-of-dropped-units": "is not 0 for units that the forward pass dropped",
    "random_shift:wraps-around": "wraps around",
    "random_shift:one-offset-per-batch": "same offset",
    "random_shift:never-reaches-max-shift": "must reach both",
    "random_shift:beyond-max-shift": "further than max_shift",
    "random_shift:not-uniform": "not uniform",
    "random_shift:dy-equals-dx": "diagonally",
    "random_shift:one-direction-only": "never moves the images along",
    "random_shift:not-reproducible": "not reproducible",
    "random_shift:global-random-state": "global random state",
    "random_shift:ignores-rng": "ignores `rng`",
    "random_shift:dtype-changed": "keep the input's dtype",
    "random_shift:changes-images": "changed its argument `images`",
    "random_shift:returns-the-input": "returned the input array itself",
    "random_shift:empty-slice-at-zero": "came back all zeros",
}
