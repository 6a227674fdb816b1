"""Per-customer outputs and describe on Dask (issue 15): predictions written by the workers as a
folder of Parquet parts equal one process's rows; the folder appears whole or not at all; the
same run gives the same bytes; describe's output is one process's. One small in-process
LocalCluster serves the module (closed at the end)."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_error_line
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_helpers import split_parts

from journeymodel.analysis.describe import describe_journeys, describe_summary
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.data.options import ReadOptions
from journeymodel.errors import OptionError
from journeymodel.io.outputs import atomic_folder, check_folder_output
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.models.segments.model import SegmentModel
from journeymodel.models.stages.model import StageModel
from journeymodel.scale.cluster import Engine
from journeymodel.scale.engine import map_log
from journeymodel.scale.outputs import (
    PredictRows,
    PredictSummary,
    WrittenParts,
    predict_json,
    sort_rows,
    write_parts,
)
from journeymodel.stats.summary import journey_summary

pytest.importorskip("dask.distributed")
#: The demo log drops two rows: a worker thread of the in-process cluster may warn of it.
pytestmark = pytest.mark.filterwarnings("ignore::journeymodel.errors.DataWarning")


@cache
def demo() -> pd.DataFrame:
    """A demo log with a row without a customer and a duplicate (the ledger counts them)."""
    df = make_demo_data(300, seed=5).events.copy()
    df.loc[df.index[9], "customer_id"] = None
    return pd.concat([df, df.iloc[[4]]]).reset_index(drop=True)


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """The demo log as one Parquet file per month, and its journeys in one process."""
    root = tmp_path_factory.mktemp("outputs") / "events"
    df = demo()
    for month, rows in df.groupby(df.timestamp.dt.strftime("%Y-%m")):
        (root / f"date={month}").mkdir(parents=True)
        rows.to_parquet(root / f"date={month}" / "part-0.parquet", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        journeys = load_journeys(root)
    return root, journeys


@pytest.fixture(scope="module")
def models(log):
    _, journeys = log
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"markov": MarkovJourneyModel(order=2).fit(journeys),
                "stages": StageModel(n_stages=2, restarts=1, seed=0, max_iter=20).fit(journeys),
                "segments": SegmentModel(n_segments=2, seed=0, max_iter=20).fit(journeys)}


def scaled_predict(client, root, model, out):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return write_parts(root, ReadOptions(), Engine(client=client), PredictRows(model), out,
                           what="predictions")


@pytest.mark.parametrize("kind", ["markov", "stages", "segments"])
def test_predict_parts_equal_one_process(client, log, models, kind, tmp_path):
    """Every part read back and sorted by customer: one process's predictions, exactly
    (segments: to 1e-12, a customer's journeys' log-likelihoods are added in another order)."""
    root, journeys = log
    model = models[kind]
    _, parts = scaled_predict(client, root, model, tmp_path / "preds")
    names = sorted(p.name for p in (tmp_path / "preds").iterdir())
    assert names == [f"part-{i:05d}.parquet" for i in range(len(parts.files))]
    assert len(names) >= 2
    local = model.predict(journeys)
    got = pd.concat([pd.read_parquet(tmp_path / "preds" / n) for n in names],
                    ignore_index=True)
    assert parts.rows == len(got) == len(local.frame) > 0
    want = sort_rows(local.frame)
    pd.testing.assert_frame_equal(sort_rows(got), want, check_exact=kind != "segments",
                                  rtol=1e-12)
    for name in names:  # each part sorted by customer
        ids = pd.read_parquet(tmp_path / "preds" / name)["customer_id"]
        assert ids.is_monotonic_increasing
    js = predict_json(model, parts.summary, "preds", len(names))
    rows_key = "members" if kind == "segments" else "predictions"
    expected = {k: v for k, v in local.json.items() if k != rows_key}
    assert js.pop("out") == "preds" and js.pop("parts") == len(names)
    assert js.keys() == expected.keys()
    for key, value in expected.items():
        if key == "mean_p_conversion":  # sums of partitions: to rounding
            assert js[key] == pytest.approx(value, rel=1e-13)
        else:
            assert js[key] == value


def test_same_run_same_bytes_and_whole_or_nothing(client, log, models, tmp_path):
    root, _ = log
    scaled_predict(client, root, models["markov"], tmp_path / "a")
    scaled_predict(client, root, models["markov"], tmp_path / "b")
    for part in sorted((tmp_path / "a").iterdir()):
        assert part.read_bytes() == (tmp_path / "b" / part.name).read_bytes()

    class Fails(PredictRows):
        def __call__(self, journeys):
            raise RuntimeError("worker failed")

    with pytest.raises(RuntimeError, match="worker failed"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_parts(root, ReadOptions(), Engine(client=client), Fails(models["markov"]),
                    tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no c, no temp folder


def test_folder_output_checks(tmp_path):
    (tmp_path / "there").mkdir()
    (tmp_path / "file.parquet").write_text("x")
    with pytest.raises(OptionError, match="-o .*there: a folder of that name exists"):
        check_folder_output(tmp_path / "there", [], "predictions")
    with pytest.raises(OptionError, match="a file of that name exists"):
        check_folder_output(tmp_path / "file.parquet", [], "predictions")
    with pytest.raises(OptionError, match="the folder .*nowhere does not exist"):
        check_folder_output(tmp_path / "nowhere" / "out", [], "predictions")
    with pytest.raises(OptionError, match="is inside the input folder"):
        check_folder_output(tmp_path / "there" / "out", [tmp_path / "there"], "predictions")
    with pytest.raises(KeyboardInterrupt), atomic_folder(tmp_path / "new") as tmp:
        (tmp / "part-00000.parquet").write_text("half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.parquet", "there"]


def test_written_parts_and_summary_add():
    a = WrittenParts((("b", "x", 3),), PredictSummary(3, 1, 0, 1.5, 3))
    b = WrittenParts((("a", "y", 2),), PredictSummary(2, 0, 2, 0.5, 1))
    total = sum([a, b])
    assert total.files == (("a", "y", 2), ("b", "x", 3)) and total.rows == 5
    s = total.summary
    assert (s.rows, s.unknown, s.backed_off, s.p_sum, s.p_n) == (5, 1, 2, 2.0, 4)
    assert (a + WrittenParts((), None)).summary is a.summary


def test_describe_on_dask_equals_one_process(client, log):
    root, journeys = log
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaled = map_log(root, ReadOptions(), Engine(client=client), journey_summary)
    got = describe_summary(scaled.stats, scaled.ledger, top=15)
    want = describe_journeys(journeys, top=15)
    assert got.json == want.json
    assert got.notes == want.notes
    assert [t for t, _ in got.tables] == [t for t, _ in want.tables]
    for (_, a), (_, b) in zip(got.tables, want.tables, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 5), st.randoms(use_true_random=False))
def test_summaries_of_customer_parts_add_up(n_parts, rnd):
    """Parts holding whole customers (each knowing only its own names), added in any order:
    the whole log's description."""
    js = _small_journeys()
    labels = np.array([rnd.randrange(n_parts) for _ in range(len(js.customers))])
    parts = [journey_summary(p) for p in split_parts(js, labels, by_customer=True)]
    rnd.shuffle(parts)
    got = describe_summary(sum(parts), js.ledger, top=50)
    assert got.json == describe_journeys(js, top=50).json


