"""The student edition of the library for stage N of a class: everything but the answers still to come.

``build(root, stage, out)`` writes an installable source tree (``pip install --no-deps --no-build-isolation OUT``,
offline, pure Python) with

- ``nnlab``: every helper, network, trainer, data set, plot and experiment; the references of the notebooks
  *before* the stage (their solutions are out); for the exercises of the stage's notebook and the later ones,
  a stub under the exercise's name instead of the reference (its docstring and body are not in the tree);
- a small ``course`` package: what a student's kernel imports (``course/__init__.py``, ``course/magic.py``,
  ``course/check_client.py`` where the course has it, and the visible tests' helpers ``course/testing.py``,
  ``course/visible_checks.py``, ``course/call_log.py``): no ``course/checks`` (the hidden tests' logic, and the
  mistake catalogs in it), no grading machinery, no ``source/``.

What a stub does when it is called (``nnlab/_exercise.py`` in the tree):

- an exercise of the stage's own notebook calls the student's function of that name, the one their notebook
  defines (the kernel's ``__main__``), so every experiment and helper that uses it internally (00's
  ``network_gradient_errors`` uses ``numerical_gradient``, 06's trainer ``iterate_minibatches``) runs on the
  student's own work, never on a reference; with none defined it raises :class:`ExerciseError`:
  "`batchnorm_forward` is your exercise in notebook 05_normalization: write it in your notebook";
- an exercise of a later notebook that the library itself uses at an earlier stage (the network's default
  activation and init, the trainer's SGD and minibatches, 01's Adam, 00's tanh) runs a *stand-in*
  (``nnlab/_standins.py``, :data:`STAND_INS`), which is not that exercise's answer: PyTorch where the exercise is
  an algorithm (tanh and ReLU with autograd for the derivative, ``torch.optim.Adam``), and, where the exercise is a
  formula its own text states and the trainer's numbers must stay those of the solutions (SGD, momentum, He and
  Xavier draws, the minibatch order), that formula written with library calls and none of the exercise's
  checks; every other later exercise raises :class:`ExerciseError`.

At stage 00 the visible tests' gradient check (``course.testing.check_backward``) cannot use the references of
``numerical_gradient_array`` and ``relative_error``, the exercises being done: it uses SciPy's central
differences and the error relative to the largest entries instead (a different rule, the same verdicts).

The grader never uses this edition: ``course grade``, ``course check`` and the trusted re-run use the full
library. ``tests/course/test_student_edition.py`` proves, by the code (AST, bytecode, docstrings), that no
reference of the stage's notebook or a later one is in the tree, and runs each release notebook, with its
solution's answers pasted in, in a kernel whose only ``nnlab`` and ``course`` are the stage's edition.
"""

from __future__ import annotations

import ast
import collections
import json
import re
import shutil
import textwrap
from pathlib import Path


#: The student ``course`` package: what a student's kernel imports (``check_client.py`` where it exists).
COURSE_MODULES = ("__init__.py", "magic.py", "check_client.py", "testing.py", "visible_checks.py", "call_log.py")

#: Exercises of later notebooks that the library runs at earlier stages, and the stand-in that runs instead
#: (a function of ``nnlab/_standins.py``; see that module's docstring for what each gives away).
STAND_INS = {
    "relu_forward": "relu_forward", "relu_backward": "relu_backward",  # the network's default activation
    "tanh_forward": "tanh_forward", "tanh_backward": "tanh_backward",  # 00's network_gradient_errors
    "random_init": "random_init", "xavier_init": "xavier_init", "he_init": "he_init",  # the network's init
    "sgd": "sgd", "sgd_momentum": "sgd_momentum", "adam": "adam",  # the trainer's rules; 01 trains with Adam
    "iterate_minibatches": "iterate_minibatches",  # the trainer's default minibatches
}

#: Helpers of the library that are an exercise's answer in substance, withheld with it (found by comparing every
#: function of an edition with the references it withholds: ``class_weighted_cross_entropy`` holds a softmax
#: cross-entropy and its gradient, 82 % the same as 00's reference; only 08's experiments use it).
COMPANIONS = {"class_weighted_cross_entropy": "softmax_cross_entropy"}

#: Files of the library left out until a stage: ``nnlab/zoo/pretrain.py`` (the instructor's script that made the
#: committed checkpoint) trains with the loop of 07's ``train_epoch``; a student needs only the checkpoint.
WITHHELD_FILES = {"zoo/pretrain.py": "07_transfer_learning"}

