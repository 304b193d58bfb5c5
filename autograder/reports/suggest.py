"""`autograder mistakes suggest`: stubs of new catalogue entries (`source/<a>/mistakes.yaml`) from a class's failing
answer cells that no catalogued mistake explains (`reports.unexplained`)."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from ..errors import KitError
from ..files import CoursePaths
from ..mistakes import load_mistakes
from ..notebook import load_spec
from .reading import collect
from .unexplained import find_unexplained

CODE_CHOICES = ("anonymise", "remove")
TODO_SAYS = "TODO: one sentence for the student: what this answer does wrong, said from what the checks measured."


def suggest(course_root: Path, assignment: str, *, code: str = "anonymise") -> str:
    """YAML stubs for `source/<a>/mistakes.yaml`, one per group of the class's failing answer cells that no
    catalogued mistake explains (`reports.unexplained`), most students first. Each stub has a placeholder id and
    `says`, the failing checks as comments, and as `code`: the example student's cell without its comments,
    docstrings and print calls (`code="anonymise"`), or the solution's cell to edit into the mistake
    (`code="remove"`). No student is named. Graded results must exist (`autograder grade`)."""
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
    return load_spec(paths.source_notebook(assignment), assignment).answers
