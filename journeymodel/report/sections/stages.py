"""Stages section: the journey map proper, drawn from a fitted :class:`StageModel`.

Stages are columns in journey order (their mean position in the journey); under each stage its
typical touchpoints (emission heat) and what happens after a touchpoint in it (conversion,
churn, drop-off); above, the flows between stages, forward over the top and backward (customers
returning to an earlier stage) underneath. When the data had sentiment, the emotion curve runs
under the stage columns (mean sentiment per stage with its interval), and a companion figure
follows sentiment along the journey's positions.
"""

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
    text_colour,
)
from journeymodel.report.sections.emotion import (
    draw_stage_emotion,
    interval_text,
    position_figure,
    sentiment_of,
)

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.stages.model import StageModel
    from journeymodel.report.palette import Palette

FORWARD = "#1f4e79"
#: Height (inches) of the emotion curve's row under the map.
EMOTION_HEIGHT = 2.3
BACKWARD = "#d95f02"
DIRECT = "(direct)"


def stages_section(model: StageModel, label: str, palette: Palette, *,
                   sid: str = "stages") -> Section:
    """The stage model's section: the journey map figure and the stage tables."""
    K = model.n_stages_
    intro = (f"A hidden Markov model found {K} stages that customers move through: each stage "
             "has its own typical touchpoints and its own chance that a journey converts, "
             "churns or drops off after a touchpoint in it. Customers can move forward, stay, "
             "or fall back to an earlier stage.")
    exp = sentiment_of(model)
    if exp is not None and "stage_mean" not in exp:  # no stage curve: nothing to draw
        exp = None
    if exp is not None:
        intro += (" Under the stages runs the emotion curve: how customers rated their "
                  "experience in each stage.")
    section = Section(sid, f"The journey map: stages ({label})", intro)
    flows = stage_flows(model)
    section.facts = [("stages", str(K)), ("steps per journey (expected)",
                                          f"{flows['visits'].sum():.2f}"),
                     ("P(conversion) per journey", pct(float(flows["ends"][0]))),
                     ("EM", "converged" if model.converged_ else "did NOT converge"),
                     ("BIC", f"{model.bic_:,.0f}")]
    if exp is not None:
        section.facts.append(("average sentiment (-1..1)",
                              f"{exp.attrs['sentiment_mean']:+.2f}"))
    section.items.append(map_figure(model, flows, palette, sid, exp))
    if exp is not None:
        section.items.append(position_figure(exp, sid, stage_marks(model)))
    section.items += [stage_table(model, flows, sid, exp), transition_table(model, sid)]
    return section


def journey_order(model: StageModel) -> np.ndarray:
    """Stage indices sorted by their mean position in the journey (the column order)."""
    return np.argsort(model.mean_position_, kind="stable")


def stage_marks(model: StageModel) -> list[tuple[str, float]]:
    """Each stage's short name (``S1``) and mean position in the journey (1-based), in column
    order: the marks of :func:`~journeymodel.report.sections.emotion.position_figure`."""
    return [(model.stage_names_[k].split(": ")[0], float(model.mean_position_[k]) + 1.0)
            for k in journey_order(model)]


def stage_flows(model: StageModel) -> dict[str, np.ndarray]:
    """Expected steps per stage and stage-to-stage moves per journey, and outcome chances.

    With ``c = exitprob[:, continue]``, the expected number of steps a journey spends in each
    stage is ``startprob @ inv(I - diag(c) @ transmat)``; the expected moves from s to r are
    ``visits[s] * c[s] * transmat[s, r]``.

    Returns
    -------
    dict
        ``visits`` (K,), ``moves`` (K, K), ``ends`` (3,): P(the journey ends in conversion,
        churn, drop-off) from the start; ``eventually`` (K, 3): the same from a step in stage k,
        the model's own :func:`~journeymodel.models.stages.fit.absorption` (its stage table's
        ``p_convert_eventually``).
    """
    from journeymodel.models.stages.fit import absorption

    cont = model.exitprob_[:, 0]
    K = len(cont)
    visits = model.startprob_ @ np.linalg.inv(np.eye(K) - cont[:, None] * model.transmat_)
    moves = visits[:, None] * cont[:, None] * model.transmat_
    eventually = absorption(model.stage_fit())
    return {"visits": visits, "moves": moves, "ends": model.startprob_ @ eventually,
            "eventually": eventually}


def map_figure(model: StageModel, flows: dict, palette: Palette, sid: str,
               exp=None) -> Figure:
    """The map: flows over the stage columns, emission heat, outcomes, and (``exp`` with
    sentiment, see :func:`~journeymodel.report.sections.emotion.sentiment_of`) the emotion curve
    under the same columns."""
    fig, caption = draw_map(model, flows, palette, exp)
    return Figure(f"{sid}-map", "The journey map", caption, render(fig))


