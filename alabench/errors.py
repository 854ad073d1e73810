"""The one base class for errors a user can fix: stages print them as one line, without a traceback."""


class UserError(Exception):
    """Bad input, a bad parameter or a missing prerequisite; the message names it and what to do."""
