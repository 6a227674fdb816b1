"""Forecast the journeys in flight: where and when they go next, in calendar time (issue 17).

Every journey in flight (censored) at the as-of time is continued from where it stands, by
simulation, until the horizon:

* **its state**: a Markov model's window of its last touchpoints, as ``predict`` reads it (a
  journey shorter than the order goes on as the start's windows that begin with its path; an
  unseen window backs off to the known windows that end with its longest known suffix, drawn
  in proportion to their visits); a stages model's filtered posterior over the stage of its
  last touchpoint (under the fitted parameters);
* **the time already spent since its last event** (``elapsed``): the next event is drawn from
  the competing targets with weights ``p_k * S_k(elapsed)``, where ``p_k`` is the model's
  probability that ``k`` comes next and ``S_k`` the survival function of the holding time from
  the last touchpoint to ``k`` (``model.holding_``, :mod:`journeymodel.stats.holding`), then
  its time from the holding time given ``T > elapsed``. A drop-off has no holding time: it is
  declared at ``last event + gap``, its survival is 1 until then. Holding times of moves are
  taken within the gap (``T <= gap``: a longer silence would have been a drop-off). The
  first move is drawn exactly (:mod:`journeymodel.analysis.inflight`): the drop-off first,
  from the row totals, then the move among the rest (for a journey that backs off, a proposal
  from ``p``, window included, accepted with probability ``S_k(elapsed)``).
* **uncertainty**: each of ``n_draws`` posterior draws of the parameters runs every journey
  once, so the spread of the totals combines parameter uncertainty and chance (the realised
  count's own noise). Markov: the model's Dirichlet posterior of every transition row
  (:func:`journeymodel.models.markov.chain.draw_rows`, as attribution uses). Stages: a
  Dirichlet posterior on the expected counts of every row (start, exit, transition,
  emission): each row's fitted probabilities times the expected number of visits of its stage
  over the training journeys (``n_journeys * startprob (I - diag(continue) A)^-1``), the
  counts the EM's last E-step saw in expectation. Holding times and the stages' filtered
  posteriors are taken at their fitted values.

New journeys that start after the as-of time are not counted. Vectorised over journeys x draws
(no loop per journey); draws run in chunks of about
:data:`~journeymodel.analysis.inflight.CHUNK_PARTICLES` journey-draws.

Chance is keyed by journey (:mod:`journeymodel.analysis.chance`): a journey's outcomes under
draw ``d`` depend on the journey, ``d`` and the seed only, so the forecast of parts of the
journeys in flight (:func:`forecast_part`, e.g. Dask partitions) gives every journey its
one-process row, and the parts' :class:`ForecastSummary` (counts per draw) add up to the
one-process totals exactly (issue 15).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from journeymodel.analysis.inflight import (
    CHURNED,
    CONVERTED,
    DROPPED,
    Chunk,
    InFlight,
    in_flight,
    journey_survival,
    make_process,
    simulate_chunks,
    subset,
)
from journeymodel.data.journeyset import JourneySet
from journeymodel.errors import OptionError
from journeymodel.stats.additive import Additive

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from journeymodel.models.base import JourneyModel, Result

__all__ = ["Forecast", "ForecastSummary", "check_draws", "check_model", "continuation_chunks",
           "forecast_in_flight", "forecast_part", "journeys_as_of", "parse_horizon",
           "simulate_forecast"]

#: Interval mass of every forecast interval.
CI = 0.94
DAY = 86400.0


def parse_horizon(text: str, time_kind: str) -> float:
    """``--horizon`` on the log's time axis: a duration (``30D``, ``12h``, ``2W``) for calendar
    times, a number of periods for period logs.

    Examples
    --------
    >>> parse_horizon("30D", "datetime"), parse_horizon("2W", "datetime")
    (2592000.0, 1209600.0)
    >>> parse_horizon("6", "period")
    6.0
    """
    from journeymodel.data.options import parse_gap

    raw = str(text).strip()
    bare = raw.replace(".", "", 1).isdigit()
    if time_kind == "datetime" and bare:
        raise OptionError(f"--horizon needs a unit for calendar times: a duration like 30D, "
                          f"12h or 2W (got {text!r})")
    if raw.lower() in ("", "none", "off", "auto"):
        raise OptionError(f"--horizon must be a duration like 30D, 12h or 2W (got {text!r})")
    try:
        value = parse_gap(raw, time_kind)
    except OptionError:
        what = ("a duration like 30D, 12h or 2W" if time_kind == "datetime"
                else "a positive number of periods")
        raise OptionError(f"--horizon must be {what} (got {text!r})") from None
    return float(value)


def journeys_as_of(source, options=None, as_of: str | float | None = None) -> JourneySet:
    """The journeys of an event log as they stood at ``as_of``: rows after it are not read
    (``observed_until=as_of``), so journeys running then are censored (in flight).

    Raises
    ------
    OptionError
        ``as_of`` before the first event of the log, or after its last event by more than
        the gap (no journey is in flight then).
    """
    from journeymodel.data.journeys import load_journeys
    from journeymodel.data.options import ReadOptions
    from journeymodel.errors import InputError

    options = options or ReadOptions()
    if as_of is None:
        return load_journeys(source, options)
    try:
        journeys = load_journeys(source, options.replace(observed_until=as_of))
    except InputError as exc:
        if "is before the first event" in str(exc):
            raise OptionError(f"--as-of {as_of} is before the first event of the log "
                              f"({str(exc).rsplit('(', 1)[-1].rstrip(')')})") from None
        raise
    late = journeys.ledger.dropped.get("after_observed_until", 0)
    last = float(np.nanmax(journeys.end)) if journeys.n_journeys else float("nan")
    if not late and journeys.gap is not None and journeys.observed_until > last + journeys.gap:
        raise OptionError(f"--as-of {as_of} is after the end of the log: its last event "
                          f"({_time_text(last, journeys.time_kind)}) is more than the gap "
                          "before it, so no journey is in flight then; leave --as-of out to "
                          "forecast from the end of the log")
    return journeys


def _time_text(t: float, time_kind: str) -> str:
    if time_kind != "datetime":
        return f"{t:g}"
    from journeymodel.data.timestamps import to_timestamp

    return to_timestamp(t).isoformat()


# ---------------------------------------------------------------------------------------------
# The forecast


@dataclass(frozen=True, eq=False)
class Forecast:
    """What :func:`forecast_in_flight` computed.

    Attributes
    ----------
    as_of, horizon : float
        On the log's time axis (seconds since the epoch for calendar times).
    unit : float
        Length of a "day" of ``daily`` (86,400 s, or one period).
    conversions, churns, dropoffs : ndarray, shape (n_draws,)
        Totals within the horizon, one per posterior draw (each with its own chance).
    daily : ndarray, shape (n_draws, n_days)
        Conversions per day, day 0 starting at ``as_of``.
    journeys : DataFrame or None
        One row per in-flight journey (None on Dask: the workers write the rows):
        ``customer_id``, ``p_conversion``, ``p_churn``,
        ``p_dropoff`` (within the horizon: the share of draws), ``next_touchpoint`` and
        ``p_next`` (the most likely next event given the time already spent, a touchpoint,
        conversion, churn or dropoff), ``expected_conversion_date`` (mean time of the
        conversion in the draws where it converts within the horizon).
    start : ndarray or None
        Start time of each in-flight journey (rows of ``journeys``).
    """

    as_of: float
    horizon: float
    horizon_text: str
    time_kind: str
    unit: float
    n_in_flight: int
    n_unknown: int
    n_backed_off: int
    n_draws: int
    conversions: np.ndarray
    churns: np.ndarray
    dropoffs: np.ndarray
    daily: np.ndarray
    journeys: pd.DataFrame | None
    start: np.ndarray | None

    @classmethod
    def of(cls, summary: ForecastSummary, as_of: float, horizon: float | str, time_kind: str,
           n_draws: int, journeys: pd.DataFrame | None = None,
           start: np.ndarray | None = None) -> Forecast:
        """The forecast of ``summary`` from ``as_of`` to ``horizon`` (a value on the time axis
        ``time_kind``, or a duration :func:`parse_horizon` reads)."""
        value = (parse_horizon(horizon, time_kind) if isinstance(horizon, str)
                 else float(horizon))
        text = horizon.strip() if isinstance(horizon, str) else f"{value:g}"
        unit = DAY if time_kind == "datetime" else 1.0
        return cls(as_of, value, text, time_kind, unit,
                   summary.n_in_flight, summary.n_unknown, summary.n_backed_off, n_draws,
                   summary.conversions, summary.churns, summary.dropoffs, summary.daily,
                   journeys, start)

    def day_labels(self) -> list[str]:
        """Each day's start: YYYY-MM-DD for calendar times, else the period number."""
        starts = self.as_of + self.unit * np.arange(self.daily.shape[1])
        if self.time_kind != "datetime":
            return [f"{s:g}" for s in starts]
        from journeymodel.data.timestamps import to_timestamp

        return [to_timestamp(s).strftime("%Y-%m-%d") for s in starts]

    def as_of_text(self) -> str:
        if self.time_kind != "datetime":
            return f"{self.as_of:g}"
        from journeymodel.data.timestamps import to_timestamp

        return to_timestamp(self.as_of).isoformat()

    def summary(self) -> dict[str, Any]:
        """The JSON of ``journeymodel forecast --json`` (issue 17's exact keys)."""
        daily = [{"date": d, **_interval(self.daily[:, i])}
                 for i, d in enumerate(self.day_labels())]
        return {"as_of": self.as_of_text(), "horizon": self.horizon_text,
                "in_flight": int(self.n_in_flight),
                "conversions": _interval(self.conversions), "churns": _interval(self.churns),
                "dropoffs": _interval(self.dropoffs), "daily": daily}

    def to_result(self) -> Result:
        """Tables (totals, conversions per day), the JSON, notes and the per-journey frame."""
        import pandas as pd

        from journeymodel.models.base import Result

        js = self.summary()
        pct = int(round(CI * 100))
        totals = pd.DataFrame([{"quantity": name, "mean": js[key]["mean"],
                                f"low_{pct}": js[key]["low"], f"high_{pct}": js[key]["high"]}
                               for name, key in (("conversions", "conversions"),
                                                 ("churns", "churns"),
                                                 ("drop-offs", "dropoffs"))])
        daily = pd.DataFrame([{"date": d["date"], "mean": d["mean"], f"low_{pct}": d["low"],
                               f"high_{pct}": d["high"]} for d in js["daily"]])
        title = (f"Forecast of the {self.n_in_flight:,} journeys in flight at {js['as_of']}, "
                 f"next {self.horizon_text}")
        per = "day" if self.time_kind == "datetime" else "period"
        notes = [f"New journeys that start after {js['as_of']} are not counted: only the "
                 f"{self.n_in_flight:,} journeys in flight then are continued.",
                 f"{pct}% intervals from {self.n_draws} posterior draws of the parameters, each "
                 "with its own chance; per-journey probabilities (-o) are the share of draws."]
        if self.n_backed_off:
            notes.append(f"{self.n_backed_off:,} journeys stand in a window the model never "
                         "saw: they back off to the windows ending with their latest "
                         "touchpoints")
        if self.n_unknown:
            notes.append(f"{self.n_unknown:,} journeys in flight end with a touchpoint the "
                         "model does not know: not forecast")
        kinds = {"mean": "number", f"low_{pct}": "count", f"high_{pct}": "count"}
        return Result(json=js, tables=[(title, totals),
                                       (f"Conversions per {per} (journeys in flight)", daily)],
                      frame=self.journeys, notes=notes, kinds=kinds)


