"""What the steps of one ``journeymodel demo`` share (issue 20: the demo reads the sample log
once and draws its report from the models in memory, not from their files read back)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DemoRun:
    """The sample log's journeys (read once) and the models fitted so far, by the path each
    was saved to. A step that takes ``run=`` gets it (``demo_step(events, out_dir, seed,
    run=None)``); a step called on its own (``run=None``) reads its inputs from the files."""

    journeys: Any
    models: dict[Path, Any] = field(default_factory=dict)


def journeys_of(events: Path, run: DemoRun | None) -> Any:
    """The journeys of the demo log: the run's, or read from ``events`` without a run."""
    if run is not None:
        return run.journeys
    from journeymodel.data.journeys import load_journeys

    return load_journeys(events)


def saved(model: Any, path: Path, run: DemoRun | None) -> Path:
    """Save ``model`` to ``path`` and remember it in ``run`` (if any); the path written."""
    path = model.save(path)
    if run is not None:
        run.models[Path(path)] = model
    return path


def model_at(path: Path, run: DemoRun | None) -> Any:
    """The model saved to ``path``: the run's, or loaded from the file."""
    if run is not None and Path(path) in run.models:
        return run.models[Path(path)]
    from journeymodel.cli.options import load_model_cli

    return load_model_cli(path)
