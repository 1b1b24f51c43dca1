"""Student code in one process, trusted tests in another: grading that does not trust the student's kernel.

The student's process (:func:`serve`, run in the sandbox) executes the student's cells and
answers requests. The grader holds a :class:`Proxy` for each name the student defined;
calling it sends the arguments over a pipe and decodes the result.

What crosses, and how (both directions use one binary format, :class:`_Encoder`/:class:`_Decoder`):

- By value: ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, numeric NumPy
  arrays, scalars, dtypes and scalar types, and lists, tuples and dicts (scalar keys) of them.
  No pickle is ever loaded, and a lying ``__eq__`` or ``__array__`` never leaves its process.
- The student's other objects (its functions, classes, an ``EarlyStopping`` instance) stay in the
  student's process; the grader reaches them through proxies (call, attribute, item, ``len``).
- The grader's objects never cross. A test may pass a function (``f`` to differentiate, a
  ``train_fn``) or a ``numpy.random.Generator``: the student gets an opaque handle that it can
  only *call* (a function) or whose sampling methods in :data:`GENERATOR_METHODS` it can call (a
  generator), with plain data, getting plain data back. The grader serves nothing else: no
  attribute or item access, no dunder, no handle it did not register; any other message is a
  protocol violation, after which the student's process is killed.
- PyTorch's objects (tensors, modules of a closed set of layer types, optimizers, a DataLoader over a
  TensorDataset) cross as descriptions: plain data that the other side rebuilds into real objects
  (``course.torch_wire``; tag ``O``, and ``Q`` for an object met earlier in the same message, so that a
  parameter shared by a model and its optimizer stays one object). They are written back after a call
  like arrays: the grader applies the new state (parameters, ``requires_grad``, ``training``, submodules,
  optimizer state) to its own objects, which keep their identity.
- Anything else a test passes raises :class:`CannotCross`, and the trusted re-run gives that cell 0 with
  a reason: no cell is left to the student's kernel alone.

Arguments passed by value are written back after each call, as a call in one process would
leave them: arrays changed in place are copied into the caller's arrays, dicts and lists whose
items changed are updated in place (``bn_param["running_mean"] = ...``), and a result that *is*
an argument (``return x``) comes back as the caller's own object. Warnings raised on the other
side are re-raised here, and exceptions keep their built-in type and message (never a traceback).

Every message is capped before it is read (:data:`MAX_MESSAGE` bytes) and while it is decoded
(:data:`MAX_ELEMENTS` values, :data:`MAX_DEPTH` levels; an array's bytes must be in the message),
so a hostile process costs the grader at most about twice the cap in memory. Reads and writes
have a deadline (``Peer.deadline``), after which the caller gets a :class:`ProtocolError`.
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import functools
import inspect
import itertools
import json
import math
import os
import re
import select
import struct
import sys
import time
import traceback
import types
import warnings
from typing import Any, BinaryIO

import numpy as np

MAX_MESSAGE = 64 * 1024 ** 2   # bytes in one message (an array of 8 million float64 fits)
MAX_ELEMENTS = 500_000         # values in one message; an array counts as one
MAX_DEPTH = 40                 # nesting of lists, tuples and dicts
MAX_PROXIES = 20_000           # proxies of the other side's objects one peer may create
MAX_TEXT = 2000                # characters of an error message or a warning carried over
MAX_NESTING = 50               # requests served inside one another (f calls the student, who calls f, ...)
MAX_TORCH_OBJECTS = 10_000     # torch objects (tensors, modules, ...) rebuilt from one message
# What one test cell may receive in all (Peer.new_budget() starts a cell's): bounds what test code can keep.
MAX_RECEIVED_BYTES = 256 * 1024 ** 2
MAX_RECEIVED_VALUES = 2_000_000

# What a student may call on a numpy.random.Generator the tests give it (plain data in and out).
GENERATOR_METHODS = frozenset({
    "random", "integers", "standard_normal", "normal", "uniform", "choice", "permutation", "permuted", "shuffle",
    "binomial", "bernoulli", "exponential", "standard_exponential", "poisson", "beta", "gamma", "standard_gamma",
    "lognormal", "laplace", "logistic", "geometric", "multinomial", "multivariate_normal", "dirichlet",
    "standard_t", "chisquare", "triangular", "weibull", "rayleigh", "pareto", "power", "vonmises", "wald",
    "gumbel", "hypergeometric", "negative_binomial", "logseries", "zipf", "f", "noncentral_chisquare",
    "noncentral_f", "standard_cauchy", "bytes",
})
# Values one such call may make the grader compute: no more could be sent back in one message (MAX_MESSAGE).
MAX_DRAWS = MAX_MESSAGE // 8
_GENERATOR_SIGNATURES = {name: inspect.signature(getattr(np.random.Generator, name))
                         for name in GENERATOR_METHODS if hasattr(np.random.Generator, name)}
_VECTOR_ARGUMENT = {"multinomial": "pvals", "dirichlet": "alpha", "multivariate_normal": "mean"}  # adds an axis
_NOT_SHAPES = {"self", "size", "dtype", "out", "method", "check_valid", "tol", "axis", "replace", "p", "shuffle",
               "endpoint", "cov", "a", "x"}

OBJECT, FUNCTION, GENERATOR = 0, 1, 2   # kinds of handle: any object (the student's), call only, sampling only
LIBRARY_MESSAGE = ("your code imports the course library (nnlab), which holds the reference solutions; graded code "
                   "must be your own")

_U8, _U32, _U64 = struct.Struct(">B"), struct.Struct(">I"), struct.Struct(">Q")
_I64, _F64, _C128 = struct.Struct(">q"), struct.Struct(">d"), struct.Struct(">dd")
_DTYPE = re.compile(r"[<>|=][biufc][0-9]{1,2}")
_KEY_TYPES = (type(None), bool, int, float, str)
# Built-in functions (exec, open, setattr, ...) are never handed out, whatever a test passes.
_BUILTIN_IDS = frozenset(id(getattr(builtins, n)) for n in dir(builtins)
                         if isinstance(getattr(builtins, n), types.BuiltinFunctionType))
_BUILTIN_TYPES = (float, int, bool, complex)


class StudentError(Exception):
    """An exception raised by the other side's code that has no built-in type of its name."""


