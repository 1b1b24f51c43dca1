"""The mistake catalog of notebook 05 (normalization): data read by tests/course/test_mistake_catalogs.py.

MISTAKES: (exercise, label, code, phrase) -- a wrong answer; `phrase` appears in the hidden test's message.
CORRECT: (exercise, code) -- a correct answer written differently from the reference ("a+b": code that
defines both). EXERCISES: every graded function, in notebook order. The backward mistakes read the source
notebook's cache, (x_hat, gamma, inv_std).
"""

NOTEBOOK = "05_normalization"

EXERCISES = ["standardize_fit", "standardize_apply", "batchnorm_forward", "batchnorm_backward",
             "layernorm_forward", "layernorm_backward"]

# A wrong forward also breaks the backward computed from its cache.
SPILLOVER = {"batchnorm_forward": ["batchnorm_backward"], "layernorm_forward": ["layernorm_backward"]}

# A correct batchnorm_forward (CS231n's layout) with one part changed: {changes} replaces the marked parts.
BN_TEMPLATE = """
def batchnorm_forward(x, gamma, beta, bn_param):
    {first}
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = {momentum}
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones(D, dtype=x.dtype))
    if mode == "train":
        mu = x.mean(axis=0)
        var = {var}
        x_hat = (x - mu) / {denominator}
        running_mean = {running_mean}
        running_var = {running_var}
        {store_train}
    else:
        x_hat = {test_x_hat}
        {store_test}
    out = gamma * x_hat + beta
    return out, (x_hat, gamma, 1 / np.sqrt(var + eps) if mode == "train" else None)
"""
BN_OK = dict(first="", momentum='bn_param.get("momentum", 0.9)', var="((x - mu) ** 2).mean(axis=0)",
             denominator="np.sqrt(var + eps)", running_mean="momentum * running_mean + (1 - momentum) * mu",
             running_var="momentum * running_var + (1 - momentum) * var",
             store_train='bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var',
             test_x_hat="(x - running_mean) / np.sqrt(running_var + eps)", store_test="pass")


def bn(**changes):
    return BN_TEMPLATE.format(**{**BN_OK, **changes})


def bn_backward(dx="inv_std / N * (N * g - g.sum(axis=0) - x_hat * (g * x_hat).sum(axis=0))",
                dgamma="(dout * x_hat).sum(axis=0)", dbeta="dout.sum(axis=0)"):
    """A batchnorm_backward on the source notebook's cache (x_hat, gamma, inv_std) with the given parts."""
    return f"""
def batchnorm_backward(dout, cache):
    x_hat, gamma, inv_std = cache
    N = dout.shape[0]
    dbeta = {dbeta}
    dgamma = {dgamma}
    g = dout * gamma
    dx = {dx}
    return dx, dgamma, dbeta"""


def ln_backward(dx="inv_std / D * (D * g - g.sum(axis=1, keepdims=True) - x_hat * (g * x_hat).sum(axis=1, "
                   "keepdims=True))", dgamma="(dout * x_hat).sum(axis=0)"):
    return f"""
def layernorm_backward(dout, cache):
    x_hat, gamma, inv_std = cache
    N, D = dout.shape
    dbeta = dout.sum(axis=0)
    dgamma = {dgamma}
    g = dout * gamma
    dx = {dx}
    return dx, dgamma, dbeta"""


def ln_forward(axis="1", var="((x - mu) ** 2).mean(axis={axis}, keepdims=True)", denominator="np.sqrt(var + eps)",
               first=""):
    var = var.format(axis=axis)
    return f"""
def layernorm_forward(x, gamma, beta, ln_param):
    {first}
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis={axis}, keepdims=True)
    var = {var}
    inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype)
    x_hat = ((x - mu) / {denominator}).astype(x.dtype)
    return (gamma * x_hat + beta).astype(x.dtype), (x_hat, gamma, inv_std)"""


