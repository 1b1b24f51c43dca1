"""The mistake catalog of notebook 08 (training practice): data read by tests/course/test_mistake_catalogs.py.

MISTAKES: (exercise, label, code, phrase) -- a wrong answer; `phrase` appears in the hidden test's message.
CORRECT: (exercise, code) -- a correct answer written differently from the reference ("a+b": code that
defines both). EXERCISES: every graded function, in notebook order.
"""

NOTEBOOK = "08_training_practice"

EXERCISES = ["expected_initial_loss", "update_ratio", "sample_log_uniform", "random_search", "ensemble_predict"]

# random_search may draw its log dimensions with the student's own sample_log_uniform.
SPILLOVER = {"sample_log_uniform": ["random_search"]}

# A correct random_search with one part changed.
SEARCH = """
def random_search(train_fn, space, n_trials, rng):
    results = []
    for _ in range(n_trials):
        {draw}
        results.append((config, train_fn(config)))
    {order}
"""
DRAW_OK = """config = {k: (float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if s == "log" else float(rng.uniform(lo, hi)))
                  for k, (lo, hi, s) in space.items()}"""
ORDER_OK = "return sorted(results, key=lambda r: r[1], reverse=True)"


def search(draw=DRAW_OK, order=ORDER_OK):
    return SEARCH.format(draw=draw, order=order)


MISTAKES = [
    # expected_initial_loss
    ("expected_initial_loss", "log10", """
def expected_initial_loss(num_classes):
    return float(np.log10(num_classes))""", "log10"),
    ("expected_initial_loss", "1/C", """
def expected_initial_loss(num_classes):
    return 1.0 / num_classes""", "returns 1/C"),
    ("expected_initial_loss", "log(1/C)", """
def expected_initial_loss(num_classes):
    return float(np.log(1 / num_classes))""", "log(1/C)"),
    ("expected_initial_loss", "log2", """
def expected_initial_loss(num_classes):
    import math
    return math.log2(num_classes)""", "log2"),

    # update_ratio
    ("update_ratio", "against the new weights", """
def update_ratio(w, w_next):
    return float(np.linalg.norm(w_next - w) / np.linalg.norm(w_next))""", "new weights"),
    ("update_ratio", "difference of the norms", """
def update_ratio(w, w_next):
    return float((np.linalg.norm(w_next) - np.linalg.norm(w)) / np.linalg.norm(w))""", "difference of the norms"),
    ("update_ratio", "abs difference of the norms", """
def update_ratio(w, w_next):
    return abs(np.linalg.norm(w_next) - np.linalg.norm(w)) / np.linalg.norm(w)""", "difference of the norms"),
    ("update_ratio", "no norms: mean absolute values", """
def update_ratio(w, w_next):
    return float(np.mean(np.abs(w_next - w)) / np.mean(np.abs(w)))""", "mean absolute values"),
    ("update_ratio", "squared norms", """
def update_ratio(w, w_next):
    return float(np.sum((w_next - w) ** 2) / np.sum(w ** 2))""", "squared norms"),
    ("update_ratio", "upside down", """
def update_ratio(w, w_next):
    return float(np.linalg.norm(w) / np.linalg.norm(w_next - w))""", "upside down"),
    ("update_ratio", "updates w in place", """
def update_ratio(w, w_next):
    w_next -= w
    return float(np.linalg.norm(w_next) / np.linalg.norm(w))""", "changed its argument"),

    # sample_log_uniform
    ("sample_log_uniform", "uniform", """
def sample_log_uniform(low, high, rng, size=None):
    return rng.uniform(low, high, size=size)""", "samples uniformly"),
    ("sample_log_uniform", "returns the exponents", """
def sample_log_uniform(low, high, rng, size=None):
    return rng.uniform(np.log10(low), np.log10(high), size=size)""", "returns the exponents"),
    ("sample_log_uniform", "log10 then exp", """
def sample_log_uniform(low, high, rng, size=None):
    return np.exp(rng.uniform(np.log10(low), np.log10(high), size=size))""", "mixes bases"),
    ("sample_log_uniform", "ln then 10**", """
def sample_log_uniform(low, high, rng, size=None):
    return 10 ** rng.uniform(np.log(low), np.log(high), size=size)""", "mixes bases"),
    ("sample_log_uniform", "global random state", """
def sample_log_uniform(low, high, rng, size=None):
    return np.exp(np.random.uniform(np.log(low), np.log(high), size=size))""", "global np.random"),
    ("sample_log_uniform", "fresh generator inside", """
def sample_log_uniform(low, high, rng, size=None):
    rng = np.random.default_rng(0)
    return np.exp(rng.uniform(np.log(low), np.log(high), size=size))""", "ignores `rng`"),
    ("sample_log_uniform", "an array for size=None", """
def sample_log_uniform(low, high, rng, size=None):
    return np.exp(rng.uniform(np.log(low), np.log(high), size=size if size is not None else 1))""", "one number"),
    ("sample_log_uniform", "exponentiates without taking logs", """
def sample_log_uniform(low, high, rng, size=None):
    return np.exp(rng.uniform(low, high, size=size))""", "outside [low, high]"),

    # random_search
    ("random_search", "worst first", search(order="return sorted(results, key=lambda r: r[1])"), "worst configuration first"),
    ("random_search", "one configuration evaluated n_trials times", """
def random_search(train_fn, space, n_trials, rng):
    config = {k: (sample_log_uniform(lo, hi, rng) if s == "log" else float(rng.uniform(lo, hi)))
              for k, (lo, hi, s) in space.items()}
    results = [(config, train_fn(config)) for _ in range(n_trials)]
    return sorted(results, key=lambda r: r[1], reverse=True)""", "same configuration more than once"),
    ("random_search", "ignores a linear dimension", search(draw="""config = {k: sample_log_uniform(lo, hi, rng)
                  for k, (lo, hi, s) in space.items() if s == "log"}"""), "exactly the names of"),
    ("random_search", "linear dimension on a log scale", search(draw="""config = {k: sample_log_uniform(lo, hi, rng)
                  for k, (lo, hi, s) in space.items()}"""), "on a log scale"),
    ("random_search", "every dimension linear", search(draw="""config = {k: float(rng.uniform(lo, hi))
                  for k, (lo, hi, s) in space.items()}"""), "samples uniformly"),
    ("random_search", "not sorted", search(order="return results"), "does not sort"),
    ("random_search", "sorts the scores apart from their configs", """
def random_search(train_fn, space, n_trials, rng):
    configs, scores = [], []
    for _ in range(n_trials):
        config = {k: (sample_log_uniform(lo, hi, rng) if s == "log" else float(rng.uniform(lo, hi)))
                  for k, (lo, hi, s) in space.items()}
        configs.append(config)
        scores.append(train_fn(config))
    return list(zip(configs, sorted(scores, reverse=True)))""", "keep each"),
    ("random_search", "global random state", search(draw="""config = {k: (float(np.exp(np.random.uniform(np.log(lo), np.log(hi)))) if s == "log"
                      else float(np.random.uniform(lo, hi))) for k, (lo, hi, s) in space.items()}"""), "global np.random"),
    ("random_search", "returns only the configs", search(order="return [c for c, _ in sorted(results, key=lambda r: r[1], reverse=True)]"),
     "pairs (config, score)"),

    # ensemble_predict
    ("ensemble_predict", "majority vote on labels", """
def ensemble_predict(probs_list):
    labels = [p.argmax(axis=1) for p in probs_list]
    votes = np.zeros_like(probs_list[0])
    for l in labels:
        votes[np.arange(len(l)), l] += 1 / len(probs_list)
    return votes""", "predicted labels"),
    ("ensemble_predict", "returns labels", """
def ensemble_predict(probs_list):
    return np.mean(probs_list, axis=0).argmax(axis=1)""", "one label per sample"),
    ("ensemble_predict", "product", """
def ensemble_predict(probs_list):
    return np.prod(np.stack(probs_list), axis=0)""", "multiplies"),
    ("ensemble_predict", "averages logits then softmax", """
def ensemble_predict(probs_list):
    logits = np.mean([np.log(p) for p in probs_list], axis=0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)""", "log-probabilities"),
    ("ensemble_predict", "sum", """
def ensemble_predict(probs_list):
    return np.sum(probs_list, axis=0)""", "without dividing"),
    ("ensemble_predict", "float64 for float32 members", """
def ensemble_predict(probs_list):
    return np.mean(np.array(probs_list, dtype=np.float64), axis=0)""", "dtype"),
    ("ensemble_predict", "accumulates into the first member", """
def ensemble_predict(probs_list):
    total = probs_list[0]
    for p in probs_list[1:]:
        total += p
    return total / len(probs_list)""", "changed its argument"),
]

