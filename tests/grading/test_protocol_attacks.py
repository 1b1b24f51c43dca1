"""Attacks on the trusted re-run's protocol (course.remote), graded through the real pipeline in the class
under attack (``tests/grading/conftest.py``: one real batch with every attack catalog).

Every attack submission answers ``relative_error`` wrongly and fakes a pass for it in its own kernel
(redefining ``check_close``, patching the kernel's ``check_relative_error``), so the trusted re-run
alone stands between it and full marks. Its ``numerical_gradient`` then attacks the grader from the
student's process of the trusted re-run (where the test's ``f`` is a proxy): dunder and attribute
access, forged messages, oversized and deeply nested payloads, frame and traceback walking. A
grader it could run code in would have its checks patched (the attacker at 18/18) and a marker
file written in the course root. Honest students graded in the same batch must keep their grades.

:data:`CASES` (name -> :class:`Case`) is importable by a combined batch test; each case builds its
notebook from the correct submission. Unit tests below drive the wire format and the deadline
directly (no nbgrader, seconds).
"""

from __future__ import annotations

import os
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import numpy as np
import pytest

from course import remote
from course.notebooks import grade_id, is_solution, read_notebook
from course.sandbox import Limits
from course.trusted import submission_with, trusted_run
from tests.conftest import ROOT

A = "00_gradient_checking"
FULL = 18
MARKER = "PWNED"  # written into the course root by any code that runs in the grader

WRONG_RELATIVE_ERROR = "def relative_error(a, b):\n    return 0.5\n"
# Makes the student's own kernel pass every test cell of relative_error (and every visible test).
FAKE_KERNEL = ("import course.checks.gradient_checking as _g\n_g.check_relative_error = lambda *a, **k: None\n"
               "def check_close(*a, **k):\n    pass\n")
# Run in the student's process of the trusted re-run: the handle of the test's f, the peer and the server module.
PRELUDE = """
    import os, sys, struct
    peer = object.__getattribute__(f, "_peer")
    tok = object.__getattribute__(f, "_token")
    srv = sys.modules[type(f).__module__]
"""


def grader_code(root: Path) -> str:
    """What an attacker runs if it ever executes code in the grader: patch the checks, leave a marker."""
    return (f"import sys\nopen({str(root / MARKER)!r}, 'w').write('owned')\n"
            "sys.modules['course.checks.gradient_checking'].check_relative_error = lambda *a, **k: None\n"
            "import course.testing as t\nt.check_close = lambda *a, **k: None\nt.fail = lambda *a, **k: None\n")


@dataclass
class Case:
    """One submission: how to build it from the correct notebook, and the outcome it must get."""

    build: Callable[[nbformat.NotebookNode, Path], nbformat.NotebookNode]
    score: float
    phrase: str | None = None   # must appear in the reasons (cells, problem, review)
    honest: bool = False        # an honest student, whose grade must not move


def with_answer(nb, exercise, code):
    for cell in nb.cells:
        if is_solution(cell) and grade_id(cell) == exercise:
            cell.source = code
    return nb


def with_cell(nb, code, after):
    i = next(i for i, c in enumerate(nb.cells) if grade_id(c) == after)
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(code))
    return nb


def attack(payload: str) -> Callable:
    """A submission whose numerical_gradient runs ``payload`` (``{code}`` = the grader code) in the trusted re-run."""
    def build(nb, root):
        body = payload.replace("{code}", repr(grader_code(root)))
        body = "\n".join("        " + line for line in (PRELUDE + body).strip("\n").split("\n"))
        correct = next(c.source for c in nb.cells if is_solution(c) and grade_id(c) == "numerical_gradient")
        answer = (correct.replace("def numerical_gradient(", "def _correct(") +
                  f"\ndef numerical_gradient(f, x, h=1e-5):\n    if type(f).__name__ == 'Proxy':\n"
                  f"      try:\n{body}\n      except BaseException as exc:\n"
                  f"        print('attack failed:', type(exc).__name__, str(exc)[:200], file=sys.stderr)\n"
                  f"    return _correct(f, x, h)\n")
        nb = with_answer(nb, "numerical_gradient", "import sys\n" + answer)
        nb = with_answer(nb, "relative_error", WRONG_RELATIVE_ERROR)
        return with_cell(nb, FAKE_KERNEL, after="relative_error")
    return build


