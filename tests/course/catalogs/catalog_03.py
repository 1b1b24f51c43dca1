"""The mistake catalog of notebook 03 (regularization): data read by tests/course/test_mistake_catalogs.py.

MISTAKES: (exercise, label, code, phrase) -- a wrong answer; `phrase` appears in the hidden test's message.
CORRECT: (exercise, code) -- a correct answer written differently from the reference ("a+b": code that
defines both). EXERCISES: every graded function, in notebook order.
"""

NOTEBOOK = "03_regularization"

EXERCISES = ["l2_penalty", "l2_penalty_grads", "l1_penalty", "l1_penalty_grads", "EarlyStopping"]

# A correct EarlyStopping with one line changed: {changes} replaces the marked lines.
ES_TEMPLATE = """
class EarlyStopping:
    def __init__(self, patience, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch, self.best_params = float("inf"), None, None
        self.bad, self.epoch, self.prev = 0, 0, float("inf")

    def step(self, val_loss, params):
        if {improves}:
            self.best_loss = val_loss
            self.best_epoch = {best_epoch}
            self.best_params = {copy}
            self.bad = {reset}
        else:
            self.bad += 1
            {on_bad}
        self.prev = val_loss
        self.epoch += 1
        return {stop}
"""
ES_OK = dict(improves="val_loss < self.best_loss - self.min_delta", best_epoch="self.epoch",
             copy="{k: v.copy() for k, v in params.items()}", reset="0", on_bad="pass",
             stop="self.bad >= self.patience")


def es(**changes):
    return ES_TEMPLATE.format(**{**ES_OK, **changes})


# (exercise, label, code, expected phrase in the hidden test's message)
MISTAKES = [
    ("l2_penalty", "penalizes the biases", """
def l2_penalty(params, lam, m):
    return lam / (2 * m) * sum(np.sum(p ** 2) for p in params.values())""", "penalize the weights only"),
    ("l2_penalty", "penalizes gamma (not b*)", """
def l2_penalty(params, lam, m):
    return lam / (2 * m) * sum(np.sum(p ** 2) for k, p in params.items() if not k.startswith("b"))""",
     "also penalizes gamma"),
    ("l2_penalty", "drops the 1/2", """
def l2_penalty(params, lam, m):
    return lam / m * sum(np.sum(W ** 2) for k, W in params.items() if k.startswith("W"))""", "missing the 1/2"),
    ("l2_penalty", "drops the 1/m", """
def l2_penalty(params, lam, m):
    return lam / 2 * sum(np.sum(W ** 2) for k, W in params.items() if k.startswith("W"))""", "does not divide by m"),
    ("l2_penalty", "norms, not squared norms", """
def l2_penalty(params, lam, m):
    return lam / (2 * m) * sum(np.linalg.norm(W) for k, W in params.items() if k.startswith("W"))""",
     "sums the Frobenius norms"),
    ("l2_penalty", "only W1", """
def l2_penalty(params, lam, m):
    return lam / (2 * m) * np.sum(params["W1"] ** 2)""", "only one weight matrix"),
    ("l2_penalty_grads", "biases get lam/m * b", """
def l2_penalty_grads(params, lam, m):
    return {k: lam / m * p for k, p in params.items()}""", "nonzero gradient"),
    ("l2_penalty_grads", "only the weights' keys", """
def l2_penalty_grads(params, lam, m):
    return {k: lam / m * p for k, p in params.items() if k.startswith("W")}""", "returns no gradient for"),
    ("l2_penalty_grads", "keeps the 2 of the square", """
def l2_penalty_grads(params, lam, m):
    return {k: 2 * lam / m * p if k.startswith("W") else np.zeros_like(p) for k, p in params.items()}""",
     "twice the right gradient"),
    ("l2_penalty_grads", "differentiates to lam/(2m) W", """
def l2_penalty_grads(params, lam, m):
    return {k: lam / (2 * m) * p if k.startswith("W") else np.zeros_like(p) for k, p in params.items()}""",
     "half the right gradient"),
    ("l2_penalty_grads", "drops the 1/m", """
def l2_penalty_grads(params, lam, m):
    return {k: lam * p if k.startswith("W") else np.zeros_like(p) for k, p in params.items()}""",
     "does not divide by m"),
    ("l2_penalty_grads", "float64 zeros for float32 biases", """
def l2_penalty_grads(params, lam, m):
    return {k: lam / m * p if k.startswith("W") else np.zeros(p.shape) for k, p in params.items()}""",
     "keep the parameter's dtype"),
    ("l2_penalty_grads", "scales params in place", """
def l2_penalty_grads(params, lam, m):
    grads = dict(params)
    for k in grads:
        if k.startswith("W"):
            grads[k] *= lam / m
        else:
            grads[k] = np.zeros_like(grads[k])
    return grads""", "changed its argument"),
    ("l1_penalty", "a 1/2 copied from L2", """
def l1_penalty(params, lam, m):
    return lam / (2 * m) * sum(np.sum(np.abs(W)) for k, W in params.items() if k.startswith("W"))""",
     "no 1/2"),
    ("l1_penalty", "no absolute value", """
def l1_penalty(params, lam, m):
    return lam / m * sum(np.sum(W) for k, W in params.items() if k.startswith("W"))""",
     "forgets the absolute value"),
    ("l1_penalty", "penalizes the biases", """
def l1_penalty(params, lam, m):
    return lam / m * sum(np.abs(p).sum() for p in params.values())""", "penalize the weights only"),
    ("l1_penalty", "drops the 1/m", """
def l1_penalty(params, lam, m):
    return lam * sum(np.abs(W).sum() for k, W in params.items() if k.startswith("W"))""", "does not divide by m"),
    ("l1_penalty_grads", "W / |W| (nan at 0)", """
def l1_penalty_grads(params, lam, m):
    return {k: lam / m * p / np.abs(p) if k.startswith("W") else np.zeros_like(p) for k, p in params.items()}""",
     "NaN (0/0)"),
    ("l1_penalty_grads", "W / |W| with the warning silenced", """
def l1_penalty_grads(params, lam, m):
    with np.errstate(all="ignore"):
        return {k: lam / m * p / np.abs(p) if k.startswith("W") else np.zeros_like(p) for k, p in params.items()}""",
     "NaN (0/0)"),
    ("l1_penalty_grads", "W / (|W| + eps)", """
def l1_penalty_grads(params, lam, m):
    return {k: lam / m * p / (np.abs(p) + 1e-8) if k.startswith("W") else np.zeros_like(p)
            for k, p in params.items()}""", "tiny weights"),
    ("l1_penalty_grads", "+1 at zero", """
def l1_penalty_grads(params, lam, m):
    return {k: lam / m * np.where(p >= 0, 1.0, -1.0).astype(p.dtype) if k.startswith("W") else np.zeros_like(p)
            for k, p in params.items()}""", "exactly 0"),
    ("l1_penalty_grads", "L2's gradient", """
def l1_penalty_grads(params, lam, m):
    return {k: lam / m * p if k.startswith("W") else np.zeros_like(p) for k, p in params.items()}""",
     "the L2 gradient"),
    ("l1_penalty_grads", "biases get a sign too", """
def l1_penalty_grads(params, lam, m):
    return {k: lam / m * np.sign(p) for k, p in params.items()}""", "nonzero gradient"),
    ("l1_penalty_grads", "a 1/2 copied from L2", """
def l1_penalty_grads(params, lam, m):
    return {k: lam / (2 * m) * np.sign(p) if k.startswith("W") else np.zeros_like(p) for k, p in params.items()}""",
     "no 1/2"),
    ("EarlyStopping", "stops one epoch late", es(stop="self.bad > self.patience"), "one call late"),
    ("EarlyStopping", "stops one epoch early", es(stop="self.bad >= self.patience - 1"), "one call early"),
    ("EarlyStopping", "ignores min_delta", es(improves="val_loss < self.best_loss"), "ignores min_delta"),
    ("EarlyStopping", "ties improve (<=)", es(improves="val_loss <= self.best_loss - self.min_delta"), "strict"),
    ("EarlyStopping", "best_epoch from 1", es(best_epoch="self.epoch + 1"), "counts from 1"),
    ("EarlyStopping", "keeps the live dict", es(copy="params"), "keeps references"),
    ("EarlyStopping", "shallow copy of the dict", es(copy="dict(params)"), "keeps references"),
    ("EarlyStopping", "compares with the previous loss", es(improves="val_loss < self.prev - self.min_delta"),
     "previous call's loss"),
    ("EarlyStopping", "counts all bad epochs", es(reset="self.bad"), "consecutive"),
    ("EarlyStopping", "best_loss tracks every new minimum",
     es(on_bad="self.best_loss = min(self.best_loss, val_loss)"), "did not improve by more than min_delta"),
    ("EarlyStopping", "NaN counts as an improvement",
     es(improves="not (val_loss >= self.best_loss - self.min_delta)"), "NaN"),
]

