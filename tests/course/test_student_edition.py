"""The student edition of the library (course/student_edition.py): at stage N no answer of notebook N or later.

Proved on the code itself, for every stage: the edition's files; every code object it compiles to (bytecode) and
every function and class it defines (AST, names and docstrings aside) against every reference of the notebooks it
withholds; their docstrings and comments nowhere in its text. Then, as a student at the stage who wants an answer
would try: the stubs' source, bytecode, docstrings and closures, the modules the edition lets a kernel import, the
.pyc files and metadata an installation leaves. And each release notebook, with its solution's answers pasted in,
runs top to bottom in a kernel whose only nnlab and course are the edition, with the solutions' outputs.
"""

from __future__ import annotations

import ast
import dis
import inspect
import json
import marshal
import os
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import numpy as np
import pytest

from course import stand_ins
from course.student_edition import (COURSE_MODULES, STAND_INS, assignment_of, build, contents, exercise_notebooks,
                                    withheld_exercises)
from tests.course import student_kernel

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "source").iterdir() if any(p.glob("*.ipynb")))
EXERCISES = exercise_notebooks(ROOT)
LIB = ROOT / "lib" / "nnlab"


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    """The edition of each stage, built once for this module."""
    made: dict[str, Path] = {}

    def edition(assignment: str) -> Path:
        if assignment not in made:
            made[assignment] = build(ROOT, assignment, tmp_path_factory.mktemp("edition") / assignment[:2])
        return made[assignment]
    return edition


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """The course's packages without this repository's editable install (tests.course.student_kernel)."""
    return student_kernel.course_packages(tmp_path_factory.mktemp("packages") / "site")


@pytest.fixture
def isolated(packages, tmp_path):
    """``run(edition, code)``: ``code`` in a Python that imports nnlab and course from ``edition`` only: ``-S`` runs
    no .pth file, and PYTHONPATH is the edition, then the course's packages without this repository's."""
    def run(edition: Path, code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path, env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
                                                 "PYTHONPATH": os.pathsep.join([str(edition), str(packages)]),
                                                 "MPLCONFIGDIR": str(tmp_path / "mpl"), "PYTHONDONTWRITEBYTECODE": "1"})
    return run


# ---------------------------------------------------------------------------------------------- the references

def _reference_objects(name: str) -> list[tuple[str, object]]:
    """Every definition of ``name`` in the full library (``random_shift`` is in nnlab.dropout and nnlab.zoo)."""
    found = []
    for path in sorted(LIB.rglob("*.py")):
        if "experiments" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                found.append((str(path.relative_to(LIB)), node))
    return found


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _bytecode_key(code: types.CodeType) -> tuple:
    """What a code object does, whatever its names: the instructions, the globals and attributes it uses, its
    constants (docstrings and nested code left out: the nested code objects are compared one by one)."""
    consts = tuple(c for c in code.co_consts if not isinstance(c, (str, types.CodeType)) or c is None)
    return (code.co_code, code.co_names, consts, code.co_argcount, code.co_kwonlyargcount)


def _reference_bytecode(name: str) -> dict[tuple, str]:
    keys = {}
    for relative, _ in _reference_objects(name):
        module = compile((LIB / relative).read_text(encoding="utf-8"), str(LIB / relative), "exec")
        for code in _code_objects(module):
            if not (code.co_qualname == name or code.co_qualname.startswith(f"{name}.")):
                continue
            body = [i for i in dis.get_instructions(code) if i.opname not in ("RESUME", "NOP", "CACHE")]
            # `return x`-sized code objects, and comprehensions like [int(s) for s in sizes], say nothing
            if len(body) > (12 if code.co_name.startswith("<") else 4):
                keys[_bytecode_key(code)] = f"{name} ({relative}: {code.co_qualname})"
    return keys


