"""``forecast --from EVENTS`` on Dask (issue 15): every journey's simulated outcomes depend on
the journey, the draw and the seed only (counter-based chance, parameters of draw ``d`` from the
seed and ``d``), so the forecast of parts of the journeys in flight adds up to one process's,
bit for bit, and the rows the workers write are one process's rows.

One small in-process LocalCluster serves the module (``conftest.client``).
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_error_line
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_helpers import split_parts

from journeymodel.analysis import inflight
from journeymodel.analysis.forecast import (
    Forecast,
    ForecastSummary,
    forecast_in_flight,
    forecast_part,
    journeys_as_of,
    prepare,
    simulate_forecast,
)
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.options import ReadOptions
from journeymodel.errors import OptionError
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.models.stages.model import StageModel
from journeymodel.scale.cluster import Engine
from journeymodel.scale.inflight import forecast_on_dask
from journeymodel.scale.outputs import sort_rows

pytest.importorskip("dask.distributed")
pytestmark = pytest.mark.filterwarnings("ignore::journeymodel.errors.DataWarning")

AS_OF = "2025-10-01"


@cache
def demo() -> pd.DataFrame:
    return make_demo_data(400, seed=8).events


@cache
def cut():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return journeys_as_of(demo(), as_of=AS_OF)


@cache
def model(kind: str):
    """Fitted on the first 150 customers only: the other journeys stand in windows the order-3
    Markov model never saw, so they back off (drawn among candidate windows)."""
    few = demo()[demo().customer_id.isin(demo().customer_id.unique()[:150])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        js = journeys_as_of(few, as_of=AS_OF)
        if kind == "markov":
            return MarkovJourneyModel(order=3).fit(js)
        return StageModel(n_stages=3, restarts=1, seed=0, max_iter=20).fit(js)


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """The demo log as one Parquet file per month (a customer's rows in many files)."""
    root = tmp_path_factory.mktemp("forecast") / "events"
    df = demo()
    for month, rows in df.groupby(df.timestamp.dt.strftime("%Y-%m")):
        (root / f"date={month}").mkdir(parents=True)
        rows.to_parquet(root / f"date={month}" / "part-0.parquet", index=False)
    return root


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return sort_rows(frame)


def test_the_model_backs_off_for_some_journeys():
    f = forecast_in_flight(model("markov"), cut(), "30D", n_draws=5, seed=0)
    assert 0 < f.n_backed_off < f.n_in_flight


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(["markov", "stages"]), st.integers(1, 5),
       st.randoms(use_true_random=False))
def test_parts_of_the_journeys_give_each_journey_its_draws(kind, n_parts, rnd):
    """Journeys split by customer into arbitrary parts (each with its own vocabularies) and
    forecast part by part: every journey's row is its one-process row, bit for bit, and the
    parts' summaries add up to the one-process totals per draw."""
    js, fitted = cut(), model(kind)
    whole = forecast_in_flight(fitted, js, "30D", n_draws=12, seed=4)
    labels = np.array([rnd.randrange(n_parts) for _ in range(len(js.customers))])
    frames, total = [], None
    for part in split_parts(js, labels, by_customer=True):
        frame, summary = forecast_part(fitted, part, "30D", n_draws=12, seed=4)
        frames.append(frame)
        total = summary if total is None else total + summary
    pd.testing.assert_frame_equal(by_customer(pd.concat(frames)), by_customer(whole.journeys),
                                  check_exact=True)
    for name in ("conversions", "churns", "dropoffs", "daily"):
        np.testing.assert_array_equal(getattr(total, name), getattr(whole, name))
    assert (total.n_in_flight, total.n_backed_off) == (whole.n_in_flight, whole.n_backed_off)