def raw(body_bytes: str) -> str:
    """A payload that sends ``body_bytes`` (a Python expression for bytes) as one message."""
    return f"    peer._send({body_bytes})\n    peer.serve_forever()\n"


# The wire format, as an attacker writes it: an envelope {"op": "reply"} followed by a payload.
ENVELOPE = ("(lambda e: (e.value({'op': 'reply', 'warnings': []}), e.message())[1])(srv._Encoder(peer))")

HONEST_ALT = """
def numerical_gradient(f, x, h=1e-5):
    flat = x.reshape(-1)
    grad = np.empty(flat.size)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h; up = f(x)
        flat[i] = saved - h; down = f(x)
        flat[i] = saved
        grad[i] = (up - down) / (2 * h)
    return grad.reshape(x.shape)
"""

CASES: dict[str, Case] = {
    # honest students, graded in the same batch
    "honest-ref": Case(lambda nb, root: nb, FULL, honest=True),
    "honest-alt": Case(lambda nb, root: with_answer(nb, "numerical_gradient", HONEST_ALT), FULL, honest=True),
    "honest-wrong-answer": Case(lambda nb, root: with_answer(nb, "relative_error", WRONG_RELATIVE_ERROR), FULL - 3,
                         honest=True),
    # attribute and dunder access on the test's f: served nowhere, so nothing happens and the attack is unseen
    "proxy-dunders": Case(attack("""
    for name in ("__globals__", "__code__", "__closure__", "__builtins__", "__dict__", "__wrapped__", "__self__"):
        try:
            g = getattr(f, name)
            g["__builtins__"]["exec"]({code}) if isinstance(g, dict) else None
        except Exception:
            pass
    f.__class__.__getattr__(f, "__globals__")  # the student's own Proxy class, in the student's process
"""), FULL - 3, "failed the trusted re-run"),
    # forged requests: every one is a protocol violation that kills the student's process
    "forged-getattr": Case(attack("""
    g = peer.request("getattr", tok, name="__globals__")
    g["__builtins__"]["exec"]({code})
"""), FULL - 6, "broke the grading protocol"),
    "forged-class-walk": Case(attack("""
    c = peer.request("getattr", tok, name="__class__")
    subs = peer.request("call", tok, (), {}, name="__subclasses__")
    peer.request("method", tok, (c,), {}, name="__init_subclass__")
"""), FULL - 6, "broke the grading protocol"),
    "forged-code": Case(attack("""
    peer.request("getitem", tok, ("__code__",))
"""), FULL - 6, "broke the grading protocol"),
    "forged-unknown-op": Case(attack("""
    peer.request("exec", tok, ({code},))
"""), FULL - 6, "broke the grading protocol"),
    "forged-method": Case(attack("""
    peer.request("method", tok, (), {}, name="__reduce_ex__")
"""), FULL - 6, "broke the grading protocol"),
    "forged-token": Case(attack("""
    for guess in (tok + 2, tok ^ 0xFF, 1, id(f), 0):
        peer.request("call", guess, ({code},))
"""), FULL - 6, "broke the grading protocol"),
    "forged-reference": Case(attack("""
    enc = srv._Encoder(peer)
    enc.value({"op": "call", "ref": tok})
    enc.put(b"l" + struct.pack(">I", 2) + b"l" + struct.pack(">I", 1) + b"R" + struct.pack(">Q", tok + 2)
            + b"d" + struct.pack(">I", 0))
    peer._send(enc.message())
    peer.serve_forever()
"""), FULL - 6, "broke the grading protocol"),
    "forged-alias": Case(attack(raw(ENVELOPE + " + b'l' + struct.pack('>I', 2) + b'A' + struct.pack('>I', 999)"
                                    " + b'l' + struct.pack('>I', 0)")), FULL - 6, "broke the grading protocol"),
    "forged-writeback": Case(attack(raw(ENVELOPE + " + b'l' + struct.pack('>I', 2) + b'N' + b'l' + struct.pack('>I', 1)"
                                        " + b'l' + struct.pack('>I', 2) + b'i' + struct.pack('>q', 10**6) + b'N'")),
                             FULL - 6, "broke the grading protocol"),
    # payloads the grader must refuse before they cost it memory
    "oversized-150mb": Case(attack(raw("b'l' + struct.pack('>I', 30_000_000) + b'd\\0\\0\\0\\0' * 30_000_000")),
                            FULL - 6, "limit is 64 MiB"),
    "many-values": Case(attack(raw(ENVELOPE + " + b'l' + struct.pack('>I', 2) + b'l' + struct.pack('>I', 10_000_000)"
                                   " + b'd\\0\\0\\0\\0' * 10_000_000")), FULL - 6, "more than 500000 values"),
    "deep-nesting": Case(attack(raw(ENVELOPE + " + b'l' + struct.pack('>I', 2) + (b'l' + struct.pack('>I', 1))"
                                    " * 200_000 + b'N'")), FULL - 6, "nested more than"),
    "huge-array": Case(attack(raw(ENVELOPE + " + b'l' + struct.pack('>I', 2) + b'a\\1s' + struct.pack('>I', 3) + b'<f8'"
                                  " + b'\\1' + struct.pack('>Q', 2**40)")), FULL - 6, "array larger than"),
    "many-proxies": Case(attack("""
    class Thing:
        pass
    return [Thing() for _ in range(50_000)]
"""), FULL - 6, "handed over more than"),
    "big-result": Case(attack("""
    return "x" * (48 * 1024 ** 2)
"""), FULL - 6, "should be a NumPy array"),
    # looking for the grader from inside the student's process: nothing of it is there
    "frame-walk": Case(attack("""
    frame = sys._getframe()
    while frame is not None:
        for scope in (frame.f_globals, frame.f_locals):
            for key, value in list(scope.items()):
                if key.startswith("check_") or key in ("course", "Mistake"):
                    scope[key] = lambda *a, **k: None
        frame = frame.f_back
    if "course.testing" in sys.modules:
        sys.modules["course.testing"].fail = lambda *a, **k: None
"""), FULL - 3, "failed the trusted re-run"),
    "traceback-walk": Case(attack("""
    try:
        f("not an array")
    except Exception as err:
        tb = err.__traceback__
        seen = []
        while tb is not None:
            seen.append(tb.tb_frame.f_globals.get("__name__"))
            for key in list(tb.tb_frame.f_globals):
                if key.startswith("check_"):
                    tb.tb_frame.f_globals[key] = lambda *a, **k: None
            tb = tb.tb_next
        assert "course" not in str(seen)
        exec({code}) if "course.testing" in sys.modules else None
"""), FULL - 3, "failed the trusted re-run"),
    "gc-walk": Case(attack("""
    import gc
    for obj in gc.get_objects():
        if callable(obj) and getattr(obj, "__module__", "") and str(getattr(obj, "__module__", "")).startswith("course"):
            exec({code})
"""), FULL - 3, "failed the trusted re-run"),
    # time: a student who waits in the trusted re-run only
    "sleep-call": Case(attack("""
    import time
    time.sleep(10 ** 6)
"""), FULL - 6, "time limit"),
    "sleep-load": Case(lambda nb, root: with_cell(nb, "import sys, time\nif 'ipykernel' not in sys.modules:\n"
                                                  "    time.sleep(10 ** 6)\n", after="numerical_gradient"),
                       0, "did not finish loading"),
}
pytestmark = pytest.mark.slow


