"""Event logs with known differences planted in them, to test ``journeymodel compare``.

Built on the demo generator (:func:`journeymodel.data.datasets.make_demo_data`):

* :func:`stationary_events` is a log in which nothing changes, for anybody: the demo story
  without its planted pain points, the customers of one persona only (personas convert
  differently, and their mix drifts over the year as frequent buyers return sooner), and no
  churn rows (churn only begins once customers have subscribed, so its rate grows over the
  year; without the rows those journeys end in a drop-off like any other leave). Every journey
  then follows one and the same chain all year, on every device.
* :func:`plant_incidents` makes conversions disappear where an :class:`Incident` says (after a
  touchpoint, on a device, in a time window), as a broken checkout would: the conversion row
  is removed and the journey ends in a drop-off (the customer's journeys that start within the
  inactivity gap after it are removed too, so that nothing continues it).
* :func:`make_incident_data` does both and returns the log with the truth: each incident with
  the number of conversions it removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeymodel.data.datasets import PERSONAS, make_demo_data
from journeymodel.errors import OptionError

__all__ = ["Incident", "IncidentData", "make_incident_data", "plant_incidents",
           "stationary_events"]

#: The one persona of :func:`stationary_events`, and its share of the demo's customers.
PERSONA = "researcher"
_PERSONA_SHARE = 0.35
_GAP_DAYS = 30.0


@dataclass(frozen=True)
class Incident:
    """Conversions lost: journeys that would have converted right after ``touchpoint`` (on
    ``device``, with the conversion in ``[start, end)``) drop off instead, a ``share`` of them.

    ``None`` means any touchpoint, any device, any time.
    """

    touchpoint: str | None = None
    device: str | None = None
    start: str | None = None
    end: str | None = None
    share: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise OptionError(f"an incident's share must be in (0, 1] (got {self.share!r})")

    @property
    def name(self) -> str:
        parts = [f"after {self.touchpoint}" if self.touchpoint else "",
                 f"on {self.device}" if self.device else "",
                 f"from {self.start}" if self.start else "", f"until {self.end}" if self.end
                 else ""]
        return f"{self.share:.0%} of conversions lost " + " ".join(p for p in parts if p)


@dataclass(frozen=True, eq=False)
class IncidentData:
    """A log with planted incidents and the truth.

    Attributes
    ----------
    events : pandas.DataFrame
        The canonical event log (as :func:`make_demo_data`'s), sorted by customer and time.
    incidents : tuple of Incident
    lost : tuple of int
        Conversions each incident removed.
    """

    events: pd.DataFrame
    incidents: tuple[Incident, ...]
    lost: tuple[int, ...]


def stationary_events(n_customers: int = 2000, *, seed: int = 0,
                      start: str = "2025-01-01", days: int = 365) -> pd.DataFrame:
    """An event log of about ``n_customers`` customers in which nothing changes (module
    docstring).

    Examples
    --------
    >>> events = stationary_events(300, seed=1)
    >>> events["persona"].unique().tolist(), bool((events["touchpoint"] == "churn").any())
    (['researcher'], False)
    """
    if int(n_customers) < 1:
        raise OptionError(f"n_customers must be at least 1 (got {n_customers})")
    n = int(np.ceil(n_customers / _PERSONA_SHARE))
    assert PERSONA in PERSONAS
    events = make_demo_data(n, seed=seed, start=start, days=days, problems=False).events
    keep = (events["persona"] == PERSONA) & (events["touchpoint"] != "churn")
    return events[keep].reset_index(drop=True)


def plant_incidents(events: pd.DataFrame, incidents, *, seed: int = 0
                    ) -> tuple[pd.DataFrame, tuple[int, ...]]:
    """Remove conversions where ``incidents`` say (module docstring).

    Parameters
    ----------
    events : DataFrame
        A canonical demo log (``customer_id``, ``timestamp``, ``touchpoint``, ``device``),
        sorted by customer and time.
    incidents : sequence of Incident
    seed : int

    Returns
    -------
    events : DataFrame
        The log with the incidents.
    lost : tuple of int
        Conversions removed by each incident (an incident after another counts only what it
        removed itself).
    """
    rng = np.random.default_rng(seed)
    cust = pd.factorize(events["customer_id"])[0]
    time = events["timestamp"].to_numpy()
    tp = events["touchpoint"].to_numpy()
    device = events["device"].to_numpy() if "device" in events else np.full(len(events), None)
    is_conv = tp == "conversion"
    journey = _journey_ids(cust, time, np.isin(tp, ["conversion", "churn"]))
    drop = np.zeros(len(events), bool)
    lost = []
    prev = np.r_[0, np.arange(len(events) - 1)]
    for inc in incidents:  # loop over incidents (few)
        hit = is_conv & ~drop & (journey[prev] == journey) & (np.arange(len(events)) > 0)
        if inc.touchpoint is not None:
            hit &= tp[prev] == inc.touchpoint
        if inc.device is not None:
            hit &= device[prev] == inc.device
        if inc.start is not None:
            hit &= time >= _stamp(inc.start, time)
        if inc.end is not None:
            hit &= time < _stamp(inc.end, time)
        hit &= rng.random(len(events)) < inc.share
        lost.append(int(hit.sum()))
        drop |= hit
        drop |= _continuations(cust, time, journey, np.flatnonzero(hit), prev)
    out = events[~drop].reset_index(drop=True)
    return out, tuple(lost)


def make_incident_data(n_customers: int = 2000, incidents=(), *, seed: int = 0,
                       start: str = "2025-01-01", days: int = 365) -> IncidentData:
    """:func:`stationary_events` with ``incidents`` planted: the only differences in the log.

    Examples
    --------
    >>> data = make_incident_data(600, [Incident("store", start="2025-03-03",
    ...                                          end="2025-03-24", share=0.8)], seed=2)
    >>> data.lost[0] > 0
    True
    """
    events = stationary_events(n_customers, seed=seed, start=start, days=days)
    events, lost = plant_incidents(events, tuple(incidents), seed=seed + 1)
    return IncidentData(events, tuple(incidents), lost)


def _stamp(text: str, like: np.ndarray):
    t = pd.Timestamp(text)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return t.to_datetime64() if like.dtype.kind == "M" else t


def _journey_ids(cust: np.ndarray, time: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Journey number of every row under 30-day segmentation (as load_journeys cuts them)."""
    t = _seconds(time).astype(np.int64)
    new = np.ones(len(cust), bool)
    new[1:] = (cust[1:] != cust[:-1]) | outcome[:-1] | (np.diff(t) > _GAP_DAYS * 86400)
    return np.cumsum(new) - 1


def _continuations(cust, time, journey, hit_rows, prev) -> np.ndarray:
    """Rows of the journeys of the same customers that start within the gap (plus a day)
    after a planted drop-off's last touchpoint: they would otherwise continue it."""
    out = np.zeros(len(cust), bool)
    if not len(hit_rows):
        return out
    t = _seconds(time).astype(np.float64)
    t -= t.min()  # seconds since the first row: small enough to stack customers apart below
    n_j = int(journey.max()) + 1
    first = np.flatnonzero(np.r_[True, journey[1:] != journey[:-1]])
    j_start, j_cust = t[first], cust[first]
    cutoff = np.full(n_j, -np.inf)
    cutoff[journey[hit_rows]] = t[prev[hit_rows]] + (_GAP_DAYS + 1) * 86400
    # latest cutoff of an earlier journey of the same customer (a running max per customer)
    big = 1e9  # > any cutoff (30 years in seconds): customer c's values lie in [c, c + 1) * big
    running = np.maximum.accumulate(np.where(np.isfinite(cutoff), cutoff, 0.0) + j_cust * big)
    earlier = np.r_[-np.inf, running[:-1]] - j_cust * big
    gone = (j_start < earlier) & (earlier > 0)
    out[np.isin(journey, np.flatnonzero(gone))] = True
    return out


def _seconds(time: np.ndarray) -> np.ndarray:
    """Timestamps (tz-aware or naive) as seconds since the epoch."""
    return (pd.to_datetime(pd.Series(time), utc=True).astype("int64") // 10**9).to_numpy()