def draw_map(model: StageModel, flows: dict, palette: Palette, exp=None):
    """The map's matplotlib figure and caption; its axes are, top to bottom, the flows, the
    emission heat, the outcomes and (with ``exp``) the emotion curve, on one shared x axis
    (stage column ``i`` at x = i)."""
    order = journey_order(model)
    K = len(order)
    tps = [s for s in model.symbols_ if s != DIRECT]
    emission = model.emissionprob_[order][:, : len(tps)]
    show = emission.max(axis=0) >= 0.02
    tps = [t for t, s in zip(tps, show, strict=True) if s]
    emission = emission[:, show]
    heights = [4.2, 0.34 * len(tps) + 0.4, 2.4] + ([EMOTION_HEIGHT] if exp is not None else [])
    fig = new_figure(max(8.0, 2.3 * K + 2.2),
                     4.2 + 0.34 * len(tps) + 2.4 + (EMOTION_HEIGHT if exp is not None else 0))
    axes = fig.subplots(len(heights), 1, height_ratios=heights, sharex=True)
    _draw_flows(axes[0], model, flows, order)
    _draw_emission(axes[1], emission, tps, palette)
    _draw_outcomes(axes[2], model, flows, order, palette)
    axes[0].set_xlim(-0.6, K - 0.4)
    caption = ("Top: the stages in journey order (by mean position in the "
               "journey); in each box the share of journeys that start there, the expected "
               "touchpoints spent there per journey and the share of moves that stay; arrows "
               "are the expected moves between stages per 100 journeys, forward above (blue) "
               "and backward below (orange). Middle: each stage's typical touchpoints, "
               "P(touchpoint | stage). {third}: what happens right after a touchpoint in the "
               "stage (conversion, churn, drop-off) and the chance the journey eventually "
               "converts from there (diamond). EM maximum-likelihood point "
               "estimates: the model gives no intervals, so read small differences "
               f"with care; log-likelihood {model.log_likelihood_:,.1f}, "
               f"{model.n_parameters_} parameters.")
    emotion = ""
    if exp is not None:
        axes[2].xaxis.set_tick_params(labelbottom=True)  # keep the stage names under the bars
        draw_stage_emotion(axes[3], exp, order,
                           [model.stage_names_[k].split(": ")[0] for k in order])
        ci = round(100 * float(exp.attrs["ci"]))
        emotion = (" Bottom, the emotion curve: "
                   "mean sentiment (rescaled to -1..1) of the scored "
                   "touchpoints in each stage, each event weighted by the probability that it "
                   f"belongs to the stage, with its {ci}% interval (Student t on the effective "
                   "number of scored events; the stage assignment taken as given) and the "
                   "number of scored events; dashed: the average of all scored events; magenta: "
                   "the whole interval lies below the average (friction). Unscored events are "
                   "left out, not counted as 0.")
    return fig, caption.format(third="Bottom" if exp is None else "Third row") + emotion


def _draw_flows(ax, model: StageModel, flows: dict, order: np.ndarray) -> None:
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    K = len(order)
    moves = flows["moves"][np.ix_(order, order)] * 100
    stay = np.diag(model.transmat_)[order]
    biggest = max(moves[~np.eye(K, dtype=bool)].max() if K > 1 else 1.0, 1e-9)
    ax.set_ylim(-2.3, 2.3)
    for col in range(K):
        for row in range(K):
            if row == col or moves[col, row] < 0.5:
                continue
            forward = row > col
            span = abs(row - col)
            rad = (-0.35 if forward else -0.35) / max(span, 1) ** 0.3
            y = 0.62 if forward else -0.62
            arrow = FancyArrowPatch(
                (col + (0.12 if forward else -0.12), y), (row - (0.12 if forward else -0.12), y),
                connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>,head_length=6,head_width=4",
                mutation_scale=1.0, linewidth=0.8 + 7.0 * moves[col, row] / biggest,
                color=FORWARD if forward else BACKWARD, alpha=0.75, zorder=1)
            ax.add_patch(arrow)
            mid = (col + row) / 2
            height = (0.62 + 0.55 * span ** 0.7) * (1 if forward else -1)
            ax.text(mid, height, f"{moves[col, row]:.0f}", ha="center", va="center",
                    fontsize=8, color=FORWARD if forward else BACKWARD,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})
    for col, k in enumerate(order):
        colour = _stage_colour(col, K)
        box = FancyBboxPatch((col - 0.4, -0.55), 0.8, 1.1, boxstyle="round,pad=0.02",
                             fc=colour, ec="#1d2733", lw=0.8, zorder=2)
        ax.add_patch(box)
        name = model.stage_names_[k]
        short, _, rest = name.partition(": ")
        ink = text_colour(colour)
        ax.text(col, 0.33, short + (": " + rest.split(" (")[0] if rest else ""),
                ha="center", va="center", fontsize=10, fontweight="bold", color=ink, zorder=3)
        ax.text(col, -0.12, f"starts here {model.startprob_[k]:.0%}\n"
                f"{flows['visits'][k]:.2f} steps/journey\nstays {stay[col]:.0%}",
                ha="center", va="center", fontsize=8, color=ink, zorder=3, linespacing=1.3)
    ax.text(-0.58, 2.15, "forward moves per 100 journeys", fontsize=8, color=FORWARD)
    ax.text(-0.58, -2.2, "backward moves per 100 journeys", fontsize=8, color=BACKWARD)
    ax.axis("off")