@pytest.mark.parametrize("kind", ["markov", "stages"])
def test_chunks_of_draws_do_not_change_the_draws(kind, monkeypatch):
    """Draws simulated a few at a time (many chunks) give the bits of one chunk."""
    setup = prepare(model(kind), cut(), "30D")
    one, rows = simulate_forecast(setup, 9, seed=2)
    monkeypatch.setattr(inflight, "CHUNK_PARTICLES", 2 * setup.flight.n)  # chunks of 2 draws
    many, rows_many = simulate_forecast(prepare(model(kind), cut(), "30D"), 9, seed=2)
    np.testing.assert_array_equal(one.daily, many.daily)
    np.testing.assert_array_equal(one.dropoffs, many.dropoffs)
    pd.testing.assert_frame_equal(rows, rows_many, check_exact=True)


def test_intervals_of_parts_are_the_joint_intervals():
    """Two halves forecast apart: the same totals per draw, so the same (joint) intervals, not
    narrower ones; the intervals have a width (parameters and chance vary by draw)."""
    js, fitted = cut(), model("markov")
    whole = forecast_in_flight(fitted, js, "30D", n_draws=60, seed=1)
    halves = split_parts(js, np.arange(len(js.customers)) % 2, by_customer=True)
    total = sum((forecast_part(fitted, h, "30D", n_draws=60, seed=1, rows=False)[1]
                 for h in halves), ForecastSummary(0, 0, 0, 0, 0, 0, 0))
    got = Forecast.of(total, whole.as_of, "30D", whole.time_kind, 60).summary()
    assert got == whole.summary()
    assert got["conversions"]["high"] - got["conversions"]["low"] >= 5


