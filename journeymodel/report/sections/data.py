"""The "data" section: where the rows went (ledger), the journeys the models saw, the outcome mix.

Everything here comes from what each model stores about its training data (``ledger_``,
``journeys_`` with its outcome mix, the experience data's events per touchpoint, the conversion
model's ``counts_``, the churn model's customers); nothing is re-derived from a model's internals.
With the event log's :class:`JourneySet` the section also shows the log's own outcome mix,
touchpoint use and personas, and the conversion rate ``describe`` gives.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from journeymodel.report.figure import (
    Figure,
    Section,
    Table,
    new_figure,
    percent_format,
    render,
    style_axes,
    text_colour,
)

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.data.journeys import JourneySet
    from journeymodel.report.palette import Palette

#: Segment colours of the outcome-mix bars that are not plain outcomes.
_EXTRA = {"no conversion": "#525252", "still active": "#9ecae1"}


def data_section(named: list[tuple[str, Any]], palette: Palette,
                 journeys: JourneySet | None = None) -> Section:
    """The data section for ``named`` models ((label, model) pairs) and optional journeys."""
    section = Section("data", "The data", _intro(named, journeys))
    section.facts = _facts(named, journeys)
    section.items.append(ledger_table(named))
    section.items.append(journeys_table(named))
    mixes = outcome_mixes(named, journeys)
    if mixes:
        section.items.append(outcome_figure(mixes, palette))
    usage = touchpoint_usage(named, journeys)
    if usage is not None:
        section.items.append(usage_figure(*usage, palette))
    return section


def _intro(named, journeys) -> str:
    sources = sorted({m.ledger_.source for _, m in named})
    text = ("What the models were fitted on: every input row accounted for (rows used plus rows "
            "dropped, by reason), the journeys and vocabularies each model saw, and how "
            "journeys ended. ")
    if journeys is None:
        text += ("Outcome counts come from the models' own fitted counts; pass the event log "
                 "(--events) to see the log's full outcome mix.")
    return text + (f" Source: {', '.join(sources)}." if sources else "")


def _facts(named, journeys) -> list[tuple[str, str]]:
    ledger = named[0][1].ledger_
    meta = named[0][1].journeys_
    facts = [("rows read", f"{ledger.rows_read:,}"), ("rows used", f"{ledger.rows_used:,}"),
             ("journeys", f"{meta.n_journeys:,}"), ("touchpoint events", f"{meta.n_events:,}")]
    if journeys is not None:
        from journeymodel.analysis.describe import completed_conversion_rate

        facts[2] = ("journeys", f"{journeys.n_journeys:,}")
        rate = completed_conversion_rate(journeys.outcome_counts())
        if rate is not None:
            facts.append(("conversion rate (ended journeys)", f"{rate:.1%}"))
    return facts


def ledger_table(named: list[tuple[str, Any]]) -> Table:
    """Rows read, used and dropped by reason: one column per distinct ledger."""
    columns: dict[str, dict[str, int]] = {}
    owners: dict[str, list[str]] = {}
    for label, model in named:
        d = model.ledger_.to_dict()
        key = json.dumps(d, sort_keys=True)
        owners.setdefault(key, []).append(label)
        rows = {"rows read": d["rows_read"], "rows used": d["rows_used"],
                "rows dropped": sum(d["rows_dropped"].values())}
        rows.update({f"  dropped: {k.replace('_', ' ')}": v for k, v in d["rows_dropped"].items()})
        rows.update({f"  unreadable {k}": v for k, v in d["invalid_fields"].items()})
        columns[key] = rows
    frame = pd.DataFrame({", ".join(owners[k]): v for k, v in columns.items()}).fillna(0)
    frame = frame.astype(np.int64).map(lambda v: f"{v:,}")
    frame.index.name = "ledger"
    notes = sorted({n for _, m in named for n in m.ledger_.notes})
    caption = ("Every input row is either used or dropped for a stated reason; the counts add "
               "up. One column per distinct input (models fitted on the same log share one).")
    if notes:
        caption += " Notes: " + "; ".join(notes)
    return Table("data-ledger", "Ledger: where every input row went", caption, frame)


def journeys_table(named: list[tuple[str, Any]]) -> Table:
    """The journeys each model was fitted on: counts, vocabularies, time axis."""
    cols = {}
    for label, model in named:
        meta = model.journeys_
        cols[label] = {
            "journeys": f"{meta.n_journeys:,}", "touchpoint events": f"{meta.n_events:,}",
            "touchpoints": _listing(meta.touchpoints),
            "personas": _listing(meta.personas) if meta.personas else "-",
            "time axis": meta.time_kind, "journey gap": _gap(meta),
            "observed until": _when(meta.observed_until, meta.time_kind)}
    frame = pd.DataFrame(cols)
    frame.index.name = "fitted on"
    return Table("data-journeys", "Journeys each model was fitted on",
                 "Journeys end at a conversion, a churn, or after the inactivity gap (drop-off); "
                 "journeys still open at the end of observation are censored (in flight).", frame)


def _listing(names, limit: int = 12) -> str:
    names = list(names)
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return f"{len(names)}: " + ", ".join(names[:limit]) + more


def _gap(meta) -> str:
    if meta.gap is None:
        return "none"
    if meta.time_kind == "datetime":
        return f"{meta.gap / 86400:g} days"
    return f"{meta.gap:g} periods"


def _when(t: float, kind: str) -> str:
    if t != t:
        return "-"
    if kind == "datetime":
        from journeymodel.data.timestamps import to_timestamp

        return to_timestamp(t).strftime("%Y-%m-%d %H:%M UTC")
    return f"{t:g}"


# ---------------------------------------------------------------------------------------------
# Outcome mix


def outcome_mixes(named, journeys=None) -> list[tuple[str, dict[str, float]]]:
    """(row label, {segment: count}) for each source of outcome counts available."""
    rows: list[tuple[str, dict[str, float]]] = []
    if journeys is not None:
        rows.append(("journeys in the event log", dict(journeys.outcome_counts())))
    for label, model in named:
        mix = model.outcome_mix()
        if mix is not None:
            rows.append((f"{mix[0]} ({label})", mix[1]))
    return [(name, {k: v for k, v in mix.items() if v > 0}) for name, mix in rows
            if sum(mix.values()) > 0]


def outcome_figure(mixes: list[tuple[str, dict[str, float]]], palette: Palette) -> Figure:
    """Horizontal 100% bars, one per source, segments labelled with share and count."""
    fig = new_figure(10, 0.75 + 0.62 * len(mixes))
    ax = fig.add_subplot()
    seen: dict[str, str] = {}
    for row, (_, mix) in enumerate(mixes):
        total = sum(mix.values())
        left = 0.0
        for name, count in mix.items():
            share = count / total
            colour = _EXTRA.get(name) or palette.outcome(name)
            ax.barh(row, share, left=left, color=colour, edgecolor="white", height=0.7)
            seen.setdefault(name, colour)
            if share >= 0.07:
                ax.text(left + share / 2, row, f"{share:.0%}\n{count:,.0f}", ha="center",
                        va="center", fontsize=8, color=text_colour(colour))
            left += share
    ax.set_yticks(range(len(mixes)), [name for name, _ in mixes])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(percent_format())
    ax.set_xlabel("share")
    style_axes(ax, grid=None)
    from matplotlib.patches import Patch

    ax.legend([Patch(color=c) for c in seen.values()], list(seen), ncols=len(seen),
              loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    caption = ("How journeys ended, per source of counts: the event log itself (when given), "
               "the Markov model's absorbed journeys (in-flight journeys have no outcome yet), "
               "the conversion model's completed and censored journeys, and the churn model's "
               "customers. Observed counts, no model uncertainty.")
    return Figure("data-outcomes", "Outcome mix", caption, render(fig))


# ---------------------------------------------------------------------------------------------
# Touchpoint use and personas


def touchpoint_usage(named, journeys=None):
    """(touchpoint counts, persona counts, source text) or None when nothing counts them."""
    if journeys is not None:
        return (pd.Series(journeys.touchpoint_counts(), dtype=float),
                pd.Series(journeys.persona_customers(), dtype=float), "the event log")
    for label, model in named:
        exp = getattr(model, "experience_", None)
        if model.model_type == "markov" and exp is not None:
            return (pd.Series(exp["tp_events"].values.astype(float),
                              index=[str(c) for c in exp["channel"].values]),
                    _model_personas(named), f"the {label} model's training journeys")
    return None


def _model_personas(named) -> pd.Series:
    for _, model in named:
        if model.model_type == "churn":
            return pd.Series(model.customers_.astype(float), index=list(model.personas_))
    return pd.Series(dtype=float)


def usage_figure(tps: pd.Series, personas: pd.Series, source: str, palette: Palette) -> Figure:
    """Bars: events per touchpoint (left) and customers per persona (right)."""
    tps = tps[tps > 0].sort_values()
    two = len(personas) > 0
    fig = new_figure(10, max(2.2, 0.3 * max(len(tps), len(personas)) + 1.0))
    axes = fig.subplots(1, 2, width_ratios=[3, 2]) if two else [fig.add_subplot()]
    ax = axes[0]
    ax.barh(list(tps.index), tps.values, color=[palette.touchpoint(t) for t in tps.index])
    ax.set_title("Touchpoint events")
    ax.set_xlabel("events")
    for y, v in enumerate(tps.values):
        ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
    style_axes(ax)
    if two:
        ax = axes[1]
        personas = personas.sort_values()
        ax.barh(list(personas.index), personas.values,
                color=[palette.persona(p) for p in personas.index])
        ax.set_title("Customers per persona")
        ax.set_xlabel("customers")
        for y, v in enumerate(personas.values):
            ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
        style_axes(ax)
    caption = (f"Touchpoint use and persona sizes, counted from {source}. "
               "Colours identify each touchpoint and persona in every figure of this report. "
               "Observed counts, no model uncertainty.")
    return Figure("data-usage", "Touchpoints and personas", caption, render(fig))
