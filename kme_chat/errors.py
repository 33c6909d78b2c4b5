"""Errors meant for the user: the CLI and the app print their message, never a traceback."""


class UserError(Exception):
    """Something the user can fix: bad input, a missing file, a refused edit."""


class Forbidden(UserError):
    """Allowed to others, not to this user (a weight edit by a non-admin)."""


class NotFound(UserError):
    """No such thing for this user (another user's edit is not found, not forbidden: its id says nothing)."""