def _interval(x: np.ndarray) -> dict[str, float]:
    """Mean and 94% highest-density interval of draws, widened to hold the mean where a skewed
    count puts the mean outside it (a rare day with a few conversions)."""
    from journeymodel.fit.intervals import hdi

    x = np.asarray(x, np.float64)
    mean = float(x.mean()) if len(x) else float("nan")
    if len(x) < 2:
        return {"mean": mean, "low": mean, "high": mean}
    low, high = (float(v) for v in hdi(x, CI))
    return {"mean": mean, "low": min(low, float(np.floor(mean))),
            "high": max(high, float(np.ceil(mean)))}


def check_model(model) -> Any:
    """The holding times of a model that can forecast its journeys in flight.

    Raises
    ------
    OptionError
        Another model type than markov and stages, or a model without holding times.
    """
    model._check_fitted()
    if model.model_type not in ("markov", "stages"):
        raise OptionError(f"forecasting journeys in flight applies to markov and stages "
                          f"models, not to a {model.model_type} model")
    holding = getattr(model, "holding_", None)
    if holding is None:
        raise OptionError("this model has no holding times (time between events): it was "
                          "saved before journeymodel learnt them; fit it again")
    return holding


@dataclass(frozen=True, eq=False)
class Setup:
    """What a forecast and a simulation of continuations share: the holding times, the
    journeys in flight that can be continued, their process, the time axis and the gap."""

    holding: Any
    flight: InFlight
    process: Any
    as_of: float
    horizon: float
    time_kind: str
    gap: float | None
    n_unknown: int

    @property
    def end(self) -> float:
        return self.as_of + self.horizon

    def chunks(self, n_draws: int, seed: int | np.random.Generator, *,
               record: bool = False) -> Iterator[Chunk]:
        return simulate_chunks(self.process, self.flight, self.holding, self.gap, self.end,
                               n_draws, seed, record=record)


