"""Segments section: the behavioural segments side by side, drawn from a fitted
:class:`SegmentModel` (its profile: sizes, conversion, touchpoint mix, characteristic paths).

One figure with three panels sharing the segments as rows: the share of customers, the
conversion rate of ended journeys, and the touchpoint mix of the segment's steps; then a table
of the segments and one of their characteristic paths side by side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from journeymodel.models.segments.summary import paths_side_by_side, segment_table
from journeymodel.report.figure import (
    Figure,
    Section,
    Table,
    new_figure,
    pct,
    percent_format,
    render,
    style_axes,
)
from journeymodel.report.palette import OUTCOME_COLOURS, PERSONA_COLOURS

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.segments.model import SegmentModel
    from journeymodel.report.palette import Palette


def segments_section(model: SegmentModel, label: str, palette: Palette, *,
                     sid: str = "segments") -> Section:
    """The segment model's section: the segments figure and the two tables."""
    K = model.n_segments_
    intro = (f"A mixture model found {K} behavioural segments among "
             f"{model.n_customers_:,} customers: every journey of a customer is drawn from "
             "one segment's process, so the segments are groups of customers who move alike. "
             "They are ordered by size and named after the touchpoints more common in them "
             "than overall and their conversion rate against the overall one.")
    section = Section(sid, f"Behavioural segments ({label})", intro)
    chosen = (f"{K} by BIC among {model.selection_['n_segments'].min()}.."
              f"{model.selection_['n_segments'].max()}" if len(model.selection_) > 1
              else f"{K} (given)")
    section.facts = [("customers", f"{model.n_customers_:,}"), ("segments", chosen),
                     ("process", "Markov chain per segment" if model.kind == "markov"
                      else f"stages HMM per segment ({model.n_stages} stages)")]
    section.items += [_figure(model, palette, sid), *_tables(model, sid)]
    return section


def _figure(model: SegmentModel, palette: Palette, sid: str) -> Figure:
    table = segment_table(model)
    names = table["segment"].tolist()
    y = np.arange(len(names))[::-1]
    colours = [PERSONA_COLOURS[k % len(PERSONA_COLOURS)] for k in range(len(names))]
    fig = new_figure(11.0, 1.2 + 0.55 * len(names))
    axes = fig.subplots(1, 3, sharey=True, gridspec_kw={"width_ratios": [1, 1, 1.6]})
    for ax, column, title in ((axes[0], "share", "Customers"),
                              (axes[1], "conversion_rate", "Conversion")):
        values = np.nan_to_num(table[column].to_numpy(dtype=float))
        ax.barh(y, values, color=colours if column == "share" else
                OUTCOME_COLOURS["conversion"], height=0.6)
        for yi, v in zip(y, values, strict=True):
            ax.text(v, yi, f" {pct(v, 0)}", va="center", fontsize=9)
        ax.set_xlim(0, max(values.max() * 1.3, 0.05))
        ax.xaxis.set_major_formatter(percent_format())
        ax.set_title(title)
        style_axes(ax)
    axes[0].set_yticks(y, names)
    _mix_panel(axes[2], model, y, palette)
    return Figure(f"{sid}-profile", "Segments side by side",
                  "Each segment's share of customers (expected: the sum of the customers' "
                  "membership probabilities), its conversion rate (conversions per journey "
                  "that ended) and the mix of touchpoints in its journeys.", render(fig))


def _mix_panel(ax, model: SegmentModel, y: np.ndarray, palette: Palette) -> None:
    steps = model.profile_.touchpoints[:, :-1]
    mix = steps / np.maximum(steps.sum(axis=1, keepdims=True), 1e-300)
    left = np.zeros(len(mix))
    for i, name in enumerate(model.symbols_[:-1]):
        ax.barh(y, mix[:, i], left=left, height=0.6, color=palette.touchpoint(name),
                label=name)
        left += mix[:, i]
    ax.xaxis.set_major_formatter(percent_format())
    ax.set_xlim(0, 1)
    ax.set_title("Touchpoint mix")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(4, mix.shape[1]),
              frameon=False)
    style_axes(ax)


def _tables(model: SegmentModel, sid: str) -> tuple[Table, Table]:
    table = segment_table(model)
    shown = table.assign(
        share=table["share"].map(lambda v: pct(v, 1)),
        customers=table["customers"].map(lambda v: f"{v:,.0f}"),
        journeys_per_customer=table["journeys_per_customer"].map(lambda v: f"{v:.1f}"),
        conversion_rate=table["conversion_rate"].map(lambda v: pct(v, 1)),
        churn_rate=table["churn_rate"].map(lambda v: pct(v, 1))).rename(columns={
            "journeys_per_customer": "journeys per customer", "conversion_rate": "conversion",
            "churn_rate": "churn", "top_touchpoints": "distinguishing touchpoints"})
    sizes = Table(f"{sid}-table", "Segments",
                  "Expected customers of each segment, journeys per customer, conversion and "
                  "churn per ended journey, and the touchpoints most over-represented in it.",
                  shown.set_index("segment"))
    paths = paths_side_by_side(model, "characteristic").set_index("rank")
    return sizes, Table(f"{sid}-paths", "Characteristic paths, side by side",
                        "The paths most over-represented in each segment (at least 0.5% of its "
                        "journeys and more common there than overall, ranked by share times the "
                        "log of that lift), with their "
                        "share of the segment's journeys.", paths)
