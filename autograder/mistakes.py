"""The catalogues beside a source notebook: known mistakes, and correct answers written another way.

Both files list answer cells in one format, read by one loader (`load_catalogue`):

    - id: conv_transpose                 # a name for reports, unique in its file
      grade_id: decoder_block            # the answer cell this entry replaces
      says: Your decoder block upsamples with Conv2DTranspose; ...   # mistakes.yaml: one sentence for the student
      about: Activation layers after linear convolutions.             # variants.yaml: how the entry differs
      code: |                            # the whole answer cell, as a student would write it
        def define_decoder_block(x, num_filters):
            ...

`source/<a>/mistakes.yaml` holds real wrong implementations (key `says`). The grader runs each one like a
submission (the solution with that one cell replaced) once per kit version and caches its probe results next to the
reference's; the feedback names a mistake when the student's results agree with it (grading/diagnosis.py).
`source/<a>/variants.yaml` holds correct answer cells written otherwise than the solution (key `about`); the grader
never reads it: the tests grade each entry and require full marks and no diagnosis. Neither file may reach the
release (nbgrader_config.py's CourseDirectory.ignore names both).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import KitError
from .files import CoursePaths


@dataclass(frozen=True)
class Mistake:
    id: str
    grade_id: str
    says: str
    code: str

    def key(self) -> str:
        return hashlib.sha256(f"{self.id}\0{self.grade_id}\0{self.says}\0{self.code}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Variant:
    """A correct answer cell written otherwise than the solution."""

    id: str
    grade_id: str
    about: str
    code: str


def load_catalogue(path: Path, *, describe: str) -> list[dict[str, str]]:
    """The entries of one catalogue file, each with exactly the keys id, grade_id, code and `describe` (the
    description field of that kind of catalogue), all text; a missing file is an empty catalogue."""
    if not path.is_file():
        return []
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as err:
        raise KitError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(entries, list):
        raise KitError(f"{path} must be a list of entries (each line of the first level starting with '- id:').")
    keys = {"id", "grade_id", describe, "code"}
    found, seen = [], set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != keys:
            raise KitError(f"{path}: entry {i + 1} must have exactly the keys {', '.join(sorted(keys))}.")
        if entry["id"] in seen:
            raise KitError(f"{path}: the id '{entry['id']}' is used twice.")
        seen.add(entry["id"])
        found.append({k: str(v) for k, v in entry.items()})
    return found


def load_mistakes(course_root: Path, assignment: str) -> list[Mistake]:
    path = CoursePaths(Path(course_root)).mistakes_file(assignment)
    return [Mistake(**entry) for entry in load_catalogue(path, describe="says")]


def load_variants(course_root: Path, assignment: str) -> list[Variant]:
    path = CoursePaths(Path(course_root)).variants_file(assignment)
    return [Variant(**entry) for entry in load_catalogue(path, describe="about")]


# ---- suggest: stubs of new entries from a class's unexplained failures ------------------------------------------

CODE_CHOICES = ("anonymise", "remove")
TODO_SAYS = "TODO: one sentence for the student: what this answer does wrong, said from what the checks measured."


def suggest(course_root: Path, assignment: str, *, code: str = "anonymise") -> str:
    """YAML stubs for `source/<a>/mistakes.yaml`, one per group of the class's failing answer cells that no
    catalogued mistake explains (`reports.unexplained`), most students first. Each stub has a placeholder id and
    `says`, the failing checks as comments, and as `code`: the example student's cell without its comments,
    docstrings and print calls (`code="anonymise"`), or the solution's cell to edit into the mistake
    (`code="remove"`). No student is named. Graded results must exist (`autograder grade`)."""
    from .reports.reading import collect
    from .reports.unexplained import find_unexplained

    if code not in CODE_CHOICES:
        raise KitError(f"--code must be one of {', '.join(CODE_CHOICES)}, not {code!r}.")
    paths = CoursePaths(Path(course_root))
    subs = collect(Path(course_root), assignment)
    if not subs:
        raise KitError(
            f"No graded submissions of {assignment!r} under {paths.autograded}: run `autograder grade` first."
        )
    groups, why_not = find_unexplained(Path(course_root), assignment, subs)
    if why_not:
        raise KitError(why_not)
    header = [
        f"# {len(groups)} stub(s) for {paths.mistakes_file(assignment).relative_to(paths.root)}: failing answer cells "
        f"of {assignment} that no catalogued mistake explains, from {len(subs)} graded submission(s).",
        "# For each: give it a short id, write `says` (one sentence for the student), make `code` the whole",
        "# answer cell as a student would write it, then add the entry to the catalogue (the grader runs it like",
        "# a submission).",
    ]
    if not groups:
        return "\n".join([*header, "# Nothing to add: every failing answer cell is explained.", "[]", ""])
    solution = {cell.grade_id: cell.code for cell in _spec_answers(paths, assignment)}
    taken = {m.id for m in load_mistakes(Path(course_root), assignment)}
    blocks = []
    for number, group in enumerate(groups, start=1):
        ident = f"{group.grade_id}_unexplained_{number}"
        while ident in taken:
            ident += "_new"
        lines = [
            "",
            f"# {group.grade_id}: {len(group.students)} submission(s) fail these checks alike:",
        ]
        for check in group.checks:
            first, *rest = (check.message or "(no message)").splitlines() or [""]
            lines.append(f"#   {check.name} ({check.score:g} / {check.max_score:g}): {first}")
            lines += [f"#     {line}" for line in rest]
        if code == "anonymise":
            text = anonymise(group.code) if group.code is not None else None
            if text is None:
                lines.append("# The example's cell could not be read or parsed: the solution's cell is given instead.")
        else:
            text = None
        if text is None:
            text = "# TODO: change the solution's cell below into the mistake\n" + solution.get(group.grade_id, "")
        lines.append(_entry_yaml(ident, group.grade_id, TODO_SAYS, text))
        blocks.append("\n".join(lines))
    return "\n".join(header) + "\n" + "\n".join(blocks) + "\n"


def anonymise(code: str) -> str | None:
    """A student's cell without what may identify them: comments, docstrings and print calls go (the code is
    rewritten from its syntax tree, in a standard layout); None when the code does not parse."""
    import ast

    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None

    class _Strip(ast.NodeTransformer):
        def generic_visit(self, node):
            super().generic_visit(node)
            body = getattr(node, "body", None)
            if isinstance(body, list):
                kept = [s for s in body if not _docstring_or_print(s)]
                node.body = kept or [ast.Pass()]
            return node

    stripped = _Strip().visit(tree)
    return ast.unparse(ast.fix_missing_locations(stripped)).rstrip() + "\n"


def _docstring_or_print(statement) -> bool:
    import ast

    if not isinstance(statement, ast.Expr):
        return False
    value = statement.value
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return True
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "print"


def _entry_yaml(ident: str, grade_id: str, says: str, code: str) -> str:
    """One catalogue entry in the catalogues' layout (keys in their order, the code as a literal block)."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _text(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _text)
    entry = [{"id": ident, "grade_id": grade_id, "says": says, "code": code.rstrip() + "\n"}]
    return yaml.dump(entry, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120).rstrip()


def _spec_answers(paths: CoursePaths, assignment: str):
    from .notebook import load_spec

    return load_spec(paths.source_notebook(assignment), assignment).answers
