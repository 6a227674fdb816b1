"""Markov journey models: the chain and its solves, attribution, prediction, order selection.

``MarkovJourneyModel`` lives in :mod:`journeymodel.models.markov.model`; it is re-exported here
lazily (PEP 562), so importing one module of the package does not load the others. What the
model is fitted from (transition counts, heuristics, totals, the experience) is counted in
:mod:`journeymodel.stats.transitions`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["MarkovJourneyModel"]


def __getattr__(name: str):
    if name == "MarkovJourneyModel":
        return importlib.import_module("journeymodel.models.markov.model").MarkovJourneyModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from journeymodel.models.markov.model import MarkovJourneyModel
