"""Markov section: journey flows step by step, the most likely complete paths, the transition
heat map, attribution with credible intervals and the drop-off hot spots.

All quantities come from the fitted chain (``chain_``: posterior concentration and mean
transition matrix over window states), its observed counts (``counts_``) and its solved
analytics (``p_conversion_``); nothing is re-read from the event log. The hot spots are the
model's leaks as :func:`journeymodel.analysis.painpoints.find_pain_points` ranks them (one
definition of a leak for the report and ``journeymodel pain-points``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from journeymodel.io.formatting import money
from journeymodel.models.markov.attribution import DEFAULT_DRAWS
from journeymodel.report.figure import (
    Figure,
    Section,
    Table,
    new_figure,
    pct,
    percent_format,
    render,
    style_axes,
    text_colour,
)

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.markov.model import MarkovJourneyModel
    from journeymodel.report.palette import Palette

FLOW_STEPS = 5
TOP_PATHS = 8
ATTRIBUTION_DRAWS = DEFAULT_DRAWS  # as `journeymodel attribute`
CI = 0.94
_OUTCOME_TEXT = {"conversion": "converted", "dropoff": "dropped off", "churn": "churned"}


def markov_section(model: MarkovJourneyModel, label: str, palette: Palette, *,
                   sid: str = "markov") -> Section:
    """The Markov model's section of the report."""
    k = model.order_
    states = ("each state is the last touchpoint" if k == 1
              else f"each state is a window of the last {k} touchpoints")
    intro = (f"An absorbing Markov chain of order {k} over touchpoints ({states}): "
             "where journeys go next, which paths end in a conversion or a drop-off, how much "
             "each channel contributes, and where journeys are lost.")
    section = Section(sid, f"Paths and channels ({label})", intro)
    section.facts = [("order", str(k)), ("states", model.state_count_text()),
                     ("conversions", f"{model.total_conversions_:,.0f}"),
                     ("P(conversion) from the start", pct(float(model.p_conversion_[0]))),
                     ("expected steps", f"{float(model.expected_steps_[0]):.2f}")]
    attribution = model.attribution("removal", n_draws=ATTRIBUTION_DRAWS, ci=CI, seed=0)
    section.items += [
        flow_figure(model, palette, sid),
        paths_figure(model, palette, sid),
        heatmap_figure(model, palette, sid),
        attribution_figure(model, attribution, palette, sid),
        attribution_table(attribution, sid),
        hotspots_figure(model, palette, sid),
    ]
    return section


# ---------------------------------------------------------------------------------------------
# Chain helpers


def last_touchpoint(model: MarkovJourneyModel) -> np.ndarray:
    """Code of the newest touchpoint of each transient state, shape (n_states,); -1 = start."""
    codes = model.state_codes_
    width = (codes >= 0).sum(axis=1)
    last = codes[np.arange(len(codes)), np.maximum(width - 1, 0)]
    return np.where(width > 0, last, -1)


def _split(model: MarkovJourneyModel) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    P = model.chain_.P
    n = model.chain_.n
    return P[:, :n].tocsr(), P[:, n:].tocsr()


def step_flows(model: MarkovJourneyModel, steps: int = FLOW_STEPS) -> dict[str, Any]:
    """Expected share of journeys moving between touchpoints at each step, from the start.

    Returns
    -------
    dict
        ``between``: (steps - 1, n_tp, n_tp) share moving from touchpoint a at step t to b at
        step t + 1; ``first``: (n_tp,) share whose first touchpoint is b; ``ended``:
        (steps, n_tp, n_abs) share ending right after touchpoint a at step t; ``direct``:
        (n_abs,) ending before any touchpoint; ``beyond``: share still going after ``steps``.
    """
    T, A = _split(model)
    last = last_touchpoint(model)
    n_tp = len(model.journeys_.touchpoints)
    group = sp.csr_matrix((np.ones(len(last) - 1), (np.arange(1, len(last)), last[1:])),
                          shape=(len(last), n_tp))  # state -> touchpoint (start row empty)
    direct = np.asarray(A[0].todense()).ravel()
    v = np.asarray(T[0].todense()).ravel()  # after the first transition
    first = group.T @ v
    between, ended = [], []
    for _ in range(steps):
        ended.append(group.T @ (sp.diags(v) @ A).toarray())
        moves = sp.diags(v) @ T
        between.append((group.T @ moves @ group).toarray())
        v = T.T @ v
    return {"first": first, "between": np.array(between[:-1]), "ended": np.array(ended),
            "direct": direct, "beyond": float(v.sum()), "absorbing": model.chain_.absorbing}


