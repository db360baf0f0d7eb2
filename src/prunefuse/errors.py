"""One exception type for mistakes the user can fix, so the CLI can answer them in one line with exit 2."""


class UserError(Exception):
    """A problem with the user's input; the message names the problem and the fix."""
