"""What nbgrader's own commands do in a course graded by the kit; nbgrader_config.py sets both classes.

- `KitFeedback` is `GenerateFeedback.exporter_class`: "Generate Feedback" in formgrader (and `nbgrader
  generate_feedback`) writes the kit's feedback page, the one `autograder report` writes, instead of nbgrader's
  rendering of the graded notebook.
- `RefuseAutograde` is `Autograde.exporter_class`: "Autograde" (and `nbgrader autograde`) stops with a message that
  names `autograder grade`, since nbgrader's grader would run students' code without the kit's sandbox.

Both are exporters because nbgrader's converters build their exporter after finding the notebooks and before they
touch any folder or the gradebook (`BaseConverter.start`).
"""

from __future__ import annotations

from pathlib import Path

from nbconvert.exporters import Exporter
from nbgrader.converters.base import NbGraderException
from traitlets import default


class RefuseAutograde(Exporter):
    """Refuses at construction. formgrader's button autogrades with `force`, which deletes the submission's
    autograded/ folder (the kit's results) before any preprocessor runs; this runs before that."""

    def __init__(self, *args, **kwargs):
        converter = kwargs.get("parent")
        coursedir = getattr(converter, "coursedir", None)
        assignment = getattr(coursedir, "assignment_id", "") or "<assignment>"
        message = (
            "This course is graded by the autoencoder course kit, not by nbgrader's autograde, which would run the "
            "students' code without the kit's sandbox and replace its results. Nothing was changed. Grade with "
            f"`autograder grade submitted/ --assignment {assignment}`, then run `autograder report` to put the "
            "scores into the gradebook and write the feedback pages."
        )
        if converter is not None:
            converter.log.error(message)
        raise NbGraderException(message)


class KitFeedback(Exporter):
    """The kit's feedback page of the submission nbgrader converts (it reads autograded/<student>/<a>/results.json,
    not the graded notebook), written by `reports.write_student_feedback` and returned for nbgrader to write at the
    same place."""

    output_mimetype = "text/html"

    @default("file_extension")
    def _file_extension_default(self) -> str:
        return ".html"

    def from_notebook_node(self, nb, resources=None, **kw):
        from .reports import write_student_feedback

        _, resources = super().from_notebook_node(nb, resources, **kw)
        ids = resources["nbgrader"]
        if self.parent is None:  # nbgrader's feedback converter is the parent that configures this exporter
            raise NbGraderException("the kit's feedback exporter runs only inside `nbgrader generate_feedback`")
        root = Path(self.parent.coursedir.root)
        written = write_student_feedback(root, ids["assignment"], ids["student"])
        return written[0].read_text(encoding="utf-8"), resources