class CannotCross(TypeError):
    """A value of the grader that is not plain data, a torch object that crosses, a function or a random generator."""


class _Exhausted(Exception):
    """The other side's iterator has no more items (``StopIteration`` cannot cross a generator)."""


class ProtocolError(BaseException):
    """The student's process died, hung, broke the protocol or went over a limit.

    A ``BaseException``, so that a test helper's ``except Exception`` never mistakes it for the
    student's own error and carries on talking to a process that is about to be killed.
    """


def _count(shape: Any) -> int:
    """The number of values of an array of this shape (an int or a sequence of ints); 0 for what numpy rejects."""
    try:
        dims = [int(d) for d in np.ravel(np.asarray(shape, dtype=object))]
    except (TypeError, ValueError, OverflowError):
        return 0
    return math.prod(max(d, 0) for d in dims)


def generator_draws(name: str, args: tuple, kwargs: dict) -> int:
    """How many values a generator's method ``name`` would compute for these arguments (an upper bound).

    ``size`` decides, or else the broadcast of the parameters' shapes (two arrays of 250,000 values,
    one a column and one a row, broadcast to 62,500,000,000); a vector parameter adds an axis; a
    population given as a number ``n`` (``permutation(n)``, ``choice(n, replace=False)``) stands for
    ``arange(n)``. Arguments numpy would reject count 0: numpy raises its own error for them.
    """
    signature = _GENERATOR_SIGNATURES.get(name)
    if signature is None:
        return 0
    try:
        params = signature.bind(None, *args, **kwargs).arguments
    except TypeError:
        return 0
    if name == "bytes":
        return _count(params.get("length", 0))
    shapes, extra = [], 1
    for key, value in params.items():
        if key in _NOT_SHAPES and key != _VECTOR_ARGUMENT.get(name):
            continue
        try:
            shape = np.shape(value)
        except (ValueError, TypeError):
            return 0
        if key == _VECTOR_ARGUMENT.get(name):
            extra, shape = (shape[-1], shape[:-1]) if shape else (1, shape)
        shapes.append(shape)
    if params.get("size") is not None:
        count = _count(params["size"])
    else:
        try:
            count = math.prod(np.broadcast_shapes(*shapes)) if shapes else 1
        except ValueError:
            count = max((math.prod(s) for s in shapes), default=1)
    population = params.get("a" if name == "choice" else "x")
    if name in ("choice", "permutation") and population is not None:
        if np.ndim(population) == 0:
            if name == "permutation" or not params.get("replace", True):
                count = max(count, _count(population))
        elif name == "choice":  # whole rows (or columns) are drawn
            shape = np.shape(population)
            axis = params.get("axis", 0)
            if type(axis) is int and -len(shape) <= axis < len(shape):
                extra = math.prod(shape) // max(shape[axis], 1)
    return count * extra


def _holds_proxy(value: Any, depth: int = 0) -> bool:
    if isinstance(value, Proxy):
        return True
    if depth < MAX_DEPTH and type(value) in (list, tuple):
        return any(_holds_proxy(v, depth + 1) for v in value)
    if depth < MAX_DEPTH and type(value) is dict:
        return any(_holds_proxy(v, depth + 1) for v in value.values())
    return False


def _check_draws(name: str, args: tuple, kwargs: dict) -> None:
    """Refuse, with a reason the student reads, a call that would make the grader compute too many values.

    Only plain data: an object of the student's would be asked for its length and items twice (once
    here, once by numpy), and could answer small here and huge there.
    """
    if _holds_proxy(list(args)) or _holds_proxy(kwargs):
        raise TypeError("the test's random generator takes numbers, arrays, shapes and strings only, not objects "
                        "of your code")
    count = generator_draws(name, args, kwargs)
    if count > MAX_DRAWS:
        raise ValueError(f"asked the test's random generator for {count:,} values; at most {MAX_DRAWS:,} per call")


def _plain_dtype(dtype: np.dtype) -> bool:
    return not dtype.hasobject and dtype.fields is None and dtype.subdtype is None and bool(_DTYPE.fullmatch(dtype.str))


def _printable(text: str, limit: int) -> str:
    return "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in text[:limit])


# -- the wire format ------------------------------------------------------------------------------

