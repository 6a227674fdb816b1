"""What a Markov command imports (issue 20): attribution, predictions and simulation read the
chain's numpy CSR, so an order-1 model's ``attribute --json`` (intervals by posterior draws),
``predict`` and ``simulate`` import no scipy.sparse (0.15-0.3 s), nor pandas for the JSON; a
model file's attribution reads no event log, so imports no pyarrow (40 ms) either."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.models.markov.model import MarkovJourneyModel

HEAVY = ("scipy.sparse", "pandas", "xarray", "pyarrow")


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


def test_attribute_table_imports_no_pandas(model_file):
    """The table people read (no --json) is printed from numpy columns (io.table.Table)."""
    path, _ = model_file
    assert imported_after(["attribute", str(path)]) == []


def _pandas_attribute_frame(a, method: str, pct: int):
    """The attribution table as attribute() made it with pandas before issue 20: the
    reference the Table must equal."""
    import pandas as pd

    frame = pd.DataFrame({"channel": list(a.channels), "removal_effect": a.removal_effect,
                          "conversions": a.conversions, f"low_{pct}": a.conversions_low,
                          f"high_{pct}": a.conversions_high,
                          "share": a.conversions / max(a.total_conversions, 1e-300),
                          "value": a.value})
    if method != "removal":
        frame = frame.drop(columns="removal_effect")
    if not np.isfinite(a.conversions_low).any():
        frame = frame.drop(columns=[f"low_{pct}", f"high_{pct}"])
    return frame.sort_values("conversions", ascending=False, kind="stable").reset_index(
        drop=True)


@pytest.mark.parametrize("method, draws", [("removal", 0), ("removal", 30), ("first", 0),
                                           ("last", 0), ("linear", 0)])
def test_attribute_table_equals_the_pandas_one(method, draws):
    """Same columns, values, dtypes and row order (ties: c2 and c3 convert 0.4 each in the
    textbook case and stay in channel order) as the DataFrame attribute() used to build."""
    import pandas as pd

    from journeymodel.data.journeys import journeys_from_codes

    js = journeys_from_codes((["c1", "c2", "c3"], ["c1"], ["c2", "c3"], ["c4"]),
                             ("conversion", "dropoff", "dropoff", "dropoff"))
    m = MarkovJourneyModel().fit(js)
    res = m.attribute(method, n_draws=draws, ci=0.9)
    a = m.attribution(method, n_draws=draws, ci=0.9)
    expected = _pandas_attribute_frame(a, method, 90)
    pd.testing.assert_frame_equal(res.frame.to_pandas(), expected)
    assert res.tables[0][1] is res.frame
    if method == "removal":
        assert list(expected["channel"][:3]) == ["c2", "c3", "c1"]  # the tie in channel order