class _Normalize(ast.NodeTransformer):
    """A definition with its names, docstrings and annotations gone: what its code does."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _name(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name, node.returns, node.decorator_list = "f", None, []
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            node.body = node.body[1:] or [ast.Pass()]
        return self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = "C"
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            node.body = node.body[1:] or [ast.Pass()]
        return self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg, node.annotation = self._name(node.arg), None
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self._name(node.id)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        node.annotation = ast.Constant(None)
        return self.generic_visit(node)


def normalized(node: ast.AST) -> str:
    import copy
    return ast.dump(_Normalize().visit(copy.deepcopy(node)), annotate_fields=False)


def _statements(node: ast.AST) -> int:
    return sum(isinstance(n, ast.stmt) for n in ast.walk(node)) - 1


def _text_lines(node: ast.AST, source: str) -> list[str]:
    """The reference's docstrings and comments, line by line, where a line says something (five words or more)."""
    lines = []
    for sub in ast.walk(node):
        if isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(sub)
            if doc:
                lines += doc.splitlines()
    segment = ast.get_source_segment(source, node) or ""
    lines += [line.split("#", 1)[1] for line in segment.splitlines() if "#" in line and "'#" not in line]
    return [" ".join(line.split()) for line in lines if len(line.split()) >= 5]


def edition_files(edition: Path) -> dict[str, str]:
    return {str(p.relative_to(edition)): p.read_text(encoding="utf-8") for p in sorted(edition.rglob("*"))
            if p.is_file() and p.suffix in (".py", ".toml", ".txt")}


# ---------------------------------------------------------------------------------------------- what is in it

@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_edition_holds_the_library_and_the_students_course_helpers_only(editions, assignment):
    edition = editions(assignment)
    files = set(contents(edition)["files"])
    library = {f"nnlab/{p.relative_to(LIB)}" for p in LIB.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    withheld_files = {"nnlab/zoo/pretrain.py"} if assignment <= "07_transfer_learning" else set()
    course = {f"course/{m}" for m in COURSE_MODULES if (ROOT / "course" / m).exists()}
    assert files == (library - withheld_files) | course | {"nnlab/_exercise.py", "nnlab/_standins.py",
                                                            "pyproject.toml", "README.txt"}
    assert not any(f.endswith((".pyc", ".ipynb")) or f.startswith(("course/checks", "source")) for f in files)
    text = "\n".join(edition_files(edition).values())
    assert "MISTAKES" not in text and "HIDDEN TESTS" not in text and "course.checks" not in text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_exercise_of_the_stage_and_later_is_a_stub_and_each_earlier_one_its_reference(editions, isolated, assignment):
    edition = editions(assignment)
    withheld = withheld_exercises(ROOT, assignment)
    assert set(contents(edition)["stubs"]) == set(withheld) == {n for n, nb in EXERCISES.items() if nb >= assignment}
    report = isolated(edition, textwrap_dedent("""
        import importlib, inspect, json, pkgutil, nnlab
        out = {}
        for info in pkgutil.walk_packages(nnlab.__path__, "nnlab."):
            if ".experiments" in info.name or info.name.startswith("nnlab._"):
                continue
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if callable(obj) and (getattr(obj, "__module__", "") == info.name or
                                      getattr(obj, "_withheld_exercise", False)):
                    out.setdefault(name, []).append(bool(getattr(obj, "_withheld_exercise", False)))
        print(json.dumps(out))
        """))
    assert report.returncode == 0, report.stderr
    found = json.loads(report.stdout)
    for name, notebook in EXERCISES.items():
        assert name in found, f"{name} ({notebook}) is missing from the edition for {assignment}"
        assert all(found[name]) == (notebook >= assignment), (name, notebook, found[name])


def textwrap_dedent(code: str) -> str:
    import textwrap
    return textwrap.dedent(code)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_reference_of_the_stage_or_later_is_in_the_edition_by_bytecode_ast_or_text(editions, assignment):
    """Every code object the edition compiles to, every definition in it (names, docstrings and annotations
    normalized away) and its whole text, against every reference of the notebooks it withholds."""
    edition = editions(assignment)
    withheld = withheld_exercises(ROOT, assignment)
    ref_bytecode: dict[tuple, str] = {}
    ref_ast: dict[str, str] = {}
    ref_lines: dict[str, str] = {}
    for name in withheld:
        ref_bytecode.update(_reference_bytecode(name))
        for relative, node in _reference_objects(name):
            source = (LIB / relative).read_text(encoding="utf-8")
            if _statements(node) >= 2:
                ref_ast[normalized(node)] = f"{name} ({relative})"
            for sub in ast.walk(node):  # a method of a class (EarlyStopping.step) on its own
                if sub is not node and isinstance(sub, ast.FunctionDef) and _statements(sub) >= 3:
                    ref_ast[normalized(sub)] = f"{name}.{sub.name} ({relative})"
            for line in _text_lines(node, source):
                ref_lines[line] = f"{name} ({relative})"
    assert ref_bytecode and ref_ast and ref_lines
    # A line the library says elsewhere too ("rng : numpy random Generator.") is nobody's answer.
    elsewhere = []
    for path in sorted(LIB.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        segments = [ast.get_source_segment(source, node) or "" for node in ast.parse(source).body
                    if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in withheld]
        for segment in segments:
            source = source.replace(segment, "")
        elsewhere.append(source)
    elsewhere_text = " ".join(" ".join(elsewhere).split())
    ref_lines = {line: where for line, where in ref_lines.items() if line not in elsewhere_text}
    assert ref_lines
    files = edition_files(edition)
    checked = 0
    for relative, text in files.items():
        if not relative.endswith(".py"):
            continue
        for code in _code_objects(compile(text, relative, "exec")):
            assert _bytecode_key(code) not in ref_bytecode, \
                f"{relative}: {code.co_qualname} is the bytecode of {ref_bytecode[_bytecode_key(code)]}"
            checked += 1
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda)):
                assert normalized(node) not in ref_ast, \
                    f"{relative}: {getattr(node, 'name', 'a lambda')} is the code of {ref_ast[normalized(node)]}"
    assert checked > 200
    flat = " ".join(" ".join(files.values()).split())
    for line, where in ref_lines.items():
        assert line not in flat, f"the edition for {assignment} holds a docstring or comment of {where}: {line!r}"