@cache
def _small_journeys():
    return load_journeys(make_demo_data(80, seed=2).events)


# ---------------------------------------------------------------------------------------------
# The command line


@pytest.fixture
def on_client(client, monkeypatch):
    """Commands run on the module's cluster, as with --workers (which would start processes)."""
    import journeymodel.cli.scaled as scaled

    monkeypatch.setattr(scaled, "current_engine", lambda: Engine(client=client))


@pytest.mark.filterwarnings("ignore::Warning")
def test_cli_predict_and_describe_on_dask(run_cli, on_client, log, models, tmp_path):
    from journeymodel.io.persist import save_model

    root, journeys = log
    save_model(models["markov"], tmp_path / "m.nc")
    code, out, err = run_cli("predict", tmp_path / "m.nc", root, "-o", tmp_path / "p",
                             "--json")
    assert code == 0, err
    n = int((journeys.outcome == 3).sum())
    assert f"wrote {n:,} predictions to {tmp_path / 'p'} (" in err
    assert json.loads(out)["n_in_flight"] == n == len(pd.read_parquet(tmp_path / "p"))
    code, out, _ = run_cli("describe", root, "--json")
    assert code == 0
    assert json.loads(out)["journeys"] == journeys.n_journeys
    code, out, err = run_cli("forecast", tmp_path / "m.nc", "--from", root, "--horizon", "30D",
                             "--draws", "20", "--json", "-o", tmp_path / "f.parquet")
    assert code == 0, err
    assert json.loads(out)["in_flight"] == len(pd.read_parquet(tmp_path / "f.parquet")) == n
    code, out, err = run_cli("forecast", tmp_path / "m.nc", "--from", root, "--horizon", "30D",
                             "--draws", "20", "--as-of", "2025-10-01")
    assert code == 0, err
    assert "No backtest on Dask" in out


def test_cli_predict_errors_on_dask(run_cli, log, models, tmp_path):
    """Checked before any work (no cluster starts)."""
    from journeymodel.io.persist import save_model

    root, _ = log
    save_model(models["markov"], tmp_path / "m.nc")
    (tmp_path / "old").mkdir()
    base = ("predict", tmp_path / "m.nc", root, "--workers", "1")
    code, _, err = run_cli(*base)
    assert_one_error_line(code, err, "writes its predictions with -o OUT, a new folder")
    code, _, err = run_cli(*base, "-o", tmp_path / "p.csv")
    assert_one_error_line(code, err, r"p.csv: on Dask the predictions are a folder of Parquet")
    code, _, err = run_cli(*base, "-o", tmp_path / "old")
    assert_one_error_line(code, err, "old: a folder of that name exists")
    code, _, err = run_cli(*base, "-o", root / "preds")
    assert_one_error_line(code, err, "is inside the input folder")
    code, _, err = run_cli(*base, "-o", tmp_path / "p", "--persona-log", tmp_path / "x.csv")
    assert_one_error_line(code, err, "--persona-log writes the whole event log back")
    conversion = Path(__file__).parent / "data" / "conversion.nc"
    code, _, err = run_cli("forecast", conversion, "--journeys", "10", "--workers", "1")
    assert_one_error_line(code, err, "a conversion model's forecast reads no event log")