class _Encoder:
    """Writes values in the wire format, within the limits; records by-value containers when asked."""

    def __init__(self, peer: Peer, aliases: dict[int, int] | None = None, record: list | None = None):
        self.peer, self.aliases, self.record = peer, aliases or {}, record
        self.chunks: list[bytes] = []
        self.size = 0
        self.count = 0
        self.torch_seen: dict[int, int] = {}  # id -> number of the torch objects of this message, in order
        self.torch_keep: list = []            # (alive while the message is made: their ids stay theirs)
        self.torch_open: set[int] = set()     # being described right now (a cycle cannot be sent)
        self.in_torch = 0                     # > 0 inside a torch object's description

    def put(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_MESSAGE:
            raise ValueError(f"the value is too large to send between the grader and your code (over "
                             f"{MAX_MESSAGE // 1024 ** 2} MiB)")
        self.chunks.append(data)

    def text(self, tag: bytes, s: str) -> None:
        data = s.encode("utf-8", "surrogatepass")
        self.put(tag + _U32.pack(len(data)) + data)

    def value(self, obj: Any, depth: int = 0, alias: bool = True) -> None:
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise ValueError(f"the value holds more than {MAX_ELEMENTS} items, too many to send")
        if depth > MAX_DEPTH:
            raise ValueError(f"the value is nested more than {MAX_DEPTH} levels deep, too deep to send")
        t = type(obj)
        if obj is None:
            self.put(b"N")
        elif t is bool:
            self.put(b"T" if obj else b"F")
        elif t is int:
            if -2 ** 63 <= obj < 2 ** 63:
                self.put(b"i" + _I64.pack(obj))
            else:
                self.text(b"I", str(obj))
        elif t is float:
            self.put(b"f" + _F64.pack(obj))
        elif t is complex:
            self.put(b"c" + _C128.pack(obj.real, obj.imag))
        elif t is str:
            self.text(b"s", obj)
        elif t is bytes:
            self.put(b"y" + _U32.pack(len(obj)) + obj)
        elif alias and t in (np.ndarray, list, tuple, dict) and id(obj) in self.aliases:
            self.put(b"A" + _U32.pack(self.aliases[id(obj)]))
        elif t is np.ndarray and _plain_dtype(obj.dtype):
            if self.record is not None and not self.in_torch:
                self.record.append(obj)
            self.put(b"a" + _U8.pack(1 if obj.flags.writeable else 0))
            self.array(obj)
        elif isinstance(obj, np.generic) and type(obj).__module__ == "numpy" and _plain_dtype(obj.dtype):
            self.put(b"g")
            self.array(np.asarray(obj))
        elif isinstance(obj, np.dtype) and type(obj).__module__.startswith("numpy") and _plain_dtype(obj):
            self.text(b"D", obj.str)
        elif any(obj is b for b in _BUILTIN_TYPES):
            self.text(b"B", obj.__name__)
        elif isinstance(obj, type) and issubclass(obj, np.generic) and obj.__module__ == "numpy" \
                and _scalar_type_ok(obj):
            self.text(b"S", np.dtype(obj).str)
        elif t in (list, tuple):
            if self.record is not None and not self.in_torch:
                self.record.append(obj)
            self.put((b"l" if t is list else b"t") + _U32.pack(len(obj)))
            for item in obj:
                self.value(item, depth + 1)
        elif t is dict and all(type(k) in _KEY_TYPES for k in obj):
            if self.record is not None and not self.in_torch:
                self.record.append(obj)
            self.put(b"d" + _U32.pack(len(obj)))
            for key, item in obj.items():
                self.value(key, depth + 1)
                self.value(item, depth + 1)
        elif isinstance(obj, Proxy) and object.__getattribute__(obj, "_peer") is self.peer:
            self.put(b"R" + _U64.pack(object.__getattribute__(obj, "_token")))
        elif (kind := self._torch_kind(obj)) is not None:
            self.torch(obj, kind, depth, alias)
        elif not self.peer.strict and "torch" in sys.modules and isinstance(obj, collections.abc.Iterator):
            # torch.optim takes any iterable of parameters ({"params": filter(...)}): the items cross, in a list,
            # where they are still the caller's own parameters (a handle's items would arrive as copies)
            items = list(itertools.islice(obj, MAX_ELEMENTS + 1))
            if len(items) > MAX_ELEMENTS:
                raise ValueError(f"an iterator of more than {MAX_ELEMENTS} items is too long to send")
            self.value(items, depth, alias)
        else:
            token, kind, name = self.peer.export(obj)
            self.put(b"H" + _U64.pack(token) + _U8.pack(kind))
            self.text(b"s", name)

    def _torch_kind(self, obj: Any) -> str | None:
        if "torch" not in sys.modules or isinstance(obj, Proxy):
            return None
        try:
            return _wire().kind_of(obj)
        except TypeError as exc:
            raise self._cannot_cross(obj, exc) from None

    def _cannot_cross(self, obj: Any, exc: Exception) -> TypeError:
        if not self.peer.strict:
            return TypeError(str(exc))
        self.peer.cannot_cross = f"{type(obj).__module__}.{type(obj).__name__}"
        return CannotCross(str(exc))

    def torch(self, obj: Any, kind: str, depth: int, alias: bool) -> None:
        """A torch object: a reference to an argument, to an earlier object of this message, or its description."""
        if alias and id(obj) in self.aliases:
            self.put(b"A" + _U32.pack(self.aliases[id(obj)]))
            return
        if id(obj) in self.torch_open:
            raise ValueError(f"a {type(obj).__name__} that contains itself cannot be sent")
        if alias and id(obj) in self.torch_seen:
            self.put(b"Q" + _U32.pack(self.torch_seen[id(obj)]))
            return
        self.torch_seen[id(obj)] = len(self.torch_keep)
        self.torch_keep.append(obj)
        if self.record is not None:
            self.record.append(obj)
        try:
            description = _wire().describe(obj, kind, self.peer.strict)
        except TypeError as exc:
            raise self._cannot_cross(obj, exc) from None
        self.put(b"O")
        self.text(b"s", kind)
        self.in_torch += 1  # the containers and arrays of a description are not arguments; its torch objects are
        self.torch_open.add(id(obj))
        try:
            self.value(description, depth + 1)
        finally:
            self.torch_open.discard(id(obj))
            self.in_torch -= 1

    def array(self, arr: np.ndarray) -> None:
        self.text(b"s", arr.dtype.str)
        self.put(_U8.pack(arr.ndim) + b"".join(_U64.pack(n) for n in arr.shape))
        if arr.nbytes > MAX_MESSAGE:
            raise ValueError(f"an array of {arr.nbytes} bytes is too large to send (over "
                             f"{MAX_MESSAGE // 1024 ** 2} MiB)")
        self.put(np.ascontiguousarray(arr).tobytes())

    def message(self) -> bytes:
        return b"".join(self.chunks)


def _scalar_type_ok(obj: type) -> bool:
    try:
        return _plain_dtype(np.dtype(obj))
    except TypeError:  # abstract types (np.floating)
        return False


class _Decoder:
    """Reads one message's values, enforcing the limits; every problem is a :class:`ProtocolError`."""

    def __init__(self, peer: Peer, data: memoryview):
        self.peer, self.data, self.pos = peer, data, 0
        self.budget = MAX_ELEMENTS
        self.aliases: list | None = None  # objects an "A" reference may name (the requester's own arguments)
        self.record: list | None = None   # by-value containers decoded, in order (a request's arguments)
        self.torch_built: list = []       # the torch objects of this message, in order ("Q" names one)
        self.in_torch = 0                 # > 0 inside a torch object's description

    def fail(self, what: str) -> ProtocolError:
        return self.peer.violation(what)

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail("a message ends in the middle of a value")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def u64(self) -> int:
        return _U64.unpack(self.take(8))[0]

    def text(self, limit: int = MAX_MESSAGE) -> str:
        n = self.u32()
        if n > limit:
            raise self.fail("a text is too long")
        try:
            return str(self.take(n), "utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise self.fail("a text is not UTF-8") from None

    def room(self, n: int) -> None:
        """Fail at once when a container announces more items than the limits leave (each item counts itself)."""
        if n > self.budget or (self.peer.strict and self.peer.received_values + n > MAX_RECEIVED_VALUES):
            self.count(n)

    def count(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            raise self.fail(f"a message holds more than {MAX_ELEMENTS} values")
        self.peer.received_values += n
        if self.peer.strict and self.peer.received_values > MAX_RECEIVED_VALUES:
            raise self.fail(f"it sent more than {MAX_RECEIVED_VALUES} values during one test cell")

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"a message is nested more than {MAX_DEPTH} levels deep")
        self.count(1)
        tag = self.u8()
        if tag == 0x4E:  # N
            return None
        if tag == 0x54:  # T
            return True
        if tag == 0x46:  # F
            return False
        if tag == 0x69:  # i
            return _I64.unpack(self.take(8))[0]
        if tag == 0x49:  # I
            digits = self.text(limit=4300)
            if not re.fullmatch(r"-?[0-9]+", digits):
                raise self.fail("an integer is malformed")
            return int(digits)
        if tag == 0x66:  # f
            return _F64.unpack(self.take(8))[0]
        if tag == 0x63:  # c
            return complex(*_C128.unpack(self.take(16)))
        if tag == 0x73:  # s
            return self.text()
        if tag == 0x79:  # y
            return bytes(self.take(self.u32()))
        if tag == 0x61:  # a
            writeable = self.u8()
            arr = self.array()
            if self.record is not None and not self.in_torch:
                self.record.append(arr)
            arr.flags.writeable = bool(writeable)
            return arr
        if tag == 0x67:  # g
            return self.array()[()]
        if tag == 0x44:  # D
            return self.dtype(self.text(limit=8))
        if tag == 0x53:  # S
            return self.dtype(self.text(limit=8)).type
        if tag == 0x42:  # B
            name = self.text(limit=8)
            if name not in ("float", "int", "bool", "complex"):
                raise self.fail("an unknown built-in type")
            return getattr(builtins, name)
        if tag in (0x6C, 0x74):  # l, t
            n = self.u32()
            self.room(n)
            items: list = []
            slot = None
            if self.record is not None and not self.in_torch:
                slot = len(self.record)
                self.record.append(items)
            for _ in range(n):
                items.append(self.value(depth + 1))
            if tag == 0x74:
                items = tuple(items)  # type: ignore[assignment]
                if slot is not None:
                    self.record[slot] = items
            return items
        if tag == 0x64:  # d
            n = self.u32()
            self.room(2 * n)
            out: dict = {}
            if self.record is not None and not self.in_torch:
                self.record.append(out)
            for _ in range(n):
                key = self.value(depth + 1)
                if type(key) not in _KEY_TYPES:
                    raise self.fail("a dict key is not a number or a string")
                out[key] = self.value(depth + 1)
            return out
        if tag == 0x41:  # A
            index = self.u32()
            if self.aliases is None or index >= len(self.aliases):
                raise self.fail("a reference to an argument that was never passed")
            return self.aliases[index]
        if tag == 0x4F:  # O
            return self.torch_object(depth)
        if tag == 0x51:  # Q
            index = self.u32()
            if index >= len(self.torch_built) or self.torch_built[index] is None:
                raise self.fail("a reference to a torch object that was not sent before it")
            return self.torch_built[index]
        if tag == 0x52:  # R
            return self.peer.exported_object(self.u64())
        if tag == 0x48:  # H
            token, kind = self.u64(), self.u8()
            if self.u8() != 0x73:
                raise self.fail("a malformed handle")
            return self.peer.proxy(token, kind, self.text(limit=1000))
        raise self.fail(f"an unknown value tag {tag}")

    def torch_object(self, depth: int) -> Any:
        """A torch object rebuilt from its description (``course.torch_wire``); the grader's end checks it all."""
        if self.u8() != 0x73:
            raise self.fail("a malformed torch object")
        kind = self.text(limit=16)
        if self.peer.strict and "torch" not in sys.modules:
            raise self.fail("a torch object, though no test gave it one")
        wire = _wire()
        slot = len(self.torch_built)
        if slot >= MAX_TORCH_OBJECTS:
            raise self.fail(f"a message holds more than {MAX_TORCH_OBJECTS} torch objects")
        self.torch_built.append(None)
        rslot = None
        if self.record is not None:
            rslot = len(self.record)
            self.record.append(None)
        self.in_torch += 1
        try:
            state = self.value(depth + 1)
        finally:
            self.in_torch -= 1
        try:
            obj = wire.build(kind, state, self.peer.strict)
        except Exception as exc:  # Malformed, or torch refusing what it was given: nothing of it is kept
            raise self.fail(f"a malformed torch object ({_printable(str(exc), 200)})") from None
        self.torch_built[slot] = obj
        if rslot is not None:
            self.record[rslot] = obj
        return obj

    def dtype(self, text: str) -> np.dtype:
        if not _DTYPE.fullmatch(text):
            raise self.fail("an array of a type that may not cross")
        try:
            dtype = np.dtype(text)
        except TypeError:
            raise self.fail("an array of an unknown type") from None
        if not _plain_dtype(dtype):
            raise self.fail("an array of a type that may not cross")
        return dtype

    def array(self) -> np.ndarray:
        if self.u8() != 0x73:
            raise self.fail("a malformed array")
        dtype = self.dtype(self.text(limit=8))
        ndim = self.u8()
        if ndim > 32:
            raise self.fail("an array with too many dimensions")
        shape = tuple(self.u64() for _ in range(ndim))
        size = 1
        for n in shape:
            size *= n
        nbytes = size * dtype.itemsize
        if nbytes > len(self.data) - self.pos or any(n > 2 ** 40 for n in shape):
            raise self.fail("an array larger than the message that carries it")
        if size == 0:
            return np.empty(shape, dtype)
        raw = np.frombuffer(self.data, dtype=dtype, count=size, offset=self.pos)
        self.pos += nbytes
        return raw.reshape(shape).copy()


# -- the two ends ---------------------------------------------------------------------------------

class Peer:
    """One end of the pipe: sends requests, serves the other side's requests, enforces the protocol.

    ``strict`` is the grader's end: it exports only functions and random generators, and serves
    only ``call`` (a function it exported) and ``method`` (an allowed method of a generator it
    exported). The student's end serves attribute, item and length requests on its own objects.
    """

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO, strict: bool = False):
        self.rfd, self.wfd = rfile.fileno(), wfile.fileno()
        self._files = (rfile, wfile)  # keep the file objects (and so the descriptors) alive
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self.strict = strict
        self.pid = os.getpid()
        self.broken = ""  # why the other side can no longer be trusted to answer
        self.deadline: float | None = None  # time.monotonic() by which the other side must answer
        self.exported: dict[int, tuple[Any, int]] = {}  # token -> (object, kind) of the objects handed out
        self._tokens: dict[int, int] = {}  # id(object) -> token
        self.proxies = 0
        self._proxies: dict[int, Proxy] = {}  # token -> the proxy of the other side's object
        self.serving = 0  # requests of the other side being served right now, one inside another
        self.received_bytes = self.received_values = 0  # since new_budget()
        self.cannot_cross = ""  # the type of the last of our objects that could not be passed over

    def new_budget(self) -> None:
        """A new test cell: count what the other side sends afresh, and forget what the last cell handed over.

        Handles of the grader's objects (a test's functions and generators, and what they hold) last one cell.
        """
        self.received_bytes = self.received_values = 0
        self.exported.clear()
        self._tokens.clear()

    # -- objects ------------------------------------------------------------------------------
    def export(self, obj: Any) -> tuple[int, int, str]:
        """A handle for one of our objects: (token, kind, name). The grader's end refuses most objects."""
        if id(obj) in self._tokens:
            token = self._tokens[id(obj)]
            return token, self.exported[token][1], _name_of(obj)
        if self.strict:
            if isinstance(obj, np.random.Generator):
                kind = GENERATOR
            elif _is_function(obj):
                kind = FUNCTION
            else:
                self.cannot_cross = f"{type(obj).__module__}.{type(obj).__name__}"
                raise CannotCross(f"a {type(obj).__module__}.{type(obj).__name__} cannot be passed to the student's "
                                  "process (only numbers, strings, NumPy arrays, lists, tuples and dicts of them, "
                                  "torch tensors, modules, optimizers and loaders (course.torch_wire), functions "
                                  "and numpy.random.Generator can)")
        else:
            kind = OBJECT
        token = int.from_bytes(os.urandom(7), "big") | 1
        self.exported[token] = (obj, kind)
        self._tokens[id(obj)] = token
        return token, kind, _name_of(obj)

    def exported_object(self, token: int) -> Any:
        entry = self.exported.get(token)
        if entry is None:
            raise self.violation("it named an object it was never given")
        return entry[0]

    def proxy(self, token: int, kind: int, name: str) -> Proxy:
        known = self._proxies.get(token)
        if known is not None:  # the same object of the other side is the same proxy here (`is` holds)
            return known
        self.proxies += 1
        if self.proxies > MAX_PROXIES:
            raise self.violation(f"it handed over more than {MAX_PROXIES} objects")
        if self.strict or kind not in (OBJECT, FUNCTION, GENERATOR):
            kind = OBJECT  # what the student's process says about its own objects decides nothing here
        self._proxies[token] = Proxy(self, token, kind, _printable(name, 100))
        return self._proxies[token]

    def violation(self, what: str) -> ProtocolError:
        self.broken = self.broken or f"the student's process broke the grading protocol: {what}"
        return ProtocolError(self.broken)

    # -- bytes ----------------------------------------------------------------------------------
    def _wait(self, fd: int, writing: bool) -> None:
        remaining = None if self.deadline is None else self.deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            self.broken = "time limit reached: your code did not finish (an infinite loop, or far too slow)"
            raise ProtocolError(self.broken)
        poller = select.poll()  # poll, not select: any descriptor number works
        poller.register(fd, select.POLLOUT if writing else select.POLLIN)
        if not poller.poll(None if remaining is None else max(1, int(remaining * 1000))):
            self.broken = "time limit reached: your code did not finish (an infinite loop, or far too slow)"
            raise ProtocolError(self.broken)

    def _send(self, data: bytes) -> None:
        if os.getpid() != self.pid:  # a fork of the student's process must never speak on the pipe
            os._exit(0)
        view = memoryview(_U64.pack(len(data)) + data)
        while view:
            self._wait(self.wfd, writing=True)
            try:
                n = os.write(self.wfd, view)
            except BlockingIOError:
                continue
            except OSError:
                self.broken = "the student's process stopped answering (it crashed or exited)"
                raise ProtocolError(self.broken) from None
            view = view[n:]

    def _read_exactly(self, buf: memoryview) -> None:
        while buf:
            self._wait(self.rfd, writing=False)
            try:
                n = os.readv(self.rfd, [buf])
            except BlockingIOError:
                continue
            except OSError:
                n = 0
            if not n:
                self.broken = "the student's process stopped answering (it crashed or exited)"
                raise ProtocolError(self.broken)
            buf = buf[n:]

    def _receive(self) -> tuple[dict, _Decoder]:
        """The next message's envelope (a dict of plain fields), and the decoder positioned at its payload."""
        if self.broken:
            raise ProtocolError(self.broken)
        header = bytearray(8)
        self._read_exactly(memoryview(header))
        size = _U64.unpack(header)[0]
        if size > MAX_MESSAGE:
            raise self.violation(f"it sent a message of {size} bytes (the limit is {MAX_MESSAGE // 1024 ** 2} MiB)")
        self.received_bytes += size
        if self.strict and self.received_bytes > MAX_RECEIVED_BYTES:
            raise self.violation(f"it sent more than {MAX_RECEIVED_BYTES // 1024 ** 2} MiB during one test cell")
        data = bytearray(size)
        self._read_exactly(memoryview(data))
        decoder = _Decoder(self, memoryview(data))
        envelope = decoder.value()
        if type(envelope) is not dict or type(envelope.get("op")) is not str:
            raise self.violation("a message without an operation")
        return envelope, decoder

    # -- requests ---------------------------------------------------------------------------------
    def request(self, op: str, token: int, args: tuple = (), kwargs: dict | None = None, name: str | None = None) -> Any:
        """Send a request and serve the other side's nested requests until its reply arrives."""
        if self.broken:
            raise ProtocolError(self.broken)
        envelope: dict = {"op": op, "ref": token}
        if name is not None:
            envelope["name"] = name
        nodes: list = []
        enc = _Encoder(self)
        enc.value(envelope)
        enc.record = nodes  # the arguments sent by value, in order: the reply names them by position
        enc.value([list(args), dict(kwargs or {})])
        self._send(enc.message())
        while True:
            envelope, decoder = self._receive()
            if envelope["op"] != "reply":
                self._serve(envelope, decoder)
                continue
            decoder.aliases = nodes
            payload = decoder.value()
            if type(payload) is not list or len(payload) != 2 or type(payload[1]) is not list:
                raise self.violation("a malformed reply")
            self._write_back(nodes, payload[1])
            self._rewarn(envelope.get("warnings"))
            error = envelope.get("error")
            if error is not None:
                raise self._error(error)
            if envelope.get("exhausted") is True:
                raise _Exhausted()
            return payload[0]

    def _write_back(self, nodes: list, changes: list) -> None:
        """Apply the other side's post-call state of our by-value arguments: arrays first, then containers."""
        later = []
        for change in changes:
            if type(change) is not list or len(change) != 2 or type(change[0]) is not int \
                    or not 0 <= change[0] < len(nodes):
                raise self.violation("a malformed write-back")
            original, new = nodes[change[0]], change[1]
            kind = _torch_kind(original)
            if kind is not None:
                try:
                    _wire().apply(original, new, kind)
                except Exception as exc:
                    raise self.violation(f"a write-back of a torch object that does not fit it "
                                         f"({_printable(str(exc), 200)})") from None
            elif type(original) is np.ndarray and type(new) is np.ndarray:
                if original.shape == new.shape and original.flags.writeable:
                    np.copyto(original, new, casting="unsafe")
            elif type(original) is type(new) and type(new) in (dict, list):
                later.append((original, new))
            else:
                raise self.violation("a write-back of the wrong kind")
        for original, new in later:
            if type(original) is dict:
                original.clear()
                original.update(new)
            else:
                original[:] = new

    @staticmethod
    def _rewarn(caught: Any) -> None:
        if type(caught) is not list:
            return
        for item in caught[:50]:
            if type(item) is list and len(item) == 2 and all(type(x) is str for x in item):
                cls = getattr(builtins, item[0], None)
                cls = cls if isinstance(cls, type) and issubclass(cls, Warning) else UserWarning
                warnings.warn(_printable(item[1], MAX_TEXT), cls, stacklevel=4)

    def _error(self, error: Any) -> BaseException:
        """The other side's exception as one of ours: its built-in type when it has one, and its message."""
        if type(error) is not list or len(error) != 2 or not all(type(x) is str for x in error):
            return self.violation("a malformed error")
        name, text = _printable(error[0], 100), _printable(error[1], MAX_TEXT)  # no terminal control in reasons
        if name in ("ModuleNotFoundError", "ImportError") and ("nnlab" in text or "course" in text):
            return StudentError(LIBRARY_MESSAGE)
        cls = getattr(builtins, name, None)
        if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, (StopIteration,
                                                                                       StopAsyncIteration)):
            try:
                return cls(text)
            except Exception:  # built-ins with other constructors (UnicodeDecodeError)
                pass
        return StudentError(f"{name}: {text}" if text else name)

    # -- serving ----------------------------------------------------------------------------------
    def _serve(self, envelope: dict, decoder: _Decoder) -> None:
        """Serve one request of the other side, or treat it as a violation (the grader's end)."""
        op, token = envelope["op"], envelope.get("ref")
        entry = self.exported.get(token) if type(token) is int else None
        if entry is None:
            raise self.violation(f"it asked for {op!r} on an object it was never given")
        obj, kind = entry
        name = envelope.get("name")
        if op == "call" and kind in (OBJECT, FUNCTION):
            target = obj
        elif op == "method" and kind == GENERATOR and name in GENERATOR_METHODS:
            target = getattr(obj, name)
        elif not self.strict and op in ("getattr", "setattr", "getitem", "len", "bool", "iter", "next") \
                and kind == OBJECT:
            target = None
        else:
            raise self.violation(f"it asked for {op!r} with {str(name)[:50]!r}, which the grader does not serve")
        nodes: list = []
        decoder.record = nodes
        payload = decoder.value()
        if type(payload) is not list or len(payload) != 2 or type(payload[0]) is not list \
                or type(payload[1]) is not dict or not all(type(k) is str for k in payload[1]):
            raise self.violation("a malformed request")
        args, kwargs = payload
        del decoder, payload
        if self.strict and self.serving >= MAX_NESTING:
            raise self.violation(f"its calls and the grader's nest more than {MAX_NESTING} deep")
        before = _snapshot(nodes)
        reply: dict = {"op": "reply"}
        value: Any = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.serving += 1
            try:
                if op == "getattr":
                    value = getattr(obj, str(name))
                elif op == "setattr":
                    setattr(obj, str(name), args[0])
                elif op == "iter":
                    value = iter(obj)
                elif op == "next":
                    try:
                        value = next(obj)
                    except StopIteration:
                        reply["exhausted"] = True
                elif op == "getitem":
                    value = obj[args[0]]
                elif op == "len":
                    value = len(obj)
                elif op == "bool":
                    value = bool(obj)
                else:
                    if op == "method":  # computed here, in the grader's process: only what can be sent back
                        _check_draws(str(name), args, kwargs)
                    value = target(*args, **kwargs)
            except ProtocolError:
                raise
            except (Exception, SystemExit) as exc:  # the other side learns the exception's name and message only
                reply["error"] = [type(exc).__name__, _printable(str(exc), MAX_TEXT)]
                value = None
            finally:
                self.serving -= 1
        reply["warnings"] = [[w.category.__name__, _printable(str(w.message), 500)] for w in caught[:50]]
        changes = _changes(nodes, before)
        aliases = {id(n): i for i, n in enumerate(nodes)}
        try:
            enc = _Encoder(self, aliases)
            enc.value(reply)
            enc.value([value, []], depth=0) if not changes else self._encode_reply(enc, value, changes)
        except (ValueError, TypeError, RecursionError) as exc:  # CannotCross, too big, too deep
            reply.pop("error", None)
            enc = _Encoder(self)
            enc.value({**reply, "error": [type(exc).__name__, _printable(str(exc), MAX_TEXT)]})
            enc.value([None, []])
        self._send(enc.message())

    @staticmethod
    def _encode_reply(enc: _Encoder, value: Any, changes: list) -> None:
        enc.put(b"l" + _U32.pack(2))
        enc.value(value, 1)
        enc.put(b"l" + _U32.pack(len(changes)))
        for index, new in changes:
            enc.put(b"l" + _U32.pack(2))
            enc.value(index, 3)
            enc.value(new, 3, alias=False)  # the new state itself, whose items may name other arguments

    def receive_ready(self) -> tuple[dict, list[str]]:
        """The student's process's first message: the names its cells defined, and what went wrong."""
        envelope, decoder = self._receive()
        problems = envelope.get("problems")
        if envelope["op"] != "ready" or type(problems) is not list or not all(type(p) is str for p in problems):
            raise self.violation("it did not start as expected")
        names = decoder.value()
        if type(names) is not dict or not all(type(k) is str for k in names):
            raise self.violation("it did not start as expected")
        return names, [_printable(p, MAX_TEXT) for p in problems[:20]]

    def serve_forever(self) -> None:
        while True:
            try:
                envelope, decoder = self._receive()
            except ProtocolError:
                return
            self._serve(envelope, decoder)


