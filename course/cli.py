"""The ``course`` command: one subcommand per job."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from tqdm.auto import tqdm

from course.paths import assignments, course_root


def _cmd_build(args: argparse.Namespace) -> int:
    from course.build import build_release, build_solution, solution_is_current

    root = course_root()
    names = args.assignments or assignments(root)
    unknown = sorted(set(names) - set(assignments(root)))
    if unknown:
        print(f"error: unknown assignment(s) {', '.join(unknown)}; known: {', '.join(assignments(root))}",
              file=sys.stderr)
        return 2
    for name in tqdm(names, desc="build", unit="notebook", disable=len(names) < 2):
        path = build_release(root, name)
        tqdm.write(f"release   {path.relative_to(root)}")
        if args.release_only:
            continue
        if not args.force and solution_is_current(root, name):
            tqdm.write(f"solution  solutions/{name}/  (up to date: its source, library and package versions are "
                       "those it was executed with; --force re-executes it)")
            continue
        path, seconds = build_solution(root, name)
        tqdm.write(f"solution  {path.relative_to(root)}  (executed in {seconds:.1f} s)")
    return 0


def _sandbox_limits(args: argparse.Namespace):
    """``course grade``'s and ``course check-service``'s limits (``--cell-timeout`` … ``--allow-unprotected``), or
    None after saying why not: a limit that is not positive, or a machine without the sandbox's protections."""
    from course.sandbox import Limits, UnprotectedError, describe_protections, require_protections

    if args.cell_timeout < 1 or min(args.notebook_timeout, args.memory_gb, args.disk_mb) <= 0:
        print("error: --cell-timeout, --notebook-timeout, --memory-gb and --disk-mb must be positive",
              file=sys.stderr)
        return None
    try:
        require_protections()
    except UnprotectedError as exc:
        if not args.allow_unprotected:
            print(f"error: {exc}", file=sys.stderr)
            return None
        print(describe_protections(), file=sys.stderr)
    return Limits(cell_seconds=args.cell_timeout, wall_seconds=args.notebook_timeout,
                  memory_bytes=int(args.memory_gb * 1024 ** 3), disk_bytes=int(args.disk_mb * 1024 ** 2),
                  require_protections=not args.allow_unprotected)


def _cmd_grade(args: argparse.Namespace) -> int:
    from course import grade

    if args.workers < 1:
        print("error: --workers must be positive", file=sys.stderr)
        return 2
    limits = _sandbox_limits(args)
    if limits is None:
        return 2
    args.cluster = None
    if args.scheduler or args.dask_credentials:
        from course.dask_security import CredentialsError, DaskCluster, check_scheduler_address, load_credentials
        try:
            if not (args.scheduler and args.dask_credentials):
                raise CredentialsError("--scheduler and --dask-credentials go together: the cluster accepts only "
                                       "clients with its certificate (`course dask-credentials --help`)")
            check_scheduler_address(args.scheduler)
            load_credentials(Path(args.dask_credentials), "client")
        except CredentialsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        args.cluster = DaskCluster(args.scheduler, Path(args.dask_credentials))
    root = course_root()
    if args.all == bool(args.assignment):
        print("error: name one ASSIGNMENT, or --all for every assignment that has submissions", file=sys.stderr)
        return 2
    if args.all and args.zip:
        print("error: --zip holds one assignment; name it instead of --all", file=sys.stderr)
        return 2
    if args.assignment and args.assignment not in assignments(root):
        print(f"error: unknown assignment {args.assignment!r}; known: {', '.join(assignments(root))}", file=sys.stderr)
        return 2
    names = [args.assignment] if args.assignment else assignments(root)
    try:
        roster = _roster(args)
    except (OSError, ValueError) as exc:
        print(f"error: the roster: {exc}", file=sys.stderr)
        return 2
    graded = []
    for name in names:
        try:
            if args.submissions:
                intake = grade.collect_folder(root, name, Path(args.submissions), only_this_assignment=args.all,
                                              roster=roster)
            elif args.zip:
                intake = grade.collect_zip(root, name, Path(args.zip), roster=roster)
            else:
                intake = grade.submitted_students(root, name, roster=roster)
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if intake.set_aside or intake.left_out or intake.students and (args.submissions or args.zip) \
                or (args.submissions or args.zip) and not args.all:  # --all: quiet about assignments nobody handed in
            print(f"{name}: {intake.summary()}")
        students = intake.students
        if not students:
            if not args.all:
                print(f"No submissions for {name} in submitted/ (nothing to grade). Use --submissions DIR or "
                      "--zip FILE to collect some.", file=sys.stderr)
                return 1
            continue
        _grade_one(root, name, students, args, limits)
        graded.append(name)
    if not graded:
        print("No submissions for any assignment (nothing to grade). Use --submissions DIR to collect some.",
              file=sys.stderr)
        return 1
    if args.all:
        print(f"\nGraded {len(graded)} assignment(s): {', '.join(graded)}. Class report: `course report --all`.")
    return 0


