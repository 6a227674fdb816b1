"""Backtest a forecast of the journeys in flight: what happened next, beside what was forecast.

A forecast made at an as-of time on a log that goes on past it (:func:`backtest`) is compared
with what the rest of the log shows for the same journeys, cut by the same journey rules (the
inactivity gap) on the whole log: a journey in flight at as-of is the journey of the whole log
with the same customer and start (segmentation before as-of depends only on earlier events, so
it is the same journey). Within the horizon it converted or churned if its outcome row falls
there, and dropped off if its last touchpoint plus the gap does (and the whole log shows the
silence). Journeys that start after as-of are left out on both sides.

Reported: totals and conversions per day, forecast (mean and 94% interval) beside realised;
the share of days whose realised conversions fall inside their interval (coverage); and per
journey the Brier score and AUC of the forecast P(conversion within the horizon).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from journeymodel.data.journeyset import CHURN, CONVERSION, DROPOFF, JourneySet
from journeymodel.errors import OptionError

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.analysis.forecast import Forecast
    from journeymodel.models.base import Result

__all__ = ["Backtest", "backtest", "realized"]


@dataclass(frozen=True, eq=False)
class Backtest:
    """Forecast beside realised outcomes of the same journeys.

    ``conversions``, ``churns``, ``dropoffs``: realised totals; ``daily``: realised conversions
    per day (as ``forecast.daily``); ``converted``: per journey in flight (the forecast's rows),
    whether it converted within the horizon.
    """

    forecast: Forecast
    conversions: int
    churns: int
    dropoffs: int
    daily: np.ndarray
    converted: np.ndarray

    def coverage(self) -> tuple[int, int]:
        """(days whose realised conversions lie inside the 94% interval, days)."""
        inside = [d["low"] <= r <= d["high"]
                  for d, r in zip(self.forecast.summary()["daily"], self.daily, strict=True)]
        return int(sum(inside)), len(inside)

    def scores(self) -> dict[str, float]:
        """Brier score and AUC of the per-journey P(conversion within the horizon)."""
        p = self.forecast.journeys["p_conversion"].to_numpy(np.float64)
        y = self.converted
        brier = float(np.mean((p - y) ** 2)) if len(y) else float("nan")
        return {"brier": brier, "auc": auc(p, y)}

    def to_json(self) -> dict[str, Any]:
        js = self.forecast.summary()
        hit, days = self.coverage()
        return {"realized": {"conversions": self.conversions, "churns": self.churns,
                             "dropoffs": self.dropoffs},
                "daily": [{"date": d["date"], "realized": int(r)}
                          for d, r in zip(js["daily"], self.daily, strict=True)],
                "coverage": {"days_inside": hit, "days": days,
                             "share": hit / days if days else None},
                **self.scores()}

    def add_to(self, result: Result) -> Result:
        """``result`` (the forecast's) with the realised columns, the scores and a note."""
        pct = int(round(100 * _ci()))
        totals = result.tables[0][1].copy()
        totals["realized"] = [self.conversions, self.churns, self.dropoffs]
        totals["inside"] = _inside(totals, pct)
        daily = result.tables[1][1].copy()
        daily["realized"] = self.daily
        daily["inside"] = _inside(daily, pct)
        result.tables[0] = (result.tables[0][0] + ", beside what happened", totals)
        result.tables[1] = (result.tables[1][0] + ", beside what happened", daily)
        hit, days = self.coverage()
        s = self.scores()
        result.notes.append(
            f"Backtest: {hit} of {days} days ({hit / max(days, 1):.0%}) had realised "
            f"conversions inside their {pct}% interval; per journey, Brier score "
            f"{s['brier']:.4f} and AUC {s['auc']:.3f} of P(conversion within the horizon).")
        result.json["backtest"] = self.to_json()
        result.kinds.update({"realized": "count"})
        return result


def _ci() -> float:
    from journeymodel.analysis.forecast import CI

    return CI


def _inside(frame, pct: int) -> list[str]:
    low, high = frame[f"low_{pct}"].to_numpy(), frame[f"high_{pct}"].to_numpy()
    r = frame["realized"].to_numpy()
    return np.where((low <= r) & (r <= high), "yes", "no").tolist()


def realized(full: JourneySet, customers: np.ndarray, starts: np.ndarray, as_of: float,
             end: float) -> tuple[np.ndarray, np.ndarray]:
    """(outcome code, time) within ``(as_of, end]`` of the journeys of ``full`` (the whole
    log) that have these customers and start times; codes as
    :mod:`journeymodel.analysis.forecast` (0 none, 1 conversion, 2 churn, 3 drop-off).

    Raises
    ------
    OptionError
        A journey in flight has no match in the whole log (not the same log or options).
    """
    import pandas as pd

    from journeymodel.analysis.forecast import CHURNED, CONVERTED, DROPPED

    ids = full.customers[full.customer] if len(full.customers) else np.zeros(0, object)
    table = pd.DataFrame({"customer_id": ids.astype(str), "start": full.start,
                          "row": np.arange(full.n_journeys)})
    want = pd.DataFrame({"customer_id": np.asarray(customers).astype(str), "start": starts})
    rows = want.merge(table, on=["customer_id", "start"], how="left")["row"].to_numpy()
    if np.isnan(rows.astype(np.float64)).any():
        raise OptionError("the journeys in flight at --as-of are not all in the whole log: "
                          "read both with the same options")
    rows = rows.astype(np.int64)
    outcome = full.outcome[rows]
    gap = full.gap if full.gap is not None else np.inf
    last_tp = np.where(full.lengths[rows] > 0,
                       full.times[np.maximum(full.offsets[1:][rows] - 1, 0)], full.start[rows])
    t = np.where(outcome == DROPOFF, last_tp + gap, full.end[rows])
    code = np.select([outcome == CONVERSION, outcome == CHURN, outcome == DROPOFF],
                     [CONVERTED, CHURNED, DROPPED], 0).astype(np.int8)
    inside = (t > as_of) & (t <= end)
    return np.where(inside, code, 0).astype(np.int8), np.where(inside, t, np.nan)


def backtest(forecast: Forecast, full: JourneySet, starts: np.ndarray) -> Backtest:
    """Compare ``forecast`` with what ``full`` (the whole log, read with the same options)
    shows of its journeys in flight, whose start times are ``starts``.

    Raises
    ------
    OptionError
        The whole log ends before the horizon does (nothing to compare every day with).
    """
    from journeymodel.analysis.forecast import CHURNED, CONVERTED, DROPPED

    end = forecast.as_of + forecast.horizon
    if full.observed_until < end:
        raise OptionError("the log ends before the horizon does: a backtest needs the whole "
                          "horizon after --as-of (shorten --horizon or move --as-of back)")
    code, t = realized(full, forecast.journeys["customer_id"].to_numpy(), starts,
                       forecast.as_of, end)
    conv = code == CONVERTED
    n_days = forecast.daily.shape[1]
    day = np.clip((t[conv] - forecast.as_of) // forecast.unit, 0, n_days - 1).astype(np.int64)
    return Backtest(forecast, int(conv.sum()), int((code == CHURNED).sum()),
                    int((code == DROPPED).sum()), np.bincount(day, minlength=n_days), conv)


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """Mann-Whitney probability that a positive scores above a negative (ties count half);
    NaN without both classes."""
    y = np.asarray(y, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    us, inv = np.unique(score, return_inverse=True)
    pos = np.bincount(inv, weights=y, minlength=len(us))
    neg = np.bincount(inv, weights=~y, minlength=len(us))
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (n_pos * n_neg))
