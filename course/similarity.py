"""Is a student's function a copy of the library's reference? (Renamed variables do not hide it.)"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import pkgutil
import textwrap

import nnlab

THRESHOLD = 0.95
MIN_STATEMENTS = 9


def _statements(source: str) -> int:
    try:
        return sum(isinstance(n, ast.stmt) for n in ast.walk(ast.parse(textwrap.dedent(source)))) - 1
    except SyntaxError:
        return 0


class _Normalize(ast.NodeTransformer):
    """Names of arguments and variables become v0, v1, ... in order of appearance; docstrings go."""

    def __init__(self):
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg, node.annotation = self._rename(node.arg), None
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id not in ("np", "numpy", "math", "torch", "self"):
            node.id = self._rename(node.id)
        return node

    def _strip_doc(self, node):
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None),
                                                                            ast.Constant):
            node.body = node.body[1:] or [ast.Pass()]
        node.returns = None
        return self.generic_visit(node)

    visit_FunctionDef = visit_ClassDef = _strip_doc


def normalized(source: str, name: str) -> str | None:
    """The normalized AST of the definition of ``name`` in ``source``, or None if absent."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            node.name = "f"
            return ast.dump(_Normalize().visit(node), annotate_fields=False)
    return None


def reference_source(name: str) -> str | None:
    """Source of the library's reference called ``name``, if any module of nnlab defines one."""
    for info in pkgutil.walk_packages(nnlab.__path__, "nnlab."):
        if ".experiments" in info.name:
            continue
        module = importlib.import_module(info.name)
        obj = getattr(module, name, None)
        if obj is not None and getattr(obj, "__module__", "") == info.name:
            try:
                return inspect.getsource(obj)
            except (OSError, TypeError):
                return None
    return None


def copied_exercises(answers: dict[str, str]) -> list[str]:
    """Exercises whose answer is (nearly) the library's reference with names changed."""
    copies = []
    for name, code in answers.items():
        ref_src = reference_source(name)
        mine, ref = normalized(code, name), normalized(ref_src, name) if ref_src else None
        if ref_src and _statements(ref_src) < MIN_STATEMENTS:
            continue  # a three-line function has one natural form: sameness proves nothing
        if mine and ref and difflib.SequenceMatcher(None, mine, ref, autojunk=False).ratio() >= THRESHOLD:
            copies.append(name)
    return copies
