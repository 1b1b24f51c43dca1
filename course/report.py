"""``course report``: what a class got wrong, as one self-contained HTML page per assignment.

``course grade`` saves each assignment's results with every lost point's reason and the named mistake it
shows (:mod:`course.mistakes`) in ``grade_report_<assignment>.json``. This module reads them back and writes
``class_report_<assignment>.html`` (plots embedded as PNG, no script, no network: it opens offline) and, for
every graded assignment together, ``class_report.html`` and ``class_grades.csv`` (student x assignment).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course.spreadsheet import write_csv

from course.mistakes import NOT_DONE, OTHER, classify, is_named
from course.notebooks import exercise_of

DATA = "grade_report_{}.json"
PAGE = "class_report_{}.html"


# --------------------------------------------------------------------------- the data

def save_results(root: Path, assignment: str, results: Sequence, protections: str = "") -> Path:
    """Write ``grade_report_<assignment>.json``: every student's cells, reasons and named mistakes."""
    students = []
    for r in results:
        d = asdict(r)
        for cell in d["cells"]:
            cell["exercise"] = exercise_of(cell["grade_id"])
            cell["mistake"] = classify(cell["exercise"], cell["reason"]) if cell["score"] < cell["max_score"] else ""
        students.append(d)
    path = root / DATA.format(assignment)
    path.write_text(json.dumps({"assignment": assignment, "protections": protections, "students": students},
                               indent=1, sort_keys=True) + "\n")
    return path


@dataclass
class Mistake:
    key: str                       # "<exercise>:<name>"
    students: list[str] = field(default_factory=list)
    example: str = ""              # one reason that showed it (for "other": the message)


@dataclass
class ClassReport:
    assignment: str
    protections: str
    students: list[dict]
    exercises: list[str]           # in notebook order
    max_points: dict[str, float]   # exercise -> points
    mistakes: list[Mistake]        # named mistakes, most common first
    others: list[Mistake]          # failures no named mistake explains, grouped by message
    not_done: dict[str, list[str]]  # exercise -> students who left it undone

    @property
    def graded(self) -> list[dict]:
        return [s for s in self.students if not s["problem"]]

    def points(self, student: dict, exercise: str) -> float:
        return sum(c["score"] for c in student["cells"] if c["exercise"] == exercise)

    def summary(self, top: int = 3) -> str:
        g = self.graded
        lines = [f"{self.assignment}: {len(self.students)} submissions, {len(g)} graded, "
                 f"{len(self.students) - len(g)} not graded"]
        if g:
            total = g[0]["max_score"]
            mean = sum(s["score"] for s in g) / len(g)
            lines.append(f"  mean score {mean:.1f} / {total:g}; full marks: {sum(s['score'] == total for s in g)}")
        if self.mistakes:
            lines.append(f"  most common mistakes:")
            lines += [f"    {len(m.students):3d} x {m.key}" for m in self.mistakes[:top]]
        return "\n".join(lines)


def load(root: Path, assignment: str) -> ClassReport:
    """The class report of ``assignment`` from ``grade_report_<assignment>.json`` (written by ``course grade``)."""
    path = root / DATA.format(assignment)
    if not path.exists():
        raise FileNotFoundError(f"no grades for {assignment} yet ({path.name} is missing): run "
                                f"`course grade {assignment}` first.")
    data = json.loads(path.read_text())
    students = data["students"]
    exercises: list[str] = []
    max_points: dict[str, float] = defaultdict(float)
    for s in students[:1]:
        for c in s["cells"]:
            if c["exercise"] not in exercises:
                exercises.append(c["exercise"])
            max_points[c["exercise"]] += c["max_score"]
    named: dict[str, Mistake] = {}
    others: dict[tuple[str, str], Mistake] = {}
    not_done: dict[str, list[str]] = defaultdict(list)
    for s in students:
        if s["problem"]:
            continue
        sid = s["student_id"]
        per_exercise: dict[str, list[dict]] = defaultdict(list)
        for c in s["cells"]:
            if c["mistake"]:
                per_exercise[c["exercise"]].append(c)
        for exercise, cells in per_exercise.items():
            keys = {c["mistake"] for c in cells}
            if f"{exercise}:{NOT_DONE}" in keys:
                not_done[exercise].append(sid)
                continue
            found = sorted(k for k in keys if is_named(k))
            for key in found:
                m = named.setdefault(key, Mistake(key))
                m.students.append(sid)
                m.example = m.example or next(c["reason"] for c in cells if c["mistake"] == key)
            if not found:
                reason = next((c["reason"] for c in cells if c["grade_id"].startswith("hidden_")), cells[0]["reason"])
                m = others.setdefault((exercise, reason), Mistake(f"{exercise}:{OTHER}", example=reason))
                m.students.append(sid)
    order = {e: i for i, e in enumerate(exercises)}

    def rank(m: Mistake) -> tuple:
        return (-len(m.students), order.get(m.key.split(":")[0], 99), m.key)
    return ClassReport(assignment, data.get("protections", ""), students, exercises, dict(max_points),
                       sorted(named.values(), key=rank), sorted(others.values(), key=rank), dict(not_done))


# --------------------------------------------------------------------------- the page