# (exercise, label, code, expected phrase in the hidden test's message)
MISTAKES = [
    ("standardize_fit", "ddof=1", """
def standardize_fit(X):
    std = X.std(axis=0, ddof=1)
    return X.mean(axis=0), np.where(np.ptp(X, axis=0) == 0, 1.0, std)""", "sample std (ddof=1)"),
    ("standardize_fit", "no guard for a constant feature", """
def standardize_fit(X):
    return X.mean(axis=0), X.std(axis=0)""", "Without that guard"),
    ("standardize_fit", "guard only where std == 0", """
def standardize_fit(X):
    std = X.std(axis=0)
    std[std == 0] = 1
    return X.mean(axis=0), std""", "is not always exactly 0"),
    ("standardize_fit", "std + eps instead of a guard", """
def standardize_fit(X):
    return X.mean(axis=0), X.std(axis=0) + 1e-8""", "Adding a small eps to every std"),
    ("standardize_fit", "returns the variance", """
def standardize_fit(X):
    var = X.var(axis=0)
    return X.mean(axis=0), np.where(np.ptp(X, axis=0) == 0, 1.0, var)""", "returns the variance"),
    ("standardize_fit", "statistics per sample (axis=1)", """
def standardize_fit(X):
    std = X.std(axis=1)
    return X.mean(axis=1), np.where(std == 0, 1.0, std)""", "per feature, over the samples"),
    ("standardize_apply", "the test set's own statistics", """
def standardize_apply(X, mean, std):
    s = X.std(axis=0)
    return ((X - X.mean(axis=0)) / np.where(s > 0, s, 1)).astype(X.dtype)""", "with its own mean and std"),
    ("standardize_apply", "multiplies by std", """
def standardize_apply(X, mean, std):
    return ((X - mean) * std).astype(X.dtype)""", "multiplies by std"),
    ("standardize_apply", "float64 result for float32 X", """
def standardize_apply(X, mean, std):
    return (X - mean) / std""", "keep X's dtype"),
    ("standardize_apply", "standardizes X in place", """
def standardize_apply(X, mean, std):
    X -= mean.astype(X.dtype)
    X /= std.astype(X.dtype)
    return X""", "changed its argument"),
    ("batchnorm_forward", "ddof=1 in the normalization", bn(var="x.var(axis=0, ddof=1)"),
     "normalizes with the sample variance (ddof=1)"),
    ("batchnorm_forward", "eps outside the square root", bn(denominator="(np.sqrt(var) + eps)"),
     "adds eps outside the square root"),
    ("batchnorm_forward", "test mode uses the batch statistics",
     bn(test_x_hat="(x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)"), "batch's own statistics in test mode"),
    ("batchnorm_forward", "running averages never stored", bn(store_train="pass"),
     "the caller never sees new running averages"),
    ("batchnorm_forward", "bn_param not updated in place (a copy)", bn(first="bn_param = dict(bn_param)"),
     "the caller never sees new running averages"),
    ("batchnorm_forward", "running averages also updated in test mode", bn(store_test="""bn_param["running_mean"] = \
momentum * running_mean + (1 - momentum) * x.mean(axis=0)"""), "test mode changes nothing in bn_param"),
    ("batchnorm_forward", "momentum weights swapped", bn(
        running_mean="(1 - momentum) * running_mean + momentum * mu",
        running_var="(1 - momentum) * running_var + momentum * var"), "swaps the momentum weights"),
    ("batchnorm_forward", "PyTorch's unbiased running variance", bn(
        running_var="momentum * running_var + (1 - momentum) * x.var(axis=0, ddof=1)"), "unbiased batch variance"),
    ("batchnorm_forward", "running averages replaced by the batch statistics", bn(running_mean="mu",
                                                                                 running_var="var"),
     "replaces the running averages by the last batch's statistics"),
    ("batchnorm_forward", "momentum read from nowhere (always 0.9)", bn(momentum="0.9"),
     "whatever bn_param['momentum'] says"),
    ("batchnorm_forward", "E[x^2] - E[x]^2", bn(var="(x ** 2).mean(axis=0) - mu ** 2"), "cancellation"),
    ("batchnorm_forward", "test mode divides by the variance", bn(
        test_x_hat="(x - running_mean) / (running_var + eps)"), "divides by running_var + eps in test mode"),
    ("batchnorm_forward", "KeyError on the first call", bn(
        first='bn_param["running_mean"], bn_param["running_var"]'), "no running statistics yet"),
    ("batchnorm_backward", "no paths through the mean and variance", bn_backward("g * inv_std"),
     "as if the batch mean and variance were constants"),
    ("batchnorm_backward", "no path through the variance", bn_backward("inv_std * (g - g.mean(axis=0))"),
     "misses the path through the variance"),
    ("batchnorm_backward", "dx without gamma", bn_backward(
        "inv_std / N * (N * dout - dout.sum(axis=0) - x_hat * (dout * x_hat).sum(axis=0))"), "forgets gamma"),
    ("batchnorm_backward", "dgamma without x_hat", bn_backward(dgamma="dout.sum(axis=0)"), "dgamma is sum(dout)"),
    ("batchnorm_backward", "dbeta averaged", bn_backward(dbeta="dout.mean(axis=0)"), "dbeta averages dout"),
    ("batchnorm_backward", "scales dout in place", """
def batchnorm_backward(dout, cache):
    x_hat, gamma, inv_std = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dout *= gamma
    dx = inv_std / N * (N * dout - dout.sum(axis=0) - x_hat * (dout * x_hat).sum(axis=0))
    return dx, dgamma, dbeta""", "changed its argument `dout`"),
    ("layernorm_forward", "statistics over the batch axis", ln_forward(axis="0"), "over the batch (axis=0)"),
    ("layernorm_forward", "no keepdims", """
def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=1)
    var = x.var(axis=1)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x_hat, gamma, 1 / np.sqrt(var + eps))""", "keepdims=True (shape (N, 1))"),
    ("layernorm_forward", "ddof=1", ln_forward(var="x.var(axis=1, ddof=1, keepdims=True)"),
     "sample variance (ddof=1)"),
    ("layernorm_forward", "eps outside the square root", ln_forward(denominator="(np.sqrt(var) + eps)"),
     "adds eps outside the square root"),
    ("layernorm_forward", "writes eps into ln_param", ln_forward(first='ln_param.setdefault("eps", 1e-5)'),
     "changed ln_param"),
    ("layernorm_backward", "no paths through the mean and variance", ln_backward(dx="g * inv_std"),
     "as if each sample's mean and variance were constants"),
    ("layernorm_backward", "batch norm's sums over the samples", ln_backward(
        dx="inv_std / N * (N * g - g.sum(axis=0) - x_hat * (g * x_hat).sum(axis=0))"), "sums over the batch"),
    ("layernorm_backward", "no path through the mean", ln_backward(
        dx="inv_std * (g - x_hat * (g * x_hat).mean(axis=1, keepdims=True))"), "misses the path through the mean"),
    ("layernorm_backward", "dgamma without x_hat", ln_backward(dgamma="dout.sum(axis=0)"), "dgamma is sum(dout)"),
]

