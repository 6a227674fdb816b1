"""Emotion curves and the pain-point section of the report.

The emotion curve comes from a fitted model's ``experience_`` dataset
(:func:`journeymodel.analysis.experience.journey_experience`): the stages' curve is drawn under the
columns of the journey map (:func:`draw_stage_emotion`, called by ``figures_stages``), sentiment
along the journey's positions is a companion figure (:func:`position_figure`). The pain-point
section ranks leaks, friction and channel/device gaps with
:func:`journeymodel.analysis.painpoints.find_pain_points` over every Markov and stages model of the
report: a table per kind, the gap chart (drop-off after a switch against staying, and what the
switch costs) and sentiment per touchpoint.

Nothing is drawn from data that is not there: no emotion figure without sentiment
(``experience_.attrs["has_sentiment"] == 0``), no section from models saved before the
experience data existed (``experience_ is None``), no gap chart without gaps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from journeymodel.analysis.painpoints import _N_DRAWS as N_DRAWS
from journeymodel.report.figure import Figure, Section, Table, new_figure, render, style_axes
from journeymodel.report.palette import Palette

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

#: Items per kind in the pain-point tables, and switches in the gap chart.
TOP = 5
TOP_GAPS = 8
#: Positions (and touchpoints) with fewer scored events do not set the axis range.
MIN_SCORED_FOR_RANGE = 30
_MUTED = "#5b6672"
#: White box behind labels that may sit on a line.
_HALO = {"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.85}
_KIND_NAMES = {"state": "state", "transition": "move", "touchpoint": "touchpoint",
               "stage": "stage", "device": "device", "channel": "channel"}


def sentiment_of(model) -> xr.Dataset | None:
    """The model's experience data when it holds sentiment; None for data without sentiment
    and for model files saved before the experience data existed."""
    exp = getattr(model, "experience_", None)
    if exp is None or not int(exp.attrs.get("has_sentiment", 0)):
        return None
    return exp


def interval_text(mean: float, low: float, high: float, *, signed: bool = False,
                  digits: int = 2) -> str:
    """``'+0.19 [+0.17, +0.22]'`` (``'-'`` without a mean; no brackets without an interval).

    Examples
    --------
    >>> interval_text(0.5, 0.25, 0.75, signed=True)
    '+0.50 [+0.25, +0.75]'
    >>> interval_text(86.31, 70.9, float("nan"), digits=1)
    '86.3'
    """
    if not np.isfinite(mean):
        return "-"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    text = f.format(mean)
    if np.isfinite(low) and np.isfinite(high):
        text += f" [{f.format(low)}, {f.format(high)}]"
    return text


def _labels(exp, var: str) -> np.ndarray:
    """The labels along ``var``'s dimension (its position when the dimension has none)."""
    dim = exp[var].dims[0]
    if dim in exp.coords:
        return np.asarray(exp[dim].values).astype(str)
    return np.arange(exp.sizes[dim]).astype(str)


def _ci(exp) -> int:
    return round(100 * float(exp.attrs.get("ci", 0.94)))


def _signed_axis(ax) -> None:
    from matplotlib.ticker import StrMethodFormatter

    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:+.1f}"))