def test_the_full_library_is_what_the_comparison_catches(editions):
    """The comparison is not blind: the references of the earlier notebooks, present in a later edition, are
    found by each of its three measures (bytecode, AST, text)."""
    edition = editions("06_optimizers")
    text = (edition / "nnlab" / "normalization.py").read_text(encoding="utf-8")
    codes = {_bytecode_key(c) for c in _code_objects(compile(text, "normalization.py", "exec"))}
    assert set(_reference_bytecode("batchnorm_forward")) <= codes
    defs = {normalized(n) for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef)}
    assert normalized(_reference_objects("batchnorm_backward")[0][1]) in defs
    source = (LIB / "normalization.py").read_text(encoding="utf-8")
    assert any(line in " ".join(text.split()) for line in _text_lines(_reference_objects("batchnorm_forward")[0][1],
                                                                       source))


def test_network_fast_paths_which_are_affine_forward_and_backward_are_gone_while_those_are_exercises(editions):
    network00 = (editions("00_gradient_checking") / "nnlab" / "network.py").read_text(encoding="utf-8")
    network01 = (editions("01_activations") / "nnlab" / "network.py").read_text(encoding="utf-8")
    assert "_affine_forward_inplace_bias" not in network00 and ".T @ dh" not in network00
    assert network01 == (LIB / "network.py").read_text(encoding="utf-8")  # the library's own, comments and all


# ---------------------------------------------------------------------------------------------- what a stub does

def test_a_helper_that_holds_an_answer_is_withheld_with_it(editions, isolated):
    """nnlab.practice.class_weighted_cross_entropy is a softmax cross-entropy with its gradient (00's exercise):
    a stub in the edition for 00, the library's own from 01 on."""
    code = textwrap_dedent("""
        import numpy as np
        from nnlab import practice
        try:
            print(practice.class_weighted_cross_entropy(np.ones(3))(np.zeros((2, 3)), np.zeros(2, int))[0])
        except NotImplementedError as exc:
            print(exc)
        """)
    at00 = isolated(editions("00_gradient_checking"), code)
    assert at00.returncode == 0, at00.stderr
    assert at00.stdout.startswith("nnlab's `class_weighted_cross_entropy` holds the answer to "
                                  "`softmax_cross_entropy`, your exercise in notebook 00_gradient_checking")
    text = (editions("00_gradient_checking") / "nnlab" / "practice.py").read_text(encoding="utf-8")
    assert "log_probs" not in text and "np.exp" not in text
    at01 = isolated(editions("01_activations"), code)
    assert at01.returncode == 0 and abs(float(at01.stdout) - np.log(3)) < 1e-12, at01.stderr