CORRECT = [
    ("expected_initial_loss", """
import math
def expected_initial_loss(num_classes):
    return -math.log(1.0 / num_classes)"""),
    ("expected_initial_loss", """
def expected_initial_loss(num_classes):
    probs = np.full(num_classes, 1.0 / num_classes)
    return float(-np.log(probs[0]))"""),

    ("update_ratio", """
def update_ratio(w, w_next):
    delta = (w_next - w).ravel()
    return float(np.sqrt(delta @ delta) / np.sqrt(w.ravel() @ w.ravel()))"""),
    ("update_ratio", """
def update_ratio(w, w_next):
    w = np.asarray(w, dtype=np.float64)
    return np.linalg.norm((np.asarray(w_next, dtype=np.float64) - w).ravel()) / np.linalg.norm(w.ravel())"""),

    ("sample_log_uniform", """
def sample_log_uniform(low, high, rng, size=None):
    u = rng.random(size)
    return low * (high / low) ** u"""),
    ("sample_log_uniform", """
def sample_log_uniform(low, high, rng, size=None):
    exponent = rng.uniform(np.log10(low), np.log10(high), size)
    out = np.clip(10.0 ** exponent, low, high)
    return out if size is not None else float(out)"""),

    ("random_search", """
def random_search(train_fn, space, n_trials, rng):
    tried = []
    for trial in range(n_trials):
        config = {}
        for name in space:
            low, high, scale = space[name]
            config[name] = sample_log_uniform(low, high, rng) if scale == "log" else rng.uniform(low, high)
        tried.append((config, train_fn(config)))
    tried.sort(key=lambda pair: -pair[1])
    return tried"""),
    ("random_search", """
import math
def random_search(train_fn, space, n_trials, rng):
    def draw(low, high, scale):
        if scale == "linear":
            return low + (high - low) * rng.random()
        return math.exp(math.log(low) + (math.log(high) - math.log(low)) * rng.random())
    configs = [{k: draw(*v) for k, v in space.items()} for _ in range(n_trials)]
    scores = [train_fn(c) for c in configs]
    order = np.argsort(scores)[::-1]
    return [(configs[i], scores[i]) for i in order]"""),

    ("ensemble_predict", """
def ensemble_predict(probs_list):
    total = np.zeros_like(probs_list[0])
    for p in probs_list:
        total = total + p
    return total / len(probs_list)"""),
    ("ensemble_predict", """
def ensemble_predict(probs_list):
    return sum(probs_list) / len(probs_list)"""),
]