def _range(values_low, values_high, avg, weight=None, min_weight=0.0) -> tuple[float, float]:
    """Axis range holding the intervals (of groups with enough weight) and the average."""
    lo, hi = np.asarray(values_low, float), np.asarray(values_high, float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if weight is not None and (ok & (np.asarray(weight) >= min_weight)).any():
        ok &= np.asarray(weight) >= min_weight
    lo = min(float(np.min(lo[ok])) if ok.any() else avg, avg)
    hi = max(float(np.max(hi[ok])) if ok.any() else avg, avg)
    return lo, hi


# ---------------------------------------------------------------------------------------------
# The emotion curve


def draw_stage_emotion(ax, exp: xr.Dataset, order: np.ndarray, labels: list[str]) -> None:
    """Mean sentiment per stage (columns ``0..K-1`` in ``order``) with its interval, the number
    of scored events and the average of all scored events, on the map's x axis."""
    curve, pain, ref = (Palette.sentiment(r) for r in ("curve", "pain", "reference"))
    K = len(order)
    mean, low, high, scored = (exp[f"stage_{q}"].values[order]
                               for q in ("mean", "low", "high", "scored"))
    avg = float(exp.attrs["sentiment_mean"])
    x = np.arange(K)
    ok = np.isfinite(mean)
    has_ci = ok & np.isfinite(low) & np.isfinite(high)
    lo, hi = _range(np.where(has_ci, low, mean), np.where(has_ci, high, mean), avg)
    span = max(hi - lo, 0.1)
    ax.set_ylim(lo - 0.45 * span, hi + 0.4 * span)
    ax.axhline(avg, color=ref, linestyle=(0, (4, 3)), linewidth=1, zorder=1)
    ax.text(-0.58, avg, f"average {avg:+.2f}", ha="left", va="bottom", fontsize=7.5, color=ref)
    ax.plot(x[ok], mean[ok], color=curve, linewidth=2.2, zorder=2)
    friction = has_ci & (high < avg)
    for i in np.flatnonzero(ok):
        colour = pain if friction[i] else curve
        if has_ci[i]:
            ax.errorbar(i, mean[i], yerr=[[mean[i] - low[i]], [high[i] - mean[i]]], fmt="none",
                        ecolor=colour, elinewidth=2, capsize=5, capthick=1.5, zorder=3)
        ax.scatter([i], [mean[i]], s=70, color=colour, edgecolor="white", linewidth=1.2,
                   zorder=4)
        top, bottom = (high[i], low[i]) if has_ci[i] else (mean[i], mean[i])
        ax.text(i, top + 0.05 * span, f"{mean[i]:+.2f}" + (" friction" if friction[i] else ""),
                ha="center", va="bottom", fontsize=9, fontweight="bold", color=colour, zorder=5,
                bbox=_HALO)
        ax.text(i, bottom - 0.05 * span, f"{scored[i]:,.0f} scored events", ha="center",
                va="top", fontsize=7.5, color=_MUTED, zorder=5, bbox=_HALO)
    for i in np.flatnonzero(~ok):
        ax.text(i, avg, "no scored events", ha="center", va="center", fontsize=8,
                color=_MUTED, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"})
    _signed_axis(ax)
    ax.set_ylabel("how customers feel\n(sentiment, -1..1)")
    ax.set_xticks(range(K), labels)
    style_axes(ax, grid="y")


def position_figure(exp: xr.Dataset, sid: str, model=None) -> Figure:
    """Sentiment along the journey: mean per touchpoint position with its interval band, the
    scored events per position, and (stage ``model``) where each stage sits on average."""
    curve, pain, ref = (Palette.sentiment(r) for r in ("curve", "pain", "reference"))
    pos = exp["position"].values.astype(int)
    mean, low, high, scored = (exp[f"pos_{q}"].values for q in ("mean", "low", "high",
                                                                  "scored"))
    avg = float(exp.attrs["sentiment_mean"])
    ok = np.isfinite(mean) & (scored > 0)
    enough = ok & (scored >= MIN_SCORED_FOR_RANGE)
    last = int(np.flatnonzero(enough if enough.any() else ok).max()) + 1 if ok.any() else 1
    cut = int(ok[last:].sum())
    pos, mean, low, high, scored, ok = (a[:last] for a in (pos, mean, low, high, scored, ok))
    fig = new_figure(10, 4.0)
    ax, axn = fig.subplots(2, 1, height_ratios=[3.0, 1.0], sharex=True)
    band = np.isfinite(low) & np.isfinite(high)
    ax.fill_between(pos, np.where(band, low, np.nan), np.where(band, high, np.nan),
                    color=curve, alpha=0.18, linewidth=0, label=f"{_ci(exp)}% interval")
    ax.axhline(avg, color=ref, linestyle=(0, (4, 3)), linewidth=1,
               label=f"average of all scored events {avg:+.2f}")
    ax.plot(pos[ok], mean[ok], color=curve, linewidth=2, marker="o", markersize=4.5,
            label="mean sentiment at this step")
    friction = band & (high < avg)
    if friction.any():
        ax.scatter(pos[friction], mean[friction], s=42, color=pain, zorder=4,
                   label="interval below the average")
    lo, hi = _range(low, high, avg, scored, MIN_SCORED_FOR_RANGE)
    span = max(hi - lo, 0.1)
    ax.set_ylim(lo - 0.15 * span, hi + 0.35 * span)
    stage_note = ""
    if model is not None and getattr(model, "model_type", None) == "stages":
        from journeymodel.report.sections.stages import journey_order

        order = journey_order(model)
        top = hi + 0.25 * span
        for col, k in enumerate(order):
            at = float(model.mean_position_[k]) + 1.0  # 0-based step index -> position
            colour = Palette.stage(col, len(order))
            ax.axvline(at, color=colour, linewidth=1.2, linestyle=":", zorder=0)
            from journeymodel.report.figure import text_colour

            ax.text(at, top, model.stage_names_[k].split(": ")[0], ha="center", va="center",
                    fontsize=8, fontweight="bold", color=text_colour(colour),
                    bbox={"boxstyle": "round,pad=0.2", "fc": colour, "ec": "none"})
        stage_note = (" Dotted lines: each stage's mean position in the journey (S1, S2, ... as "
                      "on the map).")
    _signed_axis(ax)
    ax.set_ylabel("sentiment (-1..1)")
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=4, frameon=False, fontsize=8)
    style_axes(ax, grid="y")
    axn.bar(pos, scored, color="#bdbdbd", width=0.7)
    axn.set_ylabel("scored\nevents")
    axn.set_xlabel("touchpoint number in the journey")
    ticks = [str(p) for p in pos]
    pooled = int(exp["position"].values[-1])
    if last == len(exp["position"]):
        ticks[-1] += "+"
    axn.set_xticks(pos, ticks)
    axn.set_xlim(0.4, pos[-1] + 0.6)
    style_axes(axn, grid="y")
    if cut:
        steps = (f"touchpoints 1 to {pos[-1]} (later steps, with fewer than "
                 f"{MIN_SCORED_FOR_RANGE} scored events each, are left out)")
    else:
        steps = f"touchpoints 1 to {pos[-1]}" + (f" ({pooled}+ pools {pooled} and later)"
                                                 if last == len(exp["position"]) else "")
    caption = ("Mean sentiment (rescaled to -1..1) of the scored events at each step of "
               f"the journey, {steps}, with its {_ci(exp)}% interval "
               "(Student t on the effective number of scored events) and, below, how many "
               "scored events each step rests on: late steps rest on few journeys, so their "
               f"band is wider. Magenta: the whole interval lies below the average.{stage_note} "
               f"{int(exp.attrs['scored_events']):,} of {int(exp.attrs['events']):,} events are "
               "scored; unscored events are left out, not counted as 0.")
    return Figure(f"{sid}-emotion", "The emotion curve along the journey", caption, render(fig))


# ---------------------------------------------------------------------------------------------
# The pain-point section


def pain_section(named: list[tuple[str, Any]], palette: Palette, *,
                 sid: str = "pain") -> Section | None:
    """Leaks, friction and gaps of the report's Markov and stages models (None without any
    such model holding experience data)."""
    from journeymodel.analysis.painpoints import find_pain_points

    candidates = [(label, m) for label, m in named if m.model_type in ("markov", "stages")]
    usable = [(label, m) for label, m in candidates
              if getattr(m, "experience_", None) is not None]
    if not usable:
        return None
    exp = usable[0][1].experience_
    ci = float(exp.attrs.get("ci", 0.94))
    found = find_pain_points([m for _, m in usable], top=None, seed=0, ci=ci)
    with_sentiment = next((m.experience_ for _, m in usable if sentiment_of(m) is not None),
                          None)
    section = Section(sid, "Pain points: what to fix", _intro(usable, candidates, found))
    section.facts = _facts(found, with_sentiment)
    section.items += pain_tables(found, sid, ci)
    if found.gaps:
        section.items.append(gap_figure(found.gaps, sid, ci))
    if with_sentiment is not None:
        label = next(lab for lab, m in usable if m.experience_ is with_sentiment)
        section.items.append(touchpoint_figure(with_sentiment, palette, sid, label))
    return section


def _intro(usable, candidates, found) -> str:
    text = ("Where the journeys break, ranked by what each costs, each with its evidence. "
            "Leaks: steps after which journeys drop off more often than at an average step "
            "(cost: the conversions they would have brought). Friction: touchpoints and stages "
            "whose customers feel worse than average (cost: sentiment points below the average, "
            "listed only where the whole interval is below it). Gaps: switches between channels "
            "or devices followed by a drop-off more often than staying (cost: conversions lost, "
            "with the posterior probability that the switch is worse). From "
            f"{', '.join(label for label, _ in usable)}.")
    skipped = [label for label, m in candidates if all(m is not u for _, u in usable)]
    if skipped:
        text += (f" Left out: {', '.join(skipped)} (saved before pain points existed; fit again "
                 "to include).")
    if not any(int(m.experience_.attrs.get("has_sentiment", 0)) for _, m in usable):
        text += " The data had no sentiment, so there is no friction to rank."
    if not any(int(m.experience_.attrs.get("has_device", 0)) for _, m in usable):
        text += " The data had no device, so only channel gaps are ranked."
    if not (found.leaks or found.friction or found.gaps):
        text += " Nothing stands out: no step, touchpoint or switch is worse than the average."
    return text


def _facts(found, exp) -> list[tuple[str, str]]:
    facts = []
    if found.leaks:
        top = found.leaks[0]
        facts.append(("biggest leak", f"{top['name']}: {top['cost']:,.0f} conversions"))
    if found.friction:
        top = found.friction[0]
        facts.append(("worst friction", f"{top['name'].split(' (')[0]}: "
                                        f"{top['sentiment']:+.2f}"))
    if found.gaps:
        top = found.gaps[0]
        facts.append(("biggest gap", f"{top['name']}: {top['cost']:,.0f} conversions"))
    if exp is not None:
        facts.append(("average sentiment (-1..1)", f"{exp.attrs['sentiment_mean']:+.2f}"))
        facts.append(("scored events", f"{int(exp.attrs['scored_events']):,} of "
                                       f"{int(exp.attrs['events']):,}"))
    return facts


def _shades(costs: np.ndarray, column: int, n_columns: int) -> list[list[str]]:
    from journeymodel.report.sections.stages import shade

    top = max(float(np.nanmax(costs)), 1e-300) if len(costs) else 1.0
    return [["" if j != column else shade(0.8 * c / top, Palette.sentiment("pain"))
             for j in range(n_columns)] for c in costs]


def _p(p: float) -> str:
    if not np.isfinite(p):
        return "-"
    if p > 0.999:
        return ">99.9%"
    if p < 0.001:
        return "<0.1%"
    return f"{100 * p:.1f}%"


def pain_tables(found, sid: str, ci: float, top: int = TOP) -> list[Table]:
    """One table per kind that has items: the ``top`` costliest, with interval and evidence."""
    c = round(100 * ci)
    tables = []
    if found.leaks:
        rows = found.leaks[:top]
        frame = pd.DataFrame({
            "kind": [_KIND_NAMES.get(r["kind"], r["kind"]) for r in rows],
            "conversions lost": [f"{r['cost']:,.1f}" for r in rows],
            f"{c}% interval": [f"{r['cost_low']:,.1f} to {r['cost_high']:,.1f}" for r in rows],
            "journeys passing": [f"{r['journeys']:,.0f}" for r in rows],
            "drop-off after it": [f"{r['drop_rate']:.1%}" for r in rows],
            "average step": [f"{r['baseline']:.1%}" for r in rows],
            "P(worse than average)": [_p(r["p_worse"]) for r in rows],
            "converts if it goes on": [f"{r['conversion_if_continued']:.0%}" for r in rows]},
            index=pd.Index([r["name"] for r in rows], name="leak"))
        tables.append(Table(
            f"{sid}-leaks", "Leaks: where journeys that could convert are lost",
            "Markov states (windows of touchpoints), stages (passes: the expected touchpoints "
            "in the stage) and moves between channels (a > b: arriving at b from a; (start) > "
            "b: b first), ranked by the conversions they cost: passes x (their drop-off rate - "
            "the average step's) x the chance that a journey going on from there converts. "
            f"{c}% interval and P(worse) from the Beta posterior of the drop-off rate "
            "(Jeffreys prior).", frame,
            _shades(np.array([r["cost"] for r in rows]), 1, frame.shape[1])))
    if found.friction:
        rows = found.friction[:top]
        frame = pd.DataFrame({
            "kind": [_KIND_NAMES.get(r["kind"], r["kind"]) for r in rows],
            "below average": [f"{r['cost']:.2f}" for r in rows],
            f"{c}% interval": [f"{r['cost_low']:.2f} to {r['cost_high']:.2f}" for r in rows],
            "sentiment": [f"{r['sentiment']:+.2f}" for r in rows],
            "average": [f"{r['average']:+.2f}" for r in rows],
            "journeys scored": [f"{r['journeys']:,}" for r in rows],
            "scored events": [f"{r['scored_events']:,.0f}" for r in rows]},
            index=pd.Index([r["name"] for r in rows], name="friction"))
        tables.append(Table(
            f"{sid}-friction", "Friction: where customers feel worst",
            "Touchpoints and stages whose mean sentiment (-1..1) is below the average of all "
            f"scored events with the whole {c}% interval below it, ranked by the deficit "
            "(sentiment points). Stage means weight each event by the probability that it "
            "belongs to the stage. Unscored events are left out.", frame,
            _shades(np.array([r["cost"] for r in rows]), 1, frame.shape[1])))
    if found.gaps:
        rows = found.gaps[:top]
        frame = pd.DataFrame({
            "kind": [_KIND_NAMES.get(r["kind"], r["kind"]) for r in rows],
            "conversions lost": [f"{r['cost']:,.1f}" for r in rows],
            f"{c}% interval": [f"{r['cost_low']:,.1f} to {r['cost_high']:,.1f}" for r in rows],
            "switches": [f"{r['journeys']:,.0f}" for r in rows],
            "drop-off after the switch": [f"{r['drop_rate']:.1%}" for r in rows],
            "drop-off staying": [f"{r['stay_drop_rate']:.1%}" for r in rows],
            "stays": [f"{r['stay_journeys']:,.0f}" for r in rows],
            "P(switch worse)": [_p(r["p_worse"]) for r in rows]},
            index=pd.Index([_arrow(r["name"]) for r in rows], name="switch"))
        tables.append(Table(
            f"{sid}-switches", "Channel and device gaps: switches that lose journeys",
            "A switch a → b (b right after a, on another channel or device) compared with "
            "staying on a (a → a): drop-off right after each, the conversions the switch costs "
            "(switches x difference in drop-off x the chance of converting after the switch) "
            f"with its {c}% interval, and the posterior probability that the switch is worse "
            f"(Beta-Binomial, uniform prior, {N_DRAWS:,} draws).", frame,
            _shades(np.array([r["cost"] for r in rows]), 1, frame.shape[1])))
    return tables


def _arrow(name: str) -> str:
    return name.replace(" > ", " → ")


def _beta_interval(k: np.ndarray, n: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed interval of the Beta(k + 1, n - k + 1) posterior of a rate."""
    from scipy.special import betaincinv

    a, b = k + 1.0, n - k + 1.0
    return betaincinv(a, b, 0.5 - ci / 2), betaincinv(a, b, 0.5 + ci / 2)


def gap_figure(gaps: list[dict], sid: str, ci: float, top: int = TOP_GAPS) -> Figure:
    """The gap chart: per switch, drop-off after it against staying (with intervals), and the
    conversions it costs (with interval and P(worse))."""
    pain, ref = Palette.sentiment("pain"), Palette.sentiment("reference")
    rows = gaps[:top]
    n = len(rows)
    d_sw = np.array([r["drop_rate"] for r in rows])
    d_st = np.array([r["stay_drop_rate"] for r in rows])
    n_sw = np.array([r["journeys"] for r in rows], float)
    n_st = np.array([r["stay_journeys"] for r in rows], float)
    sw_lo, sw_hi = _beta_interval(d_sw * n_sw, n_sw, ci)
    st_lo, st_hi = _beta_interval(d_st * n_st, n_st, ci)
    cost = np.array([r["cost"] for r in rows])
    c_lo = np.array([r["cost_low"] for r in rows])
    c_hi = np.array([r["cost_high"] for r in rows])
    y = np.arange(n)
    fig = new_figure(11, 1.5 + 0.55 * n)
    ax, axc = fig.subplots(1, 2, width_ratios=[1.25, 1.0], sharey=True)
    ax.hlines(y, d_st, d_sw, color="#d9d9d9", linewidth=5, zorder=1)
    for lo, hi, colour, offset in ((st_lo, st_hi, ref, 0.13), (sw_lo, sw_hi, pain, -0.13)):
        ax.hlines(y + offset, lo, hi, color=colour, linewidth=1.6, zorder=2)
    ax.scatter(d_st, y + 0.13, s=55, facecolor="white", edgecolor=ref, linewidth=1.8, zorder=3,
               label="staying on the same channel or device (a → a)")
    ax.scatter(d_sw, y - 0.13, s=55, color=pain, zorder=3, label="after the switch (a → b)")
    for i in range(n):
        ax.text(max(sw_hi[i], st_hi[i]) + 0.01, y[i], f"{d_sw[i]:.0%} vs {d_st[i]:.0%}",
                va="center", fontsize=8, color="#1d2733")
    right = float(np.nanmax(np.concatenate([sw_hi, st_hi])))
    ax.set_xlim(0, min(1.0, right * 1.3 + 0.03))
    ax.xaxis.set_major_formatter(_percent())
    ax.set_xlabel(f"drop-off right after (dot) with its {round(100 * ci)}% interval (line)")
    labels = [f"{_arrow(r['name'])}  ({r['kind']})\n{r['journeys']:,.0f} switches, "
              f"{r['stay_journeys']:,.0f} stays" for r in rows]
    ax.set_yticks(y, labels, fontsize=8.5)
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2, frameon=False,
              fontsize=8)
    ax.set_title("Drop-off right after: the switch against staying")
    style_axes(ax)
    axc.barh(y, cost, color=pain, alpha=0.85, height=0.55)
    err = np.vstack([np.maximum(cost - c_lo, 0), np.maximum(c_hi - cost, 0)])
    axc.errorbar(cost, y, xerr=err, fmt="none", ecolor="#222222", elinewidth=1.2, capsize=3)
    for i in range(n):
        axc.text(max(c_hi[i], cost[i]), y[i],
                 f"  {cost[i]:,.0f}  P(worse) {_p(rows[i]['p_worse'])}", va="center", fontsize=8)
    axc.set_xlim(min(0.0, float(np.min(c_lo)) * 1.1), float(np.max(c_hi)) * 1.55)
    axc.axvline(0, color="#1d2733", linewidth=0.8)
    axc.set_xlabel(f"expected conversions lost, {round(100 * ci)}% interval")
    axc.set_title("What the switch costs")
    axc.tick_params(axis="y", length=0)
    style_axes(axc)
    caption = ("Switches between channels or devices (a → b: b right after a) that are "
               "followed by a drop-off more often than staying on a, costliest first. Left: "
               "the share of journeys that drop off right after the switch (filled) and right "
               f"after staying (hollow), each with its {round(100 * ci)}% interval from the "
               "Beta posterior of the rate (uniform prior). Right: the conversions the switch "
               "costs, switches x the difference in drop-off x the chance of converting after "
               f"the switch, with its {round(100 * ci)}% interval and the posterior probability "
               f"that the switch is worse than staying (Beta-Binomial, {N_DRAWS:,} draws). Few "
               "switches give wide intervals: read those as hints.")
    return Figure(f"{sid}-gaps", "Channel and device gaps", caption, render(fig))


def touchpoint_figure(exp: xr.Dataset, palette: Palette, sid: str, label: str) -> Figure:
    """Mean sentiment per touchpoint with its interval, worst first, against the average."""
    pain, ref = Palette.sentiment("pain"), Palette.sentiment("reference")
    names = _labels(exp, "tp_mean")
    mean, low, high, scored = (exp[f"tp_{q}"].values for q in ("mean", "low", "high",
                                                                 "scored"))
    journeys = exp["tp_journeys"].values
    keep = np.flatnonzero(np.isfinite(mean))
    keep = keep[np.argsort(mean[keep], kind="stable")]
    avg = float(exp.attrs["sentiment_mean"])
    a_lo, a_hi = float(exp.attrs["sentiment_low"]), float(exp.attrs["sentiment_high"])
    y = np.arange(len(keep))
    fig = new_figure(10, 1.4 + 0.36 * len(keep))
    ax = fig.add_subplot()
    from matplotlib.transforms import blended_transform_factory

    column = blended_transform_factory(ax.transAxes, ax.transData)  # labels right of the axes
    if np.isfinite(a_lo) and np.isfinite(a_hi):
        ax.axvspan(a_lo, a_hi, color=ref, alpha=0.15, linewidth=0)
    ax.axvline(avg, color=ref, linestyle=(0, (4, 3)), linewidth=1)
    for yi, i in enumerate(keep):
        friction = np.isfinite(high[i]) and high[i] < avg
        if np.isfinite(low[i]) and np.isfinite(high[i]):
            ax.hlines(yi, low[i], high[i], color=pain if friction else "#222222",
                      linewidth=1.6)
        ax.scatter([mean[i]], [yi], s=60, color=palette.touchpoint(names[i]),
                   edgecolor=pain if friction else "#222222", linewidth=1.8 if friction else 0.8,
                   zorder=3)
        ax.text(1.02, yi, f"{mean[i]:+.2f}  ({scored[i]:,.0f} scored events, {journeys[i]:,} "
                "journeys)" + ("  friction" if friction else ""), va="center", fontsize=8,
                color=pain if friction else "#1d2733", transform=column)
    lo, hi = _range(low[keep], high[keep], avg, scored[keep], MIN_SCORED_FOR_RANGE)
    span = max(hi - lo, 0.1)
    ax.set_xlim(lo - 0.08 * span, hi + 0.08 * span)
    ax.set_yticks(y, names[keep])
    for tick, name in zip(ax.get_yticklabels(), names[keep], strict=True):
        from journeymodel.report.figure import text_colour

        tick.set_bbox({"boxstyle": "round,pad=0.2", "fc": palette.touchpoint(name),
                       "ec": "none"})
        tick.set_color(text_colour(palette.touchpoint(name)))
    ax.invert_yaxis()
    from matplotlib.ticker import StrMethodFormatter

    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:+.1f}"))
    ax.set_xlabel(f"mean sentiment (-1..1) with its {_ci(exp)}% interval; dashed: average "
                  f"{avg:+.2f}")
    style_axes(ax)
    caption = ("How customers rated each touchpoint: mean sentiment (rescaled to -1..1) of its "
               f"scored events with its {_ci(exp)}% interval (Student t on the effective number "
               "of scored events), worst first, against the average of all scored events "
               "(dashed, with its interval shaded). Magenta: friction, the whole interval lies "
               f"below the average. From {label}; {int(exp.attrs['scored_events']):,} of "
               f"{int(exp.attrs['events']):,} events scored, unscored events left out.")
    return Figure(f"{sid}-sentiment", "Sentiment per touchpoint", caption, render(fig))


def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)
