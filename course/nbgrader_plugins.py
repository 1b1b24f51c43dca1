"""nbgrader preprocessors of this course (configured in ``nbgrader_config.py``).

A submitted notebook is shown to the instructor in nbgrader's formgrader (inside their authenticated
Jupyter session) and to the student as feedback HTML. Both render the autograded notebook with
nbconvert, whose templates pass HTML through: :class:`NeutralizeStudentContent` makes what a student
wrote or displayed inert (shown as text), keeps plain text and raster images, and caps the bytes kept.
"""

from __future__ import annotations

import base64
import binascii
import re

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

from course.notebooks import hide_hidden_tests, is_grade

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Terminal control: CSI and OSC sequences, other escapes, C0/C1 controls (newlines and tabs become
# spaces first), and the Unicode controls that reorder or hide text (bidi overrides, zero-width).
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]?|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def printable(text: str, oneline: bool = True) -> str:
    """``text`` safe to print on a terminal or write into a report: no escape sequence, no control character.

    With ``oneline``, newlines and tabs become spaces (a reason is one line); otherwise they are kept.
    Every other control character is dropped (a carriage return too: it would overwrite the line).
    """
    text = _ESCAPES.sub("", str(text)).replace("\r\n", "\n")
    if oneline:
        text = text.replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub("", text)


def plain_error(output: dict) -> str:
    """``ename: evalue`` of an error output, without colour codes or other control characters."""
    text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip().rstrip(":")
    return printable(text, oneline=False)


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: remove hidden-test code from grade cells and from their tracebacks.

    A failing grade cell keeps its error's name and message (written for the student),
    but not the traceback, whose frames quote the hidden test's code.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and is_grade(cell):
            cell.source = hide_hidden_tests(cell.source)
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [plain_error(output)]
        return cell, resources


# Output types a browser cannot run: kept. Everything else (HTML, JavaScript, SVG, Markdown, LaTeX,
# widgets, PDF, Mermaid, unknown types) is replaced by its text, shown as plain text.
SAFE_DATA = ("text/plain", "image/png", "image/jpeg")
IMAGES = ("image/png", "image/jpeg")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_PLACEHOLDER_REPR = re.compile(r"^<IPython\.(core\.)?display\.\w+ object>$|^<\w+(\.\w+)* object at 0x[0-9a-f]+>$")
_HIDING_TAG = re.compile(r"^(hide|remove)[-_ ]?(input|source|code|cell|output|outputs)$", re.I)
_SAFE_URL = re.compile(r"^(https?:|mailto:|#|/(?!/)|[^:/?#]+(?:[/?#]|$)|data:image/(png|jpeg);base64,[A-Za-z0-9+/=]*$)",
                       re.I)
NOTE_ACTIVE = "[The grader shows this {kind} output as text: it could run code in the reader's browser.]"
NOTE_MARKDOWN = ("**The grader shows this markdown cell as text: it held HTML, script or an unsafe link, "
                 "which never run here.**")


def _truncate(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to at most ``limit`` UTF-8 bytes, and the number of bytes cut."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text, 0
    return raw[:limit].decode("utf-8", "ignore"), len(raw) - limit


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} bytes"


def _as_text(value) -> str:
    return "".join(value) if isinstance(value, list) else value if isinstance(value, str) else repr(value)


def active_markdown(source: str, attachments: dict | None = None) -> list[str]:
    """What in a markdown cell a browser would run or load from elsewhere, as nbconvert renders it.

    Raw HTML (block or inline), Mermaid diagrams, links and images whose URL is not http(s), mailto,
    an anchor or a relative path, and attachments that are not there. Empty for plain markdown.
    """
    from nbconvert.filters.markdown_mistune import InvalidNotebook, IPythonRenderer, MarkdownWithMath

    found: list[str] = []

    class Finder(IPythonRenderer):
        def block_html(self, html):
            found.append("HTML")
            return ""

        def inline_html(self, html):
            found.append("HTML")
            return ""

        def block_mermaidjs(self, code):
            found.append("a Mermaid diagram")
            return ""

        def sanitize_url(self, url):
            if not url.startswith("attachment:") and not _SAFE_URL.match(url.strip()):
                found.append(f"the link {url[:40]!r}")
            return super().sanitize_url(url)

    try:
        MarkdownWithMath(renderer=Finder(escape=False, attachments=attachments or {})).render(source)
    except InvalidNotebook:
        found.append("a missing attachment")
    return found