def prepare(model: JourneyModel, journeys: JourneySet, horizon: float | str,
            as_of: float | None = None) -> Setup:
    """Check the model and the horizon, find the journeys in flight at ``as_of`` and where
    they stand (:class:`Setup`).

    Raises
    ------
    OptionError
        See :func:`forecast_in_flight`.
    """
    from dataclasses import replace

    if journeys.time_kind not in ("datetime", "period"):
        raise OptionError("forecasting needs event times (this log has none: a path table)")
    horizon_v = (parse_horizon(horizon, journeys.time_kind) if isinstance(horizon, str)
                 else float(horizon))
    if not (np.isfinite(horizon_v) and horizon_v > 0):
        raise OptionError(f"--horizon must be positive (got {horizon!r})")
    holding = check_model(model)
    as_of = float(journeys.observed_until if as_of is None else as_of)
    if journeys.n_journeys and as_of < float(np.nanmax(journeys.end)):
        raise OptionError("these journeys have events after the as-of time: read the log with "
                          "observed_until=as_of (the CLI's --as-of does)")
    gap = getattr(holding, "gap", None)
    gap = journeys.gap if gap is None else float(gap)
    flight = in_flight(journeys, holding, as_of)
    process = make_process(model, journeys, flight, holding)
    ok = process.usable
    order = np.flatnonzero(ok)[np.argsort(process.group_key[ok], kind="stable")]
    if not np.array_equal(order, np.arange(flight.n)):  # usable journeys, grouped by state
        flight = subset(flight, order)
        process = make_process(model, journeys, flight, holding)
    flight = replace(flight, survival=journey_survival(holding, flight, gap))
    return Setup(holding, flight, process, as_of, horizon_v, journeys.time_kind, gap,
                 flight.n_unknown + int((~ok).sum()))


