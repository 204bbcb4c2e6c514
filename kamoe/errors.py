"""The project's own exception types: every error a user can cause and fix derives from KamoeError.

Each room raises its own subclass (``DataError`` in kamoe/data, ``ModelError`` for model
settings, ``TrainingError`` in kamoe/train, ``StoreError`` in the run store, ``UserError`` on the
command line). A page or the CLI catches :data:`USER_ERRORS` and shows the message; anything else
(a bare ``ValueError`` included) is a programming error and is never blamed on the user. The
subclasses also derive from ``ValueError`` so callers that caught ``ValueError`` keep working.
"""

from __future__ import annotations


class KamoeError(Exception):
    """A problem the user can fix; ``str(err)`` names the problem and the fix."""


class ModelError(KamoeError, ValueError):
    """An invalid model setting (registry name, width, activation, gate, ...)."""


class FormulaError(KamoeError, ValueError):
    """A formula request that cannot be met (wrong kind of data, unknown path or function)."""


class UserError(KamoeError, ValueError):
    """A command-line or dashboard input the user can fix (printed as one line, exit status 2)."""


USER_ERRORS: tuple[type[BaseException], ...] = (KamoeError,)
