"""Tens of thousands of distinct touchpoints (issue 12.2): the experience counts grow with the
pairs that occur, not with the square of the alphabet; the Markov fit stops with a clear error
instead of a MemoryError; path tables with wrong-kind columns or infinite counts are handled."""

from __future__ import annotations

import tracemalloc
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import assert_one_error_line

from journeymodel.analysis import experience
from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.errors import DataWarning, InputError, OptionError
from journeymodel.stats import experience as experience_stats


def _random_journeys(n_touchpoints, n_journeys, seed=0, sentiment=True):
    """Random journeys built as arrays (journeys_from_codes loops in Python)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 6, n_journeys)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n_events = int(offsets[-1])
    nan = np.full(n_journeys, np.nan)
    sent = None
    if sentiment:
        sent = rng.uniform(-1, 1, n_events)
        sent[rng.random(n_events) < 0.3] = np.nan
    return replace(
        journeys_from_codes([["x"]], ["dropoff"]),
        codes=rng.integers(0, n_touchpoints, n_events).astype(np.int32), offsets=offsets,
        touchpoints=tuple(f"t{i:05d}" for i in range(n_touchpoints)),
        outcome=rng.integers(0, 4, n_journeys).astype(np.int8), weight=np.ones(n_journeys),
        customer=np.full(n_journeys, -1, np.int64), persona=np.full(n_journeys, -1, np.int32),
        start=nan, end=nan.copy(), value=np.zeros(n_journeys),
        times=np.full(n_events, np.nan), sentiment=sent)


@pytest.mark.parametrize("sentiment", [True, False])
def test_sparse_pair_counts_equal_the_dense_ones(monkeypatch, sentiment):
    js = _random_journeys(40, 3000, sentiment=sentiment)
    dense = experience.experience_counts(js)
    monkeypatch.setattr(experience_stats, "DENSE_KEYS", 0)
    assert not experience_stats.dense(41 * 40, 10)
    sparse = experience.experience_counts(js)
    for name in ("frm", "to", "n", "dropped", "converted"):
        np.testing.assert_array_equal(getattr(dense.pairs, name), getattr(sparse.pairs, name))
    if sentiment:
        for name in ("sw", "sw2", "mean", "ss"):
            np.testing.assert_allclose(getattr(dense.pairs.sentiment, name),
                                       getattr(sparse.pairs.sentiment, name))
    ds = experience.experience_dataset(sparse)
    assert ds.sizes["pair"] == int((sparse.pairs.n > 0).sum())
    assert float(ds["pair_n"].sum()) == float(dense.pairs.n.sum())


def test_fifty_thousand_touchpoints_use_memory_of_the_pairs_that_occur():
    js = _random_journeys(50_000, 40_000, seed=1)
    assert len(np.unique(js.codes)) > 45_000
    tracemalloc.start()
    counts = experience.experience_counts(js)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    pairs = counts.pairs
    keys = (pairs.frm + 1) * len(js.touchpoints) + pairs.to
    assert pairs.n.sum() == np.count_nonzero(~((np.arange(js.n_events) == js.offsets[1:][
        np.repeat(np.arange(js.n_journeys), js.lengths)] - 1) & (np.repeat(
            js.outcome, js.lengths) == 3)))  # every arrival except the last of censored ones
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MiB"  # dense: 18.6 GiB
    assert len(keys) > 90_000 and np.all(np.diff(keys) > 0)


def test_markov_fit_with_too_many_feasible_transitions_is_a_clear_error(monkeypatch):
    from journeymodel.models.markov import chain as markov_chain
    from journeymodel.models.markov.model import MarkovJourneyModel

    js = _random_journeys(300, 2000, sentiment=False)
    monkeypatch.setattr(markov_chain, "MAX_FEASIBLE", 1000)
    with pytest.raises(OptionError, match=r"the Markov chain would have 301 states and [\d,]+ "
                                          r"feasible transitions.*too many distinct touchpoints "
                                          r"\(300\).*group rare touchpoints"):
        MarkovJourneyModel(prior=1.0).fit(js)


def test_cli_markov_too_many_touchpoints(run_cli, tmp_path, monkeypatch):
    from journeymodel.models.markov import chain as markov_chain

    rng = np.random.default_rng(0)
    n = 3000
    df = pd.DataFrame({"customer_id": rng.integers(0, 300, n).astype(str),
                       "timestamp": rng.integers(0, 365 * 86400, n) + 1_735_689_600,
                       "touchpoint": np.char.add("t", rng.integers(0, 500, n).astype(str))})
    path = tmp_path / "wide.csv"
    df.to_csv(path, index=False)
    monkeypatch.setattr(markov_chain, "MAX_FEASIBLE", 1000)
    code, _, err = run_cli("fit", "markov", path, "-o", tmp_path / "m.nc", "--prior", "1")
    assert_one_error_line(code, err, r"too many distinct touchpoints")
    assert not (tmp_path / "m.nc").exists()


def test_path_table_with_a_list_column_and_infinite_counts(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"path": pa.array([["a", "b"]]), "total_conversions": [1],
                             "total_null": [0]}), path)
    with pytest.raises(InputError, match=r"column 'path': the path column holds values of type "
                                         r"list"):
        load_journeys(path)
    pq.write_table(pa.table({"path": ["a > b", "b"], "total_conversions": [np.inf, 2.0],
                             "total_null": [0, 1]}), path)
    with pytest.warns(DataWarning, match=r"dropped 1 of 2 rows: 1 bad or negative count"):
        js = load_journeys(path)
    assert js.outcome_counts() == {"conversion": 2, "churn": 0, "dropoff": 1, "censored": 0}


def test_describe_wide_log_through_the_cli(run_cli, tmp_path):
    rng = np.random.default_rng(2)
    n = 20_000
    df = pd.DataFrame({"customer_id": rng.integers(0, 2000, n).astype(str),
                       "timestamp": rng.integers(0, 10**7, n) + 1_735_689_600,
                       "touchpoint": np.char.add("t", rng.integers(0, 15_000, n).astype(str))})
    path = tmp_path / "wide.parquet"
    df.to_parquet(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        code, out, err = run_cli("describe", path, "--top", "3")
    assert code == 0, err
    assert "Top 3 paths" in out