def forecast_in_flight(model: JourneyModel, journeys: JourneySet, horizon: float | str, *,
                       as_of: float | None = None, n_draws: int = 200,
                       seed: int | np.random.Generator = 0) -> Forecast:
    """Forecast conversions, churns and drop-offs of the journeys in flight, per day.

    Parameters
    ----------
    model : MarkovJourneyModel or StageModel
        Fitted, with holding times (``model.holding_``).
    journeys : JourneySet
        The log up to the as-of time (read with ``observed_until`` = as-of, see
        :func:`journeys_as_of`); its censored journeys are the ones in flight.
    horizon : float or str
        On the log's time axis, or a duration such as ``"30D"`` (:func:`parse_horizon`).
    as_of : float, optional
        Default: ``journeys.observed_until``.
    n_draws : int
        Posterior draws (each runs every journey once, with its own chance).
    seed : int or Generator

    Returns
    -------
    Forecast

    Raises
    ------
    OptionError
        Another model type, a model without holding times, a bad horizon, events after as-of,
        ``n_draws`` < 2.

    Examples
    --------
    >>> import journeymodel as jm
    >>> from journeymodel.analysis.forecast import journeys_as_of
    >>> log = journeys_as_of(jm.make_demo_data(300, seed=1).events, as_of="2025-10-01")
    >>> model = jm.MarkovJourneyModel().fit(log)
    >>> f = forecast_in_flight(model, log, "30D", n_draws=50, seed=0)
    >>> sorted(f.summary())
    ['as_of', 'churns', 'conversions', 'daily', 'dropoffs', 'horizon', 'in_flight']
    """
    n_draws = check_draws(n_draws)
    setup = prepare(model, journeys, horizon, as_of)
    summary, frame = simulate_forecast(setup, n_draws, seed)
    back = np.argsort(setup.flight.journey, kind="stable")  # the journeys' own order
    return Forecast.of(summary, setup.as_of, horizon, setup.time_kind, n_draws, frame,
                       subset(setup.flight, back).start)


