"""The mistake catalog of notebook 02 (initialization): data read by tests/course/test_mistake_catalogs.py.

MISTAKES: (exercise, label, code, phrase) -- a wrong answer; `phrase` appears in the hidden test's message.
CORRECT: (exercise, code) -- a correct answer written differently from the reference ("a+b": code that
defines both). EXERCISES: every graded function, in notebook order.
"""

NOTEBOOK = "02_initialization"

EXERCISES = ["zeros_init", "random_init", "xavier_init", "he_init", "init_params"]

# (exercise, label, code, expected phrase in the hidden test's message)
MISTAKES = [
    ("zeros_init", "transposed shape", """
def zeros_init(fan_in, fan_out, rng):
    return np.zeros((fan_out, fan_in))""", "transposed"),
    ("zeros_init", "integer zeros", """
def zeros_init(fan_in, fan_out, rng):
    return np.zeros((fan_in, fan_out), dtype=int)""", "integers"),
    ("zeros_init", "shape as two arguments", """
def zeros_init(fan_in, fan_out, rng):
    return np.zeros(fan_in, fan_out)""", "one tuple"),
    ("zeros_init", "a list of lists", """
def zeros_init(fan_in, fan_out, rng):
    return [[0.0] * fan_out for _ in range(fan_in)]""", "NumPy array"),
    ("random_init", "global np.random", """
def random_init(fan_in, fan_out, rng, scale=0.01):
    return scale * np.random.randn(fan_in, fan_out)""", "global np.random"),
    ("random_init", "a fresh unseeded generator", """
def random_init(fan_in, fan_out, rng, scale=0.01):
    return scale * np.random.default_rng().standard_normal((fan_in, fan_out))""", "not reproducible"),
    ("random_init", "a fixed seed inside", """
def random_init(fan_in, fan_out, rng, scale=0.01):
    return scale * np.random.default_rng(0).standard_normal((fan_in, fan_out))""", "ignores `rng`"),
    ("random_init", "ignores scale", """
def random_init(fan_in, fan_out, rng, scale=0.01):
    return 0.01 * rng.standard_normal((fan_in, fan_out))""", "ignores its `scale`"),
    ("random_init", "scale used as the variance", """
def random_init(fan_in, fan_out, rng, scale=0.01):
    return rng.normal(0.0, np.sqrt(scale), (fan_in, fan_out))""", "scale as the variance"),
    ("random_init", "scale passed as the mean", """
def random_init(fan_in, fan_out, rng, scale=0.01):
    return rng.normal(scale, size=(fan_in, fan_out))""", "takes the mean first"),
    ("random_init", "uniform with the right std", """
def random_init(fan_in, fan_out, rng, scale=0.01):
    a = scale * np.sqrt(3)
    return rng.uniform(-a, a, (fan_in, fan_out))""", "uniformly distributed"),
    ("random_init", "rng.random on [0, 1)", """
def random_init(fan_in, fan_out, rng, scale=0.01):
    return scale * rng.random((fan_in, fan_out))""", "all positive"),
    ("random_init", "a wrong default scale", """
def random_init(fan_in, fan_out, rng, scale=0.1):
    return scale * rng.standard_normal((fan_in, fan_out))""", "default scale is not 0.01"),
    ("random_init", "one row broadcast to every row", """
def random_init(fan_in, fan_out, rng, scale=0.01):
    return np.ones((fan_in, 1)) * scale * rng.standard_normal(fan_out)""", "repeats values"),
    ("xavier_init", "variance 1/fan_in (LeCun)", """
def xavier_init(fan_in, fan_out, rng):
    return np.sqrt(1 / fan_in) * rng.standard_normal((fan_in, fan_out))""", "1/fan_in (LeCun"),
    ("xavier_init", "variance 2/fan_in (He)", """
def xavier_init(fan_in, fan_out, rng):
    return np.sqrt(2 / fan_in) * rng.standard_normal((fan_in, fan_out))""", "2/fan_in (He"),
    ("xavier_init", "the variance passed as the std", """
def xavier_init(fan_in, fan_out, rng):
    return rng.normal(0.0, 2 / (fan_in + fan_out), (fan_in, fan_out))""", "where NumPy expects the standard deviation"),
    ("xavier_init", "Glorot uniform", """
def xavier_init(fan_in, fan_out, rng):
    limit = np.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out))""", "uniformly distributed"),
    ("xavier_init", "the uniform bound as the std", """
def xavier_init(fan_in, fan_out, rng):
    return np.sqrt(6 / (fan_in + fan_out)) * rng.standard_normal((fan_in, fan_out))""", "bound of Glorot's"),
    ("xavier_init", "operator precedence", """
def xavier_init(fan_in, fan_out, rng):
    return np.sqrt(2 / fan_in + fan_out) * rng.standard_normal((fan_in, fan_out))""", "precedence"),
    ("xavier_init", "transposed shape", """
def xavier_init(fan_in, fan_out, rng):
    return np.sqrt(2 / (fan_in + fan_out)) * rng.standard_normal((fan_out, fan_in))""", "transposed"),
    ("xavier_init", "global np.random", """
def xavier_init(fan_in, fan_out, rng):
    return np.random.normal(0.0, np.sqrt(2 / (fan_in + fan_out)), (fan_in, fan_out))""", "global np.random"),
    ("he_init", "fan_out instead of fan_in", """
def he_init(fan_in, fan_out, rng):
    return np.sqrt(2 / fan_out) * rng.standard_normal((fan_in, fan_out))""", "uses fan_out"),
    ("he_init", "the factor 2 missing", """
def he_init(fan_in, fan_out, rng):
    return np.sqrt(1 / fan_in) * rng.standard_normal((fan_in, fan_out))""", "factor 2 is missing"),
    ("he_init", "the 2 outside the square root", """
def he_init(fan_in, fan_out, rng):
    return 2 / np.sqrt(fan_in) * rng.standard_normal((fan_in, fan_out))""", "inside the square root"),
    ("he_init", "He uniform", """
def he_init(fan_in, fan_out, rng):
    limit = np.sqrt(6 / fan_in)
    return rng.uniform(-limit, limit, (fan_in, fan_out))""", "uniformly distributed"),
    ("he_init", "clipped at two standard deviations", """
def he_init(fan_in, fan_out, rng):
    return np.sqrt(2 / fan_in) * np.clip(rng.standard_normal((fan_in, fan_out)), -2, 2)""",
     "not normally distributed"),
    ("he_init", "global np.random", """
def he_init(fan_in, fan_out, rng):
    return np.random.randn(fan_in, fan_out) * np.sqrt(2 / fan_in)""", "global np.random"),
    ("he_init", "transposed shape", """
def he_init(fan_in, fan_out, rng):
    return np.sqrt(2 / fan_in) * rng.standard_normal((fan_out, fan_in))""", "transposed"),
    ("init_params", "random biases", """
def init_params(layer_sizes, init_fn, rng):
    params = {}
    for l in range(1, len(layer_sizes)):
        params[f"W{l}"] = init_fn(layer_sizes[l - 1], layer_sizes[l], rng)
        params[f"b{l}"] = 0.01 * rng.standard_normal(layer_sizes[l])
    return params""", "is not zero"),
    ("init_params", "biases from init_fn", """
def init_params(layer_sizes, init_fn, rng):
    params = {}
    for l in range(1, len(layer_sizes)):
        params[f"W{l}"] = init_fn(layer_sizes[l - 1], layer_sizes[l], rng)
        params[f"b{l}"] = init_fn(1, layer_sizes[l], rng)[0]
    return params""", "the biases start at zero"),
    ("init_params", "a new generator per layer", """
def init_params(layer_sizes, init_fn, rng):
    params = {}
    for l in range(1, len(layer_sizes)):
        params[f"W{l}"] = init_fn(layer_sizes[l - 1], layer_sizes[l], np.random.default_rng(l))
        params[f"b{l}"] = np.zeros(layer_sizes[l])
    return params""", "new generator"),
    ("init_params", "rng not passed", """
def init_params(layer_sizes, init_fn, rng):
    params = {}
    for l in range(1, len(layer_sizes)):
        params[f"W{l}"] = init_fn(layer_sizes[l - 1], layer_sizes[l])
        params[f"b{l}"] = np.zeros(layer_sizes[l])
    return params""", "without its rng"),
    ("init_params", "fans swapped", """
def init_params(layer_sizes, init_fn, rng):
    params = {}
    for l in range(1, len(layer_sizes)):
        params[f"W{l}"] = init_fn(layer_sizes[l], layer_sizes[l - 1], rng).T
        params[f"b{l}"] = np.zeros(layer_sizes[l])
    return params""", "init_fn(fan_out, fan_in, rng)"),
    ("init_params", "weights transposed", """
def init_params(layer_sizes, init_fn, rng):
    params = {}
    for l in range(1, len(layer_sizes)):
        params[f"W{l}"] = init_fn(layer_sizes[l - 1], layer_sizes[l], rng).T
        params[f"b{l}"] = np.zeros(layer_sizes[l])
    return params""", "transposed"),
    ("init_params", "layers numbered from 0", """
def init_params(layer_sizes, init_fn, rng):
    params = {}
    for l in range(len(layer_sizes) - 1):
        params[f"W{l}"] = init_fn(layer_sizes[l], layer_sizes[l + 1], rng)
        params[f"b{l}"] = np.zeros(layer_sizes[l + 1])
    return params""", "numbers the layers from 0"),
    ("init_params", "2-D biases", """
def init_params(layer_sizes, init_fn, rng):
    params = {}
    for l in range(1, len(layer_sizes)):
        params[f"W{l}"] = init_fn(layer_sizes[l - 1], layer_sizes[l], rng)
        params[f"b{l}"] = np.zeros((1, layer_sizes[l]))
    return params""", "1-D"),
    ("init_params", "init_fn ignored", """
def init_params(layer_sizes, init_fn, rng):
    params = {}
    for l in range(1, len(layer_sizes)):
        params[f"W{l}"] = 0.01 * rng.standard_normal((layer_sizes[l - 1], layer_sizes[l]))
        params[f"b{l}"] = np.zeros(layer_sizes[l])
    return params""", "never calls init_fn"),
]

