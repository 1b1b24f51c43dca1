"""Is a student's answer copied from the library's reference? Flag only what is evidence.

A copy flag is an accusation, so it is raised on two kinds of evidence only, each measured on
answers written independently (none flagged) and on real copies (``python -m tests.course.test_similarity``
prints the rates; ``tests/course/test_similarity.py`` holds them):

* **Text** that nobody writes twice by chance: a comment, a docstring line or a string literal
  (an error message) of the reference, with at least :data:`MIN_WORDS` words of three letters or more
  (``cache : (x, W, b) from the forward pass`` has five: such lines recur by chance), that the notebook does
  not give the student, found in the answer (case, spacing and punctuation aside).
* **Structure** of a long reference: the answer is the reference's code (similarity at least
  :data:`THRESHOLD`) after renaming every variable and attribute, dropping docstrings, comments
  and annotations, and putting independent statements in one canonical order, and the reference
  has at least :data:`MIN_STATEMENTS` statements besides its docstring. Short functions have one
  natural form (``x @ W + b``): correct answers written independently coincide with the
  reference, so their sameness proves nothing and is never flagged.

Not detected: a short function copied (under :data:`MIN_STATEMENTS` statements) with the
reference's comments and docstring removed; a copy rewritten beyond renaming and reordering
(loops turned into comprehensions, expressions restructured); copies from solutions/ or from
another student (only the library's reference is compared).
"""

from __future__ import annotations

import ast
import copy
import difflib
import functools
import importlib
import inspect
import io
import pkgutil
import re
import textwrap
import tokenize
from pathlib import Path

import nnlab

THRESHOLD = 0.98
MIN_STATEMENTS = 14
MIN_WORDS = 8
KEEP_NAMES = frozenset({"np", "numpy", "math", "torch", "nn", "self", "cls", "super", "float", "int", "len",
                        "range", "sum", "min", "max", "abs", "dict", "list", "tuple", "zip", "enumerate",
                        "isinstance", "bool", "str", "print", "copy", "sorted", "reversed", "any", "all", "map",
                        "ValueError", "TypeError", "KeyError", "RuntimeError", "NotImplementedError"})


# ---------------------------------------------------------------------------- structure

def _body_statements(source: str) -> int:
    """Statements of the definition(s) in ``source``, docstrings not counted."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return 0
    return sum(isinstance(n, ast.stmt) and not _is_docstring(n) for n in ast.walk(tree)) - 1


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _names(node: ast.AST) -> tuple[set[str], set[str]]:
    """(read, written) names of a statement; a call on ``a.method(...)`` or with ``a`` as an argument of a
    bare call statement may change ``a``, so it counts as a write too (conservative: fewer reorderings)."""
    reads, writes = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (writes if isinstance(n.ctx, (ast.Store, ast.Del)) else reads).add(n.id)
        elif isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, (ast.Store, ast.Del)):
            base = n
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                writes.add(base.id)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name):
            writes.add(n.func.value.id)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        writes |= reads
    return reads, writes


class _Blind(ast.NodeTransformer):
    """Variable names hidden; called functions, attributes and the names of :data:`KEEP_NAMES` kept."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [self.visit(k) for k in node.keywords]
        if not isinstance(func, ast.Name):
            node.func = self.visit(func)
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name("_" if node.id not in KEEP_NAMES else node.id, node.ctx)


def _blind(node: ast.AST) -> str:
    """A statement's shape with its variables' names hidden: the key that orders independent statements."""
    return ast.dump(_Blind().visit(copy.deepcopy(node)), annotate_fields=False)


