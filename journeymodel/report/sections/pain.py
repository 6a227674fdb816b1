"""The pain-point section of the report: what to fix, ranked by what it costs.

Leaks, friction and channel/device gaps are ranked by
:func:`journeymodel.analysis.painpoints.find_pain_points` over every Markov and stages model of
the report (the same items ``journeymodel pain-points`` prints): a table per kind, the gap chart
(drop-off after a switch against staying, and what the switch costs) and sentiment per touchpoint
(:func:`journeymodel.report.sections.emotion.touchpoint_figure`). The Markov section's hot spots
are the same leaks, per model (:func:`interval_mass` gives both the same interval).

Nothing is drawn from data that is not there: no section from models saved before the
experience data existed (``experience_ is None``), no friction without sentiment, no gap chart
without gaps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeymodel.analysis.painpoints import N_DRAWS, drop_interval, find_pain_points
from journeymodel.report.figure import (
    Figure,
    Section,
    Table,
    chance,
    new_figure,
    percent_format,
    render,
    shade,
    style_axes,
)
from journeymodel.report.palette import Palette
from journeymodel.report.sections.emotion import sentiment_of, touchpoint_figure

#: Items per kind in the pain-point tables, and switches in the gap chart.
TOP = 5
TOP_GAPS = 8
#: Interval mass of pain points whose model has no experience data to say it.
CI = 0.94
_KIND_NAMES = {"state": "state", "transition": "move", "touchpoint": "touchpoint",
               "stage": "stage", "device": "device", "channel": "channel"}


def interval_mass(model) -> float:
    """The interval mass of ``model``'s pain points in the report: that of its experience data
    (the emotion curves' intervals), :data:`CI` without experience data."""
    exp = getattr(model, "experience_", None)
    return CI if exp is None else float(exp.attrs.get("ci", CI))


# ---------------------------------------------------------------------------------------------
# The pain-point section


def pain_section(named: list[tuple[str, Any]], palette: Palette, *,
                 sid: str = "pain") -> Section | None:
    """Leaks, friction and gaps of the report's Markov and stages models (None without any
    such model holding experience data)."""
    candidates = [(label, m) for label, m in named if m.model_type in ("markov", "stages")]
    usable = [(label, m) for label, m in candidates
              if getattr(m, "experience_", None) is not None]
    if not usable:
        return None
    ci = interval_mass(usable[0][1])
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
    top = max(float(np.nanmax(costs)), 1e-300) if len(costs) else 1.0
    return [["" if j != column else shade(0.8 * c / top, Palette.sentiment("pain"))
             for j in range(n_columns)] for c in costs]


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
            "P(worse than average)": [chance(r["p_worse"]) for r in rows],
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
            "P(switch worse)": [chance(r["p_worse"]) for r in rows]},
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
    sw_lo, sw_hi = drop_interval(d_sw * n_sw, n_sw, ci)
    st_lo, st_hi = drop_interval(d_st * n_st, n_st, ci)
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
    ax.xaxis.set_major_formatter(percent_format())
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
                 f"  {cost[i]:,.0f}  P(worse) {chance(rows[i]['p_worse'])}", va="center",
                 fontsize=8)
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