_EXERCISE_MODULE = '''\
"""The exercises this edition of nnlab leaves to you: each name calls your own function, or says where to write it.

This is the student edition of nnlab for notebook {stage}. The references of the notebooks before it are in the
library as usual; for the exercises of {stage} and the later notebooks the library holds these stubs. A stub of
{stage}'s own exercises calls the function of that name that your notebook defines, so the experiments run on
your work; a later notebook's exercise that the library needs runs a stand-in (nnlab._standins), and any other
raises ExerciseError, which says in which notebook you write it.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

STAGE = {stage!r}
#: exercise name -> the notebook where the student writes it (this stage's and the later ones)
NOTEBOOK: dict[str, str] = {notebooks!r}
#: a later notebook's exercise that the library itself runs -> its stand-in in nnlab._standins
STAND_INS: dict[str, str] = {stand_ins!r}
#: a helper of the library that holds an exercise's answer -> that exercise (withheld with it)
COMPANIONS: dict[str, str] = {companions!r}


class ExerciseError(NotImplementedError):
    """An exercise that this edition of the library leaves to you."""


def _is_stub(obj: Any) -> bool:
    return bool(getattr(obj, "_withheld_exercise", False))


def _own(name: str) -> Any:
    """The student's function (or class) called ``name``, defined in their notebook, or None."""
    main = sys.modules.get("__main__")
    obj = getattr(main, name, None) if main is not None else None
    return obj if callable(obj) and not _is_stub(obj) else None


def run(name: str, args: tuple, kwargs: dict) -> Any:
    """What the stub of exercise ``name`` does when called."""
    if name in COMPANIONS:
        exercise = COMPANIONS[name]
        raise ExerciseError(f"nnlab's `{{name}}` holds the answer to `{{exercise}}`, your exercise in notebook "
                            f"{{NOTEBOOK[exercise]}}: it comes with the edition for {{NOTEBOOK[exercise]}}'s solutions")
    notebook = NOTEBOOK[name]
    if notebook == STAGE:
        own = _own(name)
        if own is not None:
            return own(*args, **kwargs)
    elif name in STAND_INS:
        return getattr(importlib.import_module("nnlab._standins"), STAND_INS[name])(*args, **kwargs)
    raise ExerciseError(f"`{{name}}` is your exercise in notebook {{notebook}}: write it in your notebook"
                        + ("" if notebook == STAGE else
                           f" (this edition of nnlab is for notebook {{STAGE}}; nnlab's {{name}} comes with "
                           f"the edition for {{notebook}}'s solutions)"))


def stub(name: str) -> Any:
    """The function that stands for exercise ``name`` in the library."""
    def exercise(*args: Any, **kwargs: Any) -> Any:
        return run(name, args, kwargs)

    exercise.__name__ = exercise.__qualname__ = name
    exercise.__doc__ = f"Your exercise in notebook {{NOTEBOOK[COMPANIONS.get(name, name)]}}: not in this edition of nnlab."
    exercise._withheld_exercise = True  # type: ignore[attr-defined]
    return exercise


class Withheld:
    """Base of the stub of an exercise that is a class (``EarlyStopping``): creating one makes the student's."""

    _withheld_exercise = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return run(cls.__name__, args, kwargs)
'''


# ---------------------------------------------------------------------------------------------- the catalog

def exercise_notebooks(root: Path) -> dict[str, str]:
    """Every exercise of the course -> its assignment, from the solution cells' grade ids in ``source/``."""
    out: dict[str, str] = {}
    for path in sorted((Path(root) / "source").glob("*/*.ipynb")):
        # The JSON as it is (nbformat's import and validation would cost seconds: `course build` validates them).
        for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.get("cell_type") == "code" and meta.get("solution") and meta.get("grade_id"):
                out.setdefault(meta["grade_id"], path.parent.name)
    return out


def assignment_of(root: Path, stage: str | int) -> str:
    """The assignment a stage names: a notebook number (``5``, ``"05"``) or the assignment (``05_normalization``)."""
    names = sorted(p.name for p in (Path(root) / "source").iterdir() if p.is_dir() and any(p.glob("*.ipynb")))
    text = str(stage).strip()
    if text in names:
        return text
    if text.isdigit():
        for name in names:
            if name.split("_", 1)[0].isdigit() and int(name.split("_", 1)[0]) == int(text):
                return name
    raise ValueError(f"no notebook {stage!r} in {Path(root) / 'source'}; a stage is one of "
                     f"{', '.join(names)} (or its number)")


def withheld_exercises(root: Path, stage: str | int) -> dict[str, str]:
    """The exercises whose reference the stage's edition leaves out: its notebook's and the later ones'."""
    assignment = assignment_of(root, stage)
    return {name: nb for name, nb in exercise_notebooks(root).items() if nb >= assignment}


# ---------------------------------------------------------------------------------------------- rewriting nnlab

