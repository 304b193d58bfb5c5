"""The `autograder` command: a thin layer over plain functions. User mistakes print one sentence and exit 1."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import KitError


def _course(root):
    from .config import load_course

    return load_course(Path(root) if root else None)


course_option = click.option(
    "--course",
    "course_root",
    type=click.Path(file_okay=False),
    default=None,
    help="The course directory (default: the current directory or its nearest parent holding course.yaml).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="autoencoder-course-kit")
def cli():
    """Release, grade and report the autoencoder course's assignments."""


@cli.command()
@click.argument("assignments", nargs=-1)
@click.option("--check", "check_only", is_flag=True, help="Only report whether release/ and solutions/ are in sync.")
@course_option
def generate(assignments, check_only, course_root):
    """Generate release/ and solutions/ from source/ with nbgrader."""
    from .generate import generate as run
    from .generate import out_of_sync

    course = _course(course_root)
    names = list(assignments) or list(course.assignments)
    if check_only:
        differ = out_of_sync(course, names)
        if differ:
            raise KitError("out of sync with source/: " + ", ".join(differ) + ". Run `autograder generate`.")
        click.echo("release/ and solutions/ match source/.")
        return
    for path in run(course, names):
        click.echo(f"wrote {path.relative_to(course.root)}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--assignment", "-a", help="The assignment (default: from the submitted/ layout or the file name).")
@click.option("--out", type=click.Path(file_okay=False), help="Where results go (default: the course's autograded/).")
@click.option("--workers", type=int, default=1, show_default=True, help="Submissions graded at once.")
@click.option("--force", is_flag=True, help="Grade again the submissions whose results are up to date.")
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Grade on this Dask scheduler's workers (e.g. tcp://host:8786) instead of here; --workers is then ignored.",
)
@click.option(
    "--certs",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="The course's TLS certificates (`autograder cluster-certs DIR`), for a --scheduler tls://HOST:PORT.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow a --scheduler off this machine without TLS (anyone who can reach its port can run code on it).",
)
@click.option(
    "--profile",
    type=click.Choice(["cpu", "gpu"]),
    default=None,
    help="The training profile and its thresholds (default: $AUTOGRADER_PROFILE, else gpu when a GPU is "
    "visible here or on the Dask cluster, else cpu).",
)
@click.option("--progress/--no-progress", default=None, help="The progress bar (default: on a terminal).")
@course_option
def grade(paths, assignment, out, workers, force, scheduler, certs, insecure, profile, progress, course_root):
    """Grade notebooks, or nbgrader submitted/ trees. Skips submissions graded already with the same notebook, kit
    and course files. Exits 0 when grading completed, whatever the scores (130 when interrupted)."""
    from .batch import grade_paths

    course = _course(course_root)
    _say_missing_fences()
    summary = grade_paths(
        course,
        [Path(p) for p in paths],
        assignment=assignment,
        out=Path(out) if out else None,
        workers=workers,
        force=force,
        scheduler=scheduler,
        certs=Path(certs) if certs else None,
        insecure=insecure,
        profile=profile,
        log=click.echo,
        progress=progress,
    )
    click.echo(str(summary))
    if summary.interrupted:
        sys.exit(130)


def _say_missing_fences() -> None:
    """At start-up, when the sandbox lacks a fence here: which ones are active, what is missing, what to do."""
    from .sandbox import describe_fences, fences

    if not all(fences().values()):
        click.echo(f"warning: {describe_fences()}", err=True)


@cli.command()
@click.argument("source", type=click.Path(exists=True))
@click.option("--assignment", "-a", required=True, help="The assignment these submissions are for.")
@click.option("--force", is_flag=True, help="Replace a collected submission even by an older one.")
@course_option
def collect(source, assignment, force, course_root):
    """Put an LMS download (a zip or a folder: Canvas names, or <student>.ipynb) into submitted/<student>/<a>/."""
    from .collect import collect as run

    course = _course(course_root)
    course.assignment(assignment)
    report = run(Path(source), course.root, assignment, force=force)
    click.echo(str(report))


@cli.command()
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
def check(notebook):
    """Student self-check: run the notebook's public checks in a limited worker and print a summary."""
    from .selfcheck import self_check

    ok = self_check(Path(notebook), log=click.echo)
    sys.exit(0 if ok else 2)


@cli.command()
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.option("--assignment", "-a", help="The assignment (default: the notebook's file name).")
@click.option(
    "--profile", help="Train with this profile's recipe (default: the one course.yaml names for submitted weights)."
)
@click.option("--seed", type=int, help="The training's seed (default: one drawn for this run).")
def train(notebook, assignment, profile, seed):
    """Train the notebook's model with the recipe of submitted weights; write <assignment>.weights.h5 beside it."""
    from .config import load_course
    from .train import train_notebook

    try:
        course = load_course()
    except KitError:
        course = None  # a student's machine: the recipe the release notebook records
    done = train_notebook(
        Path(notebook), course=course, assignment=assignment, profile=profile, seed=seed, log=click.echo
    )
    loss = f", final loss {done.loss:.4f}" if done.loss is not None else ""
    click.echo(
        f"wrote {done.path} (sha256 {done.sha256}): trained with the '{done.profile}' recipe, seed {done.seed}, in "
        f"{done.seconds:.0f} s ({done.images:,} images{loss}). Submit it with the notebook."
    )


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--assignment", "-a", "assignments", multiple=True, help="Only these assignments.")
@course_option
def report(directory, assignments, course_root):
    """Class CSV, Canvas CSV, class summary HTML with plots, feedback pages and the nbgrader gradebook."""
    from .reports import write_reports

    course = _course(course_root)
    due = {name: a.due for name, a in course.assignments.items()}
    written = write_reports(
        course.root, assignments=list(assignments) or None, out_dir=Path(directory) if directory else None, due=due
    )
    for path in written:
        click.echo(f"wrote {path}")


