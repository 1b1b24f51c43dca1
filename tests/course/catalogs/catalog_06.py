"""The mistake catalog of notebook 06 (optimizers): data read by tests/course/test_mistake_catalogs.py.

MISTAKES: (exercise, label, code, phrase) -- a wrong answer; `phrase` appears in the hidden test's message.
CORRECT: (exercise, code) -- a correct answer written differently from the reference ("a+b": code that
defines both). EXERCISES: every graded function, in notebook order.
"""

NOTEBOOK = "06_optimizers"

EXERCISES = ["iterate_minibatches", "sgd", "sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam",
             "step_decay", "exponential_decay", "inverse_time_decay"]

# A correct rule with one piece changed: {name} is replaced by each rule's pieces below.
MOMENTUM = """
def {name}(w, dw, config=None):
    if config is None:
        config = {{}}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    lr, rho = config["learning_rate"], {rho}
    v_old = config.get("velocity", np.zeros_like(w))
    v = {v}
    config["velocity"] = {store}
    return {step}, config"""
MOM_OK = dict(rho='config["momentum"]', v="rho * v_old + dw", store="v", step="w - lr * v")


def momentum(name="sgd_momentum", **changes):
    return MOMENTUM.format(name=name, **{**MOM_OK, **changes})


ADAPTIVE = """
def {name}(w, dw, config=None):
    if config is None:
        config = {{}}
    for key, value in {defaults}:
        config.setdefault(key, value)
    lr, eps = config["learning_rate"], config["epsilon"]
    cache = {cache}
    config["cache"] = cache
    return w - lr * dw / {denom}, config"""
ADAGRAD_OK = dict(name="adagrad", defaults='(("learning_rate", 1e-2), ("epsilon", 1e-8))',
                  cache='config.get("cache", np.zeros_like(w)) + dw ** 2', denom="(np.sqrt(cache) + eps)")
RMSPROP_OK = dict(name="rmsprop", defaults='(("learning_rate", 1e-2), ("decay_rate", 0.99), ("epsilon", 1e-8))',
                  cache='config["decay_rate"] * config.get("cache", np.zeros_like(w)) + '
                        '(1 - config["decay_rate"]) * dw ** 2',
                  denom="(np.sqrt(cache) + eps)")


def adagrad(**changes):
    return ADAPTIVE.format(**{**ADAGRAD_OK, **changes})


def rmsprop(**changes):
    return ADAPTIVE.format(**{**RMSPROP_OK, **changes})


ADAM = """
def adam(w, dw, config=None):
    if config is None:
        config = {{}}
    for key, value in (("learning_rate", {lr}), ("beta1", 0.9), ("beta2", 0.999), ("epsilon", 1e-8)):
        config.setdefault(key, value)
    b1, b2, eps = config["beta1"], config["beta2"], config["epsilon"]
    {t_before}
    m = b1 * config.get("m", np.zeros_like(w)) + (1 - b1) * dw
    v = b2 * config.get("v", np.zeros_like(w)) + (1 - b2) * {square}
    config["m"], config["v"] = m, v
    m_hat = m / {c1}
    v_hat = v / {c2}
    {t_after}
    return w - config["learning_rate"] * m_hat / {denom}, config"""
ADAM_OK = dict(lr="1e-3", t_before='t = config["t"] = config.get("t", 0) + 1', t_after="", square="dw ** 2",
               c1="(1 - b1 ** t)", c2="(1 - b2 ** t)", denom="(np.sqrt(v_hat) + eps)")


def adam(**changes):
    return ADAM.format(**{**ADAM_OK, **changes})


MINIBATCHES = """
def iterate_minibatches(X, y, batch_size, rng, shuffle=True):
    N = len(X)
    {order}
    for start in {starts}:
        idx = order[start:start + batch_size]
        yield {pair}"""
MB_OK = dict(order="order = rng.permutation(N) if shuffle else np.arange(N)", starts="range(0, N, batch_size)",
             pair="X[idx], y[idx]")