def _stage_colour(col: int, K: int) -> str:
    from journeymodel.report.palette import Palette

    return Palette.stage(col, K)


def _draw_emission(ax, emission: np.ndarray, tps: list[str], palette: Palette) -> None:
    K = emission.shape[0]
    ax.imshow(emission.T, cmap="Purples", vmin=0, vmax=max(emission.max(), 1e-9),
              aspect="auto", extent=(-0.5, K - 0.5, len(tps) - 0.5, -0.5))
    for k in range(K):
        for i in range(len(tps)):
            v = emission[k, i]
            if v >= 0.01:
                ax.text(k, i, f"{v:.0%}", ha="center", va="center", fontsize=8,
                        color="white" if v > 0.6 * emission.max() else "#1d2733")
    ax.set_yticks(range(len(tps)), tps)
    for tick, name in zip(ax.get_yticklabels(), tps, strict=True):
        tick.set_bbox({"boxstyle": "round,pad=0.2", "fc": palette.touchpoint(name),
                       "ec": "none"})
        tick.set_color(text_colour(palette.touchpoint(name)))
    ax.set_ylabel("typical touchpoints")
    ax.tick_params(axis="x", length=0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)


def _draw_outcomes(ax, model: StageModel, flows: dict, order: np.ndarray,
                   palette: Palette) -> None:
    K = len(order)
    width = 0.22
    labels = (("conversion", 1), ("churn", 2), ("dropoff", 3))
    for j, (name, col) in enumerate(labels):
        values = model.exitprob_[order, col]
        x = np.arange(K) + (j - 1) * width
        ax.bar(x, values, width=width * 0.95, color=palette.outcome(name),
               label=f"{name} right after a touchpoint")
        for xi, v in zip(x, values, strict=True):
            ax.text(xi, v, f"{v:.0%}", ha="center", va="bottom", fontsize=7)
    ax.scatter(np.arange(K), flows["eventually"][order, 0], marker="D", s=36,
               color="white", edgecolor=palette.outcome("conversion"), linewidth=1.6,
               zorder=3, label="P(eventually converts) from here")
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(percent_format())
    ax.set_ylabel("share")
    ax.set_xticks(range(K), [model.stage_names_[k].split(": ")[0] for k in order])
    ax.legend(loc="upper left", ncols=2, frameon=False, fontsize=8)
    style_axes(ax, grid="y")


def stage_table(model: StageModel, flows: dict, sid: str, exp=None) -> Table:
    order = journey_order(model)
    rows = []
    caption = ("Each stage's typical touchpoints, where journeys start, how long they stay "
               "(expected touchpoints per journey) and the outcome chances after a touchpoint "
               "in the stage. Point estimates (EM).")
    if exp is not None:
        caption += (f" Sentiment: mean on -1..1 with its {round(100 * float(exp.attrs['ci']))}% "
                    "interval, and the scored events behind it (weighted by stage "
                    "probability).")
    for k in order:
        top = np.argsort(-model.emissionprob_[k], kind="stable")[:3]
        rows.append({
            "stage": model.stage_names_[k],
            "typical touchpoints": ", ".join(f"{model.symbols_[i]} {model.emissionprob_[k, i]:.0%}"
                                             for i in top),
            "starts here": pct(model.startprob_[k]),
            "steps per journey": f"{flows['visits'][k]:.2f}",
            "conversion after a step": pct(model.exitprob_[k, 1]),
            "churn after a step": pct(model.exitprob_[k, 2]),
            "drop-off after a step": pct(model.exitprob_[k, 3]),
            "converts eventually": pct(flows["eventually"][k, 0])})
        if exp is not None:
            rows[-1]["sentiment"] = interval_text(exp["stage_mean"].values[k],
                                                  exp["stage_low"].values[k],
                                                  exp["stage_high"].values[k], signed=True)
            rows[-1]["scored events"] = f"{exp['stage_scored'].values[k]:,.0f}"
    frame = pd.DataFrame(rows).set_index("stage")
    return Table(f"{sid}-stages", "Stages in journey order", caption, frame)


def transition_table(model: StageModel, sid: str) -> Table:
    order = journey_order(model)
    short = [model.stage_names_[k].split(": ")[0] for k in order]
    P = model.transmat_[np.ix_(order, order)]
    frame = pd.DataFrame([[pct(v, 0) for v in row] for row in P],
                         index=pd.Index(short, name="from \\ to"), columns=short)
    styles = [[shade(v, FORWARD if j > i else BACKWARD if j < i else "#666666")
               for j, v in enumerate(row)] for i, row in enumerate(P)]
    return Table(f"{sid}-transitions", "Stage transitions",
                 "P(next stage | this stage), given the journey continues; above the diagonal "
                 "forward (blue), below it backward (orange). Point estimates (EM).", frame,
                 styles)