@pytest.fixture
def graded(class_under_attack):
    """This catalog's view of the class under attack (tests/grading/conftest.py), graded once per run."""
    b = class_under_attack
    return b.root, {sid: b.results[sid] for sid in CASES}, b.seconds


@pytest.mark.parametrize("sid", sorted(CASES))
def test_protocol_attack_outcome(graded, sid):
    root, results, _ = graded
    r, case = results[sid], CASES[sid]
    explained = " | ".join([r.problem, *[c.reason for c in r.cells], *r.review])
    assert r.score == case.score, f"{sid}: got {r.score}, expected {case.score}; reasons: {explained[:1500]}"
    if case.phrase:
        assert re.search(case.phrase, explained), f"{sid}: no reason matching {case.phrase!r} in: {explained[:1500]}"
    if not case.honest and sid != "sleep-load":  # the wrong answer stays wrong, whatever its kernel said
        lost = {c.grade_id for c in r.cells if c.score < c.max_score}
        assert {"test_relative_error", "hidden_relative_error"} <= lost, (sid, lost)


def test_no_code_ran_in_the_grader(graded):
    root, results, _ = graded
    assert not (root / MARKER).exists()
    assert all(r.score < FULL for sid, r in results.items() if not CASES[sid].honest)


def test_catalog_covers_the_issue():
    names = set(CASES)
    assert {"proxy-dunders", "frame-walk", "traceback-walk", "forged-unknown-op", "forged-token", "oversized-150mb",
            "deep-nesting", "huge-array", "sleep-call"} <= names
    assert sum(c.honest for c in CASES.values()) >= 3


