"""Emotion curves: how customers rated their experience, from a model's ``experience_`` data.

The data come from :func:`journeymodel.analysis.experience.journey_experience`: the stages'
curve is drawn under the columns of the journey map (:func:`draw_stage_emotion`, called by the
stages section), sentiment along the journey's positions is a companion figure
(:func:`position_figure`), sentiment per touchpoint closes the pain-point section
(:func:`touchpoint_figure`). Nothing is drawn from data that is not there: no figure without
sentiment (``experience_.attrs["has_sentiment"] == 0``) or from a model saved before the
experience data existed (``experience_ is None``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from journeymodel.report.figure import Figure, new_figure, render, style_axes, text_colour
from journeymodel.report.palette import Palette

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

#: Positions (and touchpoints) with fewer scored events do not set the axis range.
MIN_SCORED_FOR_RANGE = 30
_MUTED = "#5b6672"
#: White box behind labels that may sit on a line.
_HALO = {"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.85}


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


def signed_axis(axis) -> None:
    """Ticks of ``axis`` (``ax.xaxis``, ``ax.yaxis``) signed with one decimal: -0.5, +0.5."""
    from matplotlib.ticker import StrMethodFormatter

    axis.set_major_formatter(StrMethodFormatter("{x:+.1f}"))


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
    signed_axis(ax.yaxis)
    ax.set_ylabel("how customers feel\n(sentiment, -1..1)")
    ax.set_xticks(range(K), labels)
    style_axes(ax, grid="y")


def position_figure(exp: xr.Dataset, sid: str,
                    stage_marks: list[tuple[str, float]] | None = None) -> Figure:
    """Sentiment along the journey: mean per touchpoint position with its interval band, the
    scored events per position, and (``stage_marks``: a stage's short name and its mean
    position, 1-based, in the map's column order) where each stage sits on average."""
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
    if stage_marks:
        top = hi + 0.25 * span
        for col, (name, at) in enumerate(stage_marks):
            colour = Palette.stage(col, len(stage_marks))
            ax.axvline(at, color=colour, linewidth=1.2, linestyle=":", zorder=0)
            ax.text(at, top, name, ha="center", va="center",
                    fontsize=8, fontweight="bold", color=text_colour(colour),
                    bbox={"boxstyle": "round,pad=0.2", "fc": colour, "ec": "none"})
        stage_note = (" Dotted lines: each stage's mean position in the journey (S1, S2, ... as "
                      "on the map).")
    signed_axis(ax.yaxis)
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
        tick.set_bbox({"boxstyle": "round,pad=0.2", "fc": palette.touchpoint(name),
                       "ec": "none"})
        tick.set_color(text_colour(palette.touchpoint(name)))
    ax.invert_yaxis()
    signed_axis(ax.xaxis)
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