def top_paths(model: MarkovJourneyModel, k: int = TOP_PATHS, max_len: int = 12,
              beam: int = 3000) -> dict[str, list[tuple[tuple[int, ...], float]]]:
    """The ``k`` most probable complete paths into each absorbing state (beam search).

    A path's probability is the product of the chain's mean transition probabilities along it:
    the expected share of journeys that follow exactly this path. Paths are touchpoint code
    tuples. Vectorised over the beam (a loop per step only); paths are kept as parent pointers
    and spelled out only for the winners.
    """
    P = model.chain_.P
    n = model.chain_.n
    names = model.chain_.absorbing
    found: dict[str, list[tuple[int, int, float]]] = {a: [] for a in names}
    levels = [(np.array([0]), np.array([-1]))]  # (state, parent index in previous level)
    prob = np.array([1.0])
    for depth in range(max_len + 1):
        state = levels[-1][0]
        lengths = np.diff(P.indptr)[state]
        src = np.repeat(np.arange(len(state)), lengths)
        pos = np.repeat(P.indptr[state], lengths) + np.arange(len(src)) - np.repeat(
            np.cumsum(lengths) - lengths, lengths)
        dest, p = P.indices[pos], prob[src] * P.data[pos]
        for j, name in enumerate(names):
            hit = np.flatnonzero(dest == n + j)
            best = hit[np.argsort(-p[hit], kind="stable")[:k]]
            found[name] += [(depth, int(src[i]), float(p[i])) for i in best]
        go = np.flatnonzero(dest < n)
        go = go[np.argsort(-p[go], kind="stable")[:beam]]
        if not len(go):
            break
        levels.append((dest[go], src[go]))
        prob = p[go]
    codes = model.state_codes_

    def spell(depth: int, index: int) -> tuple[int, ...]:
        states = []
        while depth > 0:
            state, parent = levels[depth]
            states.append(int(state[index]))
            depth, index = depth - 1, int(parent[index])
        out: list[int] = []
        for i, s in enumerate(reversed(states)):
            row = codes[s][codes[s] >= 0]
            out.extend(row.tolist() if i == 0 else row[-1:].tolist())
        return tuple(out)

    return {a: [(spell(d, i), p) for d, i, p in sorted(v, key=lambda x: -x[2])[:k]]
            for a, v in found.items()}


def _ended_journeys(model: MarkovJourneyModel) -> float:
    c = model.counts_
    return float(c.count[c.to_key < 0].sum())


# ---------------------------------------------------------------------------------------------
# Flow diagram (Sankey-like)


