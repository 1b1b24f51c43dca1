"""nbgrader configuration of the course (the repository root is the course root).

Layout: source/<assignment>/ -> release/<assignment>/; submitted/<student>/<assignment>/
-> autograded/ -> feedback/; gradebook.db beside this file. Instructor state
(submitted/, autograded/, feedback/, gradebook.db) is git-ignored.
"""

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "nn-training"
c.CourseDirectory.root = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."

# A test cell that takes longer than this is broken or stuck: it scores 0 and grading goes on.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True

# A deleted grade cell is put back (and run), instead of silently scoring nothing.
c.OverwriteCells.add_missing_cells = True

# A correct answer whose library prints a warning to stderr must keep its points:
# drop stderr chunks that are warnings (and tqdm progress bars) before grading.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\b[A-Za-z]*Warning\b|\d+it \[|it/s\]|s/it\]"

# Feedback: never show hidden-test code, in cell sources or in tracebacks.
c.GenerateFeedback.preprocessors = [
    "course.nbgrader_plugins.HideHiddenTests",
    "course.nbgrader_plugins.NeutralizeStudentContent",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Student HTML and JavaScript never run in the formgrader (the instructor's Jupyter session) or the feedback:
# the autograded notebook keeps text and PNG/JPEG outputs only (HTML, JavaScript, SVG, Markdown, widgets
# are shown as text), markdown cells with HTML are shown as text, code-hiding metadata is removed and
# outputs are capped in bytes (NeutralizeStudentContent: max_text_bytes, max_image_bytes, max_total_bytes).
# nbgrader's defaults, with the course's preprocessor added after grading (it never changes a score).
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "course.nbgrader_plugins.NeutralizeStudentContent",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "course.nbgrader_plugins.NeutralizeStudentContent",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# A second layer, nbconvert's own: HTML outputs are sanitized by the feedback and formgrader templates.
c.HTMLExporter.sanitize_html = True
# nbgrader waits 4 s for a cell's output after its reply, then fails the whole notebook: a print of some
# megabytes on a busy machine took longer. Wait longer (the output is then capped, and graded).
c.Execute.iopub_timeout = 30

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# `course grade A --zip FILE` runs nbgrader's zip_collect: each notebook in the zip is named
# <student_id>_<notebook>.ipynb, e.g. jane_doe_00_gradient_checking.ipynb: split from the right (the last
# "_NN_" starts the notebook's name), since student ids may hold "_".
c.FileNameCollectorPlugin.named_regexp = r".*/(?P<student_id>[^/]+)_(?P<file_id>\d\d_[^/]+)$"

# The nbgrader exchange (release, submit, collect, feedback) for a classroom on one machine: a folder in
# the course, git-ignored. Students working in other folders pass --Exchange.root=<this folder>.
import os  # noqa: E402

c.Exchange.root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exchange")

# Every way in passes the course's ingest gate (course/ingest.py): `nbgrader collect` and the formgrader's
# Collect button take each student's newest whole submission without following links, refuse ids outside the
# id rule and folders owned by another Unix user (check_owner); release_feedback skips, instead of stopping at,
# a student without a submission secret; zip_collect is refused (use `course grade A --zip FILE`).
c.ExchangeFactory.collect = "course.nbgrader_exchange.GatedCollect"
c.ExchangeFactory.release_feedback = "course.nbgrader_exchange.GatedReleaseFeedback"
c.ZipCollectApp.extractor_plugin = "course.nbgrader_exchange.RefuseZipExtraction"