class _NetworkFastPaths(ast.NodeTransformer):
    """network.py's fast paths are affine_forward and affine_backward written out: gone while those are exercises."""

    def __init__(self) -> None:
        self.removed: list[str] = []

    def visit_If(self, node: ast.If) -> ast.AST | list[ast.stmt] | None:
        self.generic_visit(node)
        test = ast.unparse(node.test)
        if test == "aff_f is _layers.affine_forward":
            self.removed.append(test)
            return None
        if test == "i == 1 and aff_b is _layers.affine_backward":
            self.removed.append(test)
            return node.orelse
        return node


def _stub_source(node: ast.stmt) -> list[ast.stmt]:
    name = node.name  # type: ignore[attr-defined]
    if isinstance(node, ast.ClassDef):
        code = f"class {name}(_exercise.Withheld):\n    \"\"\"Your exercise: not in this edition of nnlab.\"\"\"\n"
    else:
        code = f"{name} = _exercise.stub({name!r})\n"
    return ast.parse(code).body


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _used_names(tree: ast.AST) -> set[str]:
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.alias):
            used.add(node.name.split(".")[-1])
    return used


def _drop_unused_private(trees: dict[str, ast.Module]) -> None:
    """Private module-level helpers that only withheld references used (``optim._defaults``...) go too."""
    uses = {id(node): _used_names(node) for tree in trees.values() for node in tree.body}
    count: collections.Counter[str] = collections.Counter()
    for used in uses.values():
        count.update(used)
    removed = True
    while removed:
        removed = False
        for tree in trees.values():
            for node in list(tree.body):
                names = _defined_names(node)
                if not names or not all(n.startswith("_") and not n.startswith("__") for n in names):
                    continue
                own = uses[id(node)]
                if not any(count[n] - (n in own) > 0 for n in names):
                    tree.body.remove(node)
                    count.subtract(own)
                    removed = True


def _module_doc(module: str, stubs: list[str], withheld: dict[str, str], stage: str) -> str:
    notebooks = sorted({withheld[n] for n in stubs})
    return (f"nnlab.{module}, student edition for notebook {stage}.\n\n"
            f"{', '.join(stubs)}: exercises of {', '.join(notebooks)}, not in this edition (each name calls your "
            f"own function or says where to write it: see nnlab._exercise). Everything else is the library as "
            f"usual.\n")


def _rewrite(relative: str, source: str, withheld: dict[str, str], stage: str) -> tuple[ast.Module, list[str]]:
    tree = ast.parse(source)
    stubs: list[str] = []
    body: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in withheld:
            stubs.append(node.name)
            body.extend(_stub_source(node))
        else:
            body.append(node)
    tree.body = body
    if relative == "network.py" and "affine_forward" in withheld:
        fast = _NetworkFastPaths()
        tree = fast.visit(tree)
        if sorted(fast.removed) != ["aff_f is _layers.affine_forward", "i == 1 and aff_b is _layers.affine_backward"]:
            raise RuntimeError("nnlab/network.py changed: update course.student_edition._NetworkFastPaths "
                               f"(removed {fast.removed})")
    if stubs:
        doc = _module_doc(relative[:-3].replace("/", "."), stubs, withheld, stage)
        first = tree.body[0] if tree.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            tree.body[0] = ast.Expr(ast.Constant(doc))
        else:
            tree.body.insert(0, ast.Expr(ast.Constant(doc)))
        at = 1
        while at < len(tree.body) and isinstance(tree.body[at], ast.ImportFrom) and tree.body[at].module == "__future__":
            at += 1
        tree.body.insert(at, ast.parse("from nnlab import _exercise").body[0])
    return tree, stubs