def check_draws(n_draws: int) -> int:
    """``--draws`` of a forecast: a whole number >= 2.

    Raises
    ------
    OptionError
        Otherwise.
    """
    if isinstance(n_draws, bool) or int(n_draws) < 2:
        raise OptionError(f"--draws must be a whole number >= 2 (got {n_draws!r})")
    return int(n_draws)


@dataclass(frozen=True, eq=False)
class ForecastSummary(Additive):
    """The printed forecast of some journeys in flight, additively: the forecast of a log's
    parts (whole customers each, e.g. Dask partitions) added is the whole log's, to the bit
    (counts per draw; every journey's outcomes do not depend on the others', see
    :mod:`journeymodel.analysis.inflight`).

    ``conversions``, ``churns``, ``dropoffs``: totals per draw, shape (n_draws,); ``daily``:
    conversions per draw and day, shape (n_draws, n_days); ``last_end``: the latest end of any
    journey of the parts (NaN when none), for the check of ``--as-of``.

    Examples
    --------
    >>> a = ForecastSummary(2, 0, 1, np.array([1, 0]), np.zeros(2, int), np.array([1, 1]),
    ...                     np.array([[1], [0]]), 5.0)
    >>> b = a + a
    >>> b.n_in_flight, b.conversions.tolist(), b.daily.tolist(), b.last_end
    (4, [2, 0], [[2], [0]], 5.0)
    """

    n_in_flight: int
    n_unknown: int
    n_backed_off: int
    conversions: np.ndarray
    churns: np.ndarray
    dropoffs: np.ndarray
    daily: np.ndarray
    last_end: float = float("nan")

    def _add(self, other: ForecastSummary) -> ForecastSummary:
        return ForecastSummary(
            self.n_in_flight + other.n_in_flight, self.n_unknown + other.n_unknown,
            self.n_backed_off + other.n_backed_off, self.conversions + other.conversions,
            self.churns + other.churns, self.dropoffs + other.dropoffs,
            self.daily + other.daily, float(np.fmax(self.last_end, other.last_end)))


