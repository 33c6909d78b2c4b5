"""Errors meant for the user: the CLI and the app print their message, never a traceback."""


class UserError(Exception):
    """Something the user can fix: bad input, a missing file, a refused edit."""
