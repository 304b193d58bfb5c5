"""The one kind of error a user can cause: the CLI prints its message and exits non-zero."""


class KitError(Exception):
    """A mistake in the input or the course files, with a sentence that names the problem and the fix."""
