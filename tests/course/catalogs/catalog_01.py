"""The mistake catalog of notebook 01 (activations): data read by tests/course/test_mistake_catalogs.py.

MISTAKES: (exercise, label, code, phrase) -- a wrong answer; `phrase` appears in the hidden test's message.
CORRECT: (exercise, code) -- a correct answer written differently from the reference ("a+b": code that
defines both). EXERCISES: every graded function, in notebook order.

A backward answer may define its forward too (a different cache layout): the backward's cell comes after
the forward's tests, so only the backward is graded with it.
"""

NOTEBOOK = "01_activations"

# A forward mistake may also fail its backward's cells (they use the student's own forward).
SPILLOVER = {f"{base}_forward": [f"{base}_backward"]
             for base in ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "swish"]}

EXERCISES = ["sigmoid_forward", "sigmoid_backward", "tanh_forward", "tanh_backward", "relu_forward",
             "relu_backward", "leaky_relu_forward", "leaky_relu_backward", "softplus_forward", "softplus_backward",
             "swish_forward", "swish_backward", "softmax"]

# (exercise, label, code, expected phrase in the hidden test's message)
MISTAKES = [
    # ---------------------------------------------------------------- sigmoid
    ("sigmoid_forward", "naive formula overflows", """
def sigmoid_forward(x):
    out = 1 / (1 + np.exp(-x))
    return out, out""", "not numerically stable for large negative inputs"),
    ("sigmoid_forward", "np.where evaluates both branches", """
def sigmoid_forward(x):
    out = np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))
    return out, out""", "not numerically stable for large negative inputs"),
    ("sigmoid_forward", "sign of the exponent", """
def sigmoid_forward(x):
    z = np.exp(-np.abs(x))
    out = np.where(x < 0, 1, z) / (1 + z)
    return out, out""", "computes sigmoid(-x)"),
    ("sigmoid_forward", "calls the library's reference", """
from nnlab.activations import sigmoid_forward as _library_sigmoid
def sigmoid_forward(x):
    return _library_sigmoid(x)""", "calls the library's reference"),
    ("sigmoid_backward", "ignores dout", """
def sigmoid_backward(dout, cache):
    return cache * (1 - cache)""", "ignores dout"),
    ("sigmoid_backward", "input cached, used as the output", """
def sigmoid_forward(x):
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, z) / (1 + z), x
def sigmoid_backward(dout, cache):
    s = cache
    return dout * s * (1 - s)""", "uses the input where the output was cached"),
    ("sigmoid_backward", "multiplies dout in place", """
def sigmoid_backward(dout, cache):
    dout *= cache * (1 - cache)
    return dout""", "changed its argument `dout` in place"),
    ("sigmoid_backward", "modifies the cache in place", """
def sigmoid_backward(dout, cache):
    s = cache
    s *= 1 - s
    return dout * s""", "changed its argument `cache` in place"),
    ("sigmoid_backward", "unstable derivative from x", """
def sigmoid_forward(x):
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, z) / (1 + z), x
def sigmoid_backward(dout, cache):
    e = np.exp(-cache)
    return dout * e / (1 + e) ** 2""", "sigmoid_backward is not numerically stable"),
    ("sigmoid_backward", "calls the library's reference", """
import nnlab.activations
def sigmoid_backward(dout, cache):
    return nnlab.activations.sigmoid_backward(dout, cache)""", "calls the library's reference"),
    # ---------------------------------------------------------------- tanh
    ("tanh_forward", "exponential formula overflows", """
def tanh_forward(x):
    out = (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))
    return out, out""", "tanh_forward is not numerically stable"),
    ("tanh_forward", "2 sigmoid(x) - 1", """
def tanh_forward(x):
    z = np.exp(-np.abs(x))
    out = 2 * np.where(x >= 0, 1, z) / (1 + z) - 1
    return out, out""", "which is tanh(x / 2)"),
    ("tanh_backward", "ignores dout", """
def tanh_backward(dout, cache):
    return 1 - cache ** 2""", "ignores dout"),
    ("tanh_backward", "input cached, used as the output", """
def tanh_forward(x):
    return np.tanh(x), x
def tanh_backward(dout, cache):
    return dout * (1 - cache ** 2)""", "uses the input where the output was cached"),
    ("tanh_backward", "1 / cosh^2 overflows", """
def tanh_forward(x):
    return np.tanh(x), x
def tanh_backward(dout, cache):
    return dout / np.cosh(cache) ** 2""", "cosh(1000) = inf"),
    ("tanh_backward", "1 - t instead of 1 - t^2", """
def tanh_backward(dout, cache):
    return dout * (1 - cache)""", "the derivative of tanh is 1 - t**2"),
    # ---------------------------------------------------------------- relu
    ("relu_forward", "np.max instead of np.maximum", """
def relu_forward(x):
    return np.max(x, 0), x""", "np.maximum(x, 0) is the elementwise maximum"),
    ("relu_forward", "zeroes x in place", """
def relu_forward(x):
    x[x < 0] = 0
    return x, x""", "changed its argument `x` in place"),
    ("relu_forward", "absolute value", """
def relu_forward(x):
    return np.abs(x), x""", "returns |x|"),
    ("relu_backward", "gradient at x == 0", """
def relu_backward(dout, cache):
    return dout * (cache >= 0)""", "lets gradient through where x == 0"),
    ("relu_backward", "mutates dout", """
def relu_backward(dout, cache):
    dout[cache <= 0] = 0
    return dout""", "changed its argument `dout` in place"),
    ("relu_backward", "output cached, compared with >= 0", """
def relu_forward(x):
    out = np.maximum(x, 0)
    return out, out
def relu_backward(dout, cache):
    return dout * (cache >= 0)""", "passes dout through unchanged"),
    ("relu_backward", "ignores dout", """
def relu_backward(dout, cache):
    return (cache > 0).astype(cache.dtype)""", "ignores dout"),
    # ---------------------------------------------------------------- leaky relu
    ("leaky_relu_forward", "hard-coded slope", """
def leaky_relu_forward(x, alpha=0.01):
    return np.where(x > 0, x, 0.01 * x), (x, alpha)""", "ignores its argument alpha"),
    ("leaky_relu_forward", "alpha instead of alpha * x", """
def leaky_relu_forward(x, alpha=0.01):
    return np.where(x > 0, x, alpha), (x, alpha)""", "it should return alpha * x"),
    ("leaky_relu_forward", "wrong default alpha", """
def leaky_relu_forward(x, alpha=0.1):
    return np.where(x > 0, x, alpha * x), (x, alpha)""", "The default slope is alpha=0.01"),
    ("leaky_relu_backward", "hard-coded slope", """
def leaky_relu_backward(dout, cache):
    x, alpha = cache
    return np.where(x > 0, dout, 0.01 * dout)""", "ignores alpha"),
    ("leaky_relu_backward", "plain ReLU gradient", """
def leaky_relu_backward(dout, cache):
    x, alpha = cache
    return dout * (x > 0)""", "gives no gradient where x < 0"),
    ("leaky_relu_backward", "alpha * x as the slope", """
def leaky_relu_backward(dout, cache):
    x, alpha = cache
    return np.where(x > 0, dout, alpha * x * dout)""", "multiplies dout by alpha * x"),
    ("leaky_relu_backward", "mutates dout", """
def leaky_relu_backward(dout, cache):
    x, alpha = cache
    dout[x <= 0] *= alpha
    return dout""", "changed its argument `dout` in place"),
    # ---------------------------------------------------------------- softplus
    ("softplus_forward", "log(1 + exp(x)) overflows", """
def softplus_forward(x):
    return np.log(1 + np.exp(x)), x""", "not numerically stable for large positive inputs"),
    ("softplus_forward", "np.where with an overflowing branch", """
def softplus_forward(x):
    return np.where(x > 30, x, np.log1p(np.exp(x))), x""", "not numerically stable for large positive inputs"),
    ("softplus_forward", "exp(-x) instead of exp(-|x|)", """
def softplus_forward(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-x)), x""", "needs exp(-|x|)"),
    ("softplus_backward", "unstable sigmoid", """
def softplus_backward(dout, cache):
    x = cache
    return dout * np.exp(x) / (1 + np.exp(x))""", "softplus_backward is not numerically stable"),
    ("softplus_backward", "output cached, used as the input", """
def softplus_forward(x):
    out = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    return out, out
def softplus_backward(dout, cache):
    z = np.exp(-np.abs(cache))
    return dout * np.where(cache >= 0, 1, z) / (1 + z)""", "uses the input where the output was cached"),
    ("softplus_backward", "ignores dout", """
def softplus_backward(dout, cache):
    z = np.exp(-np.abs(cache))
    return np.where(cache >= 0, 1, z) / (1 + z)""", "ignores dout"),
    # ---------------------------------------------------------------- swish
    ("swish_forward", "x / (1 + exp(-x)) overflows", """
def swish_forward(x):
    out = x / (1 + np.exp(-x))
    return out, x""", "not numerically stable for large negative inputs"),
    ("swish_forward", "multiplies x in place", """
def swish_forward(x):
    z = np.exp(-np.abs(x))
    s = np.where(x >= 0, 1, z) / (1 + z)
    out = x
    out *= s
    return out, (x, s)""", "changed its argument `x` in place"),
    ("swish_backward", "only the sigmoid term", """
def swish_backward(dout, cache):
    x, s = cache
    return dout * s""", "missing a term"),
    ("swish_backward", "only the x s (1 - s) term", """
def swish_backward(dout, cache):
    x, s = cache
    return dout * x * s * (1 - s)""", "missing a term"),
    ("swish_backward", "s + x s", """
def swish_backward(dout, cache):
    x, s = cache
    return dout * (s + x * s)""", "d/dx [x s] = s + x s (1 - s)"),
    # ---------------------------------------------------------------- softmax
    ("softmax", "no max subtraction", """
def softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)""", "subtract the maximum along `axis`"),
    ("softmax", "ignores axis", """
def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)""", "ignores its argument `axis`"),
    ("softmax", "global maximum", """
def softmax(x, axis=-1):
    e = np.exp(x - x.max())
    return e / e.sum(axis=axis, keepdims=True)""", "not the maximum of the whole array"),
    ("softmax", "sum without keepdims", """
def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis)""", "keepdims=True"),
    ("softmax", "subtracts the max in place", """
def softmax(x, axis=-1):
    x -= x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)""", "changed its argument `x` in place"),
    ("softmax", "returns (out, cache)", """
def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    return p, p""", "returns a tuple"),
]

