"""How to read an event log: :class:`ReadOptions`, and the parsing of option values that
depend on the data (``--gap``).

The CLI and the config file build one ``ReadOptions`` from their values
(:func:`journeymodel.data.config.to_read_options`); every reader takes it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from journeymodel.errors import OptionError

__all__ = ["ReadOptions", "TimestampKind", "parse_gap"]

TimestampKind = Literal["auto", "datetime", "epoch", "period"]


@dataclass(frozen=True)
class ReadOptions:
    """How to read an event log: column names, outcome labels and journey segmentation.

    Every command that reads an event log takes exactly these options.

    Parameters
    ----------
    customer_col, time_col, touchpoint_col : str
        Required columns.
    persona_col, value_col, sentiment_col, device_col : str or None
        Optional columns. ``None`` means "use the default name if the column exists"; a name given
        explicitly must exist.
    conversion_labels : tuple of str
        Touchpoint values that mark a conversion (end of a journey).
    churn_label : str
        Touchpoint value that marks a churn.
    gap : str, float or None
        Inactivity gap that ends a journey: ``"auto"`` (30 days for calendar timestamps, none for
        period numbers), ``"none"``, a pandas offset such as ``"30D"`` or ``"12h"``, or a number
        (seconds for calendar timestamps, periods otherwise).
    observed_until : str, float or None
        End of observation. Later rows are dropped (and counted). Default: the last timestamp.
    strict : bool
        Raise :class:`InputError` at the first invalid row instead of dropping it.
    sep : str or None
        CSV delimiter; auto-detected when ``None``.
    timestamps : {"auto", "datetime", "epoch", "period"}
        How to read the time column. ``auto``: datetimes, ISO-8601 text and common date formats
        are datetimes; numbers above 1e8 are epoch times, read by size (below 1e11 seconds,
        then milliseconds, microseconds, nanoseconds), and smaller numbers are plain ordered
        periods (1, 2, 3, ...). See :mod:`journeymodel.data.timestamps`.
    sentiment_scale : tuple of float or None
        ``(min, max)`` of the sentiment scale; scores are mapped linearly to -1..1. Default:
        inferred from the bulk of the scores (1-5, 0-10, -1..1, ...; see
        :func:`journeymodel.data.datachecks.infer_sentiment_scale`), scores outside it counted as
        invalid.
    time_format : str or None
        strftime format of date text (``"%d/%m/%Y %H:%M"``), as in
        ``pandas.to_datetime(format=...)``. Default: ISO-8601 or a detected common format.
    config_path : str or None
        The config file these options were read from (set by the CLI; see
        :mod:`journeymodel.data.config`), None when there was none.
    touchpoints_required : bool
        Refuse a log in which every row is an outcome label (no touchpoints), as the journey
        models need touchpoints. The churn models set it False: they read only when customers
        converted and churned, so a plain transaction log (``customer_id, date, amount``, every
        row a conversion) fits BG/NBD.
    """

    customer_col: str = "customer_id"
    time_col: str = "timestamp"
    touchpoint_col: str = "touchpoint"
    persona_col: str | None = None
    value_col: str | None = None
    sentiment_col: str | None = None
    device_col: str | None = None
    conversion_labels: tuple[str, ...] = ("conversion",)
    churn_label: str = "churn"
    gap: str | float | None = "auto"
    observed_until: str | float | None = None
    strict: bool = False
    sep: str | None = None
    timestamps: TimestampKind = "auto"
    sentiment_scale: tuple[float, float] | None = None
    time_format: str | None = None
    config_path: str | None = None
    touchpoints_required: bool = True

    def replace(self, **changes: Any) -> ReadOptions:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}



def parse_gap(gap: str | float | None, time_kind: str) -> float | None:
    """Normalise ``--gap`` to seconds (calendar time) or periods; ``None`` means no gap."""
    if gap is None:
        return None
    if isinstance(gap, str):
        text = gap.strip().lower()
        if text in ("none", "off", ""):
            return None
        if text == "auto":
            return 30 * 86400.0 if time_kind == "datetime" else None
        try:
            number = float(text)
        except ValueError:
            if time_kind != "datetime":
                raise OptionError(
                    f"--gap {gap!r} is a duration, but the timestamps are plain periods; "
                    "give a number of periods"
                ) from None
            number = _whole_duration(gap)
            if number is None:  # other forms pandas reads ("1.5h", "1 days 02:00:00")
                import pandas as pd

                try:
                    delta = pd.Timedelta(gap.strip())
                except ValueError:
                    raise OptionError(
                        f"--gap must be a duration like 30D, 12h or 90min, a number, or none "
                        f"(got {gap!r})"
                    ) from None
                number = delta.total_seconds()
    else:
        number = float(gap)
    if not math.isfinite(number) or number <= 0:
        raise OptionError(f"--gap must be positive (got {gap!r})")
    return number


#: Nanoseconds of each unit of a whole duration (``30D``, ``12h``, ``90min``), the names
#: ``pandas.Timedelta`` reads (lower case: ``--gap`` is read case-insensitively).
_UNIT_NS = {**dict.fromkeys(("w",), 604_800 * 10**9),
            **dict.fromkeys(("d", "day", "days"), 86_400 * 10**9),
            **dict.fromkeys(("h", "hr", "hour", "hours"), 3_600 * 10**9),
            **dict.fromkeys(("m", "min", "minute", "minutes"), 60 * 10**9),
            **dict.fromkeys(("s", "sec", "second", "seconds"), 10**9),
            "ms": 10**6, "us": 10**3, "ns": 1}
_WHOLE_DURATION = re.compile(r"\+?(\d+)\s*([A-Za-z]+)")


def _whole_duration(text: str) -> float | None:
    """Seconds of a whole non-negative number of one unit (``30D``, ``12 hours``, any case
    but ``M``, which pandas refuses), as ``pd.Timedelta(text).total_seconds()`` gives them
    (nanoseconds / 1e9), without importing pandas; ``None`` for anything else (and beyond
    what a Timedelta holds).

    Examples
    --------
    >>> _whole_duration("30D"), _whole_duration("90 min"), _whole_duration("500ms")
    (2592000.0, 5400.0, 0.5)
    >>> _whole_duration("1.5h"), _whole_duration("3M"), _whole_duration("-3D")
    (None, None, None)
    """
    match = _WHOLE_DURATION.fullmatch(text.strip())
    unit = match.group(2).lower() if match is not None and match.group(2) != "M" else None
    if unit not in _UNIT_NS:
        return None
    ns = int(match.group(1)) * _UNIT_NS[unit]
    return ns / 1e9 if abs(ns) < 2**63 else None
