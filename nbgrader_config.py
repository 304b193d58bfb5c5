# nbgrader's view of this course: the repository root is its course directory. Everything else about the
# course is in course.yaml; this file only points nbgrader at the kit's layout.
c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.root = "."
c.CourseDirectory.solution_directory = "solutions"
# The catalogue of known mistakes and the grader's caches stay with the instructor. The grader's own files beside a
# graded notebook (results.json, feedback.html) are not copied on into feedback/, where release_feedback would
# release every .html it finds.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "mistakes.yaml", "variants.yaml",
                            "results.json", "feedback.html"]
# Solutions are generated without executing them (training takes minutes), so they are deterministic.
c.GenerateSolution.preprocessors = [
    "nbgrader.preprocessors.IncludeHeaderFooter",
    "nbgrader.preprocessors.LockCells",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.ClearMarkScheme",
]

# formgrader's buttons, and nbgrader's commands, on a course the kit grades (autograder/nbgrader_hooks.py):
# "Autograde" would run the students' code without the kit's sandbox, so it refuses and names `autograder grade`;
# "Generate Feedback" writes the kit's feedback page, not nbgrader's rendering of the graded notebook. The classes are
# named as strings so that nbgrader imports the kit only when one of these two runs.
c.Autograde.exporter_class = "autograder.nbgrader_hooks.RefuseAutograde"
c.GenerateFeedback.exporter_class = "autograder.nbgrader_hooks.KitFeedback"
c.GenerateFeedback.preprocessors = []  # nbgrader's GetGrades and CSS header serve its own page, not the kit's