# Correct answers written differently from the reference: full marks.
CORRECT = [
    ("zeros_init", """
def zeros_init(fan_in, fan_out, rng):
    return np.full((fan_in, fan_out), 0.0)"""),
    ("random_init", """
def random_init(fan_in, fan_out, rng, scale=0.01):
    return rng.normal(0.0, scale, size=(fan_in, fan_out))"""),
    ("xavier_init", """
def xavier_init(fan_in, fan_out, rng):
    # drawn transposed, then transposed back: same distribution, a non-contiguous view
    return rng.normal(scale=np.sqrt(2 / (fan_in + fan_out)), size=(fan_out, fan_in)).T"""),
    ("xavier_init", """
def xavier_init(fan_in, fan_out, rng):
    std = np.float32(np.sqrt(2.0 / (fan_in + fan_out)))
    return rng.standard_normal((fan_in, fan_out), dtype=np.float32) * std"""),
    ("he_init", """
def he_init(fan_in, fan_out, rng):
    std = (2.0 / fan_in) ** 0.5
    return std * rng.standard_normal(fan_in * fan_out).reshape(fan_in, fan_out)"""),
    ("he_init", """
def he_init(fan_in, fan_out, rng):
    # Box-Muller from uniform draws
    u1, u2 = rng.random((2, fan_in, fan_out))
    z = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
    return np.sqrt(2.0 / fan_in) * z"""),
    ("init_params", """
def init_params(layer_sizes, init_fn, rng):
    sizes = list(layer_sizes)
    weights = {f"W{i + 1}": init_fn(a, b, rng) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))}
    biases = {f"b{i + 1}": np.zeros(b) for i, b in enumerate(sizes[1:])}
    return {**weights, **biases}"""),
    ("init_params", """
def init_params(layer_sizes, init_fn, rng):
    params = {}
    for l in reversed(range(1, len(layer_sizes))):   # last layer first: still one call per layer
        params["W%d" % l] = np.asarray(init_fn(fan_in=layer_sizes[l - 1], fan_out=layer_sizes[l], rng=rng))
        params["b%d" % l] = np.zeros(layer_sizes[l], dtype=float)
    return params"""),
]
