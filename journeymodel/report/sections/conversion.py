"""Conversion section: a forest plot of the conversion rate per persona (posterior means with
highest-density intervals) and the table of pairwise P(persona A converts better than B)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from journeymodel.report.figure import (
    Figure,
    Section,
    Table,
    new_figure,
    pct,
    percent_format,
    render,
    shade,
    style_axes,
)

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.conversion.model import ConversionModel
    from journeymodel.report.palette import Palette

BETTER = "#2ca02c"


def conversion_section(model: ConversionModel, label: str, palette: Palette, *,
                       sid: str = "conversion") -> Section:
    """The conversion model's section: forest plot, P(A > B) table, sampling diagnostics."""
    by = model.by[0]
    what = "persona" if by == "persona" else by.replace("_", " ")
    intro = (f"A hierarchical Bayesian model of the conversion rate by {what}: each "
             f"{what}'s rate is estimated from its own journeys and pulled toward the others "
             "in proportion to how little data it has (partial pooling). Every rate comes "
             "with its credible interval, and every pair with the probability that one "
             "converts better than the other.")
    section = Section(sid, f"Conversion by {what} ({label})", intro)
    d = model.diagnostics_
    section.facts = [("completed journeys", f"{int(model.counts_.trials.sum()):,}"),
                     ("conversions", f"{int(model.counts_.conversions.sum()):,}"),
                     ("left out: in flight", f"{model.counts_.in_flight:,}"),
                     ("left out: started within the last gap", f"{model.counts_.recent:,}"),
                     ("sampling", "converged" if d.ok else "did NOT converge")]
    section.items += [forest_figure(model, palette, sid), greater_table(model, sid)]
    return section


def conversion_rates(model: ConversionModel) -> tuple[pd.DataFrame, dict[str, float]]:
    """The model's own rates (:meth:`~ConversionModel.rates`: journeys, conversions, observed,
    rate_mean, rate_median, hdi_low, hdi_high per level of the first grouping, index as text)
    and the pooled rate's mean, median and HDI (:func:`journeymodel.fit.bayes.interval` of
    the model's pooled draws, as its summary gives them)."""
    from journeymodel.fit.bayes import interval

    rates = model.rates()
    rates.index = pd.Index([str(v) for v in rates.index], name=rates.index.name)
    pooled = interval(model.rate_draws()["pooled"], model.hdi_prob)
    return rates, {key: float(pooled[key]) for key in ("mean", "median", "hdi_low",
                                                         "hdi_high")}


def forest_figure(model: ConversionModel, palette: Palette, sid: str) -> Figure:
    rates, pooled = conversion_rates(model)
    rates = rates.sort_values("rate_median", kind="stable")
    by = model.by[0]
    names = [str(n) for n in rates.index]
    y = np.arange(len(names))
    fig = new_figure(10, 1.5 + 0.5 * len(names))
    ax = fig.add_subplot()
    lo, hi = float(pooled["hdi_low"]), float(pooled["hdi_high"])
    ax.axvspan(lo, hi, color="#e8e8e8", zorder=0,
               label=f"typical {by} (pooled median), {_p(model)} HDI")
    ax.axvline(float(pooled["median"]), color="#9a9a9a", linestyle="--", linewidth=1, zorder=1)
    colours = [palette.level(by, n) for n in names]
    ax.hlines(y, rates["hdi_low"], rates["hdi_high"], colors=colours, linewidth=3, zorder=2)
    ax.scatter(rates["rate_median"], y, color=colours, s=60, zorder=3,
               label=f"posterior median with {_p(model)} HDI")
    ax.scatter(rates["observed"], y, marker="x", color="#222222", s=30, zorder=4,
               label="observed rate (conversions / journeys)")
    ax.set_yticks(y, [f"{n}\n{int(r.journeys):,} journeys" for n, r in
                      zip(names, rates.itertuples(), strict=True)], fontsize=8.5)
    for yi, r in enumerate(rates.itertuples()):
        ax.text(r.hdi_high, yi, f"  {r.rate_median:.1%} [{r.hdi_low:.1%}, {r.hdi_high:.1%}]",
                va="center", fontsize=8)
    right = max(float(rates["hdi_high"].max()), hi)
    ax.set_xlim(max(0.0, min(float(rates["hdi_low"].min()), lo) - 0.05), min(1.0, right * 1.25
                                                                           + 0.02))
    ax.xaxis.set_major_formatter(percent_format())
    ax.set_xlabel("conversion rate of a completed journey")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, frameon=False)
    ax.set_ylim(-0.7, len(names) - 0.3)
    style_axes(ax)
    d = model.diagnostics_
    caption = (f"Conversion rate per {by}: dot = posterior mean, bar = {_p(model)} highest-"
               f"density interval (the rate lies inside with {_p(model)} probability given the "
               "model), cross = the raw observed rate. The grey band is the typical "
               f"{by}'s rate (the hierarchical mean) with its interval. Sampling "
               + ("converged" if d.ok else "did NOT converge, so the intervals may be wrong")
               + f" (R-hat max {d.r_hat_max:.3f}, bulk ESS min {d.ess_bulk_min:.0f}, "
               f"{d.divergences} divergences; {d.chains} chains x {d.draws} draws).")
    return Figure(f"{sid}-forest", f"Conversion rate by {by}", caption, render(fig))


def greater_table(model: ConversionModel, sid: str) -> Table:
    greater = model.prob_greater()
    greater.index = greater.columns = [str(v) for v in greater.index]
    rates, _ = conversion_rates(model)
    order = list(rates.sort_values("rate_median", ascending=False, kind="stable").index)
    greater = greater.loc[order, order]
    values = greater.to_numpy()
    n = len(order)
    frame = pd.DataFrame([[("-" if i == j else pct(values[i, j], 0)) for j in range(n)]
                          for i in range(n)], index=pd.Index([str(o) for o in order],
                                                             name="P(row > column)"),
                         columns=[str(o) for o in order])
    styles = [["" if i == j else shade(values[i, j], BETTER) for j in range(n)]
              for i in range(n)]
    by = model.by[0]
    return Table(f"{sid}-greater", f"P(row {by} converts better than column {by})",
                 "Posterior probability that the row's conversion rate is higher than the "
                 "column's, from the joint posterior draws: near 100% or 0% is a clear "
                 "difference, near 50% means the data cannot tell them apart. Rows sorted by "
                 "posterior mean rate.", frame, styles)


def _p(model) -> str:
    return f"{round(model.hdi_prob * 100)}%"