CSS = """body{font-family:system-ui,sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f4f4f4}td.num{text-align:right}code{background:#f4f4f4;padding:0 .2em}
.small{font-size:.85em;color:#555}img{max-width:100%}"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _plots(report: ClassReport) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = report.graded
    if not g:
        return ""
    fig, (ax, ax_ex) = plt.subplots(1, 2, figsize=(12, 3.6))
    total = g[0]["max_score"]
    bins = [i - 0.5 for i in range(int(total) + 2)] if total <= 60 else 20  # one bar per point
    ax.hist([s["score"] for s in g], bins=bins, color="C0", edgecolor="white")
    ax.set(xlabel=f"score (out of {total:g})", ylabel="students", title="Score distribution (graded submissions)")
    full = [100 * sum(report.points(s, e) == report.max_points[e] for s in g) / len(g) for e in report.exercises]
    ax_ex.barh(range(len(report.exercises)), full, color="C2")
    ax_ex.set_yticks(range(len(report.exercises)), report.exercises, fontsize=8)
    ax_ex.invert_yaxis()
    ax_ex.set(xlabel="% of students with full marks", xlim=(0, 100), title="Per exercise")
    fig.tight_layout()
    return _png(fig)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(report: ClassReport) -> str:
    """The class report as one HTML page (every text from a submission escaped)."""
    g = report.graded
    parts = [f"<h1>What the class got wrong: {_e(report.assignment)}</h1>",
             f'<p class="small">{_e(report.protections)}</p>', f"<pre>{_e(report.summary(top=5))}</pre>",
             _plots(report), "<h2>Exercises</h2>"]
    rows = []
    for e in report.exercises:
        pts = [report.points(s, e) for s in g]
        rows.append([e, f"{sum(pts) / len(pts):.2f} / {report.max_points[e]:g}" if g else "-",
                     f"{100 * sum(p == report.max_points[e] for p in pts) / len(pts):.0f}%" if g else "-",
                     len(report.not_done.get(e, []))])
    parts.append(_table(["exercise", "mean points", "full marks", "not done"], rows, numeric=(1, 2, 3)))
    parts.append("<h2>Named mistakes, most common first</h2>")
    if report.mistakes:
        parts.append(_table(["students", "mistake", "what the feedback said", "who"],
                            [[len(m.students), m.key, m.example, ", ".join(m.students)] for m in report.mistakes],
                            numeric=(0,)))
    else:
        parts.append("<p>None.</p>")
    parts.append("<h2>Other failures (no named mistake)</h2>")
    parts.append(_table(["students", "exercise", "message", "who"],
                        [[len(m.students), m.key.split(":")[0], m.example, ", ".join(m.students)]
                         for m in report.others], numeric=(0,)) if report.others else "<p>None.</p>")
    bad = [s for s in report.students if s["problem"]]
    parts.append("<h2>Not graded</h2>")
    parts.append(_table(["student", "why"], [[s["student_id"], s["problem"]] for s in bad]) if bad else
                 "<p>Every submission was graded.</p>")
    parts.append("<h2>Overridden by the trusted re-run</h2>")
    over = [[s["student_id"], ", ".join(s.get("overridden", []))] for s in report.students if s.get("overridden")]
    parts.append(_table(["student", "test cells that passed in the kernel and failed the trusted re-run"], over)
                 if over else "<p>None.</p>")
    parts.append("<h2>Flagged as copies of the reference</h2>")
    copies = [[s["student_id"], ", ".join(s.get("copies", []))] for s in report.students if s.get("copies")]
    parts.append(_table(["student", "exercises"], copies) if copies else "<p>None.</p>")
    parts.append("<h2>Scores</h2>")
    parts.append(_table(["student", "score", "lost points on"],
                        [[s["student_id"], "not graded" if s["problem"] else f"{s['score']:g} / {s['max_score']:g}",
                          ", ".join(sorted({c['exercise'] for c in s['cells'] if c['score'] < c['max_score']}))]
                         for s in report.students], numeric=(1,)))
    return _page(f"Class report: {report.assignment}", "\n".join(parts))


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            f"style-src 'unsafe-inline'\"><title>{_e(title)}</title><style>{CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def write_report(root: Path, assignment: str) -> tuple[Path, ClassReport]:
    """``class_report_<assignment>.html`` from the saved grades; returns its path and the report."""
    report = load(root, assignment)
    path = root / PAGE.format(assignment)
    path.write_text(render(report))
    return path, report


def write_class_table(root: Path, assignments: Sequence[str]) -> tuple[Path, Path]:
    """Every graded assignment together: ``class_grades.csv`` and ``class_report.html`` (student x assignment)."""
    reports = [load(root, a) for a in assignments]
    students = sorted({s["student_id"] for r in reports for s in r.students})
    score = {(r.assignment, s["student_id"]): (None if s["problem"] else s["score"]) for r in reports
             for s in r.students}
    maxima = {r.assignment: (r.students[0]["max_score"] if r.students else 0.0) for r in reports}
    rows = []
    for sid in students:
        values = [score.get((a, sid)) for a in assignments]
        rows.append([sid, *["" if v is None else f"{v:g}" for v in values], f"{sum(v or 0 for v in values):g}"])
    header = ["student", *assignments, f"total (of {sum(maxima.values()):g})"]
    csv_path = root / "class_grades.csv"
    write_csv(csv_path, header, rows)
    links = "".join(f'<li><a href="{_e(PAGE.format(a))}">{_e(a)}</a> (out of {maxima[a]:g})</li>' for a in assignments)
    body = (f"<h1>Class report: every assignment</h1><ul>{links}</ul>"
            f'<p class="small">Empty: no submission, or not graded (see the assignment\'s page).</p>'
            + _table(header, rows, numeric=tuple(range(1, len(header)))))
    html_path = root / "class_report.html"
    html_path.write_text(_page("Class report", body))
    return html_path, csv_path
