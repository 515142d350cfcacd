"""Exceptions, warnings and exit statuses that users see (a leaf module: imports nothing).

Every error a user can fix derives from :class:`InputError`; the command line prints its
message on one line and exits with :data:`EXIT_USAGE`. Warnings about the input (a column
dropped, a query far outside the data) are :class:`InputWarning` subclasses, so that they
can be filtered or turned into errors with the standard :mod:`warnings` machinery.

>>> from sloth_bayes.errors import DataError, InputError
>>> issubclass(DataError, InputError) and issubclass(DataError, ValueError)
True
"""

from __future__ import annotations

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_VERDICT",
    "DataError",
    "DataWarning",
    "ExtrapolationWarning",
    "FitFileError",
    "InputError",
    "InputWarning",
    "NotFittedError",
    "UsageError",
]

EXIT_OK = 0
"""The command did what was asked (and any verdict is favourable)."""
EXIT_VERDICT = 1
"""The command ran, and its verdict is negative: a fit did not converge, SBC rejected."""
EXIT_USAGE = 2
"""Bad input or usage: nothing was computed and nothing was written."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (SIGINT) or SIGTERM; no partial file is left behind."""


class InputError(ValueError):
    """Something the user gave cannot be used; the message says what and how to fix it."""


class DataError(InputError):
    """A table cannot be used as given; the message names the column, rows and fix."""


class FitFileError(InputError):
    """A file is not a readable sloth_bayes fit."""


class UsageError(InputError):
    """A command-line argument is out of range, or paths clash (an output is an input)."""


class FetchError(InputError):
    """The published table could not be downloaded (offline, bad URL, wrong hash)."""


class NotFittedError(RuntimeError):
    """A result was asked of a model that has not been fitted (or loaded)."""


class InputWarning(UserWarning):
    """The input is usable but something about it deserves the user's attention."""


class DataWarning(InputWarning):
    """A table was used with a change the user should know of (e.g. an empty column dropped)."""


class ExtrapolationWarning(InputWarning):
    """A query lies far outside the sizes or token counts that the fit has seen."""
