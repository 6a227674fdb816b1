"""Build the journey-map report from fitted models: one self-contained HTML page (and PNGs).

Each model type has a section builder; sections appear in journey-map order (stages first: the
map proper; then the Markov flows, persona conversion, persona churn), then the pain points of
all Markov and stages models together, the comparisons of the event log if asked for (what
changed by period, where segments differ), and the data section closes the page. Any subset of
models works, and several models of one type get one section each.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journeymodel.errors import OptionError

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.analysis.compare import Comparison
    from journeymodel.data.journeys import JourneySet
    from journeymodel.models.base import JourneyModel
    from journeymodel.report.figure import Figure, Section

#: Model type -> "module:function" building its section, in the order sections appear.
SECTION_BUILDERS = {
    "stages": "journeymodel.report.sections.stages:stages_section",
    "markov": "journeymodel.report.sections.markov:markov_section",
    "segments": "journeymodel.report.sections.segments:segments_section",
    "conversion": "journeymodel.report.sections.conversion:conversion_section",
    "churn": "journeymodel.report.sections.churn:churn_section",
}
DEFAULT_TITLE = "Customer journey map"


@dataclass
class Report:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    path : Path
        The HTML file.
    sections : list of Section
    png_paths : list of Path
        PNG files written to ``png_dir`` (empty without one).
    seconds : float
        Wall time of the build.
    """

    path: Path
    sections: list[Section]
    png_paths: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]


def build_report(models: Sequence[JourneyModel] | Mapping[str, JourneyModel],
                 out_path: str | Path, *, title: str = DEFAULT_TITLE,
                 png_dir: str | Path | None = None,
                 events: JourneySet | None = None,
                 comparisons: Sequence[Comparison] = ()) -> Report:
    """Draw the journey map of fitted ``models`` into one HTML file.

    Parameters
    ----------
    models : sequence of fitted models, or mapping of label -> model
        Any of MarkovJourneyModel, StageModel, ConversionModel, ChurnModel, in any number.
        Labels name the models in tables (default: the model type, numbered if repeated).
    out_path : path
        The HTML file to write; its folder must exist. Written atomically (a temporary file
        renamed into place), as is each PNG: an error or interrupt leaves no partial file.
    title : str
        Page title.
    png_dir : path, optional
        Also write every figure there as ``<key>.png`` (the folder is created).
    events : JourneySet, optional
        The event log's journeys: adds the log's own outcome mix and touchpoint counts to the
        data section.
    comparisons : sequence of Comparison, optional
        Results of :func:`journeymodel.analysis.compare.compare`: a section each ("What
        changed" by period, "Where segments differ" by device, persona or a column), after
        the pain points.

    Returns
    -------
    Report

    Raises
    ------
    OptionError
        No models, an object that is not a journeymodel model, or an output path that cannot
        be written.
    NotFittedError
        A model is not fitted.

    Examples
    --------
    >>> from journeymodel.report.build import build_report
    >>> report = build_report([markov_model], "journey-map.html")  # doctest: +SKIP
    >>> [s.id for s in report.sections]  # doctest: +SKIP
    ['markov', 'pain', 'data']
    """
    start = time.perf_counter()
    named = _named(models)
    out_path = check_output(Path(out_path))
    png_path = None if png_dir is None else _check_png_dir(Path(png_dir))
    sections = build_sections(named, events, comparisons)
    return _write(sections, out_path, title, _subtitle(named), png_path, start)


def build_compare_report(comparisons: Sequence[Comparison], out_path: str | Path, *,
                         title: str = "What changed, and for whom",
                         png_dir: str | Path | None = None) -> Report:
    """A page of comparison sections only (``journeymodel compare ... --report``).

    Raises
    ------
    OptionError
        No comparisons, or an output path that cannot be written.
    """
    start = time.perf_counter()
    if not comparisons:
        raise OptionError("a comparison report needs at least one comparison (got none)")
    out_path = check_output(Path(out_path))
    png_path = None if png_dir is None else _check_png_dir(Path(png_dir))
    from journeymodel.report.figure import rc_context

    with rc_context():
        sections = _compare_sections(comparisons)
    subtitle = "Compared by " + ", ".join(c.by for c in comparisons) + "."
    return _write(sections, out_path, title, subtitle, png_path, start)


#: What the report forecasts for the journeys in flight of each Markov and stages model.
FORECAST_HORIZON = {"datetime": "30D", "period": 30.0}
FORECAST_DRAWS = 200