_FUNCTION_TYPES = (types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.BuiltinMethodType,
                   functools.partial, np.ufunc)
_FUNCTION_HOMES = ("course", "nnlab", "numpy", "tests", "__main__")  # callable objects of the tests' own classes


def _is_function(obj: Any) -> bool:
    """A function a test may hand to the student's code: the student can only call it, with plain data."""
    if id(obj) in _BUILTIN_IDS or isinstance(obj, type) or not callable(obj):
        return False
    return isinstance(obj, _FUNCTION_TYPES) or type(obj).__module__.split(".")[0] in _FUNCTION_HOMES


def _name_of(obj: Any) -> str:
    name = getattr(obj, "__name__", None) if callable(obj) else None
    return _printable(name, 100) if type(name) is str else ""


def _wire() -> types.ModuleType:
    """``course.torch_wire``, imported when a torch object first crosses (never for the other notebooks)."""
    if __name__ == "__main__":  # the student's process: the copy beside this file (no course package here)
        import torch_wire  # type: ignore[import-not-found]
        if not getattr(torch_wire, "_one_thread", False):
            torch_wire.torch.set_num_threads(1)  # as the notebook's setup does (its nnlab call fails here)
            torch_wire._one_thread = True
        return torch_wire
    from course import torch_wire
    return torch_wire