def minibatches(**changes):
    return MINIBATCHES.format(**{**MB_OK, **changes})


# (exercise, label, code, expected phrase in the hidden test's message)
MISTAKES = [
    # ---------------------------------------------------------------- minibatches
    ("iterate_minibatches", "drops the last partial batch",
     minibatches(starts="range(0, N - batch_size + 1, batch_size)"), "drops the last, smaller batch"),
    ("iterate_minibatches", "X and y shuffled with different permutations", """
def iterate_minibatches(X, y, batch_size, rng, shuffle=True):
    Xs = X[rng.permutation(len(X))] if shuffle else X
    ys = y[rng.permutation(len(y))] if shuffle else y
    for start in range(0, len(X), batch_size):
        yield Xs[start:start + batch_size], ys[start:start + batch_size]""", "with the wrong labels"),
    ("iterate_minibatches", "numpy's global random state",
     minibatches(order="order = np.random.permutation(N) if shuffle else np.arange(N)"), "global random state"),
    ("iterate_minibatches", "ignores shuffle=False", minibatches(order="order = rng.permutation(N)"),
     "although shuffle=False"),
    ("iterate_minibatches", "never shuffles", minibatches(order="order = np.arange(N)"), "does not shuffle"),
    ("iterate_minibatches", "draws with replacement", minibatches(order="order = rng.integers(0, N, N) if shuffle "
                                                                        "else np.arange(N)"), "exactly once"),
    ("iterate_minibatches", "shuffles X and y in place", """
def iterate_minibatches(X, y, batch_size, rng, shuffle=True):
    if shuffle:
        idx = rng.permutation(len(X))
        X[:] = X[idx]
        y[:] = y[idx]
    for start in range(0, len(X), batch_size):
        yield X[start:start + batch_size], y[start:start + batch_size]""", "changed the caller's"),
    ("iterate_minibatches", "shuffles the order of fixed batches only", """
def iterate_minibatches(X, y, batch_size, rng, shuffle=True):
    starts = np.arange(0, len(X), batch_size)
    if shuffle:
        starts = rng.permutation(starts)
    for start in starts:
        yield X[start:start + batch_size], y[start:start + batch_size]""", "the smaller batch should come last"),
    ("iterate_minibatches", "a generator of its own with a fixed seed",
     minibatches(order="order = np.random.default_rng(0).permutation(N) if shuffle else np.arange(N)"),
     "ignores the rng argument"),
    # ---------------------------------------------------------------- sgd
    ("sgd", "gradient ascent", """
def sgd(w, dw, config=None):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    return w + config["learning_rate"] * dw, config""", "steps uphill"),
    ("sgd", "hard-coded learning rate", """
def sgd(w, dw, config=None):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    return w - 1e-2 * dw, config""", "ignores config['learning_rate']"),
    ("sgd", "Adam's default learning rate", """
def sgd(w, dw, config=None):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    return w - config["learning_rate"] * dw, config""", "its default is"),
    ("sgd", "modifies dw in place", """
def sgd(w, dw, config=None):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    dw *= config["learning_rate"]
    return w - dw, config""", "changed its argument `dw`"),
    ("sgd", "returns only w", """
def sgd(w, dw, config=None):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    return w - config["learning_rate"] * dw""", "pair (next_w, config)"),
    # ---------------------------------------------------------------- momentum
    ("sgd_momentum", "multiplies by the learning rate twice", momentum(v="rho * v_old + lr * dw"),
     "learning rate twice"),
    ("sgd_momentum", "forgets to store the velocity", momentum(store="v_old"), "does not carry the velocity"),
    ("sgd_momentum", "dampened velocity (1 - momentum) * dw", momentum(v="rho * v_old + (1 - rho) * dw"),
     "averages the gradient"),
    ("sgd_momentum", "CS231n form v = rho v - lr dw", momentum(v="rho * v_old - lr * dw", step="w + v"),
     "keeps the learning rate inside the velocity"),
    ("sgd_momentum", "hard-coded momentum 0.9", momentum(rho="0.9"), "ignores config['momentum']"),
    ("sgd_momentum", "gradient ascent", momentum(step="w + lr * v"), "steps uphill"),
    ("sgd_momentum", "steps with the old velocity", momentum(step="w - lr * v_old"), "velocity of the previous call"),
    ("sgd_momentum", "module-level velocity", """
VELOCITY = {}

def sgd_momentum(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config["momentum"] * VELOCITY.get(w.shape, np.zeros_like(w)) + dw
    VELOCITY[w.shape] = v
    config["velocity"] = v
    return w - config["learning_rate"] * v, config""", "state outside `config`"),
    ("sgd_momentum", "mutable default config={}", """
def sgd_momentum(w, dw, config={}):
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config["momentum"] * config.get("velocity", np.zeros_like(w)) + dw
    config["velocity"] = v
    return w - config["learning_rate"] * v, config""", "The first call passes config=None"),
    # ---------------------------------------------------------------- nesterov
    ("nesterov", "plain momentum", momentum("nesterov"), "is plain momentum"),
    ("nesterov", "looks ahead with the old velocity (= plain momentum)",
     momentum("nesterov", step="w - lr * (dw + rho * v_old)"), "is plain momentum"),
    ("nesterov", "CS231n form", momentum("nesterov", v="rho * v_old - lr * dw", step="w - rho * v_old + (1 + rho) * v"),
     "keeps the learning rate inside the velocity"),
    ("nesterov", "forgets to store the velocity", momentum("nesterov", store="v_old", step="w - lr * (dw + rho * v)"),
     "does not carry the velocity"),
    ("nesterov", "multiplies by the learning rate twice",
     momentum("nesterov", v="rho * v_old + lr * dw", step="w - lr * (dw + rho * v)"), "learning rate twice"),
    # ---------------------------------------------------------------- adagrad
    ("adagrad", "no accumulation", adagrad(cache="dw ** 2"), "does not accumulate"),
    ("adagrad", "no square root", adagrad(denom="(cache + eps)"), "divides by cache + epsilon"),
    ("adagrad", "epsilon inside the square root", adagrad(denom="np.sqrt(cache + eps)"),
     "puts epsilon inside the square root"),
    ("adagrad", "float64 state for a float32 w", adagrad(cache='config.get("cache", np.zeros(w.shape)) + dw ** 2'),
     "keep w's dtype"),
    ("adagrad", "hard-coded epsilon", adagrad(denom="(np.sqrt(cache) + 1e-8)"), "ignores config['epsilon']"),
    # ---------------------------------------------------------------- rmsprop
    ("rmsprop", "without 1 - decay_rate", rmsprop(cache='config["decay_rate"] * config.get("cache", np.zeros_like(w)) '
                                                       '+ dw ** 2'), "1 - decay_rate is missing"),
    ("rmsprop", "decay_rate and 1 - decay_rate swapped",
     rmsprop(cache='(1 - config["decay_rate"]) * config.get("cache", np.zeros_like(w)) + '
                   'config["decay_rate"] * dw ** 2'),
     "swaps decay_rate"),
    ("rmsprop", "no square root", rmsprop(denom="(cache + eps)"), "divides by cache + epsilon"),
    ("rmsprop", "hard-coded decay rate 0.99",
     rmsprop(cache='0.99 * config.get("cache", np.zeros_like(w)) + 0.01 * dw ** 2'), "ignores config['decay_rate']"),
    ("rmsprop", "forgets the cache", rmsprop(cache='(1 - config["decay_rate"]) * dw ** 2'), "does not carry the cache"),
    # ---------------------------------------------------------------- adam
    ("adam", "no bias correction", adam(c1="1", c2="1"), "has no bias correction"),
    ("adam", "t incremented after use (from 0)", adam(t_before='t = config.get("t", 0)',
                                                     t_after='config["t"] = t + 1'), "before incrementing"),
    ("adam", "t incremented after use (from 1)", adam(t_before='t = config.get("t", 1)',
                                                     t_after='config["t"] = t + 1'),
     "t counts the steps already taken"),
    ("adam", "v not squared", adam(square="dw"), "instead of dw**2"),
    ("adam", "bias correction of m only", adam(c2="1"), "but not of v"),
    ("adam", "epsilon inside the square root", adam(denom="np.sqrt(v_hat + eps)"),
     "puts epsilon inside the square root"),
    ("adam", "learning rate 1e-2 by default", adam(lr="1e-2"), "its default is"),
    ("adam", "t not stored", adam(t_before="t = 1"), "does not carry t"),
    ("adam", "t stored as a float", adam(t_before='t = config["t"] = config.get("t", 0) + 1.0'),
     "t counts the steps already taken"),
    ("adam", "state shared between parameters", """
STATE = {"m": 0.0, "v": 0.0, "t": 0}

def adam(w, dw, config=None):
    if config is None:
        config = {}
    for key, value in (("learning_rate", 1e-3), ("beta1", 0.9), ("beta2", 0.999), ("epsilon", 1e-8)):
        config.setdefault(key, value)
    b1, b2 = config["beta1"], config["beta2"]
    if "t" not in config:
        STATE.update(m=0.0, v=0.0, t=0)
    STATE["t"] += 1
    STATE["m"] = b1 * STATE["m"] + (1 - b1) * dw
    STATE["v"] = b2 * STATE["v"] + (1 - b2) * dw ** 2
    t = config["t"] = STATE["t"]
    config["m"], config["v"] = STATE["m"], STATE["v"]
    m_hat, v_hat = STATE["m"] / (1 - b1 ** t), STATE["v"] / (1 - b2 ** t)
    return w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"]), config""",
     "share state"),
    # ---------------------------------------------------------------- schedules
    ("step_decay", "no floor", """
def step_decay(lr0, epoch, drop=0.5, epochs_per_drop=10):
    return lr0 * drop ** (epoch / epochs_per_drop)""", "has no floor"),
    ("step_decay", "drops one epoch early", """
def step_decay(lr0, epoch, drop=0.5, epochs_per_drop=10):
    return lr0 * drop ** ((epoch + 1) // epochs_per_drop)""", "one epoch too early"),
    ("step_decay", "epochs counted from 1", """
def step_decay(lr0, epoch, drop=0.5, epochs_per_drop=10):
    return lr0 * drop ** ((epoch - 1) // epochs_per_drop)""", "one epoch too late"),
    ("step_decay", "hard-coded drop", """
def step_decay(lr0, epoch, drop=0.5, epochs_per_drop=10):
    return lr0 * 0.5 ** (epoch // epochs_per_drop)""", "ignores its argument `drop`"),
    ("step_decay", "ceil instead of floor", """
import math

def step_decay(lr0, epoch, drop=0.5, epochs_per_drop=10):
    return lr0 * drop ** math.ceil(epoch / epochs_per_drop)""", "rounds the exponent up"),
    ("exponential_decay", "written as a power k ** epoch", """
def exponential_decay(lr0, epoch, k):
    return lr0 * k ** epoch""", "written as a power lr0 * k ** epoch"),
    ("exponential_decay", "written as a power (1 - k) ** epoch", """
def exponential_decay(lr0, epoch, k):
    return lr0 * (1 - k) ** epoch""", "written as a power lr0 * (1 - k) ** epoch"),
    ("exponential_decay", "positive exponent", """
def exponential_decay(lr0, epoch, k):
    return lr0 * np.exp(k * epoch)""", "with a minus"),
    ("exponential_decay", "epoch outside the exponent", """
def exponential_decay(lr0, epoch, k):
    return lr0 * np.exp(-k) * epoch""", "belongs in the exponent"),
    ("inverse_time_decay", "without the 1", """
def inverse_time_decay(lr0, epoch, k):
    return lr0 / (k * epoch)""", "with the 1"),
    ("inverse_time_decay", "without the 1 (numpy division)", """
def inverse_time_decay(lr0, epoch, k):
    return float(np.float64(lr0) / (k * epoch))""", "with the 1"),
    ("inverse_time_decay", "operator precedence", """
def inverse_time_decay(lr0, epoch, k):
    return lr0 / 1 + k * epoch""", "lr0 / 1 + k * epoch (operator precedence)"),
    ("inverse_time_decay", "ignores k", """
def inverse_time_decay(lr0, epoch, k):
    return lr0 / (1 + epoch)""", "ignores k"),
    ("inverse_time_decay", "exponential instead of 1/t", """
def inverse_time_decay(lr0, epoch, k):
    return lr0 / (1 + k) ** epoch""", "(1 + k) ** epoch"),
]