@cli.command()
@click.argument("assignment")
@click.option(
    "--out", type=click.Path(file_okay=False), default="dist/gradescope", show_default=True, help="Where the zip goes."
)
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False),
    help="The kit's wheel to put in the zip (default: built from this checkout).",
)
@course_option
def gradescope(assignment, out, wheel, course_root):
    """Write autograder-ASSIGNMENT.zip for Gradescope's "Zip file upload" (docs/gradescope.md says how to set it up)."""
    from .gradescope import build_zip

    course = _course(course_root)
    path = build_zip(course, assignment, Path(out), wheel=Path(wheel) if wheel else None)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@cli.command()
@click.argument("assignment")
@click.option("--profile", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--seeds", type=int, default=3, show_default=True, help="Reference trainings to measure the spread.")
@course_option
def calibrate(assignment, profile, seeds, course_root):
    """Train the reference solution, write reference weights, thresholds.json and a manifest."""
    from .calibrate import calibrate as run
    from .files import profile_thresholds
    from .runtime import choose_backend

    course = _course(course_root)
    path = run(course, assignment, profile=profile, seeds=seeds, log=click.echo)
    backend = choose_backend(course.backend)  # the one calibrated on: $AUTOGRADER_BACKEND, else course.yaml's
    data = profile_thresholds(course.paths, assignment, profile, backend=backend)["metrics"]
    for metric, rule in data.items():
        click.echo(
            f"{metric}: threshold {rule['threshold']:.4f}, failure level {rule['fail']:.4f} "
            f"(reference {', '.join(f'{v:.4f}' for v in rule['reference'])})"
        )
    click.echo(f"wrote {path}")


@cli.command("cluster-certs")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--days", type=int, default=365, show_default=True, help="How long the certificates are valid.")
def cluster_certs(directory, days):
    """Make the course's Dask cluster certificates in DIRECTORY: ca.pem, node.pem, node-key.pem (for the scheduler,
    the workers and `autograder grade --certs DIRECTORY`; docs/class-grading.md)."""
    from .batch.certs import write_certs

    for path in write_certs(Path(directory), days=days):
        click.echo(f"wrote {path}")
    click.echo(
        "copy the folder to the scheduler's, each worker's and the grader's machine (node-key.pem is the key to the "
        "cluster: keep it private), then start them with --tls-ca-file ca.pem --tls-cert node.pem --tls-key "
        "node-key.pem."
    )


@cli.command()
@click.argument("student")
@click.option("--assignment", "-a", required=True, help="The assignment to regrade.")
@click.option("--reason", default="", help="Why (a student's request, a fixed check): recorded in regrades.csv.")
@click.option("--profile", type=click.Choice(["cpu", "gpu"]), default=None, help="As for `autograder grade`.")
@course_option
def regrade(student, assignment, reason, profile, course_root):
    """Grade STUDENT's submission again, keep the previous results.json beside the new one, and record what changed
    (per check) in their feedback page and in reports/ASSIGNMENT/regrades.csv. The TAs' manual grades stay."""
    from .regrade import regrade as run
    from .regrade_record import describe

    course = _course(course_root)
    _say_missing_fences()
    record = run(course, student, assignment, reason=reason, profile=profile, log=click.echo)
    for note in record.notes:
        click.echo(f"warning: {note}", err=True)
    for line in describe(student, record):
        click.echo(line)


@cli.group()
def mistakes():
    """The catalogues of known mistakes (source/ASSIGNMENT/mistakes.yaml)."""


@mistakes.command("suggest")
@click.argument("assignment")
@click.option(
    "--code",
    type=click.Choice(["anonymise", "remove"]),
    default="anonymise",
    show_default=True,
    help="The stub's code: the example student's cell without comments, docstrings and prints, or the solution's "
    "cell to edit (no student code at all).",
)
@course_option
def suggest(assignment, code, course_root):
    """Print a mistakes.yaml stub for each group of graded answer cells that fail alike and that no catalogued
    mistake explains (as summary.html lists them)."""
    from .reports.suggest import suggest as run

    course = _course(course_root)
    course.assignment(assignment)
    click.echo(run(course.root, assignment, code=code), nl=False)


@cli.command()
@click.option("--bisect", "bisecting", is_flag=True, help="Probe with each fence lifted in turn: which stops CUDA?")
@click.option("--backend", type=click.Choice(["tensorflow", "jax", "torch"]), help="Default: the course's backend.")
@course_option
def doctor(bisecting, backend, course_root):
    """Which sandbox fences are active here, whether a GPU is visible, and whether a sandboxed worker reaches it."""
    from .doctor import report
    from .runtime import choose_backend

    try:
        configured = _course(course_root).backend
    except KitError:  # outside a course folder the doctor still checks the machine
        configured = "tensorflow"
    sys.exit(report(backend=choose_backend(configured, backend), bisecting=bisecting, echo=click.echo))


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except KitError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