# -- the wire format and the deadline, directly -----------------------------------------------------

def pipe_peer(strict: bool = True) -> tuple[remote.Peer, int]:
    """A grader-side peer reading from a pipe, and the descriptor the test writes 'the student's' bytes to."""
    r, w = os.pipe()
    _, w_out = os.pipe()
    peer = remote.Peer(os.fdopen(r, "rb", buffering=0), os.fdopen(w_out, "wb", buffering=0), strict=strict)
    peer.deadline = time.monotonic() + 5
    return peer, w


def feed(w: int, body: bytes) -> None:
    os.write(w, struct.pack(">Q", len(body)) + body)


@pytest.mark.parametrize("body, phrase", [
    (b"Z", "unknown value tag"),
    (b"l" + struct.pack(">I", 10 ** 7), "more than 500000 values"),
    ((b"l" + struct.pack(">I", 1)) * 100 + b"N", "nested more than"),
    (b"d" + struct.pack(">I", 1) + b"l" + struct.pack(">I", 0) + b"N", "dict key"),
    (b"s" + struct.pack(">I", 100) + b"abc", "ends in the middle"),
    (b"R" + struct.pack(">Q", 12345), "never given"),
    (b"a\1s" + struct.pack(">I", 3) + b"|O8" + b"\0", "may not cross"),
    (b"a\1s" + struct.pack(">I", 3) + b"<f8" + b"\2" + struct.pack(">QQ", 2 ** 20, 2 ** 20), "larger than the message"),
])
def test_decoder_refuses_malformed_messages(body, phrase):
    peer, w = pipe_peer()
    feed(w, body)
    with pytest.raises(remote.ProtocolError, match=phrase):
        peer._receive()
    assert peer.broken


def test_oversized_message_is_refused_before_it_is_read():
    peer, w = pipe_peer()
    os.write(w, struct.pack(">Q", 150 * 1024 ** 2))  # a header only: the body is never awaited
    with pytest.raises(remote.ProtocolError, match="limit is 64 MiB"):
        peer._receive()


def test_silence_and_slowness_hit_the_deadline():
    peer, w = pipe_peer()
    peer.deadline = time.monotonic() + 0.5
    os.write(w, struct.pack(">Q", 100) + b"N")  # a message that never ends
    started = time.monotonic()
    with pytest.raises(remote.ProtocolError, match="time limit"):
        peer._receive()
    assert time.monotonic() - started < 3