# Correct answers written differently from the reference and from each other: full marks.
CORRECT = [
    ("iterate_minibatches", """
def iterate_minibatches(X, y, batch_size, rng, shuffle=True):
    order = np.arange(len(X))
    if shuffle:
        rng.shuffle(order)
    return [(X[part], y[part]) for part in np.array_split(order, range(batch_size, len(X), batch_size))]"""),
    ("iterate_minibatches", """
def iterate_minibatches(X, y, batch_size, rng, shuffle=True):
    if shuffle:
        idx = rng.choice(len(X), size=len(X), replace=False)
        X, y = np.take(X, idx, axis=0), np.take(y, idx, axis=0)
    n_batches = -(-len(X) // batch_size)
    for b in range(n_batches):
        lo, hi = b * batch_size, min((b + 1) * batch_size, len(X))
        yield X[lo:hi], y[lo:hi]"""),
    ("iterate_minibatches", """
def iterate_minibatches(X, y, batch_size, rng, shuffle=True):
    N = X.shape[0]
    perm = rng.permutation(N) if shuffle else None
    start = 0
    while start < N:
        stop = start + batch_size
        if perm is None:
            yield X[start:stop], y[start:stop]
        else:
            yield X[perm[start:stop]], y[perm[start:stop]]
        start = stop"""),
    ("sgd", """
def sgd(w, dw, config=None):
    config = config if config is not None else {"learning_rate": 1e-2}
    config.setdefault("learning_rate", 1e-2)
    w -= config["learning_rate"] * dw
    return w, config"""),
    ("sgd", """
def sgd(w, dw, config=None):
    if config is None:
        config = dict()
    if "learning_rate" not in config:
        config["learning_rate"] = 0.01
    return np.subtract(w, config["learning_rate"] * dw), config"""),
    ("sgd_momentum", """
def sgd_momentum(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.setdefault("velocity", np.zeros_like(w))
    v *= config["momentum"]
    v += dw
    w -= config["learning_rate"] * v
    return w, config"""),
    ("sgd_momentum", """
def sgd_momentum(w, dw, config=None):
    cfg = {"learning_rate": 1e-2, "momentum": 0.9}
    if config is not None:
        cfg.update(config)
    velocity = cfg.get("velocity")
    velocity = dw.copy() if velocity is None else cfg["momentum"] * velocity + dw
    cfg["velocity"] = velocity
    return w - cfg["learning_rate"] * velocity, cfg"""),
    ("nesterov", """
def nesterov(w, dw, config=None):
    if config is None:
        config = {}
    lr = config.setdefault("learning_rate", 1e-2)
    mu = config.setdefault("momentum", 0.9)
    v_old = config.get("velocity", np.zeros_like(w))
    config["velocity"] = mu * v_old + dw
    return w - lr * ((1 + mu) * dw + mu ** 2 * v_old), config"""),
    ("nesterov", """
def nesterov(w, dw, config=None):
    config = {} if config is None else config
    for key, value in {"learning_rate": 1e-2, "momentum": 0.9}.items():
        if key not in config:
            config[key] = value
    if "velocity" not in config:
        config["velocity"] = np.zeros_like(w)
    v = config["velocity"]
    v *= config["momentum"]
    v += dw
    w -= config["learning_rate"] * (dw + config["momentum"] * v)
    return w, config"""),
    ("adagrad", """
def adagrad(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("epsilon", 1e-8)
    cache = config.setdefault("cache", np.zeros_like(w))
    cache += np.square(dw)
    w -= config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    return w, config"""),
    ("adagrad", """
def adagrad(w, dw, config=None):
    c = dict(learning_rate=1e-2, epsilon=1e-8)
    c.update(config or {})
    c["cache"] = c.get("cache", 0 * w) + dw * dw
    step = np.divide(dw, np.sqrt(c["cache"]) + c["epsilon"]) * c["learning_rate"]
    return w - step, c"""),
    ("rmsprop", """
def rmsprop(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    cache = config.setdefault("cache", np.zeros_like(w))
    cache *= config["decay_rate"]
    cache += (1 - config["decay_rate"]) * np.square(dw)
    w -= config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    return w, config"""),
    ("rmsprop", """
def rmsprop(w, dw, config=None):
    config = {} if config is None else config
    lr = config.get("learning_rate", 1e-2); config["learning_rate"] = lr
    g = config.get("decay_rate", 0.99); config["decay_rate"] = g
    eps = config.get("epsilon", 1e-8); config["epsilon"] = eps
    old = config["cache"] if "cache" in config else np.zeros_like(w)
    config["cache"] = old + (1 - g) * (dw * dw - old)
    return w - lr * dw / (config["cache"] ** 0.5 + eps), config"""),
    ("adam", """
def adam(w, dw, config=None):
    if config is None:
        config = {}
    for key, value in (("learning_rate", 1e-3), ("beta1", 0.9), ("beta2", 0.999), ("epsilon", 1e-8)):
        config.setdefault(key, value)
    b1, b2 = config["beta1"], config["beta2"]
    m = config.setdefault("m", np.zeros_like(w))
    v = config.setdefault("v", np.zeros_like(w))
    config["t"] = config.get("t", 0) + 1
    t = config["t"]
    m += (1 - b1) * (dw - m)
    v *= b2
    v += (1 - b2) * dw * dw
    denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + config["epsilon"]
    w -= config["learning_rate"] / (1 - b1 ** t) * m / denom
    return w, config"""),
    ("adam", """
def adam(w, dw, config=None):
    cfg = {"learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-08, "t": 0}
    cfg.update(config if config is not None else {})
    cfg["t"] += 1
    cfg["m"] = cfg["beta1"] * cfg.get("m", np.zeros_like(w)) + (1 - cfg["beta1"]) * dw
    cfg["v"] = cfg["beta2"] * cfg.get("v", np.zeros_like(w)) + (1 - cfg["beta2"]) * dw ** 2
    m_hat = cfg["m"] / (1 - cfg["beta1"] ** cfg["t"])
    v_hat = cfg["v"] / (1 - cfg["beta2"] ** cfg["t"])
    return w - cfg["learning_rate"] * m_hat / (np.sqrt(v_hat) + cfg["epsilon"]), cfg"""),
    ("step_decay", """
import math

def step_decay(lr0, epoch, drop=0.5, epochs_per_drop=10):
    return lr0 * math.pow(drop, math.floor(epoch / epochs_per_drop))"""),
    ("step_decay", """
def step_decay(lr0, epoch, drop=0.5, epochs_per_drop=10):
    lr = lr0
    for _ in range(int(epoch) // epochs_per_drop):
        lr *= drop
    return lr"""),
    ("exponential_decay", """
import math

def exponential_decay(lr0, epoch, k):
    return lr0 / math.exp(k * epoch)"""),
    ("exponential_decay", """
def exponential_decay(lr0, epoch, k):
    return float(lr0 * np.e ** (-k * epoch))"""),
    ("inverse_time_decay", """
def inverse_time_decay(lr0, epoch, k):
    return lr0 * (1 + k * epoch) ** -1"""),
    ("inverse_time_decay", """
def inverse_time_decay(lr0, epoch, k):
    return np.divide(lr0, np.add(1.0, np.multiply(k, epoch)))"""),
]
