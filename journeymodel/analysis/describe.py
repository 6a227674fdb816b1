"""What ``journeymodel describe`` reports about a JourneySet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeymodel.data.journeys import OUTCOMES, JourneySet
from journeymodel.data.journeyset import sequence_keys
from journeymodel.data.ledger import Ledger
from journeymodel.data.timestamps import to_timestamp
from journeymodel.models.base import Result
from journeymodel.stats.summary import JourneySummary, journey_summary


def describe_journeys(journeys: JourneySet, *, top: int = 10) -> Result:
    """Counts, outcome mix, path lengths, top paths, touchpoints, personas and the ledger.

    Weighted journeys (aggregated path tables) count with their weights.
    """
    return describe_summary(journey_summary(journeys), journeys.ledger, top=top)


def describe_summary(summary: JourneySummary, ledger: Ledger, *, top: int = 10) -> Result:
    """:func:`describe_journeys` from a log's additive summary and ledger (e.g. summed over
    Dask partitions, :func:`journeymodel.scale.engine.map_log`)."""
    s = summary
    ledger = ledger.to_dict()
    outcomes = {name: _num(c) for name, c in zip(OUTCOMES, s.outcomes, strict=True)}
    top_paths = _top_paths(s, top)
    payload = {
        "source": ledger["source"],
        "rows_read": ledger["rows_read"],
        "rows_used": ledger["rows_used"],
        "rows_dropped": ledger["rows_dropped"],
        "invalid_fields": ledger["invalid_fields"],
        "notes": ledger["notes"],
        "customers": s.customers,
        "journeys": _num(s.journeys),
        "events": _num(s.events),
        "outcomes": outcomes,
        "conversion_rate_completed": completed_conversion_rate(outcomes),
        "path_length": {
            "mean": s.length_sum / s.journeys if s.journeys else 0.0,
            "median": float(_histogram_quantile(s.length_hist, 0.5)),
            "max": s.max_length,
            "distribution": _length_distribution(s.length_hist),
        },
        "touchpoints": {name: _num(c) for name, c in zip(s.touchpoints, s.touchpoint_events,
                                                          strict=True)},
        "personas": {p: int(c) for p, c in zip(s.personas, s.persona_customers, strict=True)},
        "time": _time_info(s),
        "top_paths": top_paths.to_dict(orient="records"),
    }
    invalid = ledger["invalid_fields"]
    overview = pd.DataFrame(
        {"count": [payload["rows_read"], payload["rows_used"], sum(ledger["rows_dropped"].values()),
                   *invalid.values(), payload["customers"], payload["journeys"],
                   payload["events"]]},
        index=pd.Index(["rows read", "rows used", "rows dropped",
                        *(f"invalid {k} (row kept)" for k in invalid), "customers", "journeys",
                        "events"], name="ledger"))
    payload["counts"] = counts_line(payload)
    drops = pd.DataFrame({"rows": list(ledger["rows_dropped"].values())},
                         index=pd.Index(list(ledger["rows_dropped"]), name="dropped because"))
    total = sum(outcomes.values()) or 1
    outcome_frame = pd.DataFrame(
        {"journeys": list(outcomes.values()),
         "share": [v / total for v in outcomes.values()]},
        index=pd.Index(list(outcomes), name="outcome"))
    tp = pd.Series(payload["touchpoints"], name="events").sort_values(ascending=False)
    tables = [("Ledger", overview)]
    if len(drops):
        tables.append(("Dropped rows", drops))
    tables += [("Outcomes", outcome_frame),
               ("Touchpoints", tp.to_frame().rename_axis("touchpoint")),
               (f"Top {len(top_paths)} paths", top_paths)]
    if payload["personas"]:
        tables.append(("Personas", pd.Series(payload["personas"], name="customers")
                       .to_frame().rename_axis("persona")))
    notes = [payload["counts"]] + [f"note: {n}" for n in ledger["notes"]]
    return Result(json=payload, tables=tables, notes=notes)


def counts_line(payload: dict) -> str:
    """One line saying what ``describe`` counts, to set beside each model's own line."""
    o = payload["outcomes"]
    until = payload["time"].get("observed_until")
    end = (f" at {str(until)[:19].replace('T', ' ')}, the end of observation"
           if until is not None else "")
    parts = " + ".join(_plural(o[key], word) for key, word in (
        ("conversion", "conversion"), ("churn", "churn"), ("dropoff", "drop-off")))
    return (f"counts: {_plural(payload['journeys'], 'journey')} = {parts} + "
            f"{o['censored']:,} censored (still open{end}); describe counts every journey, each "
            "model says which ones it uses")


def _plural(n: float, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _num(x) -> int | float:
    x = float(x)
    return int(x) if x.is_integer() else x


def completed_conversion_rate(outcomes: dict[str, float]) -> float | None:
    """Conversions among the journeys that ended (converted, churned or dropped off; censored
    journeys left out), from ``outcomes`` (:meth:`JourneySet.outcome_counts`); None when none
    ended.

    Examples
    --------
    >>> completed_conversion_rate({"conversion": 1, "churn": 1, "dropoff": 2, "censored": 6})
    0.25
    """
    done = outcomes["conversion"] + outcomes["churn"] + outcomes["dropoff"]
    return outcomes["conversion"] / done if done else None


def _histogram_quantile(hist: np.ndarray, q: float) -> int:
    """The ``q`` quantile of path lengths from their weighted histogram: the shortest length
    whose cumulative weight reaches ``q`` of the total (0 without journeys)."""
    if not len(hist) or not hist.sum():
        return 0
    cw = np.cumsum(hist)
    return int(np.searchsorted(cw, q * cw[-1]))


def _length_distribution(hist: np.ndarray) -> dict[str, float]:
    counts = np.zeros(11)
    counts[:min(len(hist), 10)] = hist[:10]
    counts[10] = hist[10:].sum()
    return {(str(i) if i < 10 else "10+"): _num(c) for i, c in enumerate(counts) if c}


def _top_paths(s: JourneySummary, top: int) -> pd.DataFrame:
    keys = sequence_keys(s.path_codes, s.path_offsets)
    order = np.argsort(keys, kind="stable")  # the paths in key order, as np.unique gives them
    total, conv = s.path_journeys[order], s.path_conversions[order]
    best = order[np.argsort(-total, kind="stable")[:top]]
    names = np.asarray(s.touchpoints, dtype=object)
    paths = [" > ".join(names[s.path_codes[s.path_offsets[i]:s.path_offsets[i + 1]]])
             for i in best]  # at most ``top`` paths
    total, conv = s.path_journeys[best], s.path_conversions[best]
    return pd.DataFrame({
        "path": [p if p else "(no touchpoint)" for p in paths],
        "journeys": [_num(t) for t in total],
        "conversions": [_num(c) for c in conv],
        "conversion_rate": conv / total,
    })


def _time_info(s: JourneySummary) -> dict[str, object]:
    if s.time_kind == "none" or not np.isfinite(s.first):
        return {"kind": s.time_kind}
    lo, hi = s.first, s.last
    if s.time_kind == "datetime":
        fmt = lambda t: to_timestamp(t).isoformat()  # noqa: E731
        return {"kind": "datetime", "first": fmt(lo), "last": fmt(hi),
                "observed_until": fmt(s.observed_until),
                "gap_days": None if s.gap is None else s.gap / 86400}
    return {"kind": "period", "first": lo, "last": hi, "observed_until": s.observed_until,
            "gap_periods": s.gap}