def _roster(args: argparse.Namespace) -> set[str] | None:
    from course.ingest import load_roster

    return load_roster(Path(args.roster)) if getattr(args, "roster", None) else None


def _exchange_settings(args: argparse.Namespace, root: Path) -> tuple[Path, str]:
    """The exchange folder and course id: from the options, else from nbgrader_config.py."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    exchange = args.exchange or config.Exchange.get("root") or "/srv/nbgrader/exchange"
    course_id = args.course_id or config.CourseDirectory.get("course_id") or ""
    return Path(exchange), course_id


def _cmd_collect(args: argparse.Namespace) -> int:
    from course import ingest

    root = course_root()
    if args.assignment not in assignments(root):
        print(f"error: unknown assignment {args.assignment!r}; known: {', '.join(assignments(root))}", file=sys.stderr)
        return 2
    try:
        roster = _roster(args)
        exchange, course_id = _exchange_settings(args, root)
        intake = ingest.collect_exchange(root, args.assignment, exchange, course_id,
                                         check_owner=not args.no_check_owner, roster=roster)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.no_check_owner:
        print("Owners not checked (--no-check-owner): each id is what the student typed.", file=sys.stderr)
    print(intake.summary())
    if intake.students:
        print(f"Next: course grade {args.assignment}")
    return 0 if intake.students or not intake.set_aside else 1


def _cmd_release_feedback(args: argparse.Namespace) -> int:
    from course import ingest

    root = course_root()
    if args.assignment not in assignments(root):
        print(f"error: unknown assignment {args.assignment!r}; known: {', '.join(assignments(root))}", file=sys.stderr)
        return 2
    exchange, course_id = _exchange_settings(args, root)
    intake = ingest.release_feedback(root, args.assignment, exchange, course_id, owner_only=args.owner_only)
    print(f"Released the feedback of {len(intake.students)} student(s) to {exchange / course_id / 'feedback'}; "
          "each fetches it with `nbgrader fetch_feedback`.")
    if intake.set_aside:
        print(f"Not released ({len(intake.set_aside)}):")
        for who, why in sorted(intake.set_aside.items()):
            print(f"  {who}: {why}")
    return 0


def _cmd_classroom(args: argparse.Namespace) -> int:
    from course import hub

    return hub.main(args.rest)


def _grade_one(root: Path, assignment: str, students: list[str], args: argparse.Namespace, limits) -> None:
    """Autograde, feedback, CSV, grade report (text and data) for one assignment."""
    from course import grade
    from course.report import save_results
    from course.sandbox import describe_protections

    print(f"Autograding {len(students)} submission(s) of {assignment} with nbgrader ...", flush=True)
    problems = grade.autograde(root, assignment, students, workers=args.workers, scheduler=args.cluster,
                               limits=limits, trusted=not args.no_trusted_rerun)
    csv = grade.feedback_and_export(root, assignment)
    res = grade.results(root, assignment, students, problems)
    report = grade.format_report(assignment, res)
    (root / f"grade_report_{assignment}.txt").write_text(report + "\n")
    save_results(root, assignment, res, describe_protections())
    print(report)
    print(f"\nFeedback (HTML, one per student): feedback/<student>/{assignment}/")
    print(f"Grades CSV: {csv.relative_to(root)}   Report: grade_report_{assignment}.txt   "
          f"What the class got wrong: `course report {assignment}`")


def _cmd_dask_credentials(args: argparse.Namespace) -> int:
    from course.dask_security import CredentialsError, make_credentials

    folder = Path(args.folder)
    try:
        creds = make_credentials(folder, days=args.days)
    except CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(textwrap.dedent(f"""\
        Credentials of a new grading cluster in {folder}/ (folder 0700, files 0600; valid {args.days} days):
          ca.pem (the cluster's own authority; its key was not kept), scheduler.pem, worker.pem, client.pem
          and their -key.pem files. Anyone who can read a key can run code on the cluster: copy the folder
          only to the cluster's machines (scp -rp), readable by the user who runs Dask there.
        Start the scheduler (no dashboard: it is not authenticated):
          dask scheduler --protocol tls --host HOST --port 8786 --no-dashboard {' '.join(creds.tls_options('scheduler'))}
        Start a worker on each grading machine (one process, N jobs at a time, each in a process of its own):
          course dask-worker tls://HOST:8786 --dask-credentials {folder} --nthreads N
        Grade:
          course grade ASSIGNMENT --scheduler tls://HOST:8786 --dask-credentials {folder}"""))
    return 0


def _cmd_dask_worker(args: argparse.Namespace) -> int:
    from course.dask_security import WORKER_ENV, CredentialsError, load_credentials, worker_command

    if args.nthreads < 1:
        print("error: --nthreads must be at least 1", file=sys.stderr)
        return 2
    try:
        command = worker_command(load_credentials(Path(args.dask_credentials), "worker"), args.scheduler,
                                 args.nthreads)
    except CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execve(command[0], command, {**os.environ, **WORKER_ENV})  # becomes the worker: signals reach it directly


def _cmd_report(args: argparse.Namespace) -> int:
    from course.report import write_class_table, write_report

    root = course_root()
    if args.all == bool(args.assignment):
        print("error: name one ASSIGNMENT, or --all for every graded assignment", file=sys.stderr)
        return 2
    if args.assignment and args.assignment not in assignments(root):
        print(f"error: unknown assignment {args.assignment!r}; known: {', '.join(assignments(root))}", file=sys.stderr)
        return 2
    names = [args.assignment] if args.assignment else [a for a in assignments(root)
                                                       if (root / f"grade_report_{a}.json").exists()]
    if not names:
        print("No graded assignment yet: run `course grade ASSIGNMENT` (or `course grade --all`) first.",
              file=sys.stderr)
        return 1
    for name in names:
        try:
            path, report = write_report(root, name)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(report.summary(top=args.top))
        print(f"  report: {path.relative_to(root)}\n")
    if args.all:
        html_path, csv_path = write_class_table(root, names)
        print(f"Every assignment: {html_path.relative_to(root)} and {csv_path.relative_to(root)}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from course import check_client

    if check_client.service_url() and not args.local:  # a class: the instructor's service grades it
        return check_client.print_check(Path(args.notebook), args.assignment)
    from course.notebooks import NotebookError
    from course.selfcheck import format_self_check, guess_assignment, self_check

    root = course_root()
    notebook = Path(args.notebook)
    try:
        assignment = args.assignment or guess_assignment(root, notebook)
        print(f"Running every test of {assignment} on {notebook} (hidden ones included) ...", flush=True)
        result = self_check(root, notebook, assignment)
    except (NotebookError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_self_check(result, assignment))
    return 0 if result.score == result.max_score else 1


def _cmd_check_service(args: argparse.Namespace) -> int:
    from course.check_service import Settings, serve

    if min(args.budget, args.workers) < 1 or args.window <= 0 or args.queue < 0:
        print("error: --budget, --workers and --window must be positive (--queue at least 0)", file=sys.stderr)
        return 2
    limits = _sandbox_limits(args)
    if limits is None:
        return 2
    root = Path(args.course).resolve() if args.course else course_root()
    if not (root / "nbgrader_config.py").is_file() or not (root / "source").is_dir():
        print(f"error: {root} is not a course (no nbgrader_config.py and source/)", file=sys.stderr)
        return 2
    if not args.tokens and not os.environ.get("JUPYTERHUB_API_TOKEN"):
        print("error: who is asking? Give --tokens FILE (lines `token student_id`), or start the service from "
              "JupyterHub (c.JupyterHub.services: course.check_service.hub_service_config)", file=sys.stderr)
        return 2
    settings = Settings(root=root, budget=args.budget, window_hours=args.window, workers=args.workers,
                        queue=args.queue, log=Path(args.log) if args.log else None,
                        tokens=Path(args.tokens) if args.tokens else None, name=args.name, limits=limits)

    def ready(host: str, port: int, prefix: str) -> None:
        print(f"Check service of {root} on http://{host}:{port}{prefix} ({args.workers} graded at a time, "
              f"{args.budget} checks per student and assignment per {args.window:g} h; log "
              f"{settings.log or root / 'check_service' / 'checks.jsonl'})", flush=True)

    try:
        serve(settings, args.port, ready)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from course.bench import run_bench

    if args.submissions < 1 or (args.workers is not None and args.workers < 1):
        print("error: --submissions and --workers must be at least 1", file=sys.stderr)
        return 2
    print(run_bench(course_root(), submissions=args.submissions, workers=args.workers,
                    assignment=args.assignment, skip=tuple(args.skip)))
    return 0


def _cmd_student_edition(args: argparse.Namespace) -> int:
    from course.student_edition import build, contents

    try:
        out = build(course_root(), args.stage, Path(args.out))
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stubs = contents(out)["stubs"]
    print(f"Wrote the student edition for {args.stage} in {out}: {len(stubs)} exercises left to the students "
          f"({', '.join(stubs)}).\nInstall it in the students' environment: "
          f"pip install --no-deps --no-build-isolation {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course",
        description="Training Neural Networks, hands-on: build, grade and check the course's notebooks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent("""\
            examples:
              course build                          # release/ and executed solutions/ for every notebook
              course grade 00_gradient_checking --submissions examples/class_00
              course check release/00_gradient_checking/00_gradient_checking.ipynb
              course report --all                   # what the class got wrong (HTML)
              course bench                          # speed and memory on this machine
            """),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("build", help="generate release/ (nbgrader) and executed solutions/ from source/",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Generate the student notebooks in release/ with nbgrader generate_assignment, "
                                   "and the executed solution notebooks (outputs and plots, no hidden tests) in "
                                   "solutions/. A solution is re-executed only when what it runs changed: its "
                                   "source folder, the nnlab and course packages, or the versions of Python, NumPy, "
                                   "PyTorch and the other packages that print its numbers (a hash in its metadata).",
                       epilog="examples:\n  course build\n  course build 00_gradient_checking --release-only\n"
                              "  course build --force               # re-execute every solution")
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="assignments to build (default: all)")
    p.add_argument("--release-only", action="store_true", help="skip executing the solutions")
    p.add_argument("--force", action="store_true",
                   help="re-execute every solution, even those whose inputs (source, library, package versions) "
                        "have not changed since they were executed")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("grade", help="autograde submissions, write feedback, grades.csv and a report",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Autograde every submission of an assignment with nbgrader, generate feedback "
                                   "HTML (hidden tests removed), export grades.csv and print a grade table with the "
                                   "reason for every lost point. Broken submissions get a reason and 0; the rest "
                                   "of the class is still graded.",
                       epilog=textwrap.dedent("""\
                           examples:
                             course grade 00_gradient_checking                  # what is in submitted/
                             course grade 00_gradient_checking --submissions examples/class_00
                             course grade 00_gradient_checking --zip lms_download.zip
                             course grade 00_gradient_checking --workers 8
                             course grade 00_gradient_checking --scheduler tls://10.0.0.5:8786 --dask-credentials ~/dask
                             course grade --all --submissions examples/class        # every assignment found
                           A folder holds <student>/<assignment>/<notebook>.ipynb (or <student>/<notebook>.ipynb);
                           a zip holds notebooks named <student>_<notebook>.ipynb, or a student's own zip <student>_<notebook>.zip.
                           Every route passes the ingest gate (course/ingest.py): no link followed, no mode bit
                           kept, sizes capped, ids checked; what fails is set aside with the reason.
                           """))
    p.add_argument("assignment", metavar="ASSIGNMENT", nargs="?", help="the assignment (or --all)")
    p.add_argument("--all", action="store_true",
                   help="every assignment that has submissions (in submitted/, or in DIR/<student>/<assignment>/)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--submissions", metavar="DIR", help="collect submissions from this folder first")
    src.add_argument("--zip", metavar="FILE", help="collect submissions from this LMS zip first")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="grade N submissions at a time on this machine (default: one per core)")
    p.add_argument("--cell-timeout", type=int, default=60, metavar="S", help="seconds per cell (default 60)")
    p.add_argument("--notebook-timeout", type=float, default=600, metavar="S",
                   help="seconds the notebook may run, all cells together (default 600); the tests' trusted "
                        "re-run gets as long again, and one submission's grading never exceeds twice this "
                        "plus 160 s")
    p.add_argument("--memory-gb", type=float, default=3.0, metavar="GB",
                   help="memory of a submission: of each of its processes, and of all of them together (default 3)")
    p.add_argument("--disk-mb", type=float, default=512, metavar="MB",
                   help="what a submission may write to disk, all its files together (default 512; they are held "
                        "in memory, on top of --memory-gb)")
    p.add_argument("--no-trusted-rerun", action="store_true",
                   help="trust the student's kernel: skip the second, tamper-proof run of the tests (faster; only "
                        "for submissions you trust)")
    p.add_argument("--allow-unprotected", action="store_true",
                   help="grade even where bubblewrap or root is missing (the students' code can then read the hidden "
                        "tests and change the gradebook; the report says so in capitals). Without it, grading "
                        "refuses to start on such a machine")
    p.add_argument("--roster", metavar="FILE",
                   help="grade only the students on this roster (a CSV with an 'id' column, as `nbgrader db "
                        "student import` reads, or one id per line); anyone else is set aside with the reason")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="grade on a Dask cluster instead, e.g. tls://10.0.0.5:8786, started with the credentials of "
                        "`course dask-credentials` (workers: `course dask-worker`, with the course installed); "
                        "tcp:// is refused: anyone who reaches it can run code as the workers")
    p.add_argument("--dask-credentials", metavar="DIR",
                   help="the folder of `course dask-credentials` (its client.pem, client-key.pem and ca.pem)")
    p.set_defaults(func=_cmd_grade)

    exchange_help = "the exchange folder (default: Exchange.root in nbgrader_config.py)"
    p = sub.add_parser("collect", help="take the submissions from nbgrader's exchange into submitted/, safely",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Collect each student's newest submission of ASSIGNMENT from the exchange's "
                                   "inbound folder into submitted/<student>/<assignment>/, instead of `nbgrader "
                                   "collect`: a folder counts only if the Unix user it names owns it, and is read as "
                                   "that user; links, FIFOs and devices are never followed, mode bits never kept, "
                                   "sizes capped; ids outside the id rule (or the roster) are set aside with the "
                                   "reason. Then run `course grade ASSIGNMENT`.",
                       epilog=textwrap.dedent("""\
                           examples:
                             course collect 00_gradient_checking                       # a JupyterHub class
                             course collect 00_gradient_checking --roster roster.csv
                             course collect 00_gradient_checking --no-check-owner      # everyone one Unix user
                           """))
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--exchange", metavar="DIR", help=exchange_help)
    p.add_argument("--course-id", metavar="ID", help="the course id (default: CourseDirectory.course_id)")
    p.add_argument("--roster", metavar="FILE", help="collect only the students on this roster")
    p.add_argument("--no-check-owner", action="store_true",
                   help="take the id in a folder's name as it is, whoever owns the folder: only where every "
                        "student is the same Unix user (a classroom on one machine)")
    p.set_defaults(func=_cmd_collect)

    p = sub.add_parser("release-feedback", help="hand the feedback back through the exchange",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Copy feedback/<student>/<assignment>/*.html into the exchange under nbgrader's "
                                   "names, where `nbgrader fetch_feedback` finds it, instead of `nbgrader "
                                   "release_feedback` (which stops for the whole class at the first student "
                                   "collected from a folder or a zip): those are listed, and the others released.",
                       epilog="examples:\n  course release-feedback 00_gradient_checking\n"
                              "  course release-feedback 00_gradient_checking --owner-only   # JupyterHub, as root")
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--exchange", metavar="DIR", help=exchange_help)
    p.add_argument("--course-id", metavar="ID", help="the course id (default: CourseDirectory.course_id)")
    p.add_argument("--owner-only", action="store_true",
                   help="each student's feedback file belongs to the Unix user of that name, mode 0600 (a class "
                        "on JupyterHub, run as root): readable by that student only, not just hidden by its name")
    p.set_defaults(func=_cmd_release_feedback)

    p = sub.add_parser("classroom", help="JupyterHub on this machine: real users, the exchange, the formgrader (root)",
                       description="course classroom up|down|status: JupyterHub on 127.0.0.1 with an instructor and "
                                   "demo students as Unix users, each student's server with the student edition only "
                                   "(course/hub.py).",
                       epilog="examples:\n  sudo course classroom up\n  sudo course classroom status\n"
                              "  sudo course classroom down")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="up|down|status [--port N] [--state DIR] [--stage NN]")
    p.set_defaults(func=_cmd_classroom)

    p = sub.add_parser("dask-credentials", help="make the TLS credentials of a Dask grading cluster",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Make a private certificate authority and a certificate and key for the Dask "
                                   "scheduler, the workers and `course grade`, in DIR (created mode 0700, files "
                                   "0600; nothing is overwritten). The authority's key is not kept, so no one can "
                                   "make another certificate for this cluster. Every connection of the cluster is "
                                   "then TLS, and both ends must show one of these certificates: a user without the "
                                   "files can neither connect nor run code on the workers. Prints the commands "
                                   "that start the scheduler and the workers with them.",
                       epilog=textwrap.dedent("""\
                           example:
                             course dask-credentials ~/dask
                             dask scheduler --protocol tls --host 10.0.0.5 --port 8786 --no-dashboard \\
                               --tls-ca-file ~/dask/ca.pem --tls-cert ~/dask/scheduler.pem --tls-key ~/dask/scheduler-key.pem
                             course dask-worker tls://10.0.0.5:8786 --dask-credentials ~/dask --nthreads 4
                             course grade 00_gradient_checking --scheduler tls://10.0.0.5:8786 --dask-credentials ~/dask
                           """))
    p.add_argument("folder", metavar="DIR", help="where to write them (a new or empty folder)")
    p.add_argument("--days", type=int, default=365, metavar="N", help="days the certificates are valid (default 365)")
    p.set_defaults(func=_cmd_dask_credentials)

    p = sub.add_parser("dask-worker", help="start a Dask grading worker on this machine (TLS)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run `dask worker` for `course grade --scheduler`: TLS with the worker's "
                                   "certificate of `course dask-credentials`, no dashboard, one worker process whose "
                                   "N threads each grade one submission at a time, every submission in a process of "
                                   "its own with the same sandbox, deadlines and memory cap as local grading.",
                       epilog="example:\n  course dask-worker tls://10.0.0.5:8786 --dask-credentials ~/dask "
                              "--nthreads 4")
    p.add_argument("scheduler", metavar="ADDRESS", help="the scheduler, tls://HOST:PORT")
    p.add_argument("--dask-credentials", metavar="DIR", required=True,
                   help="the folder of `course dask-credentials` (its worker.pem, worker-key.pem and ca.pem)")
    p.add_argument("--nthreads", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="submissions graded at a time (default: one per core)")
    p.set_defaults(func=_cmd_dask_worker)

    p = sub.add_parser("report", help="what the class got wrong: scores, exercises, most common mistakes (HTML)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="From the grades saved by `course grade`, write class_report_<assignment>.html "
                                   "(self-contained, opens offline): the score distribution, per exercise the mean "
                                   "points and the share of full marks, the named mistakes counted across the class "
                                   "(most common first, with the students who made each), the failures no named "
                                   "mistake explains, the submissions not graded and why, the test cells the "
                                   "trusted re-run overrode and the copies flagged. Prints a summary. With --all, "
                                   "also class_report.html and class_grades.csv: student x assignment with totals.",
                       epilog="examples:\n  course report 00_gradient_checking\n  course report --all")
    p.add_argument("assignment", metavar="ASSIGNMENT", nargs="?", help="the assignment (or --all)")
    p.add_argument("--all", action="store_true", help="every graded assignment, and the student x assignment table")
    p.add_argument("--top", type=int, default=3, metavar="N", help="mistakes in the printed summary (default 3)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("check", help="run every test, hidden ones included, on your notebook",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Grade your own notebook exactly as the instructor's autograder would and print "
                                   "the points per exercise with the reason for each failure. The hidden tests' "
                                   "code is never shown. Exit code 0 means full marks. In a class (COURSE_CHECK_URL "
                                   "set, with COURSE_CHECK_TOKEN or the hub's JUPYTERHUB_API_TOKEN) the saved notebook "
                                   "goes to the instructor's check service instead, which says how many checks are "
                                   "left.",
                       epilog="example:\n  course check release/00_gradient_checking/00_gradient_checking.ipynb")
    p.add_argument("notebook", metavar="NOTEBOOK")
    p.add_argument("--assignment", help="the assignment (default: from the notebook's name)")
    p.add_argument("--local", action="store_true",
                   help="grade here even when COURSE_CHECK_URL names a check service (needs the full course)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("check-service", help="serve `%%check` to a class: grade students' notebooks, with a budget",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Grade the notebooks students send with `%%check` or `course check` (when their "
                                   "COURSE_CHECK_URL names this service) exactly as `course grade` does (sandbox, "
                                   "hidden tests, trusted re-run, the same limits), and reply the points per "
                                   "exercise with each failure's reason, never test code. The student is who "
                                   "their token says (the hub's, or --tokens FILE), never a name they type. "
                                   "Each may make --budget checks of an assignment in any --window hours (stated "
                                   "in every reply; persisted in the log, so a restart does not reset it); a check "
                                   "that fails on the service's side is not counted. Every check is logged.",
                       epilog=textwrap.dedent("""\
                           examples:
                             course check-service --course . --tokens tokens.txt --port 8765 --budget 10 --window 24
                             # students: COURSE_CHECK_URL=http://HOST:8765/ COURSE_CHECK_TOKEN=... course check NB
                             # JupyterHub: c.JupyterHub.services from course.check_service.hub_service_config
                           """))
    p.add_argument("--course", metavar="ROOT", help="the course root (default: the one this command runs in)")
    p.add_argument("--port", type=int, default=None, metavar="P",
                   help="port on 127.0.0.1 (default: the hub's JUPYTERHUB_SERVICE_URL, else 8765)")
    p.add_argument("--budget", type=int, default=10, metavar="N", help="checks per student and assignment (10)")
    p.add_argument("--window", type=float, default=24.0, metavar="HOURS", help="the budget's window (24 h)")
    p.add_argument("--tokens", metavar="FILE", help="outside a hub: lines `token student_id` (mode 600)")
    p.add_argument("--log", metavar="FILE",
                   help="the JSON-lines log of every check, and the budget's memory (default "
                        "ROOT/check_service/checks.jsonl)")
    p.add_argument("--workers", type=int, default=2, metavar="K", help="checks graded at a time (2)")
    p.add_argument("--queue", type=int, default=20, metavar="Q",
                   help="checks that may wait for a grader; more are refused with 503, not counted (20)")
    p.add_argument("--name", default="check", help="the service's name in the hub (default check)")
    p.add_argument("--cell-timeout", type=int, default=60, metavar="S", help="seconds per cell (default 60)")
    p.add_argument("--notebook-timeout", type=float, default=600, metavar="S",
                   help="seconds the notebook may run (default 600), as `course grade`")
    p.add_argument("--memory-gb", type=float, default=3.0, metavar="GB", help="memory of a check (default 3)")
    p.add_argument("--disk-mb", type=float, default=512, metavar="MB", help="disk a check may write (default 512)")
    p.add_argument("--allow-unprotected", action="store_true",
                   help="serve even where bubblewrap or root is missing (students' code could then read the "
                        "hidden tests)")
    p.set_defaults(func=_cmd_check_service)

    p = sub.add_parser("student-edition", help="the library for students at a notebook: no answers still to come",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Write an installable package (pure Python, its own pyproject.toml) for students "
                                   "at notebook STAGE: nnlab with every helper, network, trainer, data set, plot and "
                                   "experiment, the references of the notebooks before STAGE, and for STAGE's "
                                   "exercises and the later ones no reference (each name calls the student's own "
                                   "function or says where to write it); and the course helpers a student's kernel "
                                   "imports (%check, the visible tests' helpers), without the hidden tests, the "
                                   "mistake catalogs or source/. Grading always uses the full library.",
                       epilog="examples:\n  course student-edition 05 /srv/class/nnlab-05\n"
                              "  course student-edition 00_gradient_checking build/edition-00\n"
                              "  pip install --no-deps --no-build-isolation /srv/class/nnlab-05")
    p.add_argument("stage", metavar="STAGE", help="a notebook number (05) or assignment (05_normalization)")
    p.add_argument("out", metavar="OUT", help="a new (or empty) folder for the package")
    p.set_defaults(func=_cmd_student_edition)

    p = sub.add_parser("bench", help="measure notebook run times, grading speed and training-step speed",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Measure, on this machine: each solution notebook's headless execution time "
                                   "and peak memory; sequential nbgrader autograde vs the parallel grader on N "
                                   "synthetic correct submissions; one training step of the library's network vs "
                                   "PyTorch in float64 and float32. Prints a report; takes a few minutes.",
                       epilog="examples:\n  course bench\n  course bench --submissions 16 --skip training")
    p.add_argument("--submissions", type=int, default=8, metavar="N", help="synthetic submissions to grade (default 8)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="parallel workers (default: one per core)")
    p.add_argument("--assignment", default=None, help="assignment to grade (default: the first)")
    p.add_argument("--skip", action="append", default=[], choices=["notebooks", "grading", "training"],
                   help="leave out a part (repeatable)")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