def _canonical_order(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of a block, independent ones in one canonical order (dependencies kept)."""
    if len(body) < 2:
        return body
    info = [_names(s) for s in body]
    barrier = (ast.Return, ast.Raise, ast.Break, ast.Continue, ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom)
    after: list[set[int]] = [set() for _ in body]  # after[j]: statements that must come before j
    for j, (rj, wj) in enumerate(info):
        for i in range(j):
            ri, wi = info[i]
            if (wi & (rj | wj)) or (wj & ri) or isinstance(body[i], barrier) or isinstance(body[j], barrier):
                after[j].add(i)
    keys = [_blind(s) for s in body]
    done: list[int] = []
    while len(done) < len(body):
        ready = [j for j in range(len(body)) if j not in done and after[j] <= set(done)]
        done.append(min(ready, key=lambda j: (keys[j], j)))
    return [body[j] for j in done]


class _Normalize(ast.NodeTransformer):
    """Docstrings, annotations and ``pass`` go; blocks take their canonical order; variable and attribute
    names become v0, v1, ... in order of appearance."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                block = [s for s in block if not _is_docstring(s) and not isinstance(s, ast.Pass)]
                setattr(node, field, _canonical_order(block) or [ast.Pass()])
        return super().generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.returns, node.decorator_list = None, []
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg, node.annotation = self._rename(node.arg), None
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id not in KEEP_NAMES:
            node.id = self._rename(node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            node.attr = self._rename("." + node.attr)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        if isinstance(node.value, str) and len(node.value.split()) >= 3:  # a message: text, not structure
            node.value = "<text>"
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return ast.Constant("<text>")

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        self.generic_visit(node)
        return ast.Assign(targets=[node.target], value=node.value or ast.Constant(None), lineno=node.lineno)


def _definition(source: str, name: str) -> ast.AST | None:
    try:
        tree = ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return node
    return None


def normalized(source: str, name: str) -> str | None:
    """The normalized AST of the definition of ``name`` in ``source`` (see :class:`_Normalize`), or None."""
    node = _definition(source, name)
    if node is None:
        return None
    node.name = "f"
    return ast.dump(_Normalize().visit(node), annotate_fields=False)


def structure_similarity(answer: str, reference: str, name: str) -> float:
    """How much of the normalized code the answer and the reference share (0 to 1)."""
    mine, ref = normalized(answer, name), normalized(reference, name)
    if not mine or not ref:
        return 0.0
    return difflib.SequenceMatcher(None, mine, ref, autojunk=False).ratio()


# ---------------------------------------------------------------------------- text

def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _text_lines(source: str) -> list[str]:
    """Comments, docstring lines and other string literals of a piece of code (normalized to words)."""
    lines: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(textwrap.dedent(source)).readline):
            if tok.type == tokenize.COMMENT:
                lines.append(tok.string.lstrip("#"))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    try:
        tree = ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError):
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                lines += node.value.split("\n")
    return [w for w in (_words(line) for line in lines) if w]


def _evidence_lines(reference: str, given: str) -> list[str]:
    """The reference's text lines long enough to be evidence and not given to the student."""
    given_words = _words(given)
    return [line for line in _text_lines(reference)
            if sum(len(w) >= 3 for w in line.split()) >= MIN_WORDS and line not in given_words]


def shared_text(answer: str, reference: str, given: str = "") -> list[str]:
    """The reference's own text lines (comments, docstrings, messages) that the answer contains."""
    answer_words = " ".join(_text_lines(answer))
    return [line for line in _evidence_lines(reference, given) if line in answer_words]


# ---------------------------------------------------------------------------- the references and the notebooks

@functools.lru_cache(maxsize=None)
def reference_source(name: str) -> str | None:
    """Source of the library's reference called ``name``, if any module of nnlab defines one."""
    for info in pkgutil.walk_packages(nnlab.__path__, "nnlab."):
        if ".experiments" in info.name:
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # a module whose optional dependency is missing defines no exercise here
            continue
        obj = getattr(module, name, None)
        if obj is not None and getattr(obj, "__module__", "") == info.name:
            try:
                return inspect.getsource(obj)
            except (OSError, TypeError):
                return None
    return None


@functools.lru_cache(maxsize=None)
def given_text(name: str) -> str:
    """What the notebooks give the student around exercise ``name``: every cell of the notebook that holds it,
    solutions removed (markdown, stubs, docstrings, tests). Looked up in the course's source/."""
    from course.notebooks import BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION, grade_id, remove_region
    from course.paths import course_root

    try:
        notebooks = sorted((course_root() / "source").glob("*/*.ipynb"))
    except FileNotFoundError:
        return ""
    import nbformat

    for path in notebooks:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:
            continue
        if any(grade_id(c) == name for c in nb.cells):
            return "\n".join(remove_region(remove_region(c.source, BEGIN_SOLUTION, END_SOLUTION), BEGIN_HIDDEN,
                                           END_HIDDEN) for c in nb.cells)
    return ""


# ---------------------------------------------------------------------------- the verdict

def copy_evidence(name: str, answer: str, reference: str | None = None, given: str | None = None) -> str:
    """Why the answer to exercise ``name`` is a copy of the library's reference, or ``""`` if nothing proves it."""
    reference = reference_source(name) if reference is None else reference
    if not reference or _definition(answer, name) is None:
        return ""
    text = shared_text(answer, reference, given_text(name) if given is None else given)
    if text:
        return f"it contains the reference's own text: \"{text[0][:80]}\""
    if _body_statements(reference) >= MIN_STATEMENTS:
        score = structure_similarity(answer, reference, name)
        if score >= THRESHOLD:
            return (f"its code is the reference's ({score:.0%} the same after renaming variables and reordering "
                    f"independent statements, over {_body_statements(reference)} statements)")
    return ""


def copied_exercises(answers: dict[str, str]) -> list[str]:
    """Exercises whose answer is, on the evidence of :func:`copy_evidence`, the library's reference."""
    return [name for name, code in answers.items() if copy_evidence(name, code)]
