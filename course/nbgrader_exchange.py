"""nbgrader's own collecting commands, routed through the course's ingest gate (``course.ingest``).

``nbgrader collect``, ``nbgrader release_feedback`` and the formgrader's *Collect* and *Release feedback*
buttons use the exchange classes named in ``nbgrader_config.py`` (``ExchangeFactory``): these. So whichever
way the instructor collects, links are not followed, ids and owners are checked, and a student's upload can
only become that student's submission. ``nbgrader zip_collect`` is refused with a pointer to ``course grade
--zip``, which unpacks through the gate.
"""

from __future__ import annotations

from pathlib import Path

from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
from nbgrader.plugins import ExtractorPlugin

from course import ingest


class GatedCollect(ExchangeCollect):
    """``nbgrader collect``: each student's newest whole submission, through :func:`course.ingest.collect_exchange`.

    ``ExchangeCollect.check_owner`` (nbgrader's option, on by default) here refuses a folder that another Unix
    user owns, where nbgrader's own only warns.
    """

    def init_src(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")

    def init_dest(self):
        pass

    def copy_files(self):
        try:
            intake = ingest.collect_exchange(Path(self.coursedir.root), self.coursedir.assignment_id,
                                             Path(self.root), self.coursedir.course_id,
                                             check_owner=self.check_owner)
        except (OSError, ValueError) as exc:
            self.fail(str(exc))
        for line in intake.summary().splitlines():
            (self.log.warning if line.startswith(" ") else self.log.info)(line)


class GatedReleaseFeedback(ExchangeReleaseFeedback):
    """``nbgrader release_feedback``: one student without a submission secret no longer stops the class."""

    def init_src(self):
        pass

    def copy_files(self):
        only = [self.coursedir.student_id] if self.coursedir.student_id else None
        intake = ingest.release_feedback(Path(self.coursedir.root), self.coursedir.assignment_id, Path(self.root),
                                         self.coursedir.course_id, students=only)
        self.log.info("Released the feedback of %d student(s)", len(intake.students))
        for who, why in sorted(intake.set_aside.items()):
            self.log.warning("Not released for %s: %s", who, why)


class RefuseZipExtraction(ExtractorPlugin):
    """``nbgrader zip_collect`` would unpack an LMS zip with its mode bits, links and names: not here."""

    def extract(self, archive_path: str, extracted_path: str) -> None:
        raise RuntimeError("nbgrader zip_collect is turned off in this course: it unpacks archives with their "
                           "links, mode bits and paths. Use `course grade ASSIGNMENT --zip FILE`.")
