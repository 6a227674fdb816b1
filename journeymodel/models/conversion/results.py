"""What a fitted conversion model prints: its summary (rates, P(A > B), what was counted,
diagnostics) and its forecast of conversions from new journeys. The posterior quantities these
draw on are methods of :class:`~journeymodel.models.conversion.model.ConversionModel`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from journeymodel.fit.intervals import hdi
from journeymodel.models.base import Result

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.conversion.model import ConversionModel


def forecast(model: ConversionModel, journeys: int, seed: int | np.random.Generator = 0
             ) -> Result:
    """Conversions expected from ``journeys`` new completed journeys (a whole number >= 1,
    checked by :meth:`~journeymodel.models.conversion.model.ConversionModel.forecast`)."""
    import pandas as pd

    from journeymodel.fit.bayes import draws_of

    rng = np.random.default_rng(seed)
    rates = draws_of(model.rate_draws()["levels"])
    n = model.counts_.trials.reshape(rates.shape[1], -1).sum(1)
    alloc = allocate(int(journeys), n)
    sims = rng.binomial(alloc[None, :], rates).astype(np.float64)
    total = sims.sum(1)
    names = [*model.counts_.levels[0], "total"]
    lo, hi = hdi(np.column_stack([sims, total]), model.hdi_prob)
    frame = pd.DataFrame({
        model.by[0]: names, "journeys": [*alloc.tolist(), int(journeys)],
        "expected_conversions": [*sims.mean(0), total.mean()],
        "low": lo, "high": hi})
    pct = round(model.hdi_prob * 100)
    payload = {"journeys": int(journeys), "interval": model.hdi_prob,
               "expected_conversions": float(total.mean()),
               "low": float(lo[-1]), "high": float(hi[-1]),
               "by_" + model.by[0]: {
                   name: {"journeys": int(a), "expected_conversions": float(m),
                          "low": float(a_lo), "high": float(a_hi)}
                   for name, a, m, a_lo, a_hi in zip(
                       names[:-1], alloc, sims.mean(0), lo[:-1], hi[:-1], strict=True)}}
    return Result(json=payload, frame=frame, tables=[(
        f"Conversions from {journeys:,} new journeys ({pct}% predictive HDI)",
        frame.set_index(model.by[0]))])


def summary(model: ConversionModel) -> Result:
    """Rates per level (median, HDI), pooled rate, P(A > B), what was counted, diagnostics."""
    from journeymodel.fit.bayes import interval

    rates = model.rates()
    draws = model.rate_draws()
    pooled = interval(draws["pooled"], model.hdi_prob)
    overall = interval(draws["overall"], model.hdi_prob)
    greater = model.prob_greater()
    key = "personas" if model.by[0] == "persona" else model.by[0] + "s"
    c = model.counts_
    payload: dict[str, Any] = {
        "by": model.by, "hdi_prob": model.hdi_prob,
        key: {str(name): {"conversion_rate": rate_json(row), "journeys": int(
            row["journeys"]), "conversions": int(row["conversions"])}
            for name, row in rates.iterrows()},
        "pooled_rate": rate_json(pooled, ""),
        "overall_rate": rate_json(overall, ""),
        "prob_greater": {str(a): {str(b): round(float(greater.loc[a, b]), 4)
                                  for b in greater.columns if b != a}
                         for a in greater.index},
        "counted": {"journeys": int(c.trials.sum()), "conversions": int(c.conversions.sum()),
                    "left_out_in_flight": c.in_flight,
                    "left_out_started_within_gap": c.recent},
        "censored_journeys": c.censored,
        "diagnostics": model.diagnostics_.to_dict(),
        "parameterization": model.parameterization_,
        "timing": model.timing_,
        "pooling": model.pooling,
    }
    pct = round(model.hdi_prob * 100)
    tables = [(f"Conversion rate by {model.by[0]} (posterior median, {pct}% HDI)",
               shown(rates)),
              (f"P(row {model.by[0]} converts better than column)", greater.round(3))]
    if len(model.by) == 2:
        cells = model.cell_rates()
        payload["cells"] = [
            {model.by[0]: str(a), model.by[1]: str(b), "conversion_rate": rate_json(row),
             "journeys": int(row["journeys"]), "conversions": int(row["conversions"])}
            for (a, b), row in cells.iterrows() if row["journeys"] > 0]
        tables.append((f"Conversion rate by {model.by[0]} / {model.by[1]} (posterior median, "
                       f"{pct}% HDI; cells with journeys)",
                       shown(cells[cells["journeys"] > 0])))
    return Result(json=payload, tables=tables, notes=_notes(model, pooled, overall),
                  kinds={**dict.fromkeys(map(str, greater.columns), "probability"),
                         **TABLE_KINDS})

def counts_line(model: ConversionModel) -> str:
    """What the model counts, in one line (it differs from ``describe``, which counts every
    journey): conversions among journeys whose outcome is known, and what was left out."""
    c = model.counts_
    line = (f"counts: {int(c.conversions.sum()):,} conversions in {int(c.trials.sum()):,} "
            "journeys whose outcome is known")
    if not c.censored:
        return line
    gap = gap_text(model.journeys_) if model.journeys_ is not None else None
    if c.recent and gap:
        return (f"{line}; left out {c.censored:,}: {c.in_flight:,} in flight and "
                f"{c.recent:,} that started within the last {gap} (only a conversion "
                "could be known for them yet)")
    if gap:
        return f"{line}; left out {c.censored:,} in flight or started within the last {gap}"
    return f"{line}; left out {c.censored:,} in flight"

#: What each pooling means, for the summary's line.
POOLING_TEXT = {"partial": "partial (hierarchical: levels borrow strength from each other)",
                "none": "none (each level on its own data; the pooled rate is their mean logit)",
                "complete": "complete (one rate for every level: all journeys together)"}


def _notes(model: ConversionModel, pooled: Any, overall: Any) -> list[str]:
    d = model.diagnostics_
    ok = "converged" if d.ok else "DID NOT CONVERGE (see the warning)"
    return [
        counts_line(model),
        f"pooled rate (a typical {model.by[0]}) {_p(pooled['median'])} "
        f"[{_p(pooled['hdi_low'])}, {_p(pooled['hdi_high'])}]; overall rate "
        f"{_p(overall['median'])} [{_p(overall['hdi_low'])}, {_p(overall['hdi_high'])}]",
        f"pooling: {POOLING_TEXT[getattr(model, 'pooling', 'partial')]}",
        f"sampling {ok}: R-hat max {d.r_hat_max:.3f}, bulk ESS min {d.ess_bulk_min:,.0f}, "
        f"{d.divergences} divergences ({d.chains} chains x {d.draws:,} draws; "
        f"{', '.join(f'{k} {v}' for k, v in model.parameterization_.items())})",
    ]


def allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into whole parts proportional to ``weights`` (largest remainder)."""
    share = total * weights / weights.sum()
    base = np.floor(share).astype(np.int64)
    rest = total - int(base.sum())
    base[np.argsort(-(share - base), kind="stable")[:rest]] += 1
    return base


