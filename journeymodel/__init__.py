"""journeymodel: probabilistic customer-journey maps from event logs.

The public API is re-exported here lazily (PEP 562), so that ``import journeymodel`` and the CLI's
``--help`` stay fast: numpy, pandas, xarray and PyMC load only when a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "JourneyModelError": "journeymodel.errors",
    "InputError": "journeymodel.errors",
    "OptionError": "journeymodel.errors",
    "ModelFileError": "journeymodel.errors",
    "NotFittedError": "journeymodel.errors",
    "ConvergenceWarning": "journeymodel.errors",
    "ReadOptions": "journeymodel.events",
    "Ledger": "journeymodel.events",
    "read_events": "journeymodel.events",
    "JourneySet": "journeymodel.journeys",
    "load_journeys": "journeymodel.journeys",
    "build_journeys": "journeymodel.journeys",
    "save_model": "journeymodel.persist",
    "load_model": "journeymodel.persist",
    "make_demo_data": "journeymodel.datasets",
    "MarkovJourneyModel": "journeymodel.models.markov",
    "StageModel": "journeymodel.models.stages",
    "ConversionModel": "journeymodel.models.conversion",
    "ChurnModel": "journeymodel.models.churn",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'journeymodel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from journeymodel.datasets import make_demo_data
    from journeymodel.errors import (
        ConvergenceWarning,
        InputError,
        JourneyModelError,
        ModelFileError,
        NotFittedError,
        OptionError,
    )
    from journeymodel.events import Ledger, ReadOptions, read_events
    from journeymodel.journeys import JourneySet, build_journeys, load_journeys
    from journeymodel.models.churn import ChurnModel
    from journeymodel.models.conversion import ConversionModel
    from journeymodel.models.markov import MarkovJourneyModel
    from journeymodel.models.stages import StageModel
    from journeymodel.persist import load_model, save_model
