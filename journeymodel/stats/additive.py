"""What every statistic shares: ``+`` between two of a kind, and ``0 + s`` for ``sum(parts)``."""

from __future__ import annotations

from typing import Any, Self


class Additive:
    """Base of the statistics: ``a + b`` is ``a._add(b)`` for two of the same class; ``0`` is
    the neutral element on either side, so ``sum(parts)`` works; anything else is refused by
    Python (``TypeError``) as for any unsupported operand.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Count(Additive):
    ...     n: int
    ...     def _add(self, other):
    ...         return Count(self.n + other.n)
    >>> sum([Count(2), Count(3)]), Count(1) + 0
    (Count(n=5), Count(n=1))
    """

    def _add(self, other: Self) -> Self:  # pragma: no cover - defined by each statistic
        raise NotImplementedError

    def __add__(self, other: Any) -> Self:
        if isinstance(other, int) and other == 0:
            return self
        if type(other) is not type(self):
            return NotImplemented
        return self._add(other)

    def __radd__(self, other: Any) -> Self:
        return self.__add__(other)
