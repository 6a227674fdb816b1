"""Behavioural segments: mixtures of Markov chains and of stages HMMs over customers.

``SegmentModel`` lives in :mod:`journeymodel.models.segments.model`; it is re-exported here
lazily (PEP 562). The modules: ``em`` (the mixture EM over customers and the two segment
processes), ``profile`` (what distinguishes the segments: sizes, paths, transitions, order,
names), ``summary`` (``inspect``), ``personas`` (the event log written back with a persona
column), ``tree`` (the model file's groups) and ``model``. The statistics the model fits from
(each customer's distinct journeys) are in :mod:`journeymodel.stats.segments`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from journeymodel.lazy import exports

__all__ = ["SegmentModel"]
__getattr__ = exports(__name__, {"SegmentModel": "journeymodel.models.segments.model"})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from journeymodel.models.segments.model import SegmentModel