def test_a_withheld_name_says_where_to_write_it(editions, isolated):
    edition = editions("05_normalization")
    result = isolated(edition, textwrap_dedent("""
        import numpy as np
        from nnlab import normalization, optim, regularization, network
        for call in (lambda: normalization.batchnorm_forward(np.ones((2, 3)), np.ones(3), np.zeros(3), {}),
                     lambda: optim.nesterov(np.ones(3), np.ones(3)),
                     lambda: network.FullyConnectedNet([4, 3, 2], normalization="batchnorm",
                                                       rng=np.random.default_rng(0)).loss(np.ones((2, 4)), np.zeros(2, int))):
            try:
                call()
            except NotImplementedError as exc:
                print(type(exc).__name__, "|", exc)
        print(regularization.EarlyStopping(patience=3).__class__.__module__)
        """))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("ExerciseError | `batchnorm_forward` is your exercise in notebook 05_normalization: "
                        "write it in your notebook")
    assert lines[1].startswith("ExerciseError | `nesterov` is your exercise in notebook 06_optimizers: write it in "
                               "your notebook (this edition of nnlab is for notebook 05_normalization")
    assert lines[2].startswith("ExerciseError | `batchnorm_forward` is your exercise in notebook 05_normalization")
    assert lines[3] == "nnlab.regularization"  # 03's reference is in the edition for 05


def test_the_stages_experiments_use_the_students_own_functions(editions, isolated):
    """00's network_gradient_errors uses numerical_gradient and relative_error inside: in the edition for 00 those
    are the student's (the notebook's __main__), never a reference; 06's trainer gets the student's minibatches."""
    edition = editions("00_gradient_checking")
    result = isolated(edition, textwrap_dedent("""
        import numpy as np
        calls = []
        def numerical_gradient(f, x, h=1e-5):
            calls.append("numerical_gradient")
            grad = np.zeros_like(x)
            for i in np.ndindex(x.shape):
                old = x[i]; x[i] = old + h; fp = f(x); x[i] = old - h; fm = f(x); x[i] = old
                grad[i] = (fp - fm) / (2 * h)
            return grad
        def relative_error(a, b):
            calls.append("relative_error")
            return 123.0  # a wrong answer shows where it went
        def affine_forward(x, W, b):
            return x @ W + b, (x, W, b)
        def affine_backward(dout, cache):
            x, W, b = cache
            return dout @ W.T, x.T @ dout, dout.sum(axis=0)
        def softmax_cross_entropy(scores, y):
            s = scores - scores.max(axis=1, keepdims=True)
            p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
            d = p.copy(); d[np.arange(len(y)), y] -= 1
            return float(-np.log(p[np.arange(len(y)), y]).mean()), d / len(y)
        from nnlab.experiments import gradient_checking as experiments
        errors = experiments.network_gradient_errors(affine_forward, affine_backward, softmax_cross_entropy)
        print(sorted(set(calls)), sorted(set(errors.values())))
        del relative_error
        try:
            experiments.network_gradient_errors(affine_forward, affine_backward, softmax_cross_entropy)
        except NotImplementedError as exc:
            print(exc)
        """))
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == "['numerical_gradient', 'relative_error'] [123.0]"
    assert second == "`relative_error` is your exercise in notebook 00_gradient_checking: write it in your notebook"

    result = isolated(editions("06_optimizers"), textwrap_dedent("""
        import numpy as np
        from nnlab.network import FullyConnectedNet
        from nnlab.trainer import Trainer
        seen = []
        def iterate_minibatches(X, y, batch_size, rng, shuffle=True):
            seen.append(batch_size)
            yield X, y
        def sgd(w, dw, config=None):
            return w - 0.1 * dw, config or {}
        rng = np.random.default_rng(0)
        data = {"X_train": rng.standard_normal((20, 4)), "y_train": rng.integers(0, 2, 20),
                "X_val": rng.standard_normal((5, 4)), "y_val": rng.integers(0, 2, 5)}
        net = FullyConnectedNet([4, 3, 2], rng=rng)
        Trainer(net, data, update_rule=sgd, batch_size=7, num_epochs=2, rng=rng, progress=False).train()
        print(seen)
        """))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[7, 7]"


