"""The classroom run's one error: a line saying what went wrong and what to do."""


class ClassroomError(Exception):
    """The classroom run cannot go on; the message names the part and the fix."""