def _forecast_sections(named: list[tuple[str, Any]], events: JourneySet | None,
                       palette) -> list[Section]:
    """The section "the next 30 days" of each Markov and stages model that knows its holding
    times, forecast for the journeys of ``events`` in flight at their end (none without
    events)."""
    if events is None or events.time_kind not in FORECAST_HORIZON:
        return []
    from journeymodel.analysis.forecast import forecast_in_flight
    from journeymodel.report.sections.forecast import forecast_section

    sections = []
    for label, model in named:
        holding = getattr(model, "holding_", None)
        if model.model_type in ("markov", "stages") and holding is not None:
            found = forecast_in_flight(model, events, FORECAST_HORIZON[events.time_kind],
                                       n_draws=FORECAST_DRAWS, seed=0)
            sid = f"forecast-{len(sections) + 1}" if sections else "forecast"
            sections.append(forecast_section(found, label, palette, sid=sid))
    return sections


def _compare_sections(comparisons: Sequence[Comparison]) -> list[Section]:
    from journeymodel.report.sections.compare import compare_section

    sections, seen = [], set()
    for found in comparisons:
        section = compare_section(found)
        while section.id in seen:  # the same grouping twice: number the second
            section.id += "-2"
        seen.add(section.id)
        sections.append(section)
    return sections


def _write(sections, out_path: Path, title: str, subtitle: str, png_path: Path | None,
           start: float) -> Report:
    from journeymodel.io.outputs import write_bytes, write_text
    from journeymodel.report.html import render_page

    page = render_page(title, subtitle, sections, _footer())
    written = []
    if png_path is not None:  # each PNG, then the page, whole or not at all
        for section in sections:
            for fig in section.figures:
                written.append(write_bytes(png_path / f"{fig.key}.png", fig.png, "figure"))
    write_text(out_path, page, "report")
    return Report(out_path, sections, written, time.perf_counter() - start)


def build_sections(named: list[tuple[str, Any]], events: JourneySet | None = None,
                   comparisons: Sequence[Comparison] = ()) -> list[Section]:
    """Every section of the report, in page order: model sections, the pain points (from the
    Markov and stages models, when they hold experience data), the comparisons, then the
    data."""
    from journeymodel.report.figure import rc_context
    from journeymodel.report.palette import palette_for
    from journeymodel.report.sections.data import data_section
    from journeymodel.report.sections.pain import pain_section

    palette = palette_for([m for _, m in named], events)
    sections = []
    with rc_context():
        for model_type, target in SECTION_BUILDERS.items():
            of_type = [(label, m) for label, m in named if m.model_type == model_type]
            if not of_type:
                continue
            module, _, func = target.partition(":")
            builder = getattr(importlib.import_module(module), func)
            for i, (label, model) in enumerate(of_type):
                sid = model_type if i == 0 else f"{model_type}-{i + 1}"
                sections.append(builder(model, label, palette, sid=sid))
        sections += _forecast_sections(named, events, palette)
        pain = pain_section(named, palette)
        if pain is not None:
            sections.append(pain)
        sections += _compare_sections(comparisons)
        sections.append(data_section(named, palette, events))
    return sections


def _named(models) -> list[tuple[str, Any]]:
    from journeymodel.models.base import JourneyModel

    pairs = list(models.items()) if isinstance(models, Mapping) else [
        (None, m) for m in models]
    if not pairs:
        raise OptionError("a report needs at least one fitted model (got none)")
    counts: dict[str, int] = {}
    named = []
    for label, model in pairs:
        if not isinstance(model, JourneyModel):
            raise OptionError(f"a report is drawn from journeymodel models (got "
                              f"{type(model).__name__})")
        if model.model_type not in SECTION_BUILDERS:
            raise OptionError(f"no report section for {model.model_type!r} models")
        model._check_fitted()
        counts[model.model_type] = counts.get(model.model_type, 0) + 1
        n = counts[model.model_type]
        named.append((str(label) if label is not None else (
            model.model_type if n == 1 else f"{model.model_type} {n}"), model))
    return named


def check_output(path: str | Path) -> Path:
    """``path`` if a report can be written there, else an OptionError saying why."""
    path = Path(path)
    if path.is_dir():
        raise OptionError(f"{path}: is a folder; give the report's file name, e.g. "
                          f"{path / 'journey-map.html'}")
    folder = path.parent
    if not folder.is_dir():
        raise OptionError(f"{path}: cannot write the report, the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OptionError(f"{path}: cannot write the report there (permission denied)")
    return path


def _check_png_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise OptionError(f"--png-dir {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"--png-dir {path}: cannot create the folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise OptionError(f"--png-dir {path}: cannot write there (permission denied)")
    return path


def _subtitle(named) -> str:
    parts = [f"{label} ({m.model_type})" if label != m.model_type else label
             for label, m in named]
    return f"Drawn from {len(named)} fitted model{'s' * (len(named) != 1)}: {', '.join(parts)}."


def _footer() -> str:
    from journeymodel import __version__

    return (f"journeymodel {__version__}. Self-contained page: images and styles are embedded; "
            "nothing is fetched from the network.")