def flow_figure(model, palette: Palette, sid: str, steps: int = FLOW_STEPS) -> Figure:
    """Columns = steps 1..steps; ribbons = expected share of journeys moving between
    touchpoints; outcome blocks under each next column = journeys ending after that step."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    flows = step_flows(model, steps)
    tps = model.journeys_.touchpoints
    absorbing = flows["absorbing"]
    fig = new_figure(11, 6.4)
    ax = fig.add_subplot()
    gap, width, cutoff = 0.018, 0.16, 0.003
    nodes: dict[tuple[int, str], list[float]] = {}  # (column, name) -> [top, height, out, in]
    rects, ribbons = [], []

    def place(column: int, items: list[tuple[str, float, str]], top: float = 0.0) -> float:
        y = top
        for name, mass, colour in items:
            if mass < cutoff:
                continue
            nodes[(column, name)] = [y, mass, y, y]
            rects.append(Rectangle((column, y), width, mass, color=colour))
            if mass >= 0.025:
                ax.text(column + width + 0.03, y + mass / 2, f"{_short(name)} {mass:.0%}",
                        va="center", fontsize=7.5)
            y += mass + gap
        return y

    def ribbon(src: tuple[int, str], dst: tuple[int, str], mass: float, colour: str) -> None:
        if mass < cutoff or src not in nodes or dst not in nodes:
            return
        s, d = nodes[src], nodes[dst]
        ribbons.append(_ribbon(src[0] + width, s[2], dst[0], d[3], mass, colour))
        s[2] += mass
        d[3] += mass

    mass = flows["first"]
    for t in range(steps):
        items = [(tp, float(mass[i]), palette.touchpoint(tp)) for i, tp in enumerate(tps)]
        bottom = place(t, items)
        prev = flows["ended"][t - 1] if t else None
        if t:
            outs = [(f"{_OUTCOME_TEXT.get(a, a)} after step {t}", float(prev[:, j].sum()),
                     palette.outcome(a)) for j, a in enumerate(absorbing)]
            place(t, outs, bottom + 2 * gap)
        if t + 1 < steps:
            mass = flows["between"][t].sum(axis=0)
    last = flows["ended"][steps - 1]
    outs = [(f"{_OUTCOME_TEXT.get(a, a)} after step {steps}", float(last[:, j].sum()),
             palette.outcome(a)) for j, a in enumerate(absorbing)]
    outs.append((f"still going after step {steps}", flows["beyond"], palette.outcome("continue")))
    place(steps, outs)
    for t in range(steps):  # ribbons out of column t, in node order, so they stack cleanly
        for i, a in enumerate(tps):
            if t + 1 < steps:
                for j, b in enumerate(tps):
                    ribbon((t, a), (t + 1, b), float(flows["between"][t][i, j]),
                           palette.touchpoint(a))
            for j, o in enumerate(absorbing):
                ribbon((t, a), (t + 1, f"{_OUTCOME_TEXT.get(o, o)} after step {t + 1}"),
                       float(flows["ended"][t][i, j]), palette.outcome(o))
    for i, a in enumerate(tps):
        ribbon((steps - 1, a), (steps, f"still going after step {steps}"),
               _continuing(flows, i), palette.touchpoint(a))
    ax.add_collection(PatchCollection(ribbons, match_original=True))
    ax.add_collection(PatchCollection(rects, match_original=True))
    ax.set_xlim(-0.05, steps + 1.0)
    ax.set_ylim(max(n[0] + n[1] for n in nodes.values()) + 0.02, -0.02)
    ax.set_xticks(np.arange(steps + 1) + width / 2,
                  [f"step {t + 1}" for t in range(steps)] + ["outcome"])
    ax.tick_params(axis="x", length=0, labelsize=9)
    ax.set_yticks([])
    for side in ("left", "right", "top", "bottom"):
        ax.spines[side].set_visible(False)
    direct = flows["direct"]
    note = "" if direct.sum() < 0.001 else (
        f" {direct.sum():.1%} of journeys end before any touchpoint (direct) and are not drawn.")
    caption = ("Where journeys go, step by step from their first touchpoint: each column is a "
               "step, block heights are the expected share of all journeys at each touchpoint, "
               "ribbons are the moves to the next step, and the green, grey and red blocks "
               "under the next column are the journeys that converted, dropped off or churned "
               "right after that step. Expected shares under the fitted chain (posterior-mean "
               f"transition probabilities); flows under {cutoff:.1%} are not drawn.{note}")
    return Figure(f"{sid}-flow", "Journey flow, step by step", caption, render(fig))


def _continuing(flows, i: int) -> float:
    """Share of journeys at touchpoint ``i`` in the last column that go on (do not end)."""
    steps = flows["ended"].shape[0]
    mass = flows["first"] if steps == 1 else flows["between"][-1].sum(axis=0)
    return float(mass[i] - flows["ended"][steps - 1][i].sum())


def _short(name: str, limit: int = 26) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _ribbon(x0: float, y0: float, x1: float, y1: float, h: float, colour: str):
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    mid = (x0 + x1) / 2
    verts = [(x0, y0), (mid, y0), (mid, y1), (x1, y1), (x1, y1 + h), (mid, y1 + h),
             (mid, y0 + h), (x0, y0 + h), (x0, y0)]
    codes = [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4, Path.LINETO, Path.CURVE4,
             Path.CURVE4, Path.CURVE4, Path.CLOSEPOLY]
    return PathPatch(Path(verts, codes), facecolor=colour, alpha=0.35, edgecolor="none")


# ---------------------------------------------------------------------------------------------
# Most likely complete paths


def paths_figure(model, palette: Palette, sid: str, k: int = TOP_PATHS) -> Figure:
    """Bars: the most likely complete paths into conversion and into drop-off."""
    found = top_paths(model, k)
    names = model.journeys_.touchpoints
    ended = _ended_journeys(model)
    shown = [a for a in ("conversion", "dropoff", "churn") if found.get(a)]
    rows = sum(len(found[a]) for a in shown)
    fig = new_figure(10, 0.9 + 0.27 * rows + 0.35 * len(shown))
    axes = fig.subplots(len(shown), 1, height_ratios=[max(len(found[a]), 1) for a in shown],
                        squeeze=False)[:, 0]
    for ax, outcome in zip(axes, shown, strict=True):
        items = found[outcome]
        labels = [" → ".join(names[c] for c in path) or "(no touchpoint)" for path, _ in items]
        values = [p * ended for _, p in items]
        y = np.arange(len(items))
        ax.barh(y, values, color=palette.outcome(outcome), height=0.7)
        ax.set_yticks(y, [_short(lab, 60) for lab in labels], fontsize=8)
        ax.invert_yaxis()
        for yi, (v, (_, p)) in enumerate(zip(values, items, strict=True)):
            ax.text(v, yi, f" {v:,.0f} ({p:.1%})", va="center", fontsize=7.5)
        ax.set_title(f"Most likely paths into {_OUTCOME_TEXT.get(outcome, outcome)}"
                     .replace("into converted", "into conversion")
                     .replace("into dropped off", "into drop-off")
                     .replace("into churned", "into churn"))
        ax.set_xlim(0, max(values) * 1.25 if values else 1)
        style_axes(ax)
    axes[-1].set_xlabel("expected journeys (share of all ended journeys)")
    caption = ("The complete journeys the fitted chain makes most likely, ending in each "
               "outcome: bar length is the expected number of journeys following exactly that "
               f"path (its probability times the {ended:,.0f} ended journeys), from the "
               "posterior-mean transition probabilities, so a path's count is a model estimate "
               "rather than a raw tally. Repeated touchpoints are merged (a → a is a).")
    return Figure(f"{sid}-paths", "Most likely paths into conversion and drop-off", caption,
                  render(fig))


# ---------------------------------------------------------------------------------------------
# Transition heat map


def transition_counts(model) -> tuple[np.ndarray, list[str], list[str]]:
    """Observed transitions aggregated by newest touchpoint: rows (start) + touchpoints,
    columns touchpoints + absorbing states."""
    c = model.counts_
    last = last_touchpoint(model)
    keys = model.chain_.keys
    tps = list(model.journeys_.touchpoints)
    n_tp, absorbing = len(tps), model.chain_.absorbing
    row = last[np.searchsorted(keys, c.from_key)] + 1
    to_abs = c.to_key < 0
    col = np.where(to_abs, n_tp - 1 - c.to_key,
                   last[np.searchsorted(keys, np.maximum(c.to_key, 0))])
    M = np.zeros((n_tp + 1, n_tp + len(absorbing)))
    np.add.at(M, (row, col), c.count)
    return M, ["(start)", *tps], [*tps, *absorbing]


def heatmap_figure(model, palette: Palette, sid: str) -> Figure:
    M, rows, cols = transition_counts(model)
    totals = M.sum(axis=1)
    keep = totals > 0
    M, totals = M[keep], totals[keep]
    rows = [r for r, k in zip(rows, keep, strict=True) if k]
    P = M / totals[:, None]
    fig = new_figure(10.5, 1.6 + 0.42 * len(rows))
    ax = fig.add_subplot()
    im = ax.imshow(P, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(P.shape[0]):
        for j in range(P.shape[1]):
            if P[i, j] >= 0.005:
                ax.text(j, i, f"{P[i, j]:.0%}" if P[i, j] >= 0.01 else "<1%",
                        ha="center", va="center",
                        fontsize=7.5, color="white" if P[i, j] > 0.55 else "#1d2733")
    ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), [f"{r} (n={t:,.0f})" for r, t in zip(rows, totals,
                                                                         strict=True)])
    for tick, name in zip(ax.get_xticklabels(), cols, strict=True):
        if name in ("conversion", "dropoff", "churn"):
            tick.set_color(palette.outcome(name))
            tick.set_fontweight("bold")
    ax.axvline(len(cols) - len(model.chain_.absorbing) - 0.5, color="#333333", linewidth=1)
    ax.set_xlabel("next")
    ax.set_ylabel("from (newest touchpoint)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="P(next | from)", format=percent_format())
    k = model.order_
    scope = "" if k == 1 else (f" States of the order-{k} chain are grouped by their newest "
                               "touchpoint (observed moves summed), so this is a summary of the "
                               "chain, not its matrix.")
    caption = ("Where journeys go next from each touchpoint: row-normalised observed "
               "transitions (the chain's posterior-mean probabilities with the default flat "
               "prior), right of the line the journey ends. Each row's n is the number of "
               "observed moves out of it; a cell's posterior standard deviation is at most "
               f"0.5/sqrt(n+1), so rows with small n are uncertain.{scope}")
    return Figure(f"{sid}-transitions", "Transition heat map", caption, render(fig))


# ---------------------------------------------------------------------------------------------
# Attribution


def attribution_figure(model, a, palette: Palette, sid: str) -> Figure:
    """Removal-effect conversions per channel with credible intervals, and first/last touch."""
    order = np.argsort(a.conversions, kind="stable")
    channels = [a.channels[i] for i in order]
    y = np.arange(len(channels))
    fig = new_figure(10, 1.2 + 0.38 * len(channels))
    ax = fig.add_subplot()
    ax.barh(y, a.conversions[order], color=[palette.touchpoint(c) for c in channels],
            height=0.65, label="removal effect (Markov)")
    if np.isfinite(a.conversions_low).all():
        err = np.vstack([a.conversions[order] - a.conversions_low[order],
                         a.conversions_high[order] - a.conversions[order]])
        ax.errorbar(a.conversions[order], y, xerr=np.maximum(err, 0), fmt="none",
                    ecolor="#222222", elinewidth=1.2, capsize=3,
                    label=f"{round(CI * 100)}% credible interval")
    for method, marker in (("first", "o"), ("last", "D")):
        h = model.attribution(method, n_draws=0)
        ax.scatter(h.conversions[order], y, marker=marker, facecolor="white", edgecolor="#222222",
                   s=22, zorder=3, label=f"{method}-touch (heuristic)")
    ax.set_yticks(y, channels)
    ax.set_xlabel("conversions attributed")
    share = a.conversions[order] / max(a.total_conversions, 1e-300)
    for yi, s in enumerate(share):
        ax.text(0, yi, f" {s:.0%}", va="center", fontsize=7.5,
                color=text_colour(palette.touchpoint(channels[yi])))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=4, frameon=False)
    style_axes(ax)
    how = (f"from {ATTRIBUTION_DRAWS:,} posterior draws of the transition rows"
           if a.intervals == "draws" else
           "by a normal approximation of the posterior of the transition rows (linearised, "
           "exact gradients)")
    caption = (f"Conversions credited to each channel by the removal effect (how many fewer "
               f"conversions the chain predicts without the channel, scaled to the "
               f"{a.total_conversions:,.0f} observed conversions), with "
               f"{round(CI * 100)}% credible intervals {how}. Hollow markers: first- and "
               "last-touch credit, for comparison (no uncertainty).")
    if a.note:
        caption += f" {a.note}"
    return Figure(f"{sid}-attribution", "Channel attribution", caption, render(fig))


def attribution_table(a, sid: str) -> Table:
    pct_ci = round(CI * 100)
    frame = pd.DataFrame({
        "conversions": a.conversions, f"low {pct_ci}%": a.conversions_low,
        f"high {pct_ci}%": a.conversions_high,
        "share": [pct(v / max(a.total_conversions, 1e-300)) for v in a.conversions],
        "removal effect": [pct(v) for v in a.removal_effect],
        "value": [money(v) for v in a.value]},
        index=pd.Index(list(a.channels), name="channel")).sort_values(
        "conversions", ascending=False)
    return Table(f"{sid}-attribution-table", "Attribution in numbers",
                 "Removal-effect attribution per channel: conversions credited with their "
                 "credible interval, share of all conversions, the removal effect (share of "
                 "conversions lost without the channel) and the conversion value credited.",
                 frame)


# ---------------------------------------------------------------------------------------------
# Drop-off hot spots: the model's leaks, as ``pain-points`` ranks them


def hotspots(model: MarkovJourneyModel, top: int = 10, ci: float | None = None
             ) -> tuple[list[dict], list[dict]]:
    """The model's leaks: its states, and the channel pairs of its journeys, that lose more
    journeys to a drop-off than an average step, as
    :func:`~journeymodel.analysis.painpoints.find_pain_points` finds and ranks them.

    Parameters
    ----------
    top : int
        Items kept of each kind.
    ci : float, optional
        Interval mass (default: the report's, :func:`~journeymodel.report.sections.pain.
        interval_mass`).

    Returns
    -------
    states, transitions : list of dict
        The leak items of kind ``state`` and ``transition``, costliest first: ``name``,
        ``cost`` (expected conversions lost) with ``cost_low``/``cost_high``, ``journeys``
        (passes), ``drop_rate``, ``baseline``, ``p_worse``, ``conversion_if_continued``. A
        model saved before pain points existed has no transitions (its experience data are
        missing) and its states ranked alike.
    """
    from journeymodel.analysis.painpoints import find_pain_points, rank, state_leaks
    from journeymodel.report.sections.pain import interval_mass

    ci = interval_mass(model) if ci is None else ci
    if getattr(model, "experience_", None) is None:
        leaks = rank(state_leaks(model, ci)[0])
    else:
        leaks = find_pain_points(model, top=None, seed=0, ci=ci).leaks
    return ([i for i in leaks if i["kind"] == "state"][:top],
            [i for i in leaks if i["kind"] == "transition"][:top])


def hotspots_figure(model, palette: Palette, sid: str) -> Figure:
    """Bars: the states and the moves that leak most, in conversions lost, with intervals."""
    from journeymodel.analysis.painpoints import MIN_PROB
    from journeymodel.report.sections.pain import interval_mass

    ci = interval_mass(model)
    states, moves = hotspots(model, ci=ci)
    tps = model.journeys_.touchpoints
    last = {lab: tps[code] for lab, code in zip(model.state_labels(), last_touchpoint(model),
                                                strict=True) if code >= 0}
    fig = new_figure(10, 1.8 + 0.3 * (max(len(states), 1) + max(len(moves), 1)))
    axes = fig.subplots(2, 1, height_ratios=[max(len(states), 1), max(len(moves), 1)])
    sure = f"with P(worse) >= {MIN_PROB:.0%}"
    _leak_bars(axes[0], states, [palette.touchpoint(last.get(i["name"], "")) for i in states],
               "States after which journeys drop off more than after an average step",
               f"no state drops off more often than an average step {sure}")
    _leak_bars(axes[1], moves, [palette.touchpoint(i["name"].split(" > ")[-1]) for i in moves],
               "Moves (a > b: arriving at b from a) followed by drop-off more than average",
               f"no move is followed by drop-off more often than an average step {sure}"
               if getattr(model, "experience_", None) is not None else
               "this model file was saved before pain points existed: fit again to see moves")
    axes[1].set_xlabel(f"expected conversions lost, {round(100 * ci)}% credible interval")
    caption = ("Where the chain's journeys leak, as the pain points rank them (the items "
               "`journeymodel pain-points` gives for this model): states (colour: the "
               "newest touchpoint) and moves between channels (colour: the channel arrived at) "
               "after which journeys drop off more often than after an average step, ranked by "
               "the conversions they cost, passes x (their drop-off rate - the average step's) "
               "x the chance that a journey going on from there converts, with its "
               f"{round(100 * ci)}% credible interval and P(worse than average) from the Beta "
               "posterior of the drop-off rate (Jeffreys prior); listed where P(worse) is at "
               f"least {MIN_PROB:.0%}. Drop-offs only: a churn is an ending the customer "
               "declares, counted as its own outcome, not a leak.")
    return Figure(f"{sid}-hotspots", "Drop-off hot spots", caption, render(fig))


def _leak_bars(ax, items: list[dict], colours: list[str], title: str, empty: str) -> None:
    """Horizontal bars of leak costs with their intervals, labelled with the evidence."""
    from journeymodel.report.figure import chance

    ax.set_title(title)
    style_axes(ax)
    if not items:
        ax.text(0.5, 0.5, empty, ha="center", va="center", fontsize=9, transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    y = np.arange(len(items))
    cost = np.array([i["cost"] for i in items])
    low, high = (np.array([i[k] for i in items]) for k in ("cost_low", "cost_high"))
    ax.barh(y, cost, color=colours, height=0.65)
    ax.errorbar(cost, y, xerr=np.vstack([np.maximum(cost - low, 0), np.maximum(high - cost, 0)]),
                fmt="none", ecolor="#222222", elinewidth=1.1, capsize=3)
    ax.set_yticks(y, [_short(i["name"].replace(" > ", " → "), 50) for i in items], fontsize=8)
    for yi, i in enumerate(items):
        ax.text(max(i["cost_high"], i["cost"]), yi,
                f"  {i['cost']:,.1f}: {i['drop_rate']:.0%} of {i['journeys']:,.0f} drop off "
                f"(average {i['baseline']:.0%}), P(worse) {chance(i['p_worse'])}",
                va="center", fontsize=7.5)
    ax.invert_yaxis()
    ax.axvline(0, color="#1d2733", linewidth=0.8)
    ax.set_xlim(min(0.0, float(low.min()) * 1.1), float(high.max()) * 1.9)
