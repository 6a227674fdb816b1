"""Forecast section ("the next 30 days"): the conversions expected per day from the journeys in
flight, with their 94% band, drawn from a :class:`~journeymodel.analysis.forecast.Forecast`
(the section computes nothing itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from journeymodel.report.figure import Figure, Section, new_figure, render, style_axes

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.analysis.forecast import Forecast
    from journeymodel.report.palette import Palette


def forecast_section(forecast: Forecast, label: str, palette: Palette, *,
                     sid: str = "forecast") -> Section:
    """The section of one forecast: facts (journeys in flight, totals) and the daily figure.

    ``forecast`` comes from :func:`journeymodel.analysis.forecast.forecast_in_flight` (for the
    report: the model, the event log read up to its end, ``"30D"``, 200 draws, seed 0).
    """
    js = forecast.summary()
    span = _span(forecast)
    intro = (f"The {forecast.n_in_flight:,} journeys in flight at {js['as_of'][:10]}, each "
             "continued from where it stands and from the time already spent since its last "
             f"event ({label} model with its holding times), over the next {span}. New "
             "journeys that start after that date are not counted.")
    section = Section(sid, f"The next {span} ({label})", intro)
    section.facts = [("journeys in flight", f"{forecast.n_in_flight:,}")] + [
        (name, _mean_interval(js[key]))
        for name, key in (("conversions", "conversions"), ("churns", "churns"),
                          ("drop-offs", "dropoffs"))]
    section.items.append(daily_figure(forecast, palette, sid))
    return section


def _span(forecast: Forecast) -> str:
    if forecast.time_kind == "datetime":
        days = forecast.horizon / 86400.0
        return f"{days:g} days"
    return f"{forecast.horizon:g} periods"


def _mean_interval(d: dict) -> str:
    return f"{d['mean']:,.1f} [{d['low']:,.0f}, {d['high']:,.0f}]"


def daily_figure(forecast: Forecast, palette: Palette, sid: str) -> Figure:
    """Expected conversions per day (posterior mean of the draws) with the 94% band."""
    js = forecast.summary()
    days = js["daily"]
    x = np.arange(len(days))
    mean = np.array([d["mean"] for d in days])
    low = np.array([d["low"] for d in days])
    high = np.array([d["high"] for d in days])
    colour = palette.outcome("conversion")
    fig = new_figure(10, 3.8)
    ax = fig.add_subplot()
    ax.fill_between(x, low, high, step="mid", color=colour, alpha=0.2, linewidth=0,
                    label="94% interval")
    ax.plot(x, mean, color=colour, linewidth=2, marker="o", markersize=3, label="expected")
    step = max(1, len(days) // 8)
    ax.set_xticks(x[::step], [d["date"] for d in days][::step])
    ax.set_xlim(-0.5, len(days) - 0.5)
    ax.set_ylim(0, max(float(high.max()) if len(high) else 1.0, 1.0) * 1.1)
    per = "day" if forecast.time_kind == "datetime" else "period"
    ax.set_ylabel(f"conversions per {per}")
    ax.legend(frameon=False, loc="upper right")
    style_axes(ax, grid="y")
    total = js["conversions"]
    caption = (f"Conversions per {per} expected from the {forecast.n_in_flight:,} journeys in "
               f"flight at {js['as_of'][:10]} (the first {per} starts then): the line is the "
               f"mean over {forecast.n_draws} posterior draws, each with its own chance; the "
               "band holds 94% of the draws (parameter uncertainty and the count's own noise). "
               f"In all: {_mean_interval(total)} conversions; journeys that start later are not "
               "counted.")
    return Figure(f"{sid}-daily", f"The next {_span(forecast)}: conversions per {per}",
                  caption, render(fig))
