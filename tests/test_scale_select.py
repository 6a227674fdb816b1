"""The Markov model's held-out steps on Dask (issue 15): the held-out split is a hash of each
journey (the same in one process and in any partition), the order is chosen from move counts
summed over the partitions (the same table as one process, exactly), and held-out conversion
scores add up over the partitions. One small in-process LocalCluster serves the module."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.data.journeyset import CENSORED, CONVERSION
from journeymodel.errors import OptionError
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.models.markov.select import (
    choose_order,
    move_counts,
    order_stats,
    score_order,
    select_order,
)
from journeymodel.scale.fit import fit_scaled

pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """The demo log in one file per month, a few rows without a customer, padded ids and
    duplicates; and its journeys in one process."""
    df = make_demo_data(300, seed=8).events.copy()
    df.loc[df.index[6::101], "customer_id"] = None
    padded = df.index[3::9]
    df.loc[padded, "customer_id"] = "  " + df.loc[padded, "customer_id"]
    df = pd.concat([df, df.iloc[1::61]])
    root = tmp_path_factory.mktemp("select") / "events"
    for key, rows in df.groupby(df.timestamp.dt.strftime("%Y-%m").to_numpy()):
        (root / f"month={key}").mkdir(parents=True)
        rows.to_parquet(root / f"month={key}" / "part-0.parquet", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        journeys = load_journeys(root)
    return root, journeys


def test_split_is_a_hash_of_each_journey(log):
    """A journey falls on the same side whatever else is split with it; about the asked
    fraction is held out; the seed changes the split."""
    _, journeys = log
    u = journeys.uniforms(7)
    assert ((u >= 0) & (u < 1)).all()
    train, test = journeys.split(0.3, 7)
    assert test.n_journeys == int((u < 0.3).sum())
    assert abs(test.n_journeys / journeys.n_journeys - 0.3) < 0.05
    odd = journeys.take(np.arange(1, journeys.n_journeys, 2)[::-1])  # another part, reversed
    np.testing.assert_array_equal(odd.uniforms(7), u[1::2][::-1])
    assert not np.array_equal(journeys.uniforms(8), u)
    key = pd.MultiIndex.from_arrays([test.customers[test.customer], test.start])
    _, odd_test = odd.split(0.3, 7)
    assert pd.MultiIndex.from_arrays([odd_test.customers[odd_test.customer],
                                      odd_test.start]).isin(key).all()
    a = journeys.uniforms(np.random.default_rng(3))
    np.testing.assert_array_equal(a, journeys.uniforms(np.random.default_rng(3)))
    with pytest.raises(OptionError, match="--holdout must be between 0 and 1"):
        journeys.split(1.0)


def test_held_out_log_likelihood_by_hand():
    """One journey 'a' then conversion in training and the same held out, order 1: each of
    its two moves (start -> a, a -> conversion) was seen once out of one, with add-1/2
    smoothing over V = 1 touchpoint + 4 outcomes."""
    js = journeys_from_codes([["a"]], ["conversion"])
    moves = move_counts(js, 1)
    row = score_order(moves, moves, 1.0)
    assert row["heldout_loglik"] == pytest.approx(2 * np.log(1.5 / 3.5), rel=1e-14)
    assert row["contexts"] == 2 and row["parameters"] == 0
    # all journeys twice (train + held out): every move certain, log-likelihood 0
    assert row["bic"] == pytest.approx(0.0, abs=1e-12)


def test_move_counts_add_on_the_union_of_vocabularies():
    paths = [["ad", "web"], ["web", "call"], ["call"], [], ["web", "ad", "call", "ad"]]
    outcomes = ["conversion", "dropoff", "churn", "conversion", "censored"]
    whole = journeys_from_codes(paths, outcomes)
    a = journeys_from_codes(paths[:2], outcomes[:2])  # ad, web
    b = journeys_from_codes(paths[2:], outcomes[2:])  # ad, call, web
    for k in (1, 2, 3):
        total, direct = move_counts(a, k) + move_counts(b, k), move_counts(whole, k)
        assert total.touchpoints == direct.touchpoints == ("ad", "call", "web")
        np.testing.assert_array_equal(total.keys, direct.keys)
        np.testing.assert_array_equal(total.weight, direct.weight)
    with pytest.raises(OptionError, match="moves at order 1 and 2 cannot be added"):
        move_counts(a, 1) + move_counts(a, 2)


def test_order_table_of_parts_equals_the_whole(log):
    _, journeys = log
    parts = [journeys.take(np.arange(journeys.n_journeys) % 3 == i) for i in range(3)]
    summed = choose_order(sum(order_stats(p, seed=2) for p in parts))
    whole = select_order(journeys, seed=2)
    assert summed[0] == whole[0]
    pd.testing.assert_frame_equal(summed[1], whole[1], check_exact=True)


@pytest.mark.filterwarnings("ignore::Warning")
def test_auto_order_on_dask_equals_one_process(client, log):
    root, journeys = log
    whole = MarkovJourneyModel(order="auto", seed=5).fit(journeys)
    scaled = fit_scaled(MarkovJourneyModel(order="auto", seed=5), root, client=client)
    assert scaled.order_ == whole.order_
    pd.testing.assert_frame_equal(scaled.order_table_, whole.order_table_, check_exact=True)
    assert scaled.counts_.equals(whole.counts_, rtol=0)
    assert scaled.ledger_.rows_read == whole.ledger_.rows_read


def brute_auc(score, y, w) -> float:
    """Weighted Mann-Whitney AUC over every (converting, other) pair, ties half."""
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    diff = score[pos][:, None] - score[neg][None, :]
    pair = w[pos][:, None] * w[neg][None, :]
    return float(np.sum(pair * ((diff > 0) + 0.5 * (diff == 0))) / pair.sum())


@pytest.mark.filterwarnings("ignore::Warning")
def test_holdout_scores_add_up_over_parts(log):
    """Scores of parts of the held-out journeys add up to the whole's exactly (the weights at
    each distinct score add; log-loss and AUC are computed from that table); the AUC is the
    pairwise one and the log-loss the mean over journeys."""
    from journeymodel.models.markov.holdout import cut_at_random, holdout_stats
    from journeymodel.models.markov.predict import state_of_journeys

    _, journeys = log
    train, test = journeys.split(0.3, 1)
    model = MarkovJourneyModel(order=2).fit(train)
    whole = holdout_stats(model, test, 1)
    parts = [test.take(np.arange(test.n_journeys) % 4 == i) for i in range(4)]
    summed = sum(holdout_stats(model, p, 1) for p in parts)
    assert summed.result()["auc"] == whole.result()["auc"]
    assert summed.result()["log_loss"] == whole.result()["log_loss"]
    assert summed.result()["n_journeys"] == whole.result()["n_journeys"] > 50
    done = test.take(test.outcome != CENSORED)
    cut = cut_at_random(done, 1)
    assert ((cut.lengths >= np.minimum(done.lengths, 1)) & (cut.lengths <= done.lengths)).all()
    p = state_of_journeys(model, cut)["p_conversion"]
    p = np.where(np.isnan(p), model.p_conversion_[0], p)
    assert whole.auc() == pytest.approx(brute_auc(p, done.outcome == CONVERSION, done.weight),
                                        rel=1e-12)
    y, w, pc = done.outcome == CONVERSION, done.weight, np.clip(p, 1e-12, 1 - 1e-12)
    direct = -np.sum(w * np.where(y, np.log(pc), np.log1p(-pc))) / w.sum()
    assert whole.result()["log_loss"] == pytest.approx(direct, rel=1e-12)
    with pytest.raises(OptionError, match="the held-out part has no completed journey"):
        holdout_stats(model, test.take(test.outcome == CENSORED), 1).result()


def test_order_selection_splits_the_training_journeys_again(log):
    """``--order auto --holdout F``: the selection's split is independent of the held-out
    split of the same seed (in the same stream, the training journeys would hold none out)."""
    _, journeys = log
    train, _ = journeys.split(0.25, 0)
    stats = order_stats(train, seed=0)
    assert 0.1 < stats.test_weight / train.weight.sum() < 0.3


@pytest.mark.filterwarnings("ignore::Warning")
def test_holdout_on_dask_equals_one_process(client, log):
    from journeymodel.models.markov.holdout import holdout_stats
    from journeymodel.scale.fit import fit_scaled_holdout

    root, journeys = log
    for order in (2, "auto"):
        model, scores = fit_scaled_holdout(MarkovJourneyModel(order=order, seed=6), root,
                                           fraction=0.25, seed=6, client=client)
        train, test = journeys.split(0.25, 6)
        whole = MarkovJourneyModel(order=order, seed=6).fit(train)
        assert scores == holdout_stats(whole, test, 6).result()
        assert model.counts_.equals(whole.counts_, rtol=0)
        assert model.journeys_ == whole.journeys_
    with pytest.raises(OptionError, match="--holdout must be between 0 and 1"):
        fit_scaled_holdout(MarkovJourneyModel(), root, fraction=1.5, client=client)


@pytest.mark.filterwarnings("ignore::Warning")
def test_cli_order_auto_and_holdout_on_a_local_cluster(run_cli, log, tmp_path):
    """``fit markov --order auto --holdout F --workers 1`` prints what one process prints."""
    import json

    from conftest import assert_one_error_line

    root, _ = log
    args = ("fit", "markov", root, "--order", "auto", "--holdout", "0.25", "--json")
    code, one, err = run_cli(*args, "-o", tmp_path / "one.nc")
    assert code == 0, err
    code, dask, err = run_cli(*args, "-o", tmp_path / "dask.nc", "--workers", "1")
    assert code == 0, err
    one, dask = json.loads(one), json.loads(dask)
    assert dask["holdout"] == one["holdout"]
    assert dask["order_selection"] == one["order_selection"]
    code, _, err = run_cli("fit", "markov", root, "-o", tmp_path / "x.nc", "--holdout", "1.5",
                           "--workers", "1")
    assert_one_error_line(code, err, "--holdout must be between 0 and 1")


def test_a_partition_of_held_out_journeys_only_still_counts(log):
    """A partition whose journeys are all held out (or all without touchpoints) gives empty
    training statistics, not an error: the sum is checked by the fit."""
    from journeymodel.scale.markov import HoldoutSplit, OrderCandidates

    _, journeys = log
    few = journeys.take(np.arange(3))
    for order in (1, "auto"):
        part = HoldoutSplit(MarkovJourneyModel(order=order), 0.999999, 0)(few)
        assert part.test.n_journeys == 3 and part.meta.n_journeys == 0
    empty = OrderCandidates(MarkovJourneyModel(order="auto"))(few.take(np.zeros(0, int)))
    assert empty.selection.test_weight == 0.0


paths_st = st.lists(st.tuples(st.lists(st.sampled_from("abcde"), max_size=5),
                              st.sampled_from(["conversion", "dropoff", "churn", "censored"])),
                    min_size=2, max_size=25)


@settings(max_examples=40, deadline=None)
@given(paths_st, st.integers(1, 24), st.integers(1, 3))
def test_move_counts_of_two_parts_add_up_to_the_whole(rows, cut, order):
    """Any cut of any journeys: the moves of the two parts, each over its own vocabulary,
    add up to the moves of the whole (exactly: whole-number weights)."""
    cut = min(cut, len(rows) - 1)
    make = lambda rs: journeys_from_codes([list(p) for p, _ in rs], [o for _, o in rs])  # noqa: E731
    total = move_counts(make(rows[:cut]), order) + move_counts(make(rows[cut:]), order)
    whole = move_counts(make(rows), order)
    assert total.touchpoints == whole.touchpoints
    np.testing.assert_array_equal(total.keys, whole.keys)
    np.testing.assert_array_equal(total.weight, whole.weight)


def table(score, y, w):
    from journeymodel.models.markov.holdout import HoldoutStats

    s, inverse = np.unique(score, return_inverse=True)
    return HoldoutStats(len(score), 0, float(w.sum()), s,
                        np.bincount(inverse, np.where(y, w, 0.0), len(s)),
                        np.bincount(inverse, np.where(y, 0.0, w), len(s)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.1, 0.25, 0.5, 0.7, 0.9]), st.booleans(),
                          st.integers(1, 4)), min_size=2, max_size=40), st.integers(1, 39))
def test_auc_of_summed_tables_is_the_pairwise_auc(rows, cut):
    score = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    w = np.array([float(r[2]) for r in rows])
    cut = min(cut, len(rows) - 1)
    total = table(score[:cut], y[:cut], w[:cut]) + table(score[cut:], y[cut:], w[cut:])
    if y.all() or not y.any():
        assert np.isnan(total.auc())
    else:
        assert total.auc() == pytest.approx(brute_auc(score, y, w), rel=1e-12)
        assert total.auc() == table(score, y, w).auc()