def test_grader_exports_only_functions_and_generators():
    peer, _ = pipe_peer()
    enc = remote._Encoder(peer)
    enc.value([lambda v: v, np.random.default_rng(0), np.sum, {"a": np.ones(2)}])
    kinds = sorted(kind for _, kind in peer.exported.values())
    assert kinds == [remote.FUNCTION, remote.FUNCTION, remote.GENERATOR]
    for obj in (exec, open, object(), type, Path("/"), __import__("threading").Lock()):
        with pytest.raises(remote.CannotCross):
            remote._Encoder(peer).value(obj)


def _trusted(answers: dict[str, str], limits: Limits, src=None) -> dict[str, str]:
    src = src or read_notebook(ROOT / "source" / A / f"{A}.ipynb")
    return trusted_run(src, submission_with(src, answers), limits)


def test_whole_rerun_has_one_deadline():
    """A student slower than the cell limit allows nothing beyond: every call waits 2 s, the re-run gets 8 s."""
    slow = ("import time\ndef relative_error(a, b):\n    time.sleep(2)\n    d = np.linalg.norm(a) + np.linalg.norm(b)\n"
            "    return 0.0 if d == 0 else float(np.linalg.norm(a - b) / d)\n")
    started = time.monotonic()
    out = _trusted({"relative_error": slow}, Limits(cell_seconds=5, wall_seconds=8))
    took = time.monotonic() - started
    assert took < 8 + 6, took  # the deadline, plus starting and killing the student's process
    not_run = [gid for gid, why in out.items() if "not run" in why and "time limit" in why]
    assert "hidden_softmax_cross_entropy" in not_run and "8 s" in out["hidden_softmax_cross_entropy"]
    assert out["test_numerical_gradient"] == ""


def test_no_cell_is_left_to_the_kernel():
    """The old escape hatch is gone: a grade cell tagged kernel-only is re-run like any other, and a test that hands
    the student's code an object that cannot cross scores 0 with a reason instead of trusting the kernel."""
    src = read_notebook(ROOT / "source" / A / f"{A}.ipynb")
    for cell in src.cells:
        if grade_id(cell) == "test_relative_error":
            cell.source = "import torch\nrelative_error(torch.nn.LSTM(2, 2), np.ones(2))\n" + cell.source
        if grade_id(cell) == "hidden_relative_error":
            cell.metadata.setdefault("tags", []).append("kernel-only")
    out = _trusted({"relative_error": WRONG_RELATIVE_ERROR}, Limits(cell_seconds=30), src)
    assert "relative_error" in out["hidden_relative_error"]  # re-run: the wrong answer fails there too
    why = out["test_relative_error"]
    assert why.startswith("not graded") and "torch.nn.modules.rnn.LSTM" in why and "kernel alone" in why, why


def test_generator_offers_only_sampling_methods():
    """Notebook 02's initializers get the tests' rng: sampling works, anything else is refused or a violation."""
    name = "02_initialization"
    src = read_notebook(ROOT / "source" / name / f"{name}.ipynb")
    peek = ("def he_init(fan_in, fan_out, rng):\n    for attr in ('bit_generator', '__reduce__', '__class__', '_x'):\n"
            "        try:\n            getattr(rng, attr)\n        except AttributeError:\n            pass\n"
            "    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)\n")
    forge = ("import sys\ndef he_init(fan_in, fan_out, rng):\n    peer = object.__getattribute__(rng, '_peer')\n"
             "    peer.request('method', object.__getattribute__(rng, '_token'), name='__setstate__')\n"
             "    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)\n")
    limits = Limits(cell_seconds=60)
    honest = trusted_run(src, submission_with(src, {"he_init": peek}), limits)
    assert honest["hidden_he_init"] == "" and honest["test_he_init"] == ""
    forged = trusted_run(src, submission_with(src, {"he_init": forge}), limits)
    assert "broke the grading protocol" in forged["hidden_he_init"]


