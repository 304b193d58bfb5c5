# nbgrader's view of this course: the repository root is its course directory. Everything else about the
# course is in course.yaml; this file only points nbgrader at the kit's layout.
c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.root = "."
c.CourseDirectory.solution_directory = "solutions"
# The catalogue of known mistakes and the grader's caches stay with the instructor.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "mistakes.yaml", "variants.yaml"]
# Solutions are generated without executing them (training takes minutes), so they are deterministic.
c.GenerateSolution.preprocessors = [
    "nbgrader.preprocessors.IncludeHeaderFooter",
    "nbgrader.preprocessors.LockCells",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.ClearMarkScheme",
]
