"""Correct answers written independently, without looking at the library's reference, for the longest
exercises: the copy detector must flag none of them (tests/course/test_similarity.py).

Each is (exercise, code); "a+b" is code that defines both (a forward and the backward that reads
its cache). They were written from the exercise's text and stub only, in the styles students
use: loops or vectorized, helper variables named differently, the obvious formula. The demo's honest student
(examples/class_00/make_class.py: ADA) adds six more.
"""

ES_HEAD = '''
class EarlyStopping:
    """Stop training when the validation loss stops improving; keep a copy of the best parameters.

    Attributes: best_loss (float), best_epoch (int, calls counted from 0), best_params (dict of copies).
    """

    def __init__(self, patience, min_delta=0.0):'''

FRESH = [
    ("numerical_gradient_array", '''
def numerical_gradient_array(f, x, dout, h=1e-5):
    """Central-difference gradient of sum(f(x) * dout) with respect to x; x is restored."""
    g = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), g.reshape(-1)
    for k in range(flat_x.size):
        v = flat_x[k]
        flat_x[k] = v + h
        hi = f(x).copy()
        flat_x[k] = v - h
        lo = f(x).copy()
        flat_x[k] = v
        flat_g[k] = ((hi - lo) * dout).sum() / (2 * h)
    return g'''),
    ("numerical_gradient_array", '''
def numerical_gradient_array(f, x, dout, h=1e-5):
    """Central-difference gradient of sum(f(x) * dout) with respect to x; x is restored."""
    result = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        pos = it.multi_index
        original = x[pos]
        x[pos] = original + h
        plus = np.copy(f(x))
        x[pos] = original - h
        minus = np.copy(f(x))
        x[pos] = original
        result[pos] = np.sum(dout * (plus - minus)) / (2.0 * h)
        it.iternext()
    return result'''),
    ("softmax_cross_entropy", '''
def softmax_cross_entropy(scores, y):
    """scores: (N, C), y: (N,) int -> loss (float), dscores: (N, C)."""
    rows = np.arange(len(y))
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1))
    loss = np.mean(log_z - shifted[rows, y])
    dscores = np.exp(shifted - log_z[:, None])
    dscores[rows, y] -= 1.0
    return float(loss), dscores / len(y)'''),
    ("init_params", '''
def init_params(layer_sizes, init_fn, rng):
    """{"W1", "b1", ..., "WL", "bL"}: W_l = init_fn(layer_sizes[l-1], layer_sizes[l], rng), b_l zeros."""
    params = {}
    for layer in range(1, len(layer_sizes)):
        fan_in, fan_out = layer_sizes[layer - 1], layer_sizes[layer]
        params["W" + str(layer)] = init_fn(fan_in, fan_out, rng)
        params["b" + str(layer)] = np.zeros(fan_out)
    return params'''),
    ("init_params", '''
def init_params(layer_sizes, init_fn, rng):
    """{"W1", "b1", ..., "WL", "bL"}: W_l = init_fn(layer_sizes[l-1], layer_sizes[l], rng), b_l zeros."""
    out = {}
    pairs = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    for i, (n_in, n_out) in enumerate(pairs, start=1):
        out[f"W{i}"] = init_fn(n_in, n_out, rng)
        out[f"b{i}"] = np.zeros((n_out,))
    return out'''),
    ("EarlyStopping", ES_HEAD + '''
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = np.inf
        self.best_epoch = None
        self.best_params = None
        self.calls = 0
        self.waiting = 0

    def step(self, val_loss, params):
        """Record one epoch's validation loss (and the parameters if it is the best); True when training should stop."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss = val_loss
            self.best_epoch = self.calls
            self.best_params = {name: value.copy() for name, value in params.items()}
            self.waiting = 0
        else:
            self.waiting += 1
        self.calls += 1
        return self.waiting >= self.patience'''),
    ("EarlyStopping", '''
import copy


''' + ES_HEAD + '''
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch, self.best_params = float("inf"), None, None
        self.losses = []

    def step(self, val_loss, params):
        """Record one epoch's validation loss (and the parameters if it is the best); True when training should stop."""
        self.losses.append(val_loss)
        epoch = len(self.losses) - 1
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = val_loss, epoch
            self.best_params = copy.deepcopy(params)
        return epoch - (self.best_epoch if self.best_epoch is not None else -1) >= self.patience'''),
    ("EarlyStopping", ES_HEAD + '''
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = float("inf")
        self.best_epoch = None
        self.best_params = None
        self._epoch = -1
        self._bad_epochs = 0

    def step(self, val_loss, params):
        """Record one epoch's validation loss (and the parameters if it is the best); True when training should stop."""
        self._epoch += 1
        improved = val_loss < self.best_loss - self.min_delta
        if not improved:
            self._bad_epochs += 1
            return self._bad_epochs >= self.patience
        self.best_loss = val_loss
        self.best_epoch = self._epoch
        self.best_params = {}
        for key in params:
            self.best_params[key] = np.array(params[key], copy=True)
        self._bad_epochs = 0
        return self._bad_epochs >= self.patience'''),
    ("dropout_forward+dropout_backward", '''
def dropout_forward(x, keep_prob, mode, rng):
    """Inverted dropout. x: (N, D); keep_prob in (0, 1]; mode "train" or "test"; rng: np.random.Generator.

    Returns (out, cache): out (N, D), dtype of x.
    """
    if not 0 < keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], not {keep_prob}")
    if mode == "test":
        return x.copy(), (None, keep_prob, mode)
    if mode != "train":
        raise ValueError(f"mode must be 'train' or 'test', not {mode!r}")
    keep = rng.random(x.shape) < keep_prob
    scale = (keep / keep_prob).astype(x.dtype)
    out = x * scale
    return out, (scale, keep_prob, mode)


def dropout_backward(dout, cache):
    scale, keep_prob, mode = cache
    return dout * scale.astype(dout.dtype) if mode == "train" else dout.copy()'''),
    ("standardize_fit", '''
def standardize_fit(X):
    """Per-feature mean and population std (ddof=0) of X (N, D) -> (mean (D,), std (D,)); std 1 where constant."""
    mu = X.mean(axis=0)
    sigma = np.sqrt(((X - mu) ** 2).mean(axis=0))
    constant = np.all(X == X[:1], axis=0)  # rounding can leave a tiny std for a constant column
    sigma[constant] = 1.0
    return mu, sigma'''),
    ("iterate_minibatches", '''
def iterate_minibatches(X, y, batch_size, rng, shuffle=True):
    """One epoch of minibatches (X_batch (B, D), y_batch (B,)); every sample once, the last batch may be smaller."""
    n = len(X)
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        chosen = order[start:start + batch_size]
        yield X[chosen], y[chosen]'''),
    ("adam", '''
def adam(w, dw, config=None):
    """Adam with bias correction (as torch.optim.Adam); t counts the steps taken and is incremented before use."""
    cfg = {} if config is None else config
    cfg.setdefault("learning_rate", 1e-3)
    cfg.setdefault("beta1", 0.9)
    cfg.setdefault("beta2", 0.999)
    cfg.setdefault("epsilon", 1e-8)
    cfg.setdefault("m", np.zeros_like(w))
    cfg.setdefault("v", np.zeros_like(w))
    cfg.setdefault("t", 0)
    cfg["t"] += 1
    cfg["m"] = cfg["beta1"] * cfg["m"] + (1 - cfg["beta1"]) * dw
    cfg["v"] = cfg["beta2"] * cfg["v"] + (1 - cfg["beta2"]) * dw * dw
    m_hat = cfg["m"] / (1 - cfg["beta1"] ** cfg["t"])
    v_hat = cfg["v"] / (1 - cfg["beta2"] ** cfg["t"])
    return w - cfg["learning_rate"] * m_hat / (np.sqrt(v_hat) + cfg["epsilon"]), cfg'''),
    ("random_shift", '''
def random_shift(images, max_shift, rng):
    """images (N, H, W) -> a new (N, H, W) array, each image moved by its own random (dy, dx), zeros in the border."""
    n, height, width = images.shape
    shifted = np.zeros_like(images)
    for k in range(n):
        dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
        src_rows = slice(max(0, -dy), min(height, height - dy))
        dst_rows = slice(max(0, dy), min(height, height + dy))
        src_cols = slice(max(0, -dx), min(width, width - dx))
        dst_cols = slice(max(0, dx), min(width, width + dx))
        shifted[k, dst_rows, dst_cols] = images[k, src_rows, src_cols]
    return shifted'''),
    ("layernorm_forward+layernorm_backward", '''
def layernorm_forward(x, gamma, beta, ln_param):
    """Layer norm of x (N, D): statistics over the features of each sample -> (out (N, D), cache)."""
    eps = ln_param.get("eps", 1e-5)
    mean = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    out = gamma * x_hat + beta
    return out, (x_hat, inv_std, gamma)


def layernorm_backward(dout, cache):
    x_hat, inv_std, gamma = cache
    dxhat = dout * gamma
    dx = inv_std * (dxhat - dxhat.mean(axis=1, keepdims=True)
                    - x_hat * (dxhat * x_hat).mean(axis=1, keepdims=True))
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)'''),
    ("batchnorm_forward+batchnorm_backward", '''
def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch norm of x (N, D) -> (out (N, D), cache); running averages kept in bn_param (train mode)."""
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones(D, dtype=x.dtype))
    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        x_hat = (x - mu) / np.sqrt(var + eps)
        out = gamma * x_hat + beta
        cache = (x_hat, gamma, var, eps)
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mu
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    elif mode == "test":
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        cache = None
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return out, cache


def batchnorm_backward(dout, cache):
    x_hat, gamma, var, eps = cache
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - x_hat * (dxhat * x_hat).mean(axis=0)) / np.sqrt(var + eps)
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)'''),
    # numpy-style docstrings and comments, as students who learned from other courses write them
    ("affine_backward", '''
def affine_backward(dout, cache):
    """Backward pass for an affine layer.

    Parameters
    ----------
    dout : (N, M) upstream gradient
    cache : (x, W, b) from the forward pass

    Returns
    -------
    dx : (N, D), dW : (D, M), db : (M,)
    """
    x, W, b = cache
    dx = dout.dot(W.T)  # gradient with respect to the input
    dW = x.T.dot(dout)  # gradient with respect to the weights
    db = np.sum(dout, axis=0)  # the bias is added to every row, so sum over the batch
    return dx, dW, db'''),
    ("relu_backward", '''
def relu_backward(dout, cache):
    """Backward pass of relu_forward.

    dout: array, shape of x (upstream gradient)
    cache: x from the forward pass
    returns dx: array, shape of x
    """
    x = cache
    dx = dout * (x > 0)  # the gradient is 0 where x <= 0
    return dx'''),
    ("sigmoid_forward", '''
def sigmoid_forward(x):
    """Logistic sigmoid, elementwise; returns (out, cache) with out of the shape and dtype of x."""
    # a stable formula: exp is only ever taken of a non-positive number
    e = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
    return out, out'''),
]