def test_stand_ins_compute_what_the_references_do():
    """The later notebooks' exercises that the library runs early: the same numbers as the references (bit for bit
    where the trainer's results depend on it), computed another way."""
    from nnlab import activations, init, optim

    rng = np.random.default_rng(3)
    for fan_in, fan_out in ((5, 7), (64, 100)):
        for name in ("he_init", "xavier_init", "random_init"):
            a = getattr(init, name)(fan_in, fan_out, np.random.default_rng(fan_in))
            b = getattr(stand_ins, name)(fan_in, fan_out, np.random.default_rng(fan_in))
            assert np.array_equal(a, b), name
    for dtype in (np.float64, np.float32):
        for name in ("sgd", "sgd_momentum", "adam"):
            w_ref = rng.standard_normal((6, 5)).astype(dtype)
            w_alt, c_ref, c_alt = w_ref.copy(), {"learning_rate": 0.05}, {"learning_rate": 0.05}
            for step in range(15):
                dw = rng.standard_normal(w_ref.shape).astype(dtype)
                w_ref, c_ref = getattr(optim, name)(w_ref, dw, c_ref)
                w_alt, c_alt = getattr(stand_ins, name)(w_alt, dw, c_alt)
                assert w_alt.dtype == w_ref.dtype
            if name == "adam":  # PyTorch's Adam: the same steps within rounding
                np.testing.assert_allclose(w_alt, w_ref, rtol=1e-5 if dtype == np.float32 else 1e-12)
            else:
                assert np.array_equal(w_alt, w_ref), (name, dtype)
        x = (rng.standard_normal((40, 30)) * 5).astype(dtype)
        dout = rng.standard_normal(x.shape).astype(dtype)
        for act in ("relu", "tanh"):
            out_ref, cache_ref = getattr(activations, f"{act}_forward")(x)
            out_alt, cache_alt = getattr(stand_ins, f"{act}_forward")(x)
            dx_ref = getattr(activations, f"{act}_backward")(dout, cache_ref)
            dx_alt = getattr(stand_ins, f"{act}_backward")(dout, cache_alt)
            assert out_alt.dtype == out_ref.dtype and dx_alt.dtype == dx_ref.dtype
            tol = 0 if act == "relu" else (4e-7 if dtype == np.float32 else 1e-15)
            np.testing.assert_allclose(out_alt, out_ref, rtol=tol, atol=tol)
            np.testing.assert_allclose(dx_alt, dx_ref, rtol=tol, atol=tol)
    X, y = rng.standard_normal((103, 3)), rng.integers(0, 5, 103)
    for a, b in zip(optim.iterate_minibatches(X, y, 10, np.random.default_rng(1)),
                    stand_ins.iterate_minibatches(X, y, 10, np.random.default_rng(1)), strict=True):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # course.testing's gradient check at stage 00: the same verdicts as the references' on a right and a wrong dW
    from nnlab.gradcheck import numerical_gradient_array, relative_error
    x, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    d = rng.standard_normal((4, 2))
    f = lambda w: x @ w  # noqa: E731
    ref, alt = numerical_gradient_array(f, W.copy(), d, h=1e-6), stand_ins.scipy_numerical_gradient_array(f, W, d, h=1e-6)
    np.testing.assert_allclose(alt, ref, rtol=1e-7)
    right, wrong = x.T @ d, x.T @ d / 4
    assert stand_ins.max_relative_error(right, alt) < 1e-6 and relative_error(right, ref) < 1e-6
    assert stand_ins.max_relative_error(wrong, alt) > 1e-2 and relative_error(wrong, ref) > 1e-2
    assert stand_ins.max_relative_error(np.zeros(3), np.zeros(3)) == 0.0


