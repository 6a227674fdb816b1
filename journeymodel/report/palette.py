"""One colour per touchpoint, persona, outcome and stage, shared by every figure of a report.

Colours are plain hex strings (no matplotlib import): a :class:`Palette` is built once per report
from the union of the vocabularies of all its models, in sorted order, so ``email`` has the same
colour in the Markov flow diagram, the attribution chart and the stage map, and a persona keeps
its colour from the forest plot to the retention curves. Green, red and grey are kept for the
outcomes (conversion, churn, drop-off) and never given to a touchpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

#: Touchpoint colours: tab20-like, without the greens, reds and greys used by outcomes.
TOUCHPOINT_COLOURS = (
    "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79",
    "#e7ba52", "#aec7e8", "#ffbb78", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
    "#5254a3", "#8ca252", "#bd9e39", "#ad494a", "#a55194", "#6b6ecf", "#b5cf6b", "#e7969c",
)
#: Persona colours (ColorBrewer Dark2 then Set1), distinct from one another in print.
PERSONA_COLOURS = (
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
    "#377eb8", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#4daf4a", "#e41a1c", "#999999",
)
OUTCOME_COLOURS = {
    "conversion": "#2ca02c",
    "churn": "#d62728",
    "dropoff": "#7f7f7f",
    "censored": "#c7c7c7",
    "continue": "#9ecae1",
}
#: Stages: a sequential ramp (early stages light, late stages dark), cycled past 8.
STAGE_COLOURS = ("#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b",
                 "#041f4a")
#: The emotion curve and pain points: the curve, what is worse than average (friction, a
#: switch's drop-off), the reference (average, staying on the channel or device).
SENTIMENT_COLOURS = {"curve": "#1b7f8c", "pain": "#c51b7d", "reference": "#737373"}
OTHER = "#bdbdbd"
DIRECT = "(direct)"


@dataclass
class Palette:
    """Colours of a report.

    Parameters
    ----------
    touchpoints, personas : iterable of str
        Every touchpoint and persona that any figure may draw; duplicates are ignored and the
        order does not matter (names are sorted), so two reports of the same models agree.

    Examples
    --------
    >>> p = Palette(["web", "email"], ["loyalist"])
    >>> p.touchpoint("email"), p.touchpoint("web"), p.outcome("conversion")
    ('#1f77b4', '#ff7f0e', '#2ca02c')
    """

    touchpoints: Iterable[str] = ()
    personas: Iterable[str] = ()
    _tp: dict[str, str] = field(init=False, repr=False)
    _persona: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tps = sorted({str(t) for t in self.touchpoints} - {DIRECT})
        self._tp = {t: TOUCHPOINT_COLOURS[i % len(TOUCHPOINT_COLOURS)] for i, t in enumerate(tps)}
        self._tp[DIRECT] = OTHER
        names = sorted({str(p) for p in self.personas})
        self._persona = {p: PERSONA_COLOURS[i % len(PERSONA_COLOURS)]
                         for i, p in enumerate(names)}
        self.touchpoints, self.personas = tuple(tps), tuple(names)

    def touchpoint(self, name: str) -> str:
        """Colour of a touchpoint (grey for one the palette was not told about)."""
        return self._tp.get(str(name), OTHER)

    def persona(self, name: str) -> str:
        return self._persona.get(str(name), OTHER)

    def outcome(self, name: str) -> str:
        return OUTCOME_COLOURS.get(str(name), OTHER)

    @staticmethod
    def sentiment(role: str) -> str:
        """Colour of a role in the emotion and pain-point figures: ``curve`` (the emotion
        curve), ``pain`` (friction, a switch's drop-off rate), ``reference`` (the average, the
        stay rate)."""
        return SENTIMENT_COLOURS[role]

    @staticmethod
    def stage(index: int, n_stages: int) -> str:
        """Colour of the ``index``-th stage (journey order) of ``n_stages``: light to dark."""
        if n_stages <= 1:
            return STAGE_COLOURS[3]
        step = (len(STAGE_COLOURS) - 1) / max(n_stages - 1, 1)
        return STAGE_COLOURS[min(round(index * step), len(STAGE_COLOURS) - 1)]

    def level(self, grouping: str, name: str) -> str:
        """Colour of a level of a grouping: persona or touchpoint (first touchpoint)."""
        if grouping == "persona":
            return self.persona(name)
        return self.touchpoint(name)


def palette_for(models: Iterable, journeys=None) -> Palette:
    """The palette of a report over ``models`` (and the event log's journeys, if given)."""
    tps: set[str] = set()
    personas: set[str] = set()
    for model in models:
        meta = model.journeys_
        tps.update(meta.touchpoints)
        personas.update(meta.personas)
        personas.update(getattr(model, "personas_", ()) or ())
        tps.update(s for s in getattr(model, "symbols_", ()) or ())
    if journeys is not None:
        tps.update(journeys.touchpoints)
        personas.update(journeys.personas)
    return Palette(tps, personas)