@pytest.mark.parametrize("kind", ["markov", "stages"])
def test_every_journey_alone_gets_its_draws(kind):
    """The smallest parts: each of 25 journeys in flight forecast on its own (one-row arrays,
    where a matrix product would take another code path) gives its row of the whole."""
    js, fitted = cut(), model(kind)
    whole = by_customer(forecast_in_flight(fitted, js, "30D", n_draws=8, seed=6).journeys)
    ids = whole.customer_id.to_numpy()[::max(1, len(whole) // 25)][:25]
    index = {c: i for i, c in enumerate(js.customers)}
    labels = np.full(len(js.customers), -1)
    labels[[index[c] for c in ids]] = np.arange(len(ids))
    rows = [forecast_part(fitted, part, "30D", n_draws=8, seed=6)[0]
            for part in split_parts(js, labels, by_customer=True)[1:]]  # part -1: the rest
    got = by_customer(pd.concat(rows))
    want = by_customer(whole[whole.customer_id.isin(ids)])
    assert len(got) == len(ids)
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_an_empty_part_forecasts_nothing():
    frame, summary = forecast_part(model("markov"), cut().take(np.zeros(0, np.int64)), "30D",
                                   n_draws=5, seed=0)
    assert len(frame) == 0 and "p_conversion" in frame.columns
    assert summary.n_in_flight == 0 and summary.conversions.tolist() == [0] * 5


@pytest.mark.parametrize("kind", ["markov", "stages"])
def test_forecast_on_dask_is_one_process_forecast(client, log, kind, tmp_path):
    """The workers' rows, read from every part and sorted by customer, are one process's rows;
    the printed forecast is one process's, bit for bit."""
    fitted = model(kind)
    local = forecast_in_flight(fitted, cut(), "30D", n_draws=40, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, result, parts = forecast_on_dask(fitted, log, ReadOptions(), Engine(client=client),
                                              "30D", as_of=AS_OF, n_draws=40, seed=3,
                                              out=tmp_path / "rows")
    assert got.summary() == local.summary()
    for name in ("conversions", "churns", "dropoffs", "daily"):
        np.testing.assert_array_equal(getattr(got, name), getattr(local, name))
    want, have = local.to_result(), got.to_result()
    assert have.notes == want.notes and have.json == want.json
    for (ta, a), (tb, b) in zip(have.tables, want.tables, strict=True):
        assert ta == tb
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    rows = pd.read_parquet(tmp_path / "rows")
    assert parts.rows == len(rows) == local.n_in_flight
    pd.testing.assert_frame_equal(sort_rows(rows), sort_rows(local.journeys), check_exact=True)
    assert result.ledger.rows_read == len(demo())


def test_forecast_on_dask_same_seed_same_bytes_and_no_rows_needed(client, log, tmp_path):
    fitted = model("markov")
    engine = Engine(client=client)
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("a", "b"):
            runs.append(forecast_on_dask(fitted, log, ReadOptions(), engine, "14D", as_of=AS_OF,
                                         n_draws=10, seed=9, out=tmp_path / name))
        bare, _, none = forecast_on_dask(fitted, log, ReadOptions(), engine, "14D", as_of=AS_OF,
                                         n_draws=10, seed=9)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir()) and len(names) > 1
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert none is None and bare.summary() == runs[0][0].summary()


def test_as_of_after_the_log_on_dask_writes_nothing(client, log, tmp_path):
    with warnings.catch_warnings(), pytest.raises(OptionError, match="after the end of the log"):
        warnings.simplefilter("ignore")
        forecast_on_dask(model("markov"), log, ReadOptions(), Engine(client=client), "14D",
                         as_of="2027-06-01", n_draws=5, out=tmp_path / "rows")
    assert not (tmp_path / "rows").exists()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# The command line


@pytest.fixture
def on_client(client, monkeypatch):
    """Commands run on the module's cluster, as with --workers (which would start processes)."""
    import journeymodel.cli.scaled as scaled

    monkeypatch.setattr(scaled, "current_engine", lambda: Engine(client=client))


@pytest.mark.filterwarnings("ignore::Warning")
def test_cli_forecast_on_dask_prints_one_process_output(run_cli, on_client, log, tmp_path,
                                                         monkeypatch):
    from journeymodel.io.persist import save_model

    save_model(model("stages"), tmp_path / "m.nc")
    args = ("forecast", tmp_path / "m.nc", "--from", log, "--horizon", "14D", "--draws", "30")
    code, dask_out, err = run_cli(*args, "-o", tmp_path / "rows")
    assert code == 0, err
    rows = pd.read_parquet(tmp_path / "rows")
    assert f"wrote the forecast of {len(rows):,} journeys in flight to {tmp_path / 'rows'} (" \
        in err
    code, dask_json, _ = run_cli(*args, "--json")
    import journeymodel.cli.scaled as scaled

    monkeypatch.setattr(scaled, "current_engine", lambda: None)
    code, one_out, err = run_cli(*args, "-o", tmp_path / "rows.parquet")
    assert code == 0, err
    assert dask_out == one_out and "conversions" in one_out
    assert run_cli(*args, "--json")[1] == dask_json
    pd.testing.assert_frame_equal(sort_rows(rows),
                                  sort_rows(pd.read_parquet(tmp_path / "rows.parquet")),
                                  check_exact=True)


def test_cli_forecast_output_checks_on_dask(run_cli, log, tmp_path):
    """-o on Dask is a new folder, checked before any work (no cluster starts)."""
    from journeymodel.io.persist import save_model

    save_model(model("markov"), tmp_path / "m.nc")
    (tmp_path / "old").mkdir()
    base = ("forecast", tmp_path / "m.nc", "--from", log, "--horizon", "14D", "--workers", "1")
    code, _, err = run_cli(*base, "-o", tmp_path / "f.csv")
    assert_one_error_line(code, err, r"f.csv: on Dask the forecast rows are a folder of Parquet")
    code, _, err = run_cli(*base, "-o", tmp_path / "old")
    assert_one_error_line(code, err, "old: a folder of that name exists")


def test_a_bad_horizon_on_dask_is_the_one_process_error(client, log, tmp_path):
    """Found by the workers (the time axis is known there), raised on the client as the same
    OptionError, and no folder is left."""
    with warnings.catch_warnings(), pytest.raises(OptionError, match="--horizon needs a unit"):
        warnings.simplefilter("ignore")
        forecast_on_dask(model("markov"), log, ReadOptions(), Engine(client=client), "14",
                         n_draws=5, out=tmp_path / "rows")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OptionError, match="--draws must be a whole number >= 2"):
        forecast_on_dask(model("markov"), log, ReadOptions(), Engine(client=client), "14D",
                         n_draws=1)
