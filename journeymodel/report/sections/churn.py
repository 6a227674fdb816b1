"""Churn section: retention curves per persona with credible bands, the forecast of the
customers active now over the periods ahead, and (BG/NBD with its spend model) customer
lifetime value per persona."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from journeymodel.report.figure import (
    Figure,
    Section,
    new_figure,
    percent_format,
    render,
    spread,
    style_axes,
)

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.churn.model import ChurnModel
    from journeymodel.report.palette import Palette

PERIODS = 12
HORIZONS = (1, 3, 6, 12)
_UNITS = {"D": "days", "W": "weeks", "M": "months", "Y": "years", "period": "periods"}
_NAMES = {"sbg": "shifted-beta-geometric", "weibull": "Weibull", "bgnbd": "BG/NBD"}


def churn_section(model: ChurnModel, label: str, palette: Palette, *,
                  sid: str = "churn") -> Section:
    """The churn model's section: retention curves and the forecast ahead."""
    unit = _unit(model)
    intro = (f"A hierarchical Bayesian {_NAMES.get(model.model, model.model)} churn model per "
             "persona: how many customers stay, period by period, and how many of those "
             f"active now are expected to remain over the next {HORIZONS[-1]} {unit}.")
    if model.model == "bgnbd":
        intro = (f"A hierarchical Bayesian BG/NBD model per persona (no churn events needed): "
                 "the chance a customer is still active after each repeat purchase, and the "
                 f"purchases expected over the next {HORIZONS[-1]} {unit}.")
    section = Section(sid, f"Retention and churn by persona ({label})", intro)
    d = model.diagnostics_
    section.facts = [("customers", f"{int(np.sum(model.customers_)):,}"),
                     ("churned" if model.model != "bgnbd" else "repeat buyers",
                      f"{int(np.sum(model.events_)):,}"),
                     ("time unit", unit), ("sampling", "converged" if d.ok else
                                           "did NOT converge")]
    section.items += [retention_figure(model, palette, sid), forecast_figure(model, palette, sid)]
    if getattr(model, "spend", False):
        section.items.append(clv_figure(model, palette, sid))
    return section


def _unit(model: ChurnModel) -> str:
    unit = model.info_.get("time_unit", "period")
    return _UNITS.get(unit, unit)


def _diag_text(model: ChurnModel) -> str:
    d = model.diagnostics_
    verdict = "converged" if d.ok else "did NOT converge, so the bands may be wrong"
    return (f"Sampling {verdict} (R-hat max {d.r_hat_max:.3f}, bulk ESS min "
            f"{d.ess_bulk_min:.0f}, {d.divergences} divergences; {d.chains} chains x "
            f"{d.draws} draws).")


def retention_figure(model: ChurnModel, palette: Palette, sid: str) -> Figure:
    ret = model.retention(PERIODS)
    period = ret["period"].values
    fig = new_figure(10, 4.6)
    axes = fig.subplots(1, 2, width_ratios=[3, 2])
    pct = f"{round(model.hdi_prob * 100)}%"
    for i, persona in enumerate(ret["persona"].values):
        colour = palette.persona(str(persona))
        for ax, name in zip(axes, ("survival", "hazard"), strict=True):
            mean = ret[f"{name}_mean"].values[i]
            x = np.concatenate([[0], period]) if name == "survival" else period
            y = np.concatenate([[1.0], mean]) if name == "survival" else mean
            lo = ret[f"{name}_low"].values[i]
            hi = ret[f"{name}_high"].values[i]
            lo = np.concatenate([[1.0], lo]) if name == "survival" else lo
            hi = np.concatenate([[1.0], hi]) if name == "survival" else hi
            ax.fill_between(x, lo, hi, color=colour, alpha=0.2, linewidth=0)
            ax.plot(x, y, color=colour, linewidth=2, marker="o", markersize=3,
                    label=str(persona))
    ends = ret["survival_mean"].values[:, -1]
    for i, (end, y) in enumerate(zip(ends, spread(ends, 0.045), strict=True)):
        axes[0].text(period[-1] + 0.15, y, f"{end:.0%}", va="center", fontsize=8,
                     color=palette.persona(str(ret["persona"].values[i])))
    bg = model.model == "bgnbd"
    axis = "repeat transactions" if bg else f"{_unit(model)} since the start of the lifetime"
    axes[0].set_title("P(still active) after n repeat transactions" if bg else "Retention")
    axes[0].set_ylabel("share still active")
    axes[1].set_title("Drop-out at the n-th transaction" if bg else "Churn hazard per period")
    axes[1].set_ylabel("P(drop out)" if bg else "P(churn in period | active at its start)")
    for ax in axes:
        ax.set_xlabel(axis)
        ax.yaxis.set_major_formatter(percent_format())
        style_axes(ax, grid="y")
    axes[0].set_ylim(0, 1.02)
    axes[0].set_xlim(0, period[-1] + 1)
    axes[0].legend(frameon=False, loc="lower left")
    origin = str(model.info_.get("origin", "")).replace("_", " ")
    caption = (("Share of customers still active after each repeat transaction, and the "
                "drop-out probability at each, per persona" if bg else
                f"Share of customers still active t {_unit(model)} after their "
                f"{origin or 'start'}, and the probability of churning in each period given "
                "active at its start, per persona")
               + f": lines are posterior means, bands {pct} highest-density intervals. "
               + _diag_text(model))
    return Figure(f"{sid}-retention", "Retention curves by persona", caption, render(fig))