def test_the_stages_where_a_stand_in_runs(editions):
    """A stand-in only ever replaces a later notebook's exercise: at its own notebook's stage the name is the
    student's, and after it the reference."""
    for assignment in ASSIGNMENTS:
        text = (editions(assignment) / "nnlab" / "_exercise.py").read_text(encoding="utf-8")
        namespace: dict = {}
        exec(compile(text, "_exercise.py", "exec"), namespace)
        assert set(namespace["STAND_INS"]) == {n for n in STAND_INS if EXERCISES[n] > assignment}
        standins = ast.parse((editions(assignment) / "nnlab" / "_standins.py").read_text(encoding="utf-8"))
        public = {n.name for n in standins.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
        helpers = {"max_relative_error", "scipy_numerical_gradient_array"} if assignment == ASSIGNMENTS[0] else set()
        assert public == set(namespace["STAND_INS"].values()) | helpers


# ---------------------------------------------------------------------------------------------- attacks

ATTACK = """
import dis, gc, importlib, importlib.util, inspect, io, json, pkgutil, sys
import nnlab, course
from nnlab import _exercise
out = {"nnlab": nnlab.__file__, "course": course.__file__, "sources": {}, "docs": {}, "consts": {}, "closures": {}}
modules = [importlib.import_module(i.name) for i in pkgutil.walk_packages(nnlab.__path__, "nnlab.")]
for module in modules:
    for name, obj in vars(module).items():
        if name in _exercise.NOTEBOOK and callable(obj):
            out["sources"][name] = inspect.getsource(obj)
            out["docs"][name] = obj.__doc__
            code = getattr(obj, "__code__", None) or obj.__new__.__code__
            text = io.StringIO(); dis.dis(obj, file=text)
            out["consts"][name] = [repr(c) for c in code.co_consts] + [text.getvalue()]
            out["closures"][name] = [repr(c.cell_contents) for c in (getattr(obj, "__closure__", None) or ())]
def found(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # its parent package is not there
        return False
out["specs"] = {m: found(m) for m in ("course.checks", "course.checks.normalization", "course.mistakes", "course.cli",
                                      "course.grade", "course.similarity", "course.trusted", "nnlab.zoo.pretrain",
                                      "__editable___nn_training_course_0_1_0_finder")}
out["modules"] = sorted(m.__name__ for m in modules) + sorted(i.name for i in pkgutil.iter_modules(course.__path__))
out["files"] = sorted({getattr(m, "__file__", "") for m in sys.modules.values() if getattr(m, "__file__", None)
                       and ("nnlab" in m.__file__ or "/course/" in m.__file__)})
print(json.dumps(out))
"""


@pytest.mark.parametrize("assignment", ["00_gradient_checking", "05_normalization"])
def test_a_student_who_reads_the_stubs_finds_no_answer(editions, isolated, assignment):
    """getsource, __doc__, dis, the constants and closures of every withheld name, the modules a kernel can
    import (course.checks, the mistake catalogs, the grader): nothing of the references."""
    edition = editions(assignment)
    result = isolated(edition, ATTACK)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["nnlab"].startswith(str(edition)) and seen["course"].startswith(str(edition))
    assert all(f.startswith(str(edition)) for f in seen["files"]), seen["files"]
    assert not any(seen["specs"].values()), seen["specs"]
    assert set(seen["sources"]) == set(withheld_exercises(ROOT, assignment))
    for name, source in seen["sources"].items():
        assert "return run(name, args, kwargs)" in source or "Withheld" in source, (name, source)
        doc = seen["docs"][name] or ""
        assert doc.startswith("Your exercise") and len(doc) < 100, (name, doc)
        assert "(N," not in doc
        assert all("function" not in c or "stub" in c or "run" in c for c in seen["closures"][name])
    # every stub compiles to the same few instructions: nothing of any reference is in one
    assert len({json.dumps(c[:-1]) for c in seen["consts"].values() if "run" in c[-1]}) <= 2
    assert not any("course.checks" in m or m.startswith("course.mistakes") for m in seen["modules"])


def test_the_edition_leaves_no_compiled_or_pickled_code_behind(editions):
    """No .pyc or __pycache__ from lib/ in the tree; the one binary, the zoo's checkpoint, holds tensors and plain
    values only (it loads with weights_only=True)."""
    import torch

    for assignment in ("00_gradient_checking", "07_transfer_learning"):
        edition = editions(assignment)
        assert not list(edition.rglob("*.pyc")) and not list(edition.rglob("__pycache__"))
        binaries = [p for p in edition.rglob("*") if p.is_file() and p.suffix not in (".py", ".toml", ".txt")]
        assert [p.name for p in binaries] == ["digits04_cnn.pt"]
        checkpoint = torch.load(binaries[0], weights_only=True)
        assert set(checkpoint) >= {"state_dict"} and all(isinstance(v, torch.Tensor)
                                                         for v in checkpoint["state_dict"].values())


def test_build_refuses_a_used_folder_and_an_unknown_stage(tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build(ROOT, "00", tmp_path / "used")
    assert (tmp_path / "used" / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="00_gradient_checking"):
        build(ROOT, "42", tmp_path / "new")
    assert assignment_of(ROOT, 5) == assignment_of(ROOT, "05") == "05_normalization"
    result = subprocess.run([sys.executable, "-m", "course.cli", "student-edition", "nine", str(tmp_path / "x")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "no notebook 'nine'" in result.stderr and not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------------- in a kernel

#: Outputs of an answered release that may differ from solutions/ in the edition's kernel, and why.
ROUNDOFF = {"00_gradient_checking": {"net_errors = "}}  # relative errors of 1e-10: tanh by PyTorch, not NumPy


@pytest.fixture(scope="module")
def scratch_python(tmp_path_factory):
    """A scratch virtual environment with the course's packages and without this repository's nnlab and course."""
    return student_kernel.scratch_env(tmp_path_factory.mktemp("venv") / "env")


@pytest.mark.serial
@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_answered_release_runs_in_a_kernel_that_has_only_the_stages_edition(scratch_python, tmp_path,
                                                                                 assignment):
    """pip install --no-deps --no-build-isolation EDITION in the scratch environment (one edition replaces the
    other there), then release/<stage> with its solution's answers pasted in, top to bottom, in a kernel of that
    environment: it imports nnlab and course from the edition only, and prints what solutions/ prints."""
    edition = build(ROOT, assignment, tmp_path / "edition")
    sources = {f for f in contents(edition)["files"] if f.endswith(".py")}  # pip leaves build/ in the tree
    installed = student_kernel.install(scratch_python, edition)
    assert installed.returncode == 0, installed.stderr
    site = Path(subprocess.run([str(scratch_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # What the installation leaves: the edition's files, their .pyc, its dist-info; none names this repository.
    record = next(site.glob("nnlab_student_edition-*.dist-info")) / "RECORD"
    listed = {line.split(",")[0] for line in record.read_text().splitlines()}
    assert {f for f in listed if f.endswith(".py")} == sources
    for path in [*site.glob("nnlab_student_edition-*.dist-info/*"), *(site / "nnlab").rglob("*.py")]:
        assert str(ROOT) not in path.read_text(encoding="utf-8", errors="replace"), path
    withheld = withheld_exercises(ROOT, assignment)
    keys = {}
    for name in withheld:
        keys.update(_reference_bytecode(name))
    pycs = list((site / "nnlab").rglob("*.pyc")) + list((site / "course").rglob("*.pyc"))
    assert pycs
    for pyc in pycs:
        for code in _code_objects(marshal.loads(pyc.read_bytes()[16:])):
            assert _bytecode_key(code) not in keys, f"{pyc}: {keys[_bytecode_key(code)]}"

    (tmp_path / "work").mkdir()
    nb, probe = student_kernel.run_answered(assignment, scratch_python,
                                            student_kernel.kernel_spec(tmp_path / "jupyter", scratch_python),
                                            tmp_path / "work")
    assert probe["nnlab"] == str(site / "nnlab" / "__init__.py")
    assert probe["course"] == str(site / "course" / "__init__.py")
    assert probe["importable"] == []
    assert not any(p.startswith(str(ROOT)) for p in probe["path"] if p)
    differences = student_kernel.compared_with_solution(nb, assignment)
    allowed = ROUNDOFF.get(assignment, set())
    assert [d for d in differences if not any(f"('{prefix}" in d for prefix in allowed)] == []