def rate_json(row: Any, prefix: str = "rate_") -> dict[str, float]:
    """``{"median", "mean", "hdi_low", "hdi_high"}`` of a :meth:`rates` row (``prefix``
    ``"rate_"``) or of an :func:`~journeymodel.fit.bayes.interval` (``prefix`` ``""``)."""
    return {"median": round(float(row[prefix + "median"]), 6),
            "mean": round(float(row[prefix + "mean"]), 6),
            "hdi_low": round(float(row["hdi_low"]), 6),
            "hdi_high": round(float(row["hdi_high"]), 6)}


#: What the numbers of the printed rate tables are (see ``Result.kinds``).
TABLE_KINDS = {"journeys": "count", "conversions": "count", "observed": "probability",
               "rate": "probability", "hdi_low": "probability", "hdi_high": "probability"}


def shown(rates: Any) -> Any:
    """A :meth:`~journeymodel.models.conversion.model.ConversionModel.rates` table as printed:
    the posterior median as ``rate`` with its HDI, and labels a person reads
    (``bargain_hunter / app`` for a cell, not a tuple)."""
    import pandas as pd

    frame = rates[["journeys", "conversions", "observed", "rate_median", "hdi_low",
                   "hdi_high"]].rename(columns={"rate_median": "rate"})
    index = rates.index
    if isinstance(index, pd.MultiIndex):
        labels = [" / ".join(str(v) for v in key) for key in index]
        frame.index = pd.Index(labels, name=" / ".join(str(n) for n in index.names))
    return frame


def _p(value: Any) -> str:
    """A rate as printed in notes: three decimals (``0.279``)."""
    return f"{float(value):.3f}"


def gap_text(meta: Any) -> str | None:
    """The inactivity gap of the journeys a model saw, for a person (``30 days``), or None."""
    gap = getattr(meta, "gap", None)
    if gap is None or not np.isfinite(gap):
        return None
    if meta.time_kind != "datetime":
        return f"{gap:g} periods"
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if gap >= size and gap % size == 0:
            n = int(gap // size)
            return f"{n:,} {unit[:-1] if n == 1 else unit}"
    return f"{gap:,g} seconds"