def _torch_kind(obj: Any) -> str | None:
    """The torch kind of a node (an argument rebuilt or sent), None for anything else."""
    if "torch" not in sys.modules or isinstance(obj, Proxy):
        return None
    try:
        return _wire().kind_of(obj)
    except TypeError:
        return None


def _snapshot(nodes: list) -> list:
    """What to compare after a call: a copy of each array, the items of each dict and list."""
    out: list = []
    for obj in nodes:
        if (kind := _torch_kind(obj)) is not None:
            out.append((kind, _wire().snapshot(obj, kind)))
        elif type(obj) is np.ndarray:
            out.append(obj.copy())
        elif type(obj) is dict:
            out.append(list(obj.items()))
        elif type(obj) is list:
            out.append(list(obj))
        else:
            out.append(None)
    return out


def _changes(nodes: list, before: list) -> list:
    """``[index, object]`` for each by-value argument (or part of one) the call changed."""
    out = []
    for i, (obj, old) in enumerate(zip(nodes, before)):
        if type(old) is tuple:  # a torch object: (kind, its snapshot)
            if _wire().changed(obj, old[0], old[1]):
                out.append([i, obj])
        elif type(obj) is np.ndarray:
            if obj.shape != old.shape or obj.dtype != old.dtype or obj.tobytes() != old.tobytes():
                out.append([i, obj])
        elif type(obj) is dict:
            now = list(obj.items())
            if len(now) != len(old) or any(k is not k0 and k != k0 or v is not v0 for (k, v), (k0, v0) in zip(now, old)):
                out.append([i, obj])
        elif type(obj) is list:
            if len(obj) != len(old) or any(v is not v0 for v, v0 in zip(obj, old)):
                out.append([i, obj])
    return out


