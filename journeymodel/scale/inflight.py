"""The journeys in flight of a log on Dask, for ``forecast --from EVENTS``: the workers read the
log and cut it into journeys; only the journeys in flight (censored) come back to the client,
where they are forecast together (:func:`forecast_on_dask`).

Why the simulation runs on the client: every posterior draw of the parameters must continue
every journey in flight (the spread of the totals is parameter uncertainty plus chance), so the
draws cannot be made per partition without narrowing the intervals; and the simulation's
random numbers are consumed journey by journey in the order of the journeys. The client holds
the journeys in flight only (at most one per customer), not the log.

Order, and so the bits: the journeys in flight are ordered by customer id, which does not
depend on the partitions, so the same seed gives the same forecast whatever the workers. One
process orders them by each customer's first row in the log instead, so the two forecasts are
two runs of the same simulation (they differ by Monte-Carlo noise only; the journeys in flight,
their number and states are the same).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from journeymodel.data.journeys import CENSORED
from journeymodel.data.journeyset import JourneySet
from journeymodel.stats.additive import Additive
from journeymodel.stats.vocab import recode, union

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.analysis.forecast import Forecast
    from journeymodel.data.options import ReadOptions
    from journeymodel.scale.cluster import Engine

__all__ = ["InFlightJourneys", "by_customer", "concat_journeys", "forecast_on_dask",
           "in_flight_part"]




def _optional(a: np.ndarray | None, b: np.ndarray | None, na: Any, n_a: int, n_b: int):
    """Concatenate per-event arrays one side may lack (filled with ``na``)."""
    if a is None and b is None:
        return None
    a = np.full(n_a, na) if a is None else a
    b = np.full(n_b, na) if b is None else b
    return np.concatenate([a, b])


def concat_journeys(a: JourneySet, b: JourneySet) -> JourneySet:
    """The journeys of two parts of a log that share no customer, as one set: names on their
    sorted union (:func:`journeymodel.stats.vocab.union`), ``b``'s customers after ``a``'s.
    The ledger is ``a``'s (the caller sets the whole log's)."""
    tps, ta, tb = union(a.touchpoints, b.touchpoints)
    pers, pa, pb = union(a.personas, b.personas)
    devs, da, db = union(a.devices, b.devices)
    shift = np.where(b.customer >= 0, b.customer + len(a.customers), -1)

    def dev(js: JourneySet, index: np.ndarray):
        return None if js.device is None else recode(js.device, index)

    return JourneySet(
        codes=np.concatenate([recode(a.codes, ta), recode(b.codes, tb)]).astype(np.int32),
        offsets=np.concatenate([a.offsets[:-1], b.offsets + a.offsets[-1]]),
        touchpoints=tps, outcome=np.concatenate([a.outcome, b.outcome]),
        weight=np.concatenate([a.weight, b.weight]),
        customer=np.concatenate([a.customer, shift]).astype(a.customer.dtype),
        customers=np.concatenate([a.customers, b.customers]),
        persona=np.concatenate([recode(a.persona, pa), recode(b.persona, pb)]).astype(np.int32),
        personas=pers, start=np.concatenate([a.start, b.start]),
        end=np.concatenate([a.end, b.end]), value=np.concatenate([a.value, b.value]),
        times=np.concatenate([a.times, b.times]), time_kind=a.time_kind,
        observed_until=a.observed_until, gap=a.gap, ledger=a.ledger,
        sentiment=_optional(a.sentiment, b.sentiment, np.nan, a.n_events, b.n_events),
        device=_optional(dev(a, da), dev(b, db), -1, a.n_events, b.n_events),
        devices=devs)


def by_customer(journeys: JourneySet) -> JourneySet:
    """The journeys ordered by customer id (a customer's journeys in their order), customers
    numbered in that order."""
    ids = np.asarray(journeys.customers, dtype=object)
    order_c = np.argsort(ids, kind="stable")
    rank = np.empty(len(ids), np.int64)
    rank[order_c] = np.arange(len(ids))
    key = np.where(journeys.customer >= 0, rank[np.maximum(journeys.customer, 0)], len(ids))
    js = journeys.take(np.argsort(key, kind="stable"))
    return replace(js, customer=np.where(js.customer >= 0, rank[np.maximum(js.customer, 0)],
                                         -1).astype(js.customer.dtype),
                   customers=np.asarray(journeys.customers)[order_c])


@dataclass(frozen=True, eq=False)
class InFlightJourneys(Additive):
    """The journeys in flight of parts of a log (whole customers each) and the latest end of
    any of their journeys."""

    journeys: JourneySet
    last_end: float

    def _add(self, other: InFlightJourneys) -> InFlightJourneys:
        return InFlightJourneys(concat_journeys(self.journeys, other.journeys),
                                float(np.fmax(self.last_end, other.last_end)))


def in_flight_part(journeys: JourneySet) -> InFlightJourneys:
    """``map_log``'s ``part_fn``: a partition's journeys in flight, with only the customers
    they use."""
    flight = journeys.take(journeys.outcome == CENSORED)
    used = np.unique(flight.customer[flight.customer >= 0])
    flight = replace(flight, customer=np.where(
        flight.customer >= 0, np.searchsorted(used, flight.customer), -1).astype(
        flight.customer.dtype), customers=np.asarray(flight.customers)[used])
    last = float(np.nanmax(journeys.end)) if journeys.n_journeys and np.isfinite(
        journeys.end).any() else float("nan")
    return InFlightJourneys(flight, last)


def forecast_on_dask(model: Any, source: Any, options: ReadOptions, engine: Engine,
                     horizon: str, *, as_of: str | None = None, n_draws: int = 200,
                     seed: int = 0, progress: bool = False) -> tuple[Forecast, JourneySet]:
    """:func:`journeymodel.analysis.forecast.forecast_in_flight` of the log ``source`` read
    on Dask up to ``as_of``: the journeys in flight gathered on the client (ordered by
    customer id), forecast there.

    Returns
    -------
    forecast : Forecast
    journeys : JourneySet
        The journeys in flight (the whole log's ledger).

    Raises
    ------
    OptionError
        ``as_of`` after the end of the log by more than the gap (no journey in flight), or as
        :func:`~journeymodel.analysis.forecast.forecast_in_flight`.
    """
    from journeymodel.analysis.forecast import forecast_in_flight
    from journeymodel.errors import OptionError
    from journeymodel.scale.engine import map_log

    read = options if as_of is None else options.replace(observed_until=as_of)
    result = map_log(source, read, engine, in_flight_part, progress=progress)
    part: InFlightJourneys = result.stats
    flight = by_customer(replace(part.journeys, ledger=result.ledger))
    late = result.ledger.dropped.get("after_observed_until", 0)
    gap = flight.gap
    if as_of is not None and not late and gap is not None and (
            flight.observed_until > part.last_end + gap):
        raise OptionError(f"--as-of {as_of} is after the end of the log: its last event is "
                          "more than the gap before it, so no journey is in flight then; "
                          "leave --as-of out to forecast from the end of the log")
    return forecast_in_flight(model, flight, horizon, n_draws=n_draws, seed=seed), flight
