"""The mistake catalog of notebook 00 (gradient checking): data read by tests/course/test_mistake_catalogs.py.

MISTAKES: (exercise, label, code, phrase) -- a wrong answer; `phrase` appears in the hidden test's message.
CORRECT: (exercise, code) -- a correct answer written differently from the reference ("a+b": code that
defines both). EXERCISES: every graded function, in notebook order.
"""

NOTEBOOK = "00_gradient_checking"

EXERCISES = ["numerical_gradient", "numerical_gradient_array", "relative_error", "affine_forward",
             "affine_backward", "softmax_cross_entropy"]

# affine_backward is checked with the student's own forward, so a forward mistake may fail it too.
SPILLOVER = {"affine_forward": ["affine_backward"]}

# (exercise, label, code, expected phrase in the hidden test's message)
MISTAKES = [
    ("numerical_gradient", "forward difference", """
def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros_like(x)
    fx = f(x)
    for i in np.ndindex(x.shape):
        old = x[i]; x[i] = old + h
        grad[i] = (f(x) - fx) / h
        x[i] = old
    return grad""", "forward difference"),
    ("numerical_gradient", "divides by h", """
def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]; x[i] = old + h; fp = f(x); x[i] = old - h; fm = f(x); x[i] = old
        grad[i] = (fp - fm) / h
    return grad""", "twice the true gradient"),
    ("numerical_gradient", "restores x by arithmetic", """
def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        x[i] += h; fp = f(x); x[i] -= 2 * h; fm = f(x); x[i] += h
        grad[i] = (fp - fm) / (2 * h)
    return grad""", "left `x` changed"),
    ("numerical_gradient", "ignores h", """
def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]; x[i] = old + 1e-5; fp = f(x); x[i] = old - 1e-5; fm = f(x); x[i] = old
        grad[i] = (fp - fm) / 2e-5
    return grad""", "ignores its argument `h`"),
    ("numerical_gradient_array", "ignores dout", """
def numerical_gradient_array(f, x, dout, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]; x[i] = old + h; fp = np.sum(f(x)); x[i] = old - h; fm = np.sum(f(x)); x[i] = old
        grad[i] = (fp - fm) / (2 * h)
    return grad""", "ignores `dout`"),
    ("numerical_gradient_array", "keeps a view of the output", """
def numerical_gradient_array(f, x, dout, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]; x[i] = old + h; pos = f(x); x[i] = old - h; neg = f(x); x[i] = old
        grad[i] = np.sum((pos - neg) * dout) / (2 * h)
    return grad""", "view of x"),
    ("relative_error", "no zero case", """
def relative_error(a, b):
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b)))""", "warning"),
    ("relative_error", "element-wise maximum (another course's definition)", """
def relative_error(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))""", "element-wise maximum"),
    ("relative_error", "divides by ||a|| only", """
def relative_error(a, b):
    na = np.linalg.norm(a)
    return 0.0 if na == 0 and np.linalg.norm(b) == 0 else float(np.linalg.norm(a - b) / max(na, 1e-300))""",
     "divides by ||a|| only"),
    ("affine_forward", "forgets the bias", """
def affine_forward(x, W, b):
    return x @ W, (x, W, b)""", "forgets the bias"),
    ("affine_forward", "casts to float64", """
def affine_forward(x, W, b):
    out = x.astype(np.float64) @ W.astype(np.float64) + b
    return out, (x, W, b)""", "dtype"),
    ("affine_backward", "db not summed", """
def affine_backward(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout, dout""", "sum dout over the samples"),
    ("affine_backward", "db averaged", """
def affine_backward(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout, dout.mean(axis=0)""", "averages dout"),
    ("affine_backward", "dW averaged over the batch", """
def affine_backward(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout / x.shape[0], dout.sum(axis=0)""", "divided by N"),
    ("softmax_cross_entropy", "summed loss", """
def softmax_cross_entropy(scores, y):
    n = len(y)
    s = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    d = p.copy(); d[np.arange(n), y] -= 1
    return float(-np.log(p[np.arange(n), y]).sum()), d""", "summed over the batch"),
    ("softmax_cross_entropy", "no max subtraction", """
def softmax_cross_entropy(scores, y):
    n = len(y)
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    d = p.copy(); d[np.arange(n), y] -= 1
    return float(-np.log(p[np.arange(n), y]).mean()), d / n""", "warning"),
    ("softmax_cross_entropy", "subtracts the max in place", """
def softmax_cross_entropy(scores, y):
    n = len(y)
    scores -= scores.max(axis=1, keepdims=True)
    logp = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    d = np.exp(logp); d[np.arange(n), y] -= 1
    return float(-logp[np.arange(n), y].mean()), d / n""", "changed its argument `scores` in place"),
    ("softmax_cross_entropy", "gradient not divided by N", """
def softmax_cross_entropy(scores, y):
    n = len(y)
    s = scores - scores.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    d = np.exp(logp); d[np.arange(n), y] -= 1
    return float(-logp[np.arange(n), y].mean()), d""", "not divided by N"),
]

# Correct answers written differently from the reference: full marks.
CORRECT = [
    ("numerical_gradient", """
def numerical_gradient(f, x, h=1e-5):
    flat = x.reshape(-1)          # a view: perturbing flat perturbs x
    grad = np.empty(flat.size)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h; up = f(x)
        flat[i] = saved - h; down = f(x)
        flat[i] = saved
        grad[i] = (up - down) / (2 * h)
    return grad.reshape(x.shape)"""),
    ("numerical_gradient_array", """
def numerical_gradient_array(f, x, dout, h=1e-5):
    g = np.zeros(x.shape)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp = x.copy(); xp[i] += h
        xm = x.copy(); xm[i] -= h
        g[i] = ((f(xp) - f(xm)) * dout).sum() / (2 * h)
    return g"""),
    ("relative_error", """
def relative_error(a, b):
    a, b = np.ravel(a), np.ravel(b)
    num = np.sqrt(((a - b) ** 2).sum())
    den = np.sqrt((a ** 2).sum()) + np.sqrt((b ** 2).sum())
    return 0.0 if den == 0 else num / den"""),
    ("affine_forward", """
def affine_forward(x, W, b):
    out = np.einsum("nd,dm->nm", x, W) + b[None, :]
    return out, (x, W, b)"""),
    ("affine_forward+affine_backward", """
def affine_forward(x, W, b):
    return np.dot(x, W) + b, {"x": x, "W": W}

def affine_backward(dout, cache):
    x, W = cache["x"], cache["W"]
    return np.einsum("nm,dm->nd", dout, W), np.einsum("nd,nm->dm", x, dout), np.einsum("nm->m", dout)"""),
    ("softmax_cross_entropy", """
def softmax_cross_entropy(scores, y):
    m = np.max(scores, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(scores - m), axis=1, keepdims=True))
    probs = np.exp(scores - lse)
    onehot = np.eye(scores.shape[1])[y]
    loss = np.mean(lse[:, 0] - np.sum(scores * onehot, axis=1))
    return loss, (probs - onehot) / len(y)"""),
]