def _write_nnlab(lib: Path, dest: Path, withheld: dict[str, str], assignment: str) -> dict[str, list[str]]:
    companions = {c: e for c, e in COMPANIONS.items() if e in withheld}
    stubbed = {**withheld, **{c: withheld[e] for c, e in companions.items()}}
    sources = {str(p.relative_to(lib)): p for p in sorted(lib.rglob("*.py")) if "__pycache__" not in p.parts}
    for relative, until in WITHHELD_FILES.items():
        if assignment <= until:
            sources.pop(relative, None)
    trees: dict[str, ast.Module] = {}
    changed: dict[str, list[str]] = {}
    for relative, path in sources.items():
        text = path.read_text(encoding="utf-8")
        tree, stubs = _rewrite(relative, text, stubbed, assignment)
        if stubs or ast.dump(tree) != ast.dump(ast.parse(text)):
            changed[relative] = stubs
        trees[relative] = tree
    _drop_unused_private({r: trees[r] for r in changed} | {r: t for r, t in trees.items() if r not in changed})
    for relative, path in sources.items():
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative in changed:
            target.write_text(ast.unparse(ast.fix_missing_locations(trees[relative])) + "\n", encoding="utf-8")
        else:
            shutil.copyfile(path, target)  # untouched: comments and layout kept
    for data in sorted(lib.rglob("*.pt")):
        (dest / data.relative_to(lib)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data, dest / data.relative_to(lib))
    stand_ins = {n: f for n, f in STAND_INS.items() if n in withheld and withheld[n] > assignment}
    (dest / "_exercise.py").write_text(_EXERCISE_MODULE.format(stage=assignment, notebooks=dict(sorted(withheld.items())),
                                                               stand_ins=stand_ins, companions=companions),
                                       encoding="utf-8")
    keep = set(stand_ins.values())
    if {"numerical_gradient_array", "relative_error"} & set(withheld):  # course.testing's gradient check at 00
        keep |= {"max_relative_error", "scipy_numerical_gradient_array"}
    standins = Path(__file__).with_name("stand_ins.py").read_text(encoding="utf-8")
    (dest / "_standins.py").write_text(_only(standins, keep), encoding="utf-8")
    return changed


def _only(source: str, keep: set[str]) -> str:
    """The stand-ins module with only the functions ``keep`` names (and their private helpers)."""
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if not isinstance(n, ast.FunctionDef) or n.name in keep or n.name.startswith("_")]
    _drop_unused_private({"_standins.py": tree})
    return ast.unparse(tree) + "\n"


# ---------------------------------------------------------------------------------------------- the course package

_TESTING_IMPORT = "from nnlab.gradcheck import numerical_gradient_array, relative_error"


def _write_course(course: Path, dest: Path, withheld: dict[str, str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in COURSE_MODULES:
        if not (course / name).exists():
            continue
        text = (course / name).read_text(encoding="utf-8")
        if name == "testing.py" and {"numerical_gradient_array", "relative_error"} & set(withheld):
            if _TESTING_IMPORT not in text:
                raise RuntimeError("course/testing.py changed its import of the gradient check: update "
                                   "course.student_edition._write_course")
            text = text.replace(_TESTING_IMPORT,
                                "# The visible tests' own gradient check: not the exercises of notebook 00.\n"
                                "from nnlab._standins import max_relative_error as relative_error\n"
                                "from nnlab._standins import scipy_numerical_gradient_array as numerical_gradient_array")
        (dest / name).write_text(text, encoding="utf-8")


def _pyproject(assignment: str) -> str:
    number = assignment.split("_", 1)[0]
    return textwrap.dedent(f"""\
        # The student edition of the course's library for notebook {assignment} (course.student_edition).
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "nnlab-student-edition"
        version = "0.1.0+stage{number}"
        description = "nnlab and the course's notebook helpers for students at notebook {assignment}"
        requires-python = ">=3.11"
        dependencies = []  # numpy, torch, matplotlib, ... come with the course's pinned environment

        [tool.setuptools]
        packages = ["nnlab", "nnlab.experiments", "nnlab.zoo", "course"]

        [tool.setuptools.package-data]
        nnlab = ["zoo/*.pt"]
        """)


def build(root: Path, stage: str | int, out: Path) -> Path:
    """Write the student edition for ``stage`` (a notebook number or assignment) at ``out``; returns ``out``.

    ``out`` must be empty or absent (an existing folder with files is refused, nothing is deleted).
    """
    root, out = Path(root), Path(out)
    assignment = assignment_of(root, stage)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder: choose a new one")
    withheld = withheld_exercises(root, assignment)
    lib = root / "lib" / "nnlab"
    out.mkdir(parents=True, exist_ok=True)
    _write_nnlab(lib, out / "nnlab", withheld, assignment)
    _write_course(root / "course", out / "course", withheld)
    (out / "pyproject.toml").write_text(_pyproject(assignment), encoding="utf-8")
    (out / "README.txt").write_text(
        f"nnlab, student edition for notebook {assignment}. Install: pip install --no-deps --no-build-isolation "
        f"{out.name}\nThe exercises of {assignment} and of the later notebooks are yours to write.\n", encoding="utf-8")
    return out


def contents(out: Path) -> dict[str, list[str]]:
    """What an edition holds: its files, and which exercise names are stubs (``nnlab._exercise.NOTEBOOK``)."""
    out = Path(out)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    text = (out / "nnlab" / "_exercise.py").read_text(encoding="utf-8")
    notebooks = ast.literal_eval(re.search(r"^NOTEBOOK: dict\[str, str\] = (.*)$", text, re.M).group(1))
    return {"files": files, "stubs": sorted(notebooks)}
