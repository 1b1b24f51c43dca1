"""nbgrader preprocessors of this course (configured in ``nbgrader_config.py``)."""

from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor

from course.notebooks import hide_hidden_tests, is_grade

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain_error(output: dict) -> str:
    """``ename: evalue`` of an error output, without colour codes."""
    text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip().rstrip(":")
    return ANSI.sub("", text)


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
