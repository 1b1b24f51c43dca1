"""Student code in one process, trusted tests in another: grading that does not trust the student's kernel.

The student's process (:func:`serve`, run in the sandbox) executes the student's cells
and answers requests. The trusted process holds a :class:`Proxy` for each name the
student defined; calling a proxy sends the arguments over a pipe and decodes the
result. Only plain data crosses by value (``None``, ``bool``, ``int``, ``float``,
``str``, numeric NumPy arrays and scalars, and tuples, lists and dicts of them):
anything else stays where it lives and is reached through a proxy, so an object with
a lying ``__eq__`` or ``__array__`` never enters the trusted process, and no pickle
from the student is ever loaded. The trusted side's callables (a function ``f`` to
differentiate, a random generator) cross the other way as proxies too. Arrays passed
as arguments are written back after each call, so "did it modify its input?" still
works; warnings raised in the student's process are re-raised here.
"""

from __future__ import annotations

import ast
import base64
import builtins
import io
import json
import os
import select
import struct
import sys
import time
import traceback
import warnings
from typing import Any, BinaryIO

import numpy as np

PLAIN = (type(None), bool, int, float, str)
LIBRARY_MESSAGE = ("your code imports the course library (nnlab), which holds the reference solutions; graded code "
                   "must be your own")


class StudentError(Exception):
    """An exception raised by the student's code, carried over by name and message."""


class ProtocolError(RuntimeError):
    """The student's process died, hung or broke the protocol."""


def _npy(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode()


def _unnpy(text: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


class Peer:
    """One end of the pipe: encodes, decodes, sends requests and serves the other side's requests."""

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO):
        self.rfile, self.wfile = rfile, wfile  # unbuffered pipes
        self.pid = os.getpid()
        self.broken = False  # set once the other side stopped answering or broke the protocol
        self.objects: dict[int, Any] = {}
        self.deadline: float | None = None  # time.monotonic() by which the other side must answer

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, obj: Any) -> Any:
        if type(obj) in PLAIN:
            if type(obj) is float and not np.isfinite(obj):
                return {"float": repr(obj)}
            return obj
        if type(obj) is np.ndarray and obj.dtype.kind in "biufc" and not obj.dtype.hasobject:
            return {"nd": _npy(obj)}
        if isinstance(obj, np.generic) and type(obj).__module__ == "numpy" and np.dtype(type(obj)).kind in "biufc":
            return {"np": _npy(np.asarray(obj))}
        if isinstance(obj, type) and obj in (float, int, bool, complex):
            return {"builtin": obj.__name__}
        if isinstance(obj, type) and issubclass(obj, np.generic) and obj.__module__ == "numpy":
            return {"scalar_type": np.dtype(obj).str}
        if type(obj).__module__.startswith("numpy") and isinstance(obj, np.dtype) and not obj.hasobject:
            return {"dtype": obj.str}
        if type(obj) is tuple:
            return {"tuple": [self.encode(v) for v in obj]}
        if type(obj) is list:
            return {"list": [self.encode(v) for v in obj]}
        if type(obj) is dict and all(type(k) is str for k in obj):
            return {"dict": [[k, self.encode(v)] for k, v in obj.items()]}
        if isinstance(obj, Proxy) and obj._peer is self:
            return {"yours": obj._id}
        self.objects[id(obj)] = obj
        name = getattr(obj, "__name__", None) if callable(obj) else None
        return {"mine": id(obj), "callable": callable(obj), "type": type(obj).__name__,
                "name": name if type(name) is str else None}

    def decode(self, data: Any) -> Any:
        if type(data) in PLAIN:
            return data
        if "float" in data:
            return float(data["float"])
        if "nd" in data:
            return _unnpy(data["nd"])
        if "np" in data:
            return _unnpy(data["np"])[()]
        if "builtin" in data:
            return {"float": float, "int": int, "bool": bool, "complex": complex}[data["builtin"]]
        if "scalar_type" in data:
            return np.dtype(data["scalar_type"]).type
        if "dtype" in data:
            return np.dtype(data["dtype"])
        if "tuple" in data:
            return tuple(self.decode(v) for v in data["tuple"])
        if "list" in data:
            return [self.decode(v) for v in data["list"]]
        if "dict" in data:
            return {k: self.decode(v) for k, v in data["dict"]}
        if "yours" in data:
            return self.objects[data["yours"]]
        return Proxy(self, data["mine"], data.get("callable", False), data.get("type", "object"), data.get("name"))

    # -- messages -----------------------------------------------------------------------------
    def send(self, msg: dict) -> None:
        if os.getpid() != self.pid:  # a fork of the student's process must never speak on the pipe
            os._exit(0)
        raw = json.dumps(msg).encode()
        self.wfile.write(struct.pack(">Q", len(raw)) + raw)
        self.wfile.flush()

    def recv(self) -> dict:
        try:
            msg = self._recv()
        except ProtocolError:
            self.broken = True
            raise
        if not isinstance(msg, dict) or "op" not in msg or (msg["op"] != "reply" and msg["op"] != "ready"
                                                           and "ref" not in msg):
            self.broken = True
            raise ProtocolError("the student's process broke the grading protocol (it forked, or wrote to it)")
        return msg

    def _recv(self) -> dict:
        def read(n: int) -> bytes:
            chunks, left = [], n
            while left:
                if self.deadline is not None:
                    remaining = self.deadline - time.monotonic()
                    if remaining <= 0 or not select.select([self.rfile], [], [], remaining)[0]:
                        raise ProtocolError("time limit reached: your code did not finish (an infinite loop, "
                                            "or far too slow)")
                chunk = self.rfile.read(left)
                if not chunk:
                    raise ProtocolError("the student's process stopped answering (it crashed or exited)")
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        header = read(8)
        size = struct.unpack(">Q", header)[0]
        if size > 512 * 1024 ** 2:
            raise ProtocolError("the student's process sent an oversized message")
        try:
            return json.loads(read(size))
        except ValueError:
            raise ProtocolError("the student's process sent a malformed message") from None

    def request(self, op: str, **fields: Any) -> Any:
        """Send a request and serve the other side's nested requests until its reply arrives."""
        self.send({"op": op, **fields})
        while True:
            msg = self.recv()
            if msg.get("op") == "reply":
                for category, text in msg.get("warnings", []):
                    cls = getattr(builtins, category, None)
                    cls = cls if isinstance(cls, type) and issubclass(cls, Warning) else UserWarning
                    warnings.warn(text, cls, stacklevel=3)
                for ref, value in msg.get("writeback", []):
                    _write_back(self.objects.get(ref), self.decode(value))
                if "error" in msg:
                    name, text = msg["error"]
                    if name in ("ModuleNotFoundError", "ImportError") and ("nnlab" in text or "course" in text):
                        text = LIBRARY_MESSAGE
                    if name == "NotImplementedError":
                        raise NotImplementedError(text)
                    raise StudentError(f"{name}: {text}" if text else name)
                return self.decode(msg["value"])
            self.handle(msg)

    def handle(self, msg: dict) -> None:
        """Serve one request from the other side."""
        caught: list = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                target = self.objects[msg["ref"]]
                if msg["op"] == "call":
                    args = [self.decode(a) for a in msg["args"]]
                    kwargs = {k: self.decode(v) for k, v in msg["kwargs"].items()}
                    value = target(*args, **kwargs)
                    writeback = [[i, self.encode(v)] for i, v in _array_args(msg["args"], args)]
                elif msg["op"] == "getattr":
                    value, writeback = getattr(target, msg["name"]), []
                elif msg["op"] == "getitem":
                    value, writeback = target[self.decode(msg["key"])], []
                elif msg["op"] == "len":
                    value, writeback = len(target), []
                else:
                    raise ValueError(f"unknown request {msg['op']!r}")
                reply = {"op": "reply", "value": self.encode(value), "writeback": writeback}
        except ProtocolError:
            raise
        except (Exception, SystemExit) as exc:  # the other side's exception, reported by name
            reply = {"op": "reply", "error": [type(exc).__name__, str(exc)[:2000]]}
        reply["warnings"] = [[w.category.__name__, str(w.message)[:500]] for w in caught]
        self.send(reply)