def simulate_forecast(setup: Setup, n_draws: int, seed: int | np.random.Generator, *,
                      rows: bool = True) -> tuple[ForecastSummary, pd.DataFrame | None]:
    """Run every journey in flight of ``setup`` under ``n_draws`` draws: the
    :class:`ForecastSummary` and (``rows``) one row per journey, in the journeys' order."""
    unit = DAY if setup.time_kind == "datetime" else 1.0
    n_days = max(int(np.ceil(setup.horizon / unit - 1e-9)), 1)
    n = setup.flight.n
    outcome = np.zeros((n_draws, n), np.int8)
    when = np.full((n_draws, n), np.nan)
    for chunk in setup.chunks(n_draws, seed):
        outcome[chunk.draws], when[chunk.draws] = chunk.outcome, chunk.time
    conv = outcome == CONVERTED
    d_c, j_c = np.nonzero(conv)  # only the conversions get a day
    day = np.clip((when[d_c, j_c] - setup.as_of) // unit, 0, n_days - 1).astype(np.int64)
    daily = np.bincount(d_c * n_days + day, minlength=n_draws * n_days).reshape(n_draws,
                                                                                n_days)
    summary = ForecastSummary(n, setup.n_unknown, int(setup.process.backed_off),
                              conv.sum(axis=1), (outcome == CHURNED).sum(axis=1),
                              (outcome == DROPPED).sum(axis=1), daily)
    if not rows:
        return summary, None
    weights = setup.process.next_weights(setup.flight, setup.holding, setup.gap)
    back = np.argsort(setup.flight.journey, kind="stable")  # the journeys' own order
    return summary, _journey_frame(setup.flight, outcome, when, weights, setup.holding,
                                   setup.time_kind, back)


def forecast_part(model: JourneyModel, journeys: JourneySet, horizon: float | str, *,
                  n_draws: int, seed: int, rows: bool = True
                  ) -> tuple[pd.DataFrame | None, ForecastSummary]:
    """The forecast of the journeys in flight of a part of a log (whole customers, read up to
    the as-of time, e.g. a Dask partition): (one row per journey or None, the
    :class:`ForecastSummary` with the part's latest journey end). The parts' summaries added
    are :func:`forecast_in_flight`'s totals of the whole log, to the bit; its rows are theirs.
    """
    setup = prepare(model, journeys, horizon)
    summary, frame = simulate_forecast(setup, n_draws, seed, rows=rows)
    ends = journeys.end[np.isfinite(journeys.end)] if journeys.n_journeys else np.zeros(0)
    last = float(ends.max()) if len(ends) else float("nan")
    return frame, ForecastSummary(summary.n_in_flight, summary.n_unknown, summary.n_backed_off,
                                  summary.conversions, summary.churns, summary.dropoffs,
                                  summary.daily, last)


def _journey_frame(flight, outcome, when, weights, holding, time_kind,
                   order: np.ndarray) -> pd.DataFrame:
    """One row per journey in flight, rows in ``order`` (per-journey figures are computed in
    the simulation's order, then reordered: not the (draws, journeys) arrays)."""
    import pandas as pd

    names = np.asarray(list(holding.targets) + ["dropoff"], dtype=object)
    conv = outcome == CONVERTED
    n_conv = conv.sum(axis=0)
    d_c, j_c = np.nonzero(conv)
    t_sum = np.bincount(j_c, weights=when[d_c, j_c], minlength=outcome.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        t_conv = np.where(n_conv > 0, t_sum / n_conv, np.nan)
    best = weights.argmax(axis=1) if len(weights) else np.zeros(0, np.int64)
    columns = {
        "customer_id": flight.customer,
        "p_conversion": conv.mean(axis=0), "p_churn": (outcome == CHURNED).mean(axis=0),
        "p_dropoff": (outcome == DROPPED).mean(axis=0),
        "next_touchpoint": names[best],
        "p_next": weights[np.arange(len(best)), best] if len(best) else np.zeros(0)}
    frame = pd.DataFrame({k: v[order] for k, v in columns.items()})
    t_conv = t_conv[order]
    frame["expected_conversion_date"] = (
        pd.to_datetime(np.round(t_conv), unit="s", utc=True) if time_kind == "datetime"
        else t_conv)
    return frame


def continuation_chunks(model: JourneyModel, journeys: JourneySet, horizon: float | str, *,
                        as_of: float | None = None, n_draws: int = 1,
                        seed: int | np.random.Generator = 0) -> Iterator[pd.DataFrame]:
    """The continuations of the in-flight journeys as event-log frames, chunk by chunk.

    Columns ``customer_id`` (``<customer>~<draw>``: each draw of a journey is its own
    customer, so ``describe`` reads every continuation as a journey), ``source_customer``,
    ``draw``, ``timestamp`` and ``touchpoint`` (touchpoints, ``conversion`` and ``churn`` rows
    up to the horizon; a drop-off leaves no row, as in real logs). Only events after the as-of
    time: the journeys' past is in the input log.
    """
    if isinstance(n_draws, bool) or int(n_draws) < 1:
        raise OptionError(f"--draws must be a whole number >= 1 (got {n_draws!r})")
    setup = prepare(model, journeys, horizon, as_of)
    names = np.asarray(setup.holding.targets, dtype=object)
    width = len(str(max(int(n_draws) - 1, 0)))
    customers = setup.flight.customer
    for chunk in setup.chunks(int(n_draws), seed, record=True):
        j, d, t, tgt = chunk.events
        order = np.lexsort((t, d, j))
        yield _continuation_frame(customers[j[order]], d[order], t[order], names[tgt[order]],
                                  setup.time_kind, width)


def _continuation_frame(cust, draw, t, what, time_kind, width) -> pd.DataFrame:
    import pandas as pd

    ids = (pd.Series(cust, dtype=object).astype(str) + "~"
           + pd.Series(draw).astype(str).str.zfill(width)).to_numpy(dtype=object)
    stamp = (pd.to_datetime(np.round(t * 1e6).astype("int64"), unit="us", utc=True)
             if time_kind == "datetime" else t)
    return pd.DataFrame({"customer_id": ids, "source_customer": cust, "draw": draw,
                         "timestamp": stamp, "touchpoint": what})