# Correct answers written differently from the reference: full marks.
CORRECT = [
    ("l2_penalty", """
def l2_penalty(params, lam, m):
    weights = [v for k, v in params.items() if k[0] == "W"]
    return lam / (2.0 * m) * sum(np.linalg.norm(W, "fro") ** 2 for W in weights)"""),
    ("l2_penalty", """
def l2_penalty(params, lam, m):
    total = 0.0
    for name in params:
        if name.startswith("W"):
            total += np.einsum("ij,ij->", params[name], params[name])
    return total * lam / m / 2"""),
    ("l2_penalty_grads", """
def l2_penalty_grads(params, lam, m):
    return {k: (lam / m) * v if k[0] == "W" else 0 * v for k, v in params.items()}"""),
    ("l1_penalty", """
def l1_penalty(params, lam, m):
    return lam * sum(np.linalg.norm(v.ravel(), 1) for k, v in params.items() if k.startswith("W")) / m"""),
    ("l1_penalty_grads", """
def l1_penalty_grads(params, lam, m):
    out = {}
    for k, v in params.items():
        g = np.zeros_like(v)
        if k.startswith("W"):
            np.divide(v, np.abs(v), out=g, where=v != 0)
            g *= lam / m
        out[k] = g
    return out"""),
    ("EarlyStopping", """
import copy

class EarlyStopping:
    def __init__(self, patience, min_delta=0.0):
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = None
        self.best_epoch = None
        self.best_params = None
        self.history = []
        self.stopped = False

    def step(self, val_loss, params):
        epoch = len(self.history)
        self.history.append(val_loss)
        if self.best_loss is None or val_loss < self.best_loss - self.min_delta:
            if not (val_loss != val_loss):
                self.best_loss, self.best_epoch = val_loss, epoch
                self.best_params = copy.deepcopy(dict(params))
        waited = epoch - self.best_epoch if self.best_epoch is not None else epoch + 1
        self.stopped = self.stopped or waited >= self.patience
        return self.stopped"""),
    ("EarlyStopping", es(copy="{k: np.array(v) for k, v in params.items()}", stop="bool(self.bad >= self.patience)")),
    ("EarlyStopping", es(improves="self.best_loss - val_loss > self.min_delta", copy="copy.deepcopy(params)",
                         stop="np.bool_(self.bad == self.patience)").replace("class", "import copy\n\nclass", 1)),
]