def test_dict_arguments_are_written_back_and_aliases_kept():
    """In-place updates of dict and array arguments reach the test's objects, as in one process."""
    from course.trusted import StudentProcess

    code = ("import numpy as np\ndef bn(x, bn_param):\n    bn_param.setdefault('running_mean', np.zeros(x.shape[1]))\n"
            "    bn_param['running_mean'] *= 0.5\n    bn_param['running_var'] = x.var(axis=0)\n"
            "    bn_param.pop('drop', None)\n    x += 1\n    return x\n"
            "def search(train_fn, space, n, rng):\n"
            "    trials = [{k: float(rng.uniform(lo, hi)) for k, (lo, hi, _) in space.items()} for _ in range(n)]\n"
            "    return sorted(((c, train_fn(c)) for c in trials), key=lambda t: -t[1])\n")
    student = StudentProcess([["student", code]], Limits(), [], time.monotonic() + 60)
    try:
        student.peer.deadline = time.monotonic() + 30
        x, param = np.array([[1.0, 2.0], [3.0, 5.0]]), {"mode": "train", "drop": 1}
        out = student.names["bn"](x, param)
        assert out is x and np.array_equal(x, [[2, 3], [4, 6]])
        assert list(param) == ["mode", "running_mean", "running_var"]
        mean = param["running_mean"]
        student.names["bn"](x, param)
        assert param["running_mean"] is mean and np.array_equal(param["running_var"], [1, 2.25])
        seen = []
        result = student.names["search"](lambda c: seen.append(c) or -c["lr"], {"lr": (0.0, 1.0, "linear")}, 3,
                                         np.random.default_rng(0))
        assert len(seen) == 3 and [s for _, s in result] == sorted((-c["lr"] for c in seen), reverse=True)
    finally:
        student.close()


def test_student_names_never_shadow_builtins():
    """A test cell's own abs(...) stays the real one, whatever the student's cells define."""
    src = read_notebook(ROOT / "source" / A / f"{A}.ipynb")
    for cell in src.cells:
        if grade_id(cell) == "test_relative_error":
            cell.source = "assert abs(relative_error(np.ones(2), np.zeros(2)) - 1.0) < 1e-9\n"
    out = _trusted({"relative_error": WRONG_RELATIVE_ERROR + "def abs(v):\n    return 0.0\n"
                                                            "def isinstance(*a):\n    return True\n"},
                   Limits(cell_seconds=30), src)
    assert out["test_relative_error"].startswith("AssertionError")


def test_what_one_cell_receives_is_bounded():
    """Results kept by test code cannot add up: past 256 MiB in one cell the student's process is cut off."""
    from course.trusted import StudentProcess

    student = StudentProcess([["student", "def big():\n    return 'x' * (40 * 1024 ** 2)\n"]], Limits(), [],
                             time.monotonic() + 60)
    try:
        student.peer.deadline = time.monotonic() + 60
        for _ in range(6):
            assert len(student.names["big"]()) == 40 * 1024 ** 2
        with pytest.raises(remote.ProtocolError, match="more than 256 MiB during one test cell"):
            student.names["big"]()
        student.peer.new_budget()  # the next cell starts afresh, but this process broke the protocol: it stays cut off
        with pytest.raises(remote.ProtocolError):
            student.names["big"]()
    finally:
        student.close()


def test_what_the_student_says_is_printable():
    """Exception texts, warnings and names from the student's process carry no terminal control sequences."""
    peer, _ = pipe_peer()
    err = peer._error(["ValueError", "bad\x1b[2J\x1b[Hvalue\r"])
    assert type(err) is ValueError and "\x1b" not in str(err) and "\r" not in str(err)
    assert "\x1b" not in str(peer._error(["Evil\x1b[31m", "x"]))
    assert peer.proxy(7, remote.OBJECT, "f\x1b]0;title\x07").__name__ == "f?]0;title?"
