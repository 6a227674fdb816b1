"""The report's comparison sections: "What changed" (by period) and "Where segments differ"
(by device, persona or a column).

Each draws a :class:`journeymodel.analysis.compare.Comparison` (nothing is computed again): a
heat map of the main steps' rates per group, coloured by how far each lies from the whole
log's rate, with the listed findings outlined, and the findings table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeymodel.analysis.compare import Comparison
from journeymodel.report.figure import (
    Figure,
    Section,
    Table,
    chance,
    new_figure,
    render,
    style_axes,
)

#: Steps in the heat map: every finding's step first, then the busiest steps, up to this many.
ROWS = 14
#: Findings in the table.
TOP = 10


def compare_section(found: Comparison, *, sid: str | None = None) -> Section:
    """The section of one comparison ("What changed" for periods, else "Where segments
    differ")."""
    slug = found.by.replace(":", "-").replace(" ", "-").lower()
    sid = sid or f"compare-{slug}"
    n = len(found.differences)
    if found.is_period:
        title = "What changed"
        intro = (f"Each step's rate per period ({found.by}), against the same step in all "
                 "other periods; consecutive periods with the same credible change are one "
                 "finding.")
    else:
        title = f"Where segments differ ({found.by})"
        intro = f"Each step's rate per {found.by}, against the same step in all other groups."
    intro += (f" Listed: p_diff >= {found.min_prob:g} and the Benjamini-Hochberg rule at a "
              f"{100 * found.fdr:g}% false-discovery rate over all {found.tests:,} comparisons. "
              + " ".join(found.notes[1:]))
    section = Section(sid, title, intro.strip())
    section.facts = [("groups", f"{len(found.groups):,}"), ("comparisons", f"{found.tests:,}"),
                     ("credible differences", f"{n:,}")]
    if n:
        top = found.differences.iloc[0]
        section.facts.append(("biggest", f"{top['from']} -> {top['to']}: "
                                         f"{top['impact']:+,.0f} conversions"))
    if len(found.cells):
        section.items.append(heat_map(found, sid))
    section.items.append(findings_table(found, sid))
    return section


def main_steps(found: Comparison, rows: int = ROWS) -> list[tuple[str, str]]:
    """The steps of the heat map: findings' steps (most important first), then those taken
    most often."""
    steps: list[tuple[str, str]] = []
    for a, b in zip(found.differences["from"], found.differences["to"], strict=True):
        if (a, b) not in steps:
            steps.append((a, b))
    cells = found.cells.assign(steps=found.cells["visits"] * found.cells["pooled_rate"])
    busy = (cells.groupby(["from", "to"], sort=True)["steps"].sum()
            .sort_values(ascending=False, kind="mergesort"))
    for a, b in busy.index:
        if len(steps) >= rows:
            break
        if (a, b) not in steps:
            steps.append((a, b))
    return steps[:rows]


def heat_map(found: Comparison, sid: str) -> Figure:
    """Rates per step (rows) and group (columns); colour: the rate relative to the whole
    log's (red lower, blue higher, clipped at half or double); findings outlined in black."""
    steps = main_steps(found)
    cells = found.cells
    col = {g: i for i, g in enumerate(found.groups)}
    row = {s: i for i, s in enumerate(steps)}
    rate = np.full((len(steps), len(found.groups)), np.nan)
    rel = np.full_like(rate, np.nan)
    listed = np.zeros(rate.shape, bool)
    keep = [(a, b) in row for a, b in zip(cells["from"], cells["to"], strict=True)]
    sub = cells[keep]
    r = np.array([row[(a, b)] for a, b in zip(sub["from"], sub["to"], strict=True)], int)
    c = np.array([col[g] for g in sub["group"]], int)
    if len(sub):
        rate[r, c] = sub["rate"]
        rel[r, c] = np.log2(sub["rate"].to_numpy() / sub["pooled_rate"].to_numpy())
        listed[r, c] = sub["listed"].to_numpy()
    width = min(max(6.0, 2.6 + 0.22 * len(found.groups)), 14.0)
    fig = new_figure(width, 1.2 + 0.32 * len(steps))
    ax = fig.add_subplot()
    image = ax.imshow(np.clip(rel, -1, 1), cmap="RdBu", vmin=-1, vmax=1, aspect="auto",
                      interpolation="nearest")
    for i, j in zip(*np.nonzero(listed), strict=True):
        ax.add_patch(_box(j, i))
    if len(found.groups) <= 12:
        for i, j in zip(*np.nonzero(np.isfinite(rate)), strict=True):
            ax.text(j, i, f"{rate[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="#ffffff" if abs(rel[i, j]) > 0.7 else "#1d2733")
    ax.set_yticks(range(len(steps)), [f"{a} -> {b}" for a, b in steps])
    step = max(1, len(found.groups) // 16)
    ax.set_xticks(range(0, len(found.groups), step), found.groups[::step], rotation=45,
                  ha="right")
    style_axes(ax, grid=None)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, ticks=[-1, 0, 1])
    bar.ax.set_yticklabels(["half", "same", "double"])
    bar.set_label("rate against the whole log")
    what = "period" if found.is_period else found.by
    return Figure(f"{sid}-heat", f"Rates per {what}",
                  "Each cell is a step's posterior mean rate in one group (blank: no visits, "
                  "or the step is the only way out); colour compares it with the whole log's "
                  "rate. Black outlines: credible differences from the other groups.",
                  render(fig))


def _box(x: float, y: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="#000000", linewidth=1.6)


def findings_table(found: Comparison, sid: str, top: int = TOP) -> Table:
    """The ``top`` findings with their interval and evidence."""
    d = found.differences.head(top)
    pct = round(100 * found.ci)
    word = "when" if found.is_period else "group"
    when = [f"{r['start']} to {r['end']}" if found.is_period else str(r["group"])
            for r in d.to_dict(orient="records")]
    frame = pd.DataFrame({
        word: when,
        "rate": [f"{x:.3f}" for x in d["rate"]],
        "others": [f"{x:.3f}" for x in d["baseline_rate"]],
        "difference": [f"{x:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                       for x, lo, hi in zip(d["diff"], d["low"], d["high"], strict=True)],
        "p_diff": [chance(p) for p in d["p_diff"]],
        "journeys": [f"{x:,.0f}" for x in d["journeys"]],
        "conversions": [f"{x:+,.1f}" for x in d["impact"]],
    }, index=pd.Index([f"{a} -> {b}" for a, b in zip(d["from"], d["to"], strict=True)],
                      name="step"))
    caption = (f"Difference: group minus all other groups, with its {pct}% interval. "
               "Conversions: the conversions at stake (negative: lost). "
               + (" ".join(found.sentences(1)) + "." if len(d) else
                  "No credible difference."))
    return Table(f"{sid}-findings", "Credible differences, most conversions at stake first",
                 caption, frame)
