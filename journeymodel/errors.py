"""Exceptions and warnings raised by journeymodel.

Every error a user can cause derives from :class:`JourneyModelError`; the CLI turns these into
one line ``error: ...`` and exit code 2.
"""

from __future__ import annotations


class JourneyModelError(Exception):
    """Base class of every error a user of journeymodel can cause."""


class InputError(JourneyModelError, ValueError):
    """An input file or table is unusable: missing column, bad value, empty log.

    The message names the file, the column, the row and the value where they are known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        column: str | None = None,
        row: int | None = None,
        value: object = None,
    ) -> None:
        self.source, self.column, self.row, self.value = source, column, row, value
        where = []
        if source is not None:
            where.append(str(source))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ", ".join(where)
        text = f"{prefix}: {message}" if prefix else message
        if value is not None:
            text += f" (got {value!r})"
        super().__init__(text)


class OptionError(JourneyModelError, ValueError):
    """An option has a value that cannot be used (bad gap, bad order, bad label)."""


class ModelFileError(JourneyModelError):
    """A file is not a journeymodel model, is damaged, or comes from a newer schema."""


class NotFittedError(JourneyModelError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class DataWarning(UserWarning):
    """Rows or fields were dropped or repaired while reading an event log, or the data hold a
    surprise that changes the answer (outlying end of observation, no conversion rows)."""


class ConvergenceWarning(UserWarning):
    """A fit finished but its convergence checks failed; the message lists remedies."""
