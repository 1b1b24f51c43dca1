"""The mistake catalog of notebook 04 (dropout and data augmentation): data read by
tests/course/test_mistake_catalogs.py (and, for the correct answers, by tests/grading/test_trusted_catalog.py
and tests/course/test_checks_04_seeds in tests/lib/test_dropout.py).

MISTAKES: (exercise, label, code, phrase) -- a wrong answer; `phrase` appears in the hidden test's message.
CORRECT: (exercise, code) -- a correct answer written differently from the reference ("a+b": code that
defines both). EXERCISES: every graded function, in notebook order.
"""

NOTEBOOK = "04_dropout"

EXERCISES = ["dropout_forward", "dropout_backward", "random_shift"]

# A dropout_forward with its lines as parameters: {check}, {mask}, {train_out} and {test_out}.
FORWARD = """
def dropout_forward(x, keep_prob, mode, rng):
    {check}
    if mode == "test":
        return {test_out}, (None, keep_prob)
    mask = {mask}
    out = {train_out}
    return out, (mask, keep_prob)
"""
FORWARD_OK = dict(check="if not 0 < keep_prob <= 1: raise ValueError('keep_prob')", mask="rng.random(x.shape) < keep_prob",
                  train_out="(x * mask / keep_prob).astype(x.dtype)", test_out="x")


def forward(**changes):
    return FORWARD.format(**{**FORWARD_OK, **changes})


# A dropout_backward for the reference forward's cache (mask or None, keep_prob): {dx} is the train-mode line.
BACKWARD = """
def dropout_backward(dout, cache):
    mask, keep_prob = cache
    if mask is None:
        return dout
    {dx}
"""


def backward(dx):
    return BACKWARD.format(dx=dx)


# A random_shift drawing (dy, dx) with {draw} for image i, then moving it with {move}.
SHIFT = """
def random_shift(images, max_shift, rng):
    N, H, W = images.shape
    out = {alloc}
    s = max_shift
    {draw_all}
    for i in range(N):
        {draw}
        {move}
    return out
"""
MOVE_SLICES = ("src = images[i, max(-dy, 0):H - max(dy, 0), max(-dx, 0):W - max(dx, 0)]\n"
               "        out[i, max(dy, 0):max(dy, 0) + src.shape[0], max(dx, 0):max(dx, 0) + src.shape[1]] = src")
SHIFT_OK = dict(alloc="np.zeros_like(images)", draw_all="pass",
                draw="dy, dx = rng.integers(-s, s + 1, size=2)", move=MOVE_SLICES)


def shift(**changes):
    return SHIFT.format(**{**SHIFT_OK, **changes})