def forecast_bands(model: ChurnModel, horizons=HORIZONS) -> dict[str, np.ndarray]:
    """Forecast per persona at each horizon: ``mean``, ``low``, ``high`` (n_personas + 1,
    n_horizons + 1) with a first column for now (horizon 0) and a last row for all; ``what``
    says which quantity (survivors or transactions)."""
    bg = model.model == "bgnbd"
    key = "transactions" if bg else "survivors"
    names = [*model.personas_, "all"]
    out = {s: np.zeros((len(names), len(horizons) + 1)) for s in ("mean", "low", "high")}
    for j, h in enumerate(horizons, start=1):
        per = model.forecast(horizon=float(h), seed=0).json["personas"]
        for i, name in enumerate(names):
            for s in ("mean", "low", "high"):
                out[s][i, j] = per[name][f"{key}_{s}"]
            if not bg and j == 1:
                for s in ("mean", "low", "high"):
                    out[s][i, 0] = per[name]["active_now"]
    return {**out, "horizon": np.array([0, *horizons], float), "names": names, "what": key}


def forecast_figure(model: ChurnModel, palette: Palette, sid: str) -> Figure:
    bands = forecast_bands(model)
    fig = new_figure(10, 4.2)
    ax = fig.add_subplot()
    x = bands["horizon"]
    for i, name in enumerate(bands["names"][:-1]):
        colour = palette.persona(name)
        ax.fill_between(x, bands["low"][i], bands["high"][i], color=colour, alpha=0.2,
                        linewidth=0)
        ax.plot(x, bands["mean"][i], color=colour, linewidth=2, marker="o", markersize=4,
                label=name)
    ends = bands["mean"][:-1, -1]
    top = float(np.max(bands["high"][:-1])) or 1.0
    for i, y in enumerate(spread(ends, 0.06 * top)):
        m, lo, hi = bands["mean"][i, -1], bands["low"][i, -1], bands["high"][i, -1]
        ax.text(x[-1] + 0.2, y, f"{m:,.0f} [{lo:,.0f}, {hi:,.0f}]", va="center", fontsize=8,
                color=palette.persona(bands["names"][i]))
    unit = _unit(model)
    pct = f"{round(model.hdi_prob * 100)}%"
    total = [bands[s][-1, -1] for s in ("mean", "low", "high")]
    if bands["what"] == "survivors":
        title = "Forecast: customers active now who are still active ahead"
        ax.set_ylabel("customers still active")
        caption = (f"Of the customers active at the end of observation ({bands['mean'][-1, 0]:,.0f}"
                   f"), the expected number still active 1 to {HORIZONS[-1]} {unit} later, per "
                   f"persona: lines are posterior means, bands {pct} highest-density intervals "
                   f"over the parameter uncertainty. All personas after {HORIZONS[-1]} {unit}: "
                   f"{total[0]:,.0f} [{total[1]:,.0f}, {total[2]:,.0f}]. " + _diag_text(model))
    else:
        title = "Forecast: repeat transactions expected ahead"
        ax.set_ylabel("expected transactions (cumulative)")
        caption = (f"Expected repeat transactions of the known customers over the next 1 to "
                   f"{HORIZONS[-1]} {unit}, per persona: posterior means with {pct} "
                   f"highest-density bands. All personas: {total[0]:,.0f} "
                   f"[{total[1]:,.0f}, {total[2]:,.0f}]. " + _diag_text(model))
    ax.set_xlabel(f"{unit} after the end of observation")
    ax.set_xlim(0, x[-1] * 1.22)
    ax.set_ylim(0, None)
    ax.legend(frameon=False, loc="lower left" if bands["what"] == "survivors" else "upper left")
    style_axes(ax, grid="y")
    return Figure(f"{sid}-forecast", title, caption, render(fig))


def clv_figure(model: ChurnModel, palette: Palette, sid: str) -> Figure:
    """Customer lifetime value per customer of each persona over the forecast's last horizon
    (undiscounted), as the forecast computes it: posterior mean with its interval."""
    horizon = HORIZONS[-1]
    per = model.forecast(horizon=float(horizon), seed=0).json["personas"]
    names = list(model.personas_)
    mean = np.array([per[n]["clv"]["mean"] for n in names])
    low = np.array([per[n]["clv"]["low"] for n in names])
    high = np.array([per[n]["clv"]["high"] for n in names])
    fig = new_figure(10, 0.9 + 0.5 * len(names))
    ax = fig.add_subplot()
    y = np.arange(len(names))[::-1]
    ax.barh(y, mean, color=[palette.persona(n) for n in names], alpha=0.8)
    ax.errorbar(mean, y, xerr=[mean - low, high - mean], fmt="none", ecolor="#333333",
                capsize=3, linewidth=1)
    for yi, m, lo, hi in zip(y, mean, low, high, strict=True):
        ax.text(hi * 1.02, yi, f"{m:,.2f} [{lo:,.2f}, {hi:,.2f}]", va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_xlim(0, float(high.max()) * 1.35 or 1.0)
    ax.set_xlabel(f"expected value per customer over the next {horizon} {_unit(model)}")
    style_axes(ax, grid="x")
    pct = f"{round(model.hdi_prob * 100)}%"
    allp = per["all"]["clv"]
    caption = (f"Customer lifetime value: the expected value of a persona's known customers "
               f"over the next {horizon} {_unit(model)} (BG/NBD transactions times the "
               f"Gamma-Gamma value per transaction, undiscounted), posterior mean with its "
               f"{pct} highest-density interval. All customers: {allp['mean']:,.2f} "
               f"[{allp['low']:,.2f}, {allp['high']:,.2f}] each. " + _diag_text(model))
    return Figure(f"{sid}-clv", "Customer lifetime value by persona", caption, render(fig))