def markdown_as_text(source: str) -> str:
    """A markdown source that renders ``source`` verbatim, as a code block, under a note."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", source)), default=0))
    return f"{NOTE_MARKDOWN}\n\n{fence}text\n{source}\n{fence}\n"


def valid_image(data) -> bool:
    if not isinstance(data, str) or not _BASE64.match(data):
        return False
    try:
        base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


class NeutralizeStudentContent(NbGraderPreprocessor):
    """Make a student's notebook safe to render in the formgrader and the feedback, and small.

    - Outputs: text/plain, PNG and JPEG (valid base64) are kept; HTML, JavaScript, SVG, Markdown,
      LaTeX, widgets and every other type are replaced by their source shown as plain text. Output
      metadata is reduced to numeric image sizes. Notebook-level widget state is dropped.
    - Markdown cells holding raw HTML, Mermaid, unsafe links or missing attachments are shown as text;
      attachments other than valid PNG/JPEG are dropped. Raw cells are not rendered.
    - Metadata and tags that hide a cell's code or outputs (``transient``, ``jupyter.source_hidden``,
      ``hide_input``, ``remove-input``...) are removed: what ran is what the reader sees.
    - Bytes: text outputs of a cell are capped at ``max_text_bytes``, an image at ``max_image_bytes``,
      all outputs of the notebook at ``max_total_bytes``; error outputs and stderr are cut, never
      dropped (a cell's grade depends on them).

    Runs in the autograde pipeline (so the formgrader reads a safe notebook) and again for feedback.
    """

    max_text_bytes = Integer(100_000, help="bytes of text output kept per cell").tag(config=True)
    max_image_bytes = Integer(2_000_000, help="bytes of one image output kept").tag(config=True)
    max_total_bytes = Integer(10_000_000, help="bytes of output kept per notebook").tag(config=True)

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)
        self._total = 0
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        _reveal(cell)
        if cell.cell_type == "markdown":
            self._markdown(cell)
        elif cell.cell_type == "raw":
            cell.pop("attachments", None)
            cell.metadata.pop("format", None)
            cell.metadata["raw_mimetype"] = "text/x-course-not-rendered"
        elif cell.cell_type == "code":
            cell.outputs = self._outputs(cell.get("outputs", []))
        return cell, resources

    def _markdown(self, cell) -> None:
        kept = {name: {m: d for m, d in bundle.items() if m in IMAGES and valid_image(d)}
                for name, bundle in (cell.get("attachments") or {}).items()}
        kept = {name: bundle for name, bundle in kept.items() if bundle}
        if "attachments" in cell:
            cell.attachments = kept
            if not kept:
                del cell["attachments"]
        if active_markdown(cell.source, kept):
            cell.source = markdown_as_text(cell.source)
            cell.pop("attachments", None)

    def _outputs(self, outputs: list) -> list:
        outputs = _coalesce_streams(outputs)
        kept, text_used, dropped = [], 0, 0
        for out in outputs:
            kind = out.get("output_type")
            if kind == "stream":
                room = min(self.max_text_bytes - text_used, self.max_total_bytes - self._total)
                if room <= 0 and out.get("name") != "stderr":
                    dropped += len(_as_text(out.get("text", "")).encode("utf-8", "surrogatepass"))
                    continue
                text, cut = _truncate(_as_text(out.get("text", "")), max(room, 1000))
                out.text = text + (f"\n... [{_size(cut)} more output cut by the grader]\n" if cut else "")
                text_used += len(text.encode("utf-8", "surrogatepass"))
            elif kind == "error":
                out.ename, _ = _truncate(_as_text(out.get("ename", "")), 1000)
                evalue, cut = _truncate(_as_text(out.get("evalue", "")), 10_000)
                out.evalue = evalue + (" [... cut by the grader]" if cut else "")
                out.traceback = _cap_lines([_as_text(t) for t in out.get("traceback", [])], 50_000)
            elif kind in ("display_data", "execute_result"):
                out = self._rich(out)
                size = sum(len(_as_text(v)) for v in out.data.values())
                if self._total + size > self.max_total_bytes:
                    dropped += size
                    continue
            else:
                continue
            self._total += sum(len(_as_text(v)) for v in (out.get("data") or {}).values()) + len(
                _as_text(out.get("text", "")))
            kept.append(out)
        if dropped:
            from nbformat.v4 import new_output

            kept.append(new_output("stream", name="stdout",
                                   text=f"... [{_size(dropped)} more output cut by the grader]\n"))
        return kept

    def _rich(self, out):
        data = dict(out.get("data") or {})
        shown = {}
        removed = []  # what the reader is told instead, one line or block per type taken out
        for mime, value in data.items():
            if mime in IMAGES:
                if isinstance(value, str) and len(value) > self.max_image_bytes:
                    removed.append(f"{mime}: [an image of {_size(len(value))}, over the grader's limit]")
                elif not valid_image(value):
                    removed.append(f"{mime}: [not a valid image]")
                else:
                    shown[mime] = value
            elif mime == "text/plain":
                shown[mime] = _truncate(_as_text(value), self.max_text_bytes)[0]
            else:
                text, cut = _truncate(_as_text(value) if not isinstance(value, dict) else repr(value), 5000)
                removed.append(NOTE_ACTIVE.format(kind=mime) + "\n" + text + (" ..." if cut else ""))
        if removed:
            plain = shown.get("text/plain", "")
            if not plain or _PLACEHOLDER_REPR.match(plain.strip()):
                shown["text/plain"] = "\n".join(removed)
        if not shown:
            shown["text/plain"] = ""
        out.data = shown
        meta = out.get("metadata") or {}
        out.metadata = {mime: {k: v for k, v in meta[mime].items()
                               if k in ("width", "height") and isinstance(v, int) and not isinstance(v, bool)}
                        for mime in IMAGES if mime in shown and isinstance(meta.get(mime), dict)}
        return out


def _reveal(cell) -> None:
    """Remove what hides a cell's code or outputs from a reader (nbconvert, JupyterLab, Jupyter Book)."""
    meta = cell.metadata
    for key in ("transient", "hide_input", "hide_output", "collapsed", "scrolled", "remove_cell", "remove_input"):
        meta.pop(key, None)
    jupyter = meta.get("jupyter")
    if isinstance(jupyter, dict):
        jupyter.pop("source_hidden", None)
        jupyter.pop("outputs_hidden", None)
        if not jupyter:
            meta.pop("jupyter")
    elif jupyter is not None:
        meta.pop("jupyter")
    tags = meta.get("tags")
    if isinstance(tags, list):
        meta["tags"] = [t for t in tags if isinstance(t, str) and not _HIDING_TAG.match(t)]
        if not meta["tags"]:
            meta.pop("tags")
    elif tags is not None:
        meta.pop("tags")


def _coalesce_streams(outputs: list) -> list:
    """Join consecutive stream outputs of one name (a print loop makes thousands)."""
    merged: list = []
    parts: list[str] = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            parts.append(_as_text(out.get("text", "")))
            continue
        if parts:
            merged[-1].text = _as_text(merged[-1].get("text", "")) + "".join(parts)
            parts = []
        merged.append(out)
    if parts:
        merged[-1].text = _as_text(merged[-1].get("text", "")) + "".join(parts)
    return merged


def _cap_lines(lines: list[str], limit: int) -> list[str]:
    out, used = [], 0
    for line in lines:
        text, cut = _truncate(line, max(limit - used, 0))
        if cut:
            out.append(text + "\n... [traceback cut by the grader]")
            break
        out.append(text)
        used += len(text.encode("utf-8", "surrogatepass"))
    return out