# (exercise, label, code, expected phrase in the hidden test's message)
MISTAKES = [
    ("dropout_forward", "no 1/keep_prob scaling", forward(train_out="x * mask"), "does not scale the kept units"),
    ("dropout_forward", "classic dropout: no scaling in training, * keep_prob at test",
     forward(train_out="x * mask", test_out="x * keep_prob"), "does not scale the kept units"),
    ("dropout_forward", "scales in training and again at test time",
     forward(test_out="x * keep_prob"), "multiplies by keep_prob at test time"),
    ("dropout_forward", "multiplies the kept units by keep_prob",
     forward(train_out="x * mask * keep_prob"), "multiplies the kept units by keep_prob"),
    ("dropout_forward", "divides by the drop probability",
     forward(train_out="(x * mask / (1 - keep_prob)).astype(x.dtype)"), "divides the kept units by 1 - keep_prob"),
    ("dropout_forward", "drops with probability keep_prob",
     forward(mask="rng.random(x.shape) > keep_prob"), "probability 1 - keep_prob"),
    ("dropout_forward", "a normal mask", forward(mask="rng.standard_normal(x.shape) < keep_prob"), "normal generator"),
    ("dropout_forward", "masks in test mode too", """
def dropout_forward(x, keep_prob, mode, rng):
    if not 0 < keep_prob <= 1:
        raise ValueError("keep_prob")
    mask = rng.random(x.shape) < keep_prob
    return (x * mask / keep_prob).astype(x.dtype), (mask, keep_prob)""", "drops units in test mode"),
    ("dropout_forward", "global random state", forward(mask="np.random.rand(*x.shape) < keep_prob"),
     "global random state"),
    ("dropout_forward", "a fresh unseeded generator", forward(mask="np.random.default_rng().random(x.shape) < keep_prob"),
     "not reproducible"),
    ("dropout_forward", "one mask per feature, shared by every sample",
     forward(mask="rng.random(x.shape[1]) < keep_prob"), "not one row of shape (D,)"),
    ("dropout_forward", "drops whole samples", forward(mask="rng.random((x.shape[0], 1)) < keep_prob"),
     "drops whole samples"),
    ("dropout_forward", "int64 mask from binomial makes float32 float64",
     forward(mask="rng.binomial(1, keep_prob, size=x.shape)", train_out="x * mask / keep_prob"),
     "should keep x's dtype"),
    ("dropout_forward", "no ValueError", forward(check="pass"), "should raise ValueError"),
    ("dropout_forward", "scales x in place", """
def dropout_forward(x, keep_prob, mode, rng):
    if not 0 < keep_prob <= 1:
        raise ValueError("keep_prob")
    if mode == "test":
        return x, (None, keep_prob)
    mask = rng.random(x.shape) < keep_prob
    x *= mask
    x /= keep_prob
    return x, (mask, keep_prob)""", "changed its argument `x`"),
    ("dropout_backward", "ignores the mask", backward("return dout / keep_prob"), "ignores the mask"),
    ("dropout_backward", "forgets the scale", backward("return (dout * mask).astype(dout.dtype)"), "forgets the scale"),
    ("dropout_backward", "multiplies dout in place", backward("dout *= mask / keep_prob\n    return dout"),
     "changed its argument `dout`"),
    ("dropout_backward", "float64 mask makes a float32 dx float64",
     backward("return dout * mask.astype(np.float64) / keep_prob"), "should keep dout's dtype"),
    ("dropout_forward+dropout_backward", "draws a new mask in backward", """
def dropout_forward(x, keep_prob, mode, rng):
    if not 0 < keep_prob <= 1:
        raise ValueError("keep_prob")
    if mode == "test":
        return x.copy(), (None, keep_prob, rng)
    mask = rng.random(x.shape) < keep_prob
    return (x * mask / keep_prob).astype(x.dtype), (mask, keep_prob, rng)

def dropout_backward(dout, cache):
    mask, keep_prob, rng = cache
    if mask is None:
        return dout.copy()
    new_mask = rng.random(dout.shape) < keep_prob
    return (dout * new_mask / keep_prob).astype(dout.dtype)""", "draws a new mask"),
    ("dropout_forward+dropout_backward", "the cache holds the scaled mask, backward divides again", """
def dropout_forward(x, keep_prob, mode, rng):
    if not 0 < keep_prob <= 1:
        raise ValueError("keep_prob")
    if mode == "test":
        return x.copy(), (None, keep_prob)
    mask = (rng.random(x.shape) < keep_prob).astype(x.dtype) / x.dtype.type(keep_prob)
    return x * mask, (mask, keep_prob)

def dropout_backward(dout, cache):
    mask, keep_prob = cache
    if mask is None:
        return dout.copy()
    return (dout * mask / keep_prob).astype(dout.dtype)""", "divides by keep_prob twice"),
    ("dropout_forward+dropout_backward", "scales the cached mask in place in backward", """
def dropout_forward(x, keep_prob, mode, rng):
    if not 0 < keep_prob <= 1:
        raise ValueError("keep_prob")
    if mode == "test":
        return x.copy(), (None, keep_prob)
    mask = (rng.random(x.shape) < keep_prob).astype(x.dtype)
    return x * mask / x.dtype.type(keep_prob), (mask, keep_prob)

def dropout_backward(dout, cache):
    mask, keep_prob = cache
    if mask is None:
        return dout.copy()
    mask /= keep_prob
    return dout * mask""", "changed an array in its `cache`"),
    ("random_shift", "np.roll wraps around", shift(move="out[i] = np.roll(images[i], (dy, dx), axis=(0, 1))"),
     "wraps around"),
    ("random_shift", "one offset for the whole batch",
     shift(draw_all="DY, DX = rng.integers(-s, s + 1, size=2)", draw="dy, dx = DY, DX"), "same offset"),
    ("random_shift", "rng.integers(-s, s) never reaches +s", shift(draw="dy, dx = rng.integers(-s, s, size=2)"),
     "must reach both"),
    ("random_shift", "offsets in [0, 2s]: never negative", shift(draw="dy, dx = rng.integers(0, 2 * s + 1, size=2)"),
     "further than max_shift"),
    ("random_shift", "rounds a continuous uniform",
     shift(draw="dy, dx = np.round(rng.uniform(-s, s, size=2)).astype(int)"), "not uniform"),
    ("random_shift", "the same draw for dy and dx", shift(draw="dy = dx = rng.integers(-s, s + 1)"), "diagonally"),
    ("random_shift", "only vertical shifts", shift(draw="dy, dx = rng.integers(-s, s + 1), 0"),
     "never moves the images along"),
    ("random_shift", "global random state", shift(draw="dy, dx = np.random.randint(-s, s + 1, size=2)"),
     "global random state"),
    ("random_shift", "float64 output for float32 images", shift(alloc="np.zeros(images.shape)"),
     "keep the input's dtype"),
    ("random_shift", "returns the input itself when max_shift is 0", """
def random_shift(images, max_shift, rng):
    if max_shift == 0:
        return images
    N, H, W = images.shape
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    out = np.empty_like(images)
    for i in range(N):
        dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
        out[i] = padded[i, max_shift - dy:max_shift - dy + H, max_shift - dx:max_shift - dx + W]
    return out""", "returned the input array itself"),
    ("random_shift", "shifts the input in place", shift(
        alloc="images", move="images[i] = np.roll(images[i], (dy, dx), axis=(0, 1))\n"
                             "        if dy > 0: images[i, :dy] = 0\n"
                             "        elif dy < 0: images[i, dy:] = 0\n"
                             "        if dx > 0: images[i, :, :dx] = 0\n"
                             "        elif dx < 0: images[i, :, dx:] = 0"), "changed its argument `images`"),
]

