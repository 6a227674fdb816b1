"""Hidden journey stages: an HMM whose latent stages emit touchpoints and end journeys.

``StageModel`` lives in :mod:`journeymodel.models.stages.model`; it is re-exported here lazily
(PEP 562), so importing one module of the package does not load the others. The modules:
``fit`` (one number of stages by EM, canonical order, criteria, absorption), ``summary`` (stage
names, tables, ``inspect``), ``simulate`` (new journeys as an event log), ``tree`` (the model
file's groups) and ``model``. The statistics the model fits from (distinct encoded sequences,
journey totals) are in :mod:`journeymodel.stats.sequences`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from journeymodel.lazy import exports

__all__ = ["StageModel"]
__getattr__ = exports(__name__, {"StageModel": "journeymodel.models.stages.model"})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from journeymodel.models.stages.model import StageModel