class _Method:
    """A sampling method of the grader's random generator, as the student's code sees it."""

    def __init__(self, proxy: Proxy, name: str):
        self._proxy, self.__name__ = proxy, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        peer = object.__getattribute__(self._proxy, "_peer")
        return peer.request("method", object.__getattribute__(self._proxy, "_token"), args, kwargs, name=self.__name__)


class Proxy:
    """Stands for an object of the other process; only what that process serves travels over the pipe."""

    def __init__(self, peer: Peer, token: int, kind: int, name: str = ""):
        if name:
            object.__setattr__(self, "__name__", name)
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_token", token)
        object.__setattr__(self, "_kind", kind)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._kind == GENERATOR:
            raise TypeError("the random generator is not callable; call one of its methods (rng.random(...))")
        return self._peer.request("call", self._token, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        kind = object.__getattribute__(self, "_kind")
        if kind == GENERATOR and name in GENERATOR_METHODS:
            return _Method(self, name)
        if name.startswith("__") or kind != OBJECT:
            what = "random generator" if kind == GENERATOR else "function"
            raise AttributeError(f"the {what} the tests gave you offers no attribute {name!r} here"
                                 + (": only its sampling methods (rng.random, rng.integers, rng.standard_normal, "
                                    "...)" if kind == GENERATOR else ""))
        return self._peer.request("getattr", self._token, name=name)

    def __getitem__(self, key: Any) -> Any:
        self._object_only("[]")
        return self._peer.request("getitem", self._token, (key,))

    def __len__(self) -> int:
        self._object_only("len()")
        n = self._peer.request("len", self._token)
        if type(n) is not int or not 0 <= n <= MAX_ELEMENTS:
            raise TypeError(f"len() of an object from the student's code gave {str(n)[:30]}, not a length the grader "
                            f"accepts (0 to {MAX_ELEMENTS})")
        return n

    def __iter__(self):
        self._object_only("iteration")
        items = self._peer.request("iter", self._token)
        if not isinstance(items, Proxy):  # a lying __iter__ that returned plain data
            raise TypeError(f"iter() of an object from the student's code returned {type(items).__name__}")
        for _ in range(MAX_ELEMENTS):
            try:
                yield items.__next__()
            except StopIteration:
                return
        raise TypeError(f"an object from the student's code yielded more than {MAX_ELEMENTS} items")

    def __next__(self) -> Any:
        self._object_only("next()")
        try:
            return self._peer.request("next", self._token)
        except _Exhausted:
            raise StopIteration from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._object_only("setting an attribute")
        self._peer.request("setattr", self._token, (value,), name=name)

    def __bool__(self) -> bool:
        if self._kind != OBJECT:
            return True
        return self._peer.request("bool", self._token) is True

    def _object_only(self, what: str) -> None:
        if self._kind != OBJECT:
            raise TypeError(f"{what} is not available on an object the tests gave you")

    def __repr__(self) -> str:
        return f"<{self.__dict__.get('__name__') or 'object'} from the other process>"


# -- the student's side ---------------------------------------------------------------------------

def _python(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if not line.lstrip().startswith(("%", "!")))


def _plotting_import(node: ast.stmt) -> bool:
    names = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
    module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
    return any(n.startswith("matplotlib") for n in [module, *names])


def serve(cells_path: str) -> None:
    """Run the student's cells, then answer requests on the protocol pipe until it closes."""
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    os.dup2(2, 1)  # the student's prints go to stderr, never into the protocol
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.stdout = sys.stderr
    pid = os.getpid()
    cells = json.loads(open(cells_path).read())
    namespace: dict = {"__name__": "__main__"}
    problems = []
    for kind, source in cells:
        try:
            tree = ast.parse(_python(source))
        except SyntaxError as exc:
            problems.append(f"SyntaxError in your code: {exc}")
            continue
        for node in tree.body:  # statement by statement: one failing import must not hide the rest
            if kind == "setup" and _plotting_import(node):
                continue  # graded functions never plot; matplotlib costs half a second to import
            try:
                exec(compile(ast.Module([node], []), "<your notebook>", "exec"), namespace)  # noqa: S102
            except BaseException as exc:
                if kind == "setup":
                    continue
                if isinstance(exc, ImportError) and any(m in str(exc) for m in ("nnlab", "course")):
                    problems.append(LIBRARY_MESSAGE)
                else:
                    problems.append(f"{type(exc).__name__} while running your cells: {exc}")
    if os.getpid() != pid:  # a process the student's code forked: it must not serve
        os._exit(0)
    peer = Peer(proto_in, proto_out)
    names = {k: v for k, v in namespace.items() if not k.startswith("__") and type(k) is str
             and (callable(v) or type(v) in _KEY_TYPES)}
    enc = _Encoder(peer)
    enc.value({"op": "ready", "problems": [_printable(p, MAX_TEXT) for p in problems[:20]]})
    enc.value(names)
    peer._send(enc.message())
    peer.serve_forever()


if __name__ == "__main__":
    try:
        serve(sys.argv[1])
    except BaseException:
        traceback.print_exc()
        raise
