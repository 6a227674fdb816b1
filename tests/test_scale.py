"""Logs on Dask (issue 15): statistics summed over the shuffled partitions of a log of many
files give the same answers as one process: the same counts and ledger exactly, attribution
to 1e-9, the same EM log-likelihood from the same start; for every model type. One small
in-process LocalCluster serves the module (closed at the end)."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_error_line
from journeymodel.cli.options import EventsArg, fit_cli, with_read_options

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.data.options import ReadOptions
from journeymodel.errors import InputError, OptionError
from journeymodel.models.churn.model import ChurnModel
from journeymodel.models.conversion.model import ConversionModel
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.models.stages.model import StageModel
from journeymodel.scale.cluster import Engine, parse_memory
from journeymodel.scale.engine import map_log
from journeymodel.scale.fit import fit_scaled

pytest.importorskip("dask.distributed")


@cache
def demo() -> pd.DataFrame:
    """A demo log with dirt: rows without a customer, an unreadable time, exact duplicates,
    ids with spaces around them."""
    df = make_demo_data(250, seed=11).events.copy()
    df["timestamp"] = df.timestamp.astype(str)
    df["month"] = df.timestamp.str[:7]  # the file the row goes to (dropped when written)
    df.loc[df.index[5::97], "customer_id"] = None
    df.loc[df.index[7::131], "timestamp"] = "not a time"
    padded = df.index[11::7]  # ' C1 ' is customer C1 (trimmed), wherever its rows are
    df.loc[padded, "customer_id"] = " " + df.loc[padded, "customer_id"] + "  "
    return pd.concat([df, df.iloc[3::53]]).reset_index(drop=True)


def events() -> pd.DataFrame:
    return demo().drop(columns="month")


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """The demo log as one Parquet file per month (date=YYYY-MM/part-0.parquet), and the
    in-process journeys of that folder."""
    root = tmp_path_factory.mktemp("scale") / "events"
    for key, rows in demo().groupby("month"):
        (root / f"date={key}").mkdir(parents=True)
        rows.drop(columns="month").to_parquet(root / f"date={key}" / "part-0.parquet",
                                              index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        journeys = load_journeys(root)
    return root, journeys


def counts(ledger) -> dict:
    return ledger.to_dict() | {"notes": None, "source": None}


def test_ledger_and_journey_facts_equal_one_process(client, log):
    root, journeys = log
    assert len(list(root.glob("date=*"))) >= 10
    with pytest.warns(Warning, match=f"{root}: dropped .* missing customer id") as got:
        result = map_log(str(root), ReadOptions(), Engine(client=client), None)
    whole = f"{root}: {journeys.ledger.summary_line()}"  # the whole log's, once
    assert [str(w.message) for w in got].count(whole) == 1
    assert journeys.ledger.dropped.keys() >= {"missing_customer", "bad_timestamp", "duplicate"}
    assert counts(result.ledger) == counts(journeys.ledger)
    assert result.meta.n_journeys == journeys.n_journeys
    assert result.meta.n_events == journeys.n_events
    assert result.meta.outcome_counts == journeys.outcome_counts()
    assert result.meta.touchpoints == journeys.touchpoints
    assert result.meta.personas == journeys.personas
    assert result.meta.observed_until == journeys.observed_until


@pytest.mark.filterwarnings("ignore::Warning")
@pytest.mark.parametrize("order", [1, 2])
def test_markov_counts_and_attribution(client, log, order):
    root, journeys = log
    whole = MarkovJourneyModel(order=order).fit(journeys)
    scaled = fit_scaled(MarkovJourneyModel(order=order), root, client=client)
    assert scaled.counts_.equals(whole.counts_, rtol=0)
    assert counts(scaled.ledger_) == counts(whole.ledger_)
    for method in ("removal", "first", "linear"):
        a = whole.attribution(method, n_draws=0)
        b = scaled.attribution(method, n_draws=0)
        assert a.channels == b.channels
        np.testing.assert_allclose(b.conversions, a.conversions, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.value, a.value, rtol=1e-9, atol=1e-12)


@pytest.mark.filterwarnings("ignore::Warning")
def test_stages_same_em_from_the_same_start(client, log):
    root, journeys = log
    whole = StageModel(n_stages=3, restarts=1, seed=4, max_iter=60).fit(journeys)
    scaled = fit_scaled(StageModel(n_stages=3, restarts=1, seed=4, max_iter=60), root,
                        client=client)
    assert scaled.log_likelihood_ == pytest.approx(whole.log_likelihood_, rel=1e-9)
    assert scaled.stats_of(journeys).equals(whole.stats_of(journeys))
    assert counts(scaled.ledger_) == counts(whole.ledger_)


@pytest.mark.filterwarnings("ignore::Warning")
def test_conversion_and_churn_statistics(client, log):
    root, journeys = log
    for model in (ConversionModel(by=("persona", "first_touchpoint")),
                  ChurnModel("sbg", time_unit="W")):
        result = map_log(root, ReadOptions(), Engine(client=client), model.stats_of)
        assert result.stats.equals(model.stats_of(journeys))


@pytest.mark.slow  # 25 s: compiling the sampler
@pytest.mark.filterwarnings("ignore::Warning")
def test_conversion_fit_equals_one_process(client, log):
    root, journeys = log
    kw = dict(draws=60, tune=60, chains=1, seed=2)
    whole = ConversionModel(**kw).fit(journeys)
    scaled = fit_scaled(ConversionModel(**kw), root, client=client)
    a, b = whole.summary().json, scaled.summary().json
    assert a["groups"] == b["groups"] if "groups" in a else a.keys() == b.keys()
    assert counts(scaled.ledger_) == counts(whole.ledger_)


@pytest.mark.filterwarnings("ignore::Warning")
def test_a_dask_dataframe_is_a_log(client, log):
    import dask.dataframe as dd

    _, journeys = log
    frame = dd.from_pandas(events(), npartitions=4)
    scaled = fit_scaled(MarkovJourneyModel(order=1), frame, client=client)
    whole = MarkovJourneyModel(order=1).fit(load_journeys(events()))
    assert scaled.counts_.equals(whole.counts_, rtol=0)
    assert counts(scaled.ledger_) == counts(whole.ledger_)


def test_errors(client, log, tmp_path):
    root, _ = log
    with pytest.raises(OptionError, match="needs a Dask client"):
        fit_scaled(MarkovJourneyModel(order=1), root)
    odd = tmp_path / "odd"
    (odd / "b").mkdir(parents=True)
    events().iloc[:50].to_parquet(odd / "a.parquet", index=False)
    events().iloc[50:].drop(columns="device").to_parquet(odd / "b" / "c.parquet", index=False)
    with pytest.raises(InputError, match=r"odd/b/c.parquet: has no column 'device'"):
        map_log(odd, ReadOptions(), Engine(client=client), None)
    with pytest.raises(OptionError, match="--worker-memory must be a size like 1.5GiB"):
        parse_memory("lots")
    assert parse_memory("2GiB") == 2 * 2**30
    with pytest.raises(OptionError, match="give one of them"):
        Engine(workers=2, cluster="tcp://x:1")


def test_cli_engine_errors(run_cli, log):
    root, _ = log
    code, _, err = run_cli("describe", root, "--workers", "0")
    assert_one_error_line(code, err, "--workers must be a whole number >= 1")
    code, _, err = run_cli("describe", root, "--worker-memory", "1GiB")
    assert_one_error_line(code, err, "--worker-memory caps the workers --workers starts")
    code, _, err = run_cli("describe", root, "--workers", "2", "--worker-memory", "lots")
    assert_one_error_line(code, err, "--worker-memory must be a size")


@pytest.mark.filterwarnings("ignore::Warning")
def test_fit_cli_runs_a_command_on_a_local_cluster(log, tmp_path):
    """The command-line path: a command decorated with_read_options that fits through fit_cli
    runs in this process without engine options, on a local cluster of worker processes with
    --workers (its dashboard said on stderr), with the same counts."""
    import typer
    from typer.testing import CliRunner

    root, journeys = log
    fitted = {}
    app = typer.Typer()

    @app.command()
    @with_read_options
    def fit(events: EventsArg, read=None) -> None:
        fitted["model"] = fit_cli(MarkovJourneyModel(order=1), events, read)

    runner = CliRunner()
    whole = MarkovJourneyModel(order=1).fit(journeys)
    out = runner.invoke(app, [str(root)])
    assert out.exit_code == 0, out.output
    assert fitted["model"].counts_.equals(whole.counts_, rtol=0)
    out = runner.invoke(app, [str(root), "--workers", "1", "--worker-memory", "1GiB"])
    assert out.exit_code == 0, out.output
    assert "Dask local cluster: 1 workers of 1GiB; dashboard http" in out.output
    assert fitted["model"].counts_.equals(whole.counts_, rtol=0)
    assert counts(fitted["model"].ledger_) == counts(whole.ledger_)


@pytest.mark.filterwarnings("ignore::Warning")
def test_csv_files_with_a_named_hive_column(client, tmp_path):
    """CSV files in region=... folders, the region named as the persona: the same journeys as
    one process reads from the same folder."""
    df = events().drop(columns="persona")
    for region, rows in df.groupby(df.index % 3):
        folder = tmp_path / f"region=r{region}"
        folder.mkdir()
        rows.to_csv(folder / "part-0.csv", index=False)
    options = ReadOptions(persona_col="region")
    journeys = load_journeys(tmp_path, options)
    assert journeys.personas == ("r0", "r1", "r2")
    model = ConversionModel()
    result = map_log(tmp_path, options, Engine(client=client), model.stats_of)
    assert result.stats.equals(model.stats_of(journeys))
    assert counts(result.ledger) == counts(journeys.ledger)


def test_a_partition_without_usable_rows_still_counts_them():
    """Every row of a partition dropped: its ledger says why, each row once, as one process
    counts them (no partition may make the whole log fail)."""
    from journeymodel.scale.engine import FILE_COL, KEY_COL, ROW_COL, partition_result

    part = pd.DataFrame({"customer_id": [None, "a", "b", "c"],
                         "timestamp": ["2025-01-01", "soon", "2025-01-02", "2025-01-03"],
                         "touchpoint": ["web", "web", None, " "],
                         "value": [1.0, None, None, None]})
    part[FILE_COL] = np.int32(0)
    part[ROW_COL] = np.arange(4)
    part[KEY_COL] = np.arange(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = partition_result(part, "log", ReadOptions(), 1.8e9, None)
    assert result.meta is None and result.stats is None
    assert result.ledger.rows_read == 4 and result.ledger.rows_used == 0
    assert result.ledger.dropped == {"missing_customer": 1, "bad_timestamp": 1,
                                     "missing_touchpoint": 2}
    assert result.ledger.invalid_fields == {}