def _by_value_container(raw: Any) -> bool:
    """An encoded argument that crossed by value and may hold arrays (so its post-call state travels back)."""
    return isinstance(raw, dict) and any(k in raw for k in ("nd", "dict", "list", "tuple"))


def _array_args(raw_args: list, args: list) -> list:
    """Arguments that arrived by value and hold arrays: their state after the call, to copy back."""
    out = []
    for i, (raw, value) in enumerate(zip(raw_args, args)):
        if _by_value_container(raw):
            out.append((-(i + 1), value))
    return out


def _write_back(original: Any, new: Any) -> None:
    """Copy an argument's post-call state into the caller's object (arrays in place)."""
    if isinstance(original, np.ndarray) and isinstance(new, np.ndarray) and original.shape == new.shape:
        if original.flags.writeable:
            np.copyto(original, new, casting="unsafe")
    elif isinstance(original, dict) and isinstance(new, dict):
        for key, value in new.items():
            if key in original:
                _write_back(original[key], value)
    elif isinstance(original, (list, tuple)) and isinstance(new, (list, tuple)) and len(original) == len(new):
        for a, b in zip(original, new):
            _write_back(a, b)


class Proxy:
    """Stands for an object of the other process; calls and attribute reads travel over the pipe."""

    def __init__(self, peer: Peer, ref: int, is_callable: bool, type_name: str, name: str | None = None):
        if name:
            object.__setattr__(self, "__name__", str(name)[:100])
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_id", ref)
        object.__setattr__(self, "_callable", is_callable)
        object.__setattr__(self, "_type", type_name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        peer = self._peer
        raw = [peer.encode(a) for a in args]
        # arguments passed by value that hold arrays are written back after the call
        for i, a in enumerate(args):
            if _by_value_container(raw[i]):
                peer.objects[-(i + 1)] = a
        try:
            return peer.request("call", ref=self._id, args=raw, kwargs={k: peer.encode(v) for k, v in kwargs.items()})
        finally:
            for i in range(len(args)):
                peer.objects.pop(-(i + 1), None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._peer.request("getattr", ref=self._id, name=name)

    def __getitem__(self, key: Any) -> Any:
        return self._peer.request("getitem", ref=self._id, key=self._peer.encode(key))

    def __len__(self) -> int:
        return self._peer.request("len", ref=self._id)

    def __repr__(self) -> str:
        return f"<{self._type} from the student's code>"


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
    names = {k: v for k, v in namespace.items() if not k.startswith("__")}
    peer.send({"op": "ready", "names": {k: peer.encode(v) for k, v in names.items()
                                        if callable(v) or type(v) in PLAIN},
               "problems": problems[:20]})
    while True:
        try:
            msg = peer.recv()
        except ProtocolError:
            return
        peer.handle(msg)


if __name__ == "__main__":
    try:
        serve(sys.argv[1])
    except BaseException:
        traceback.print_exc()
        raise
