"""Hidden journey stages: an HMM whose latent stages emit touchpoints and end journeys.

``StageModel`` lives in :mod:`journeymodel.models.stages.model`; it is re-exported here lazily
(PEP 562), so importing one module of the package does not load the others. The modules:
``fit`` (one number of stages by EM, canonical order, criteria, absorption), ``summary`` (stage
names, tables, ``inspect``), ``simulate`` (new journeys as an event log), ``tree`` (the model
file's groups) and ``model``. The statistics the model fits from (distinct encoded sequences,
journey totals) are in :mod:`journeymodel.stats.sequences`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["StageModel"]


def __getattr__(name: str):
    if name == "StageModel":
        return importlib.import_module("journeymodel.models.stages.model").StageModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from journeymodel.models.stages.model import StageModel
