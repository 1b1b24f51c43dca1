"""Two executions of a notebook compared as a reader would: same words, numbers within their printed precision,
plots that look the same.

Another processor's BLAS rounds the last bits of a matrix product differently; a solution executed there prints
``0.1234`` where ours printed ``0.1235``, and its plots differ by a few antialiased pixels. :func:`differences`
accepts exactly that: a decimal number may differ by one unit in its last printed place, an integer not at all,
a word not at all; a PNG may differ by :data:`IMAGE_TOLERANCE` (RMS over its pixels, in 0-255 levels, as
``matplotlib.testing.compare.compare_images`` measures). Anything more is a different result, named cell by cell.
"""

from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path

import nbformat

NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")
IMAGE_TOLERANCE = 3.0  # RMS difference, 0-255 levels


def _numbers_and_words(text: str) -> tuple[list[str], list[str]]:
    numbers = NUMBER.findall(text)
    words = NUMBER.sub("#", text).split()
    return numbers, words


def _unit(number: str) -> float:
    """One unit in the last printed place of a decimal number (0 for an integer: it must match exactly)."""
    mantissa, _, exponent = number.lower().partition("e")
    if "." not in mantissa:
        return 0.0 if not exponent else 10.0 ** int(exponent)
    decimals = len(mantissa.split(".")[1])
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def numbers_match(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    return abs(x - y) <= max(_unit(a), _unit(b)) * (1 + 1e-9) or x == y


def text_difference(a: str, b: str) -> str:
    """Why two printed texts differ for a reader, or ``""``."""
    (na, wa), (nb, wb) = _numbers_and_words(a), _numbers_and_words(b)
    if wa != wb:
        first = next((i for i, (x, y) in enumerate(zip(wa, wb)) if x != y), min(len(wa), len(wb)))
        return f"words differ: {' '.join(wa[first:first + 6])!r} != {' '.join(wb[first:first + 6])!r}"
    for x, y in zip(na, nb):
        if not numbers_match(x, y):
            return f"{x} != {y} (more than one unit in the last printed place)"
    return ""


def image_difference(a: str, b: str, tolerance: float = IMAGE_TOLERANCE) -> str:
    """Why two base64 PNGs look different, or ``""``."""
    from matplotlib.testing.compare import compare_images

    if a == b:
        return ""
    with tempfile.TemporaryDirectory() as folder:
        pa, pb = Path(folder) / "a.png", Path(folder) / "b.png"
        pa.write_bytes(base64.b64decode(a))
        pb.write_bytes(base64.b64decode(b))
        try:
            result = compare_images(str(pa), str(pb), tol=tolerance, in_decorator=True)
        except Exception as exc:  # sizes differ, or not an image
            return f"the images cannot be compared ({type(exc).__name__}: {str(exc)[:200]})"
    return "" if result is None else f"the plots differ (RMS {result['rms']:.2f} > {tolerance})"


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def output_difference(x: dict, y: dict) -> str:
    if x.get("output_type") != y.get("output_type"):
        return f"{x.get('output_type')} != {y.get('output_type')}"
    if x.get("output_type") == "stream":
        if x.get("name") != y.get("name"):
            return "stdout and stderr swapped"
        return text_difference(_text(x.get("text", "")), _text(y.get("text", "")))
    if x.get("output_type") == "error":
        return f"an error: {x.get('ename')}: {_text(x.get('evalue'))[:200]}"
    dx, dy = x.get("data", {}), y.get("data", {})
    if sorted(dx) != sorted(dy):
        return f"kinds of output {sorted(dx)} != {sorted(dy)}"
    for kind in dx:
        if kind == "image/png":
            why = image_difference(_text(dx[kind]).replace("\n", ""), _text(dy[kind]).replace("\n", ""))
        elif kind.startswith("text/"):
            why = text_difference(_text(dx[kind]), _text(dy[kind]))
        else:
            why = "" if dx[kind] == dy[kind] else f"{kind} differs"
        if why:
            return why
    return ""


def differences(fresh: nbformat.NotebookNode, committed: nbformat.NotebookNode) -> list[str]:
    """Every cell whose source or outputs differ for a reader, as ``cell N ('...'): why``."""
    out = []
    if len(fresh.cells) != len(committed.cells):
        return [f"{len(fresh.cells)} cells != {len(committed.cells)}"]
    for i, (a, b) in enumerate(zip(fresh.cells, committed.cells)):
        label = f"cell {i} ({a.source[:50]!r})"
        if a.cell_type != b.cell_type or a.source != b.source:
            out.append(f"{label}: its source differs")
            continue
        outs_a, outs_b = a.get("outputs", []), b.get("outputs", [])
        if len(outs_a) != len(outs_b):
            out.append(f"{label}: {len(outs_a)} outputs != {len(outs_b)}")
            continue
        for x, y in zip(outs_a, outs_b):
            why = output_difference(x, y)
            if why:
                out.append(f"{label}: {why}")
                break
    return out