# Correct answers written differently from the reference and from each other: full marks.
CORRECT = [
    ("dropout_forward", """
def dropout_forward(x, keep_prob, mode, rng):
    if keep_prob <= 0 or keep_prob > 1:
        raise ValueError(f"keep_prob={keep_prob} is not in (0, 1]")
    if mode != "train":
        return x, (None, keep_prob)
    mask = rng.binomial(1, keep_prob, size=x.shape).astype(bool)
    return x * mask / x.dtype.type(keep_prob), (mask, keep_prob)"""),
    ("dropout_forward+dropout_backward", """
def dropout_forward(x, keep_prob, mode, rng):
    if keep_prob <= 0 or keep_prob > 1:
        raise ValueError(f"keep_prob={keep_prob} is not in (0, 1]")
    if mode != "train":
        return x, {"mask": None, "p": keep_prob}
    mask = rng.binomial(1, keep_prob, size=x.shape).astype(x.dtype)
    return x * mask / x.dtype.type(keep_prob), {"mask": mask, "p": keep_prob}

def dropout_backward(dout, cache):
    if cache["mask"] is None:
        return dout
    return dout * cache["mask"].astype(dout.dtype) / dout.dtype.type(cache["p"])"""),
    ("dropout_forward+dropout_backward", """
def dropout_forward(x, keep_prob, mode, rng):
    if not (0.0 < keep_prob <= 1.0):
        raise ValueError("keep_prob must be in (0, 1]")
    if mode == "test":
        return np.array(x, copy=True), None
    keep = rng.uniform(0.0, 1.0, size=x.shape) < keep_prob
    return np.where(keep, x / keep_prob, 0).astype(x.dtype), keep / keep_prob

def dropout_backward(dout, cache):
    return dout.copy() if cache is None else (dout * cache).astype(dout.dtype)"""),
    ("dropout_forward+dropout_backward", """
def dropout_forward(x, keep_prob, mode, rng):
    if not 0 < keep_prob <= 1:
        raise ValueError("keep_prob must be in (0, 1]")
    out = x.copy()
    if mode == "train":
        dropped = rng.random(size=out.shape) >= keep_prob
        out[dropped] = 0
        out /= keep_prob
        return out, ("train", dropped, keep_prob)
    return out, ("test", None, keep_prob)

def dropout_backward(dout, cache):
    mode, dropped, keep_prob = cache
    dx = dout.copy()
    if mode == "train":
        dx[dropped] = 0
        dx /= keep_prob
    return dx"""),
    ("dropout_backward", """
def dropout_backward(dout, cache):
    mask, keep_prob = cache
    if mask is None:
        return dout.copy()
    return np.where(mask, dout / keep_prob, 0).astype(dout.dtype)"""),
    ("dropout_backward", """
def dropout_backward(dout, cache):
    mask, keep_prob = cache
    dx = np.array(dout)
    if mask is not None:
        dx[~mask] = 0
        dx *= 1 / keep_prob
    return dx"""),
    ("random_shift", """
def random_shift(images, max_shift, rng):
    s = max_shift
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (s, s), (s, s)))
    dys = rng.choice(np.arange(-s, s + 1), size=n)
    dxs = rng.choice(np.arange(-s, s + 1), size=n)
    return np.stack([padded[i, s - dy:s - dy + h, s - dx:s - dx + w] for i, (dy, dx) in enumerate(zip(dys, dxs))])"""),
    ("random_shift", shift(move="img = np.roll(images[i], (dy, dx), axis=(0, 1))\n"
                                "        if dy > 0: img[:dy] = 0\n"
                                "        elif dy < 0: img[dy:] = 0\n"
                                "        if dx > 0: img[:, :dx] = 0\n"
                                "        elif dx < 0: img[:, dx:] = 0\n"
                                "        out[i] = img",
                           draw="dy = rng.integers(-s, s, endpoint=True); dx = rng.integers(-s, s, endpoint=True)")),
    ("random_shift", """
def random_shift(images, max_shift, rng):
    n, h, w = images.shape
    out = np.zeros(images.shape, dtype=images.dtype)
    offsets = rng.integers(0, 2 * max_shift + 1, size=(n, 2)) - max_shift
    for k in range(n):
        dy, dx = int(offsets[k, 0]), int(offsets[k, 1])
        for r in range(h):
            for c in range(w):
                if 0 <= r + dy < h and 0 <= c + dx < w:
                    out[k, r + dy, c + dx] = images[k, r, c]
    return out"""),
]

# A wrong forward pass can make a correct backward pass fail (the backward is checked with your forward's cache).
SPILLOVER = {"dropout_forward": ["dropout_backward"]}
