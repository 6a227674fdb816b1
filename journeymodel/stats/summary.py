"""What ``journeymodel describe`` counts, as an additive statistic (:class:`JourneySummary`), so
that the description of a log is the sum of its parts' (issue 15: describe on Dask)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeymodel.data.journeyset import (
    OUTCOMES,
    JourneySet,
    csr_event_index,
    sequence_keys,
)
from journeymodel.stats.additive import Additive
from journeymodel.stats.vocab import recode, union

__all__ = ["JourneySummary", "journey_summary"]

_CONVERSION = OUTCOMES.index("conversion")


@dataclass(frozen=True, eq=False)
class JourneySummary(Additive):
    """Additive counts of journeys: everything ``describe`` reports but the ledger.

    Parts of one log must hold whole customers (as Dask's partitions by customer do) for the
    customer counts to add up; the rest adds for any split. Weighted sums add exactly for
    whole-number weights (journeys of an event log), to rounding otherwise.

    Attributes
    ----------
    touchpoints, personas : tuple of str
        Vocabularies of ``touchpoint_events``, ``path_codes`` and ``persona_customers``.
    customers : int
        Distinct customers with a journey.
    journeys, events : float
        Weighted journeys and events.
    outcomes : ndarray, shape (4,)
        Weighted journeys per outcome (``OUTCOMES`` order).
    length_sum : float
        Weighted sum of path lengths (their mean's numerator).
    length_hist : ndarray, shape (max_length + 1,)
        Weighted journeys per path length.
    max_length : int
    touchpoint_events : ndarray, shape (n_touchpoints,)
    persona_customers : ndarray of int, shape (n_personas,)
    time_kind : str
    observed_until, gap : float or None
    first, last : float
        Earliest journey start and latest journey end (NaN when no time is known).
    path_codes, path_offsets : ndarray of int64
        The distinct paths (CSR layout, codes into ``touchpoints``).
    path_journeys, path_conversions : ndarray, shape (n_paths,)
        Weighted journeys and conversions of each distinct path.

    Examples
    --------
    >>> import journeymodel as jm
    >>> js = jm.load_journeys(jm.make_demo_data(60, seed=3).events)
    >>> a, b = js.take(js.customer < 30), js.take(js.customer >= 30)
    >>> whole, both = journey_summary(js), journey_summary(a) + journey_summary(b)
    >>> both.customers == whole.customers, both.journeys == whole.journeys
    (True, True)
    >>> bool(np.array_equal(np.sort(both.path_journeys), np.sort(whole.path_journeys)))
    True
    """

    touchpoints: tuple[str, ...]
    personas: tuple[str, ...]
    customers: int
    journeys: float
    events: float
    outcomes: np.ndarray
    length_sum: float
    length_hist: np.ndarray
    max_length: int
    touchpoint_events: np.ndarray
    persona_customers: np.ndarray
    time_kind: str
    observed_until: float | None
    gap: float | None
    first: float
    last: float
    path_codes: np.ndarray
    path_offsets: np.ndarray
    path_journeys: np.ndarray
    path_conversions: np.ndarray

    def _add(self, other: JourneySummary) -> JourneySummary:
        tps, ia, ib = union(self.touchpoints, other.touchpoints)
        pers, pa, pb = union(self.personas, other.personas)
        n = max(len(self.length_hist), len(other.length_hist))
        hist = np.zeros(n)
        hist[:len(self.length_hist)] += self.length_hist
        hist[:len(other.length_hist)] += other.length_hist
        codes = np.concatenate([recode(self.path_codes, ia), recode(other.path_codes, ib)])
        offsets = np.concatenate([self.path_offsets[:-1],
                                  other.path_offsets + self.path_offsets[-1]])
        paths = _distinct_paths(codes, offsets,
                                np.concatenate([self.path_journeys, other.path_journeys]),
                                np.concatenate([self.path_conversions, other.path_conversions]))
        return JourneySummary(
            tps, pers, self.customers + other.customers, self.journeys + other.journeys,
            self.events + other.events, self.outcomes + other.outcomes,
            self.length_sum + other.length_sum, hist, max(self.max_length, other.max_length),
            _scatter(len(tps), (ia, self.touchpoint_events), (ib, other.touchpoint_events)),
            _scatter(len(pers), (pa, self.persona_customers), (pb, other.persona_customers)
                     ).astype(np.int64),
            self.time_kind, self.observed_until, self.gap, float(np.fmin(self.first, other.first)),
            float(np.fmax(self.last, other.last)), *paths)


def _scatter(n: int, *parts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    out = np.zeros(n, np.result_type(*(v for _, v in parts), np.int64))
    for index, values in parts:
        out[index] += values  # index: distinct positions (a vocabulary's)
    return out


def _distinct_paths(codes: np.ndarray, offsets: np.ndarray, journeys: np.ndarray,
                    conversions: np.ndarray):
    """Paths (CSR) with repeats merged: weights added, each kept once in key order."""
    uniq, first, inverse = np.unique(sequence_keys(codes, offsets), return_index=True,
                                     return_inverse=True)
    lengths = np.diff(offsets)[first]
    new_offsets = np.zeros(len(first) + 1, np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    return (codes[csr_event_index(offsets, first)], new_offsets,
            np.bincount(inverse, weights=journeys, minlength=len(uniq)),
            np.bincount(inverse, weights=conversions, minlength=len(uniq)))


def journey_summary(journeys: JourneySet) -> JourneySummary:
    """The :class:`JourneySummary` of ``journeys`` (weights count)."""
    js = journeys
    w, lengths = js.weight, js.lengths
    keys = js.path_keys()
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    path_offsets = np.zeros(len(first) + 1, np.int64)
    np.cumsum(lengths[first], out=path_offsets[1:])
    known = js.customer >= 0
    finite = np.isfinite(js.start)
    timed = js.time_kind != "none" and finite.any()
    return JourneySummary(
        touchpoints=tuple(js.touchpoints), personas=tuple(js.personas),
        customers=int(len(np.unique(js.customer[known]))),
        journeys=float(w.sum()), events=float(np.repeat(w, lengths).sum()),
        outcomes=np.bincount(js.outcome, weights=w, minlength=len(OUTCOMES)),
        length_sum=float(np.multiply(lengths, w, dtype=np.float64).sum()),
        length_hist=np.bincount(lengths, weights=w) if len(lengths) else np.zeros(0),
        max_length=int(lengths.max()) if len(lengths) else 0,
        touchpoint_events=np.bincount(js.codes, weights=np.repeat(w, lengths),
                                      minlength=len(js.touchpoints)),
        persona_customers=np.array(list(js.persona_customers().values()), np.int64),
        time_kind=js.time_kind, observed_until=js.observed_until, gap=js.gap,
        first=float(np.nanmin(js.start)) if timed else float("nan"),
        last=float(np.nanmax(js.end)) if timed else float("nan"),
        path_codes=js.codes[csr_event_index(js.offsets, first)], path_offsets=path_offsets,
        path_journeys=np.bincount(inverse, weights=w, minlength=len(uniq)),
        path_conversions=np.bincount(inverse, weights=w * (js.outcome == _CONVERSION),
                                     minlength=len(uniq)))
