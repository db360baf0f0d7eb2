"""One exception type for mistakes the user can fix, so the CLI can answer them in one line with exit 2."""


class UserError(ValueError):
    """A problem with the user's input; the message names the problem and the fix. A ``ValueError``,
    so code that calls the library can catch the standard type."""
