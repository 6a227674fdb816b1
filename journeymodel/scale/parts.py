"""What one Dask partition of a log sends back: its statistics, its ledger and what a model
remembers of its journeys, all additive (:class:`PartResult`), so a tree of ``+`` over the
partitions gives the whole log's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from journeymodel.data.ledger import DROP_REASONS, Ledger
from journeymodel.errors import InputError
from journeymodel.models.base import JourneyMeta
from journeymodel.stats.additive import Additive

__all__ = ["PartResult", "add_ledgers", "add_meta"]


def add_ledgers(a: Ledger, b: Ledger) -> Ledger:
    """The ledger of two parts of a log: counts added, notes of both (once each).

    Examples
    --------
    >>> a = Ledger("log", rows_read=5, rows_used=4, dropped={"duplicate": 1})
    >>> b = Ledger("log", rows_read=3, rows_used=2, dropped={"missing_customer": 1})
    >>> c = add_ledgers(a, b)
    >>> c.rows_read, c.rows_used, c.dropped
    (8, 6, {'missing_customer': 1, 'duplicate': 1})
    """
    def merged(x: dict[str, int], y: dict[str, int], order=()) -> dict[str, int]:
        out = dict(x)
        for key, n in y.items():
            out[key] = out.get(key, 0) + n
        first = [k for k in order if k in out]  # the order one process reports them in
        return {k: out[k] for k in first + sorted(set(out) - set(first))}

    return Ledger(source=a.source, rows_read=a.rows_read + b.rows_read,
                  rows_used=a.rows_used + b.rows_used,
                  dropped=merged(a.dropped, b.dropped, DROP_REASONS),
                  invalid_fields=merged(a.invalid_fields, b.invalid_fields),
                  notes=list(dict.fromkeys(a.notes + b.notes)))


def add_meta(a: JourneyMeta, b: JourneyMeta) -> JourneyMeta:
    """What a model remembers of the journeys of two parts of a log: names on their sorted
    union, counts added; both parts must share the time axis."""
    if a.time_kind != b.time_kind:
        raise InputError(f"the files mix time kinds ({a.time_kind} and {b.time_kind} "
                         "timestamps); set --timestamps")
    counts = None
    if a.outcome_counts is not None or b.outcome_counts is not None:
        counts = dict(a.outcome_counts or {})
        for key, n in (b.outcome_counts or {}).items():
            counts[key] = counts.get(key, 0) + n
    return JourneyMeta(
        touchpoints=tuple(sorted(set(a.touchpoints) | set(b.touchpoints))),
        personas=tuple(sorted(set(a.personas) | set(b.personas))),
        devices=tuple(sorted(set(a.devices) | set(b.devices))),
        time_kind=a.time_kind, gap=a.gap, observed_until=a.observed_until,
        n_journeys=a.n_journeys + b.n_journeys, n_events=a.n_events + b.n_events,
        outcome_counts=counts)


@dataclass(frozen=True, eq=False)
class PartResult(Additive):
    """A partition's statistics (``stats``: any additive statistic, or None), ledger and
    journey facts (``meta``: None for a partition without usable rows)."""

    stats: Any
    ledger: Ledger
    meta: JourneyMeta | None

    def _add(self, other: PartResult) -> PartResult:
        stats = (self.stats if other.stats is None else other.stats if self.stats is None
                 else self.stats + other.stats)
        meta = (self.meta if other.meta is None else other.meta if self.meta is None
                else add_meta(self.meta, other.meta))
        return PartResult(stats, add_ledgers(self.ledger, other.ledger), meta)