# Correct answers written differently from the reference (and from each other): full marks.
CORRECT = [
    ("standardize_fit", """
def standardize_fit(X):
    N, D = X.shape
    mean = np.empty(D, dtype=X.dtype)
    std = np.empty(D, dtype=X.dtype)
    for j in range(D):
        column = X[:, j]
        mean[j] = column.sum() / N
        std[j] = np.sqrt(((column - mean[j]) ** 2).sum() / N) if np.any(column != column[0]) else 1.0
    return mean, std"""),
    ("standardize_fit", """
def standardize_fit(X):
    mean = np.mean(X, axis=0)
    std = np.sqrt(np.var(X, axis=0))
    std[X.max(axis=0) == X.min(axis=0)] = 1
    return mean, std"""),
    ("standardize_apply", """
def standardize_apply(X, mean, std):
    out = np.array(X, dtype=np.float64)
    out -= mean
    out /= std
    return out.astype(X.dtype)"""),
    ("standardize_apply", """
def standardize_apply(X, mean, std):
    return np.divide(X - mean.astype(X.dtype), std.astype(X.dtype))"""),
    # CS231n's layout, the running averages written back in both modes (test mode writes back what it read).
    ("batchnorm_forward", bn(store_test='bn_param["running_mean"], bn_param["running_var"] = running_mean, '
                                        'running_var')),
    # The step-by-step graph, the running averages updated in place in the caller's arrays.
    ("batchnorm_forward+batchnorm_backward", """
def batchnorm_forward(x, gamma, beta, bn_param):
    N, D = x.shape
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    if bn_param["mode"] == "test":
        rm = bn_param.get("running_mean", np.zeros(D))
        rv = bn_param.get("running_var", np.ones(D))
        return gamma * ((x - rm) / np.sqrt(rv + eps)).astype(x.dtype) + beta, None
    mu = 1 / N * np.sum(x, axis=0)
    xmu = x - mu
    sq = xmu ** 2
    var = 1 / N * np.sum(sq, axis=0)
    sqrtvar = np.sqrt(var + eps)
    ivar = 1 / sqrtvar
    xhat = xmu * ivar
    out = gamma * xhat + beta
    if "running_mean" not in bn_param:
        bn_param["running_mean"], bn_param["running_var"] = np.zeros(D, x.dtype), np.ones(D, x.dtype)
    rm, rv = bn_param["running_mean"], bn_param["running_var"]
    rm *= momentum
    rm += (1 - momentum) * mu
    rv *= momentum
    rv += (1 - momentum) * var
    return out, (xhat, gamma, xmu, ivar, sqrtvar, var, eps)

def batchnorm_backward(dout, cache):
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    N = dout.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    divar = np.sum(dxhat * xmu, axis=0)
    dxmu1 = dxhat * ivar
    dsqrtvar = -1 / sqrtvar ** 2 * divar
    dvar = 0.5 / np.sqrt(var + eps) * dsqrtvar
    dsq = 1 / N * np.ones_like(dout) * dvar
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -np.sum(dx1, axis=0)
    dx2 = 1 / N * np.ones_like(dout) * dmu
    return dx1 + dx2, dgamma, dbeta"""),
    # The compact formula on a dict cache of the raw statistics.
    ("batchnorm_forward+batchnorm_backward", """
def batchnorm_forward(x, gamma, beta, bn_param):
    D = x.shape[1]
    eps = bn_param.get("eps", 1e-5)
    m = bn_param.get("momentum", 0.9)
    if bn_param["mode"] == "train":
        mean, var = np.mean(x, axis=0), np.var(x, axis=0)
        bn_param.update(running_mean=m * bn_param.get("running_mean", np.zeros(D, x.dtype)) + (1 - m) * mean,
                        running_var=m * bn_param.get("running_var", np.ones(D, x.dtype)) + (1 - m) * var)
    else:
        mean = bn_param.get("running_mean", np.zeros(D, x.dtype))
        var = bn_param.get("running_var", np.ones(D, x.dtype))
    std = np.sqrt(var + eps)
    out = (gamma / std) * (x - mean) + beta
    return out.astype(x.dtype), {"x": x, "mean": mean, "std": std, "gamma": gamma}

def batchnorm_backward(dout, cache):
    x, mean, std, gamma = cache["x"], cache["mean"], cache["std"], cache["gamma"]
    N = x.shape[0]
    xhat = (x - mean) / std
    dgamma = np.einsum("nd,nd->d", dout, xhat)
    dbeta = np.einsum("nd->d", dout)
    dx = gamma / (N * std) * (N * dout - dbeta - xhat * dgamma)
    return dx.astype(dout.dtype), dgamma.astype(dout.dtype), dbeta.astype(dout.dtype)"""),
    # Layer norm as batch norm of the transpose.
    ("layernorm_forward+layernorm_backward", """
def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    xt = x.T
    mu = xt.mean(axis=0)
    var = ((xt - mu) ** 2).mean(axis=0)
    xhat = ((xt - mu) / np.sqrt(var + eps)).T
    return gamma * xhat + beta, (xhat, gamma, var, eps)

def layernorm_backward(dout, cache):
    xhat, gamma, var, eps = cache
    D = dout.shape[1]
    gt = (dout * gamma).T
    xt = xhat.T
    dxt = (D * gt - gt.sum(axis=0) - xt * (gt * xt).sum(axis=0)) / (D * np.sqrt(var + eps))
    return dxt.T, np.sum(dout * xhat, axis=0), np.sum(dout, axis=0)"""),
    # Step by step, with a dict cache.
    ("layernorm_forward+layernorm_backward", """
def layernorm_forward(x, gamma, beta, ln_param):
    D = x.shape[1]
    mu = np.sum(x, axis=1, keepdims=True) / D
    xmu = x - mu
    var = np.sum(xmu * xmu, axis=1, keepdims=True) / D
    ivar = 1.0 / np.sqrt(var + ln_param.get("eps", 1e-5))
    xhat = xmu * ivar
    return (xhat * gamma + beta).astype(x.dtype), {"xmu": xmu, "ivar": ivar, "xhat": xhat, "gamma": gamma}

def layernorm_backward(dout, cache):
    xmu, ivar, xhat, gamma = cache["xmu"], cache["ivar"], cache["xhat"], cache["gamma"]
    D = dout.shape[1]
    dxhat = dout * gamma
    dvar = np.sum(dxhat * xmu, axis=1, keepdims=True) * -0.5 * ivar ** 3
    dmu = -np.sum(dxhat * ivar, axis=1, keepdims=True) - 2 * dvar * np.mean(xmu, axis=1, keepdims=True)
    dx = dxhat * ivar + dvar * 2 * xmu / D + dmu / D
    return dx.astype(dout.dtype), np.sum(dout * xhat, axis=0), np.sum(dout, axis=0)"""),
]
