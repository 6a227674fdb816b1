"""``journeymodel demo`` shares the sample log and the fitted models between its steps
(cli/demo_run.py, issue 20): a step given the run reads no file an earlier step wrote, and
draws the same report as from the files."""

from __future__ import annotations

from pathlib import Path

import pytest
from journeymodel.cli import cmd_demo, cmd_report, demo_run

from journeymodel.data.datasets import write_sample_events
from journeymodel.data.journeys import load_journeys
from journeymodel.models.stages.model import StageModel


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo-run") / "events.parquet"
    write_sample_events(path, n_customers=200, seed=2)
    return path


def test_report_step_draws_the_models_in_memory_as_from_their_files(events, tmp_path,
                                                                    monkeypatch):
    run = demo_run.DemoRun(load_journeys(events))
    model = StageModel(n_stages=2, restarts=1, seed=0).fit(run.journeys)
    path = demo_run.saved(model, tmp_path / "stages.nc", run)
    assert run.models == {path: model}
    from_files = cmd_report.demo_step(events, tmp_path, 0)
    page = from_files.read_bytes()
    from_files.unlink()

    def no_reading(*args, **kwargs):
        raise AssertionError("a step of the run read a file an earlier step wrote")

    monkeypatch.setattr("journeymodel.cli.options.load_model_cli", no_reading)
    monkeypatch.setattr("journeymodel.data.journeys.load_journeys", no_reading)
    in_memory = cmd_report.demo_step(events, tmp_path, 0, run=run)
    assert in_memory.read_bytes() == page


def test_run_goes_to_the_steps_that_take_it(events, tmp_path):
    seen = []

    def old_step(events, out_dir, seed):
        seen.append(("old", seed))

    def new_step(events, out_dir, seed, run=None):
        seen.append(("new", run))

    run = demo_run.DemoRun(journeys=None)
    for step in (old_step, new_step):
        cmd_demo.run_step(step, events, tmp_path, 3, run)
    assert seen == [("old", 3), ("new", run)]


def test_without_a_run_steps_read_the_files(events, tmp_path):
    assert demo_run.journeys_of(events, None).n_journeys == load_journeys(events).n_journeys
    model = StageModel(n_stages=2, restarts=1, seed=0).fit(load_journeys(events))
    path = demo_run.saved(model, tmp_path / "stages.nc", None)
    loaded = demo_run.model_at(path, demo_run.DemoRun(None))
    assert loaded is not model and loaded.n_stages_ == model.n_stages_
