"""What ``journeymodel describe`` reports about a JourneySet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeymodel.data.journeys import OUTCOMES, JourneySet
from journeymodel.data.timestamps import to_timestamp
from journeymodel.models.base import Result


def describe_journeys(journeys: JourneySet, *, top: int = 10) -> Result:
    """Counts, outcome mix, path lengths, top paths, touchpoints, personas and the ledger.

    Weighted journeys (aggregated path tables) count with their weights.
    """
    js = journeys
    ledger = js.ledger.to_dict()
    outcomes = js.outcome_counts()
    lengths = js.lengths
    w = js.weight
    top_paths = _top_paths(js, top)
    length_dist = _length_distribution(lengths, w)
    payload = {
        "source": ledger["source"],
        "rows_read": ledger["rows_read"],
        "rows_used": ledger["rows_used"],
        "rows_dropped": ledger["rows_dropped"],
        "invalid_fields": ledger["invalid_fields"],
        "notes": ledger["notes"],
        "customers": int(len(np.unique(js.customer[js.customer >= 0]))),
        "journeys": _num(w.sum()),
        "events": _num(np.repeat(w, lengths).sum()),
        "outcomes": outcomes,
        "conversion_rate_completed": completed_conversion_rate(outcomes),
        "path_length": {
            "mean": float(np.average(lengths, weights=w)) if w.sum() else 0.0,
            "median": float(_weighted_quantile(lengths, w, 0.5)),
            "max": int(lengths.max()) if len(lengths) else 0,
            "distribution": length_dist,
        },
        "touchpoints": js.touchpoint_counts(),
        "personas": js.persona_customers(),
        "time": _time_info(js),
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


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    if len(x) == 0:
        return 0.0
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, q * cw[-1])])


def _length_distribution(lengths: np.ndarray, w: np.ndarray) -> dict[str, float]:
    bins = np.minimum(lengths, 10)
    counts = np.bincount(bins, weights=w, minlength=11)
    return {(str(i) if i < 10 else "10+"): _num(c) for i, c in enumerate(counts) if c}


def _top_paths(js: JourneySet, top: int) -> pd.DataFrame:
    keys = js.path_keys()
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    total = np.bincount(inverse, weights=js.weight)
    conv = np.bincount(inverse, weights=js.weight * (js.outcome == OUTCOMES.index("conversion")))
    best = np.argsort(-total, kind="stable")[:top]
    sub = js.take(first[best])
    return pd.DataFrame({
        "path": [p if p else "(no touchpoint)" for p in sub.path_strings()],
        "journeys": [_num(t) for t in total[best]],
        "conversions": [_num(c) for c in conv[best]],
        "conversion_rate": conv[best] / total[best],
    })


def _time_info(js: JourneySet) -> dict[str, object]:
    if js.time_kind == "none" or not np.isfinite(js.start).any():
        return {"kind": js.time_kind}
    lo, hi = float(np.nanmin(js.start)), float(np.nanmax(js.end))
    if js.time_kind == "datetime":
        fmt = lambda s: to_timestamp(s).isoformat()  # noqa: E731
        return {"kind": "datetime", "first": fmt(lo), "last": fmt(hi),
                "observed_until": fmt(js.observed_until),
                "gap_days": None if js.gap is None else js.gap / 86400}
    return {"kind": "period", "first": lo, "last": hi, "observed_until": js.observed_until,
            "gap_periods": js.gap}