# Correct answers written differently from the reference: full marks. "a+b" defines both.
CORRECT = [
    ("sigmoid_forward+sigmoid_backward", """
def sigmoid_forward(x):
    return 0.5 * (1 + np.tanh(0.5 * x)), x          # caches the input, not the output

def sigmoid_backward(dout, cache):
    s = 0.5 * (1 + np.tanh(0.5 * cache))
    return dout * s * (1 - s)"""),
    ("sigmoid_forward", """
from scipy.special import expit
def sigmoid_forward(x):
    out = expit(x)
    return out, out"""),
    ("tanh_forward+tanh_backward", """
def tanh_forward(x):
    a = np.abs(x)
    t = np.sign(x) * -np.expm1(-2 * a) / (1 + np.exp(-2 * a))
    return t, {"x": x}

def tanh_backward(dout, cache):
    t = np.tanh(cache["x"])
    return dout - dout * t ** 2"""),
    ("relu_forward+relu_backward", """
def relu_forward(x):
    out = x.clip(min=0)
    return out, out > 0                               # caches a mask

def relu_backward(dout, cache):
    return np.where(cache, dout, 0.0)"""),
    ("leaky_relu_forward+leaky_relu_backward", """
def leaky_relu_forward(x, alpha=0.01):
    return np.maximum(x, alpha * x), [x > 0, alpha]   # correct for 0 <= alpha <= 1

def leaky_relu_backward(dout, cache):
    positive, alpha = cache
    return dout * np.where(positive, 1.0, alpha).astype(dout.dtype)"""),
    ("leaky_relu_backward", """
def leaky_relu_backward(dout, cache):
    x, alpha = cache
    return np.where(x >= 0, dout, alpha * dout)       # slope 1 at x == 0: also a valid subgradient"""),
    ("softplus_forward+softplus_backward", """
def softplus_forward(x):
    out = np.logaddexp(0, x)
    return out, out                                   # caches the output

def softplus_backward(dout, cache):
    return -np.expm1(-cache) * dout                   # sigmoid(x) = 1 - exp(-softplus(x))"""),
    ("swish_forward+swish_backward", """
def swish_forward(x):
    return x * (0.5 + 0.5 * np.tanh(0.5 * x)), x

def swish_backward(dout, cache):
    x = cache
    s = 0.5 + 0.5 * np.tanh(0.5 * x)
    return dout * (s + x * s * (1 - s))"""),
    ("softmax", """
def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    lse = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return np.exp(x - lse)"""),
]
