"""What a Markov command imports (issue 20): attribution, predictions and simulation read the
chain's numpy CSR, so an order-1 model's ``attribute --json`` (intervals by posterior draws),
``predict`` and ``simulate`` import no scipy.sparse (0.15-0.3 s), nor pandas for the JSON."""

from __future__ import annotations

import subprocess
import sys

import pytest

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.models.markov.model import MarkovJourneyModel

HEAVY = ("scipy.sparse", "pandas", "xarray")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imports")
    events = make_demo_data(200, seed=5).events
    events.to_parquet(folder / "events.parquet")
    path = MarkovJourneyModel(order=1).fit(load_journeys(events)).save(folder / "m.nc")
    return path, folder


def imported_after(args: list[str]) -> list[str]:
    """The HEAVY modules a fresh process holds after running the CLI with ``args``."""
    code = ("import sys, io, contextlib\n"
            "from journeymodel.cli.app import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main({args!r}) == 0\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return eval(out.strip().splitlines()[-1])  # noqa: S307 - a list of names we printed


def test_attribute_json_of_an_order_1_model_imports_no_scipy(model_file):
    path, _ = model_file
    assert imported_after(["attribute", str(path), "--json", "--intervals", "draws",
                           "--draws", "200"]) == []


def test_simulate_imports_no_scipy(model_file):
    path, folder = model_file
    assert "scipy.sparse" not in imported_after(
        ["simulate", str(path), "-n", "50", "-o", str(folder / "sim.parquet")])


def test_predict_imports_no_scipy(model_file):
    path, folder = model_file
    assert "scipy.sparse" not in imported_after(
        ["predict", str(path), str(folder / "events.parquet"), "--json"])
