"""Numbers for people: money, durations, counts and plain numbers as short text.

Text output only: ``--json`` and files keep the raw numbers. Standard library only, so the CLI can
import it without loading numpy.

A table column declares what its numbers are with a *kind* (``Result.kinds``), and
:func:`format_column` formats the whole column at once (a duration column picks one unit for all
its cells, so they can be compared at a glance):

===============  =========================================  ===================
kind             meaning                                    example
===============  =========================================  ===================
``money``        an amount: thousands separators, 2 decimals  ``26,180.55``
``duration``     seconds, shown in s, min, h or days          ``1.6 days``
``periods``      a time in the log's own period numbers       ``2.5 periods``
``count``        (weighted) counts: whole or 1 decimal        ``1,652``, ``96.7``
``probability``  a probability or share: 3 decimals          ``0.279``
``number``       anything else (the default for numbers)      ``4.801``
``text``         text that may wrap at spaces in a table      ``226.9 .. 288.2``
``name``         a name, never wrapped or cut (default text)  ``payment_page``
===============  =========================================  ===================

No kind prints in scientific notation; missing values print ``-``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

KINDS = ("money", "duration", "periods", "count", "probability", "number", "text", "name")
MISSING = "-"

#: Duration units: (name, seconds, the smallest column median shown in this unit).
_UNITS = (("days", 86400.0, 1.5 * 86400.0), ("h", 3600.0, 1.5 * 3600.0),
          ("min", 60.0, 90.0), ("s", 1.0, 0.0))


def is_missing(v: Any) -> bool:
    """None, NaN or NaT."""
    if v is None:
        return True
    try:
        return bool(v != v)
    except (TypeError, ValueError):  # pragma: no cover - exotic objects
        return False


def _float(v: Any) -> float | None:
    if is_missing(v) or isinstance(v, (str, bytes)):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def money(v: Any) -> str:
    """``1234567.891`` -> ``1,234,567.89``."""
    x = _float(v)
    return MISSING if x is None else f"{x:,.2f}"


def count(v: Any) -> str:
    """Whole counts with separators (``1,652``); weighted counts with one decimal (``96.7``)."""
    x = _float(v)
    if x is None:
        return MISSING
    if x == int(x):
        return f"{int(x):,}"
    return f"{x:,.1f}"


def number(v: Any, digits: int = 4) -> str:
    """About ``digits`` significant digits, never scientific notation.

    ``4.8013`` -> ``4.801``; ``136671.2`` -> ``136,671``; ``7.468e-06`` -> ``0.0000075``;
    whole numbers keep every digit (``1,652``).
    """
    if isinstance(v, bool):
        return str(v)
    x = _float(v)
    if x is None:
        return MISSING if is_missing(v) else str(v)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == int(x):
        return f"{int(x):,}"
    a = abs(x)
    if a >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    exponent = math.floor(math.log10(a))
    if a < 1e-9:
        return "0"
    decimals = max(digits - 1 - exponent, 0) if exponent >= -4 else 1 - exponent
    text = f"{x:.{decimals}f}"
    if "." in text:  # 4 significant digits, but no trailing zeros: 0.3 not 0.3000
        text = text.rstrip("0").rstrip(".")
    return text


def duration_unit(seconds: Iterable[Any]) -> tuple[str, float]:
    """The unit (name, seconds per unit) for a column of durations: by its median."""
    values = sorted(abs(x) for x in (_float(v) for v in seconds) if x is not None)
    if not values:
        return "s", 1.0
    median = values[len(values) // 2]
    for name, size, smallest in _UNITS:
        if median >= smallest:
            return name, size
    return "s", 1.0  # pragma: no cover - the last unit takes everything


def duration(v: Any, unit: tuple[str, float] | None = None) -> str:
    """Seconds as ``1.6 days``, ``5.2 h``, ``12 min`` or ``45 s`` (``unit``: fixed unit)."""
    x = _float(v)
    if x is None:
        return MISSING
    name, size = unit or duration_unit([x])
    y = x / size
    a = abs(y)
    text = f"{y:,.0f}" if a >= 100 else f"{y:.1f}" if a >= 1 else f"{y:.2f}"
    return f"{text} {name}"


def probability(v: Any) -> str:
    """Three decimals (``0.279``, ``1.000``); a value that would show as ``0.000`` but is not
    zero shows as ``<0.001`` (``>-0.001`` below zero): not zero, and as narrow as the others."""
    x = _float(v)
    if x is None:
        return MISSING
    if x == 0 or abs(x) >= 0.0005:
        return f"{x:.3f}"
    return "<0.001" if x > 0 else ">-0.001"


def periods(v: Any) -> str:
    x = _float(v)
    return MISSING if x is None else f"{number(x, 3)} periods"


def cell(v: Any, kind: str | None = None) -> str:
    """One value as text; see the module docstring for ``kind``."""
    if kind == "money":
        return money(v)
    if kind == "duration":
        return duration(v)
    if kind == "periods":
        return periods(v)
    if kind == "count":
        return count(v)
    if kind == "probability":
        return probability(v)
    if isinstance(v, str):
        return v
    if is_missing(v):
        return MISSING
    if isinstance(v, (list, tuple)):
        return ", ".join(cell(x) for x in v)
    if isinstance(v, (int, float)) or _float(v) is not None:
        return number(v)
    return str(v)


def format_column(values: Sequence[Any], kind: str | None = None) -> list[str]:
    """A whole column as text (a duration column shares one unit, a plain number column one
    number of decimals)."""
    if kind == "duration":
        unit = duration_unit(values)
        return [duration(v, unit) for v in values]
    if kind in (None, "number"):
        return number_column(values)
    return [cell(v, kind) for v in values]


def number_column(values: Sequence[Any], digits: int = 4) -> list[str]:
    """Plain numbers with the same decimals down the column, so they line up: about ``digits``
    significant digits for the column's largest value (``3.620``, ``3.706``, ``4.801``); whole
    numbers stay whole, and a value that would show as zero keeps its own digits."""
    xs = [None if isinstance(v, (bool, str)) else _float(v) for v in values]
    finite = [abs(x) for x in xs if x is not None and math.isfinite(x)]
    if not finite or all(x == int(x) for x in finite) or max(finite) == 0:
        return [cell(v) for v in values]
    big = max(finite)
    decimals = 0 if big >= 10 ** (digits - 1) else min(digits - 1 - math.floor(math.log10(big)), 8)
    out = []
    for v, x in zip(values, xs, strict=True):
        if x is None or not math.isfinite(x):
            out.append(cell(v))
            continue
        text = f"{x:,.{decimals}f}"
        out.append(number(x) if x != 0 and float(text.replace(",", "")) == 0 else text)
    return out
