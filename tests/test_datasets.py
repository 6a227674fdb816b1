"""Tests of the demo-data generator: determinism, schema, and agreement with its ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from journeymodel.data.datasets import (
    DEVICES,
    DemoData,
    demo_truth,
    make_demo_data,
    write_sample_events,
)
from journeymodel.errors import OptionError

COLUMNS = ["customer_id", "timestamp", "touchpoint", "persona", "value", "sentiment", "device"]


@pytest.fixture(scope="module")
def small() -> DemoData:
    return make_demo_data(2000, seed=0)


@pytest.fixture(scope="module")
def large() -> DemoData:
    return make_demo_data(20000, seed=1)


def _se(p: float, n: int) -> float:
    return float(np.sqrt(p * (1.0 - p) / n))


# -- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_output():
    a = make_demo_data(300, seed=7)
    b = make_demo_data(300, seed=np.random.default_rng(7))
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.journeys, b.journeys)
    pd.testing.assert_frame_equal(a.customers, b.customers)
    np.testing.assert_array_equal(a.stage, b.stage)


def test_different_seed_gives_different_output():
    a = make_demo_data(300, seed=7).events
    b = make_demo_data(300, seed=8).events
    assert not a.equals(b)
    assert not a["timestamp"].head(50).equals(b["timestamp"].head(50))


def test_a_generator_seed_is_consumed():
    rng = np.random.default_rng(3)
    first = make_demo_data(100, seed=rng).events
    second = make_demo_data(100, seed=rng).events  # the generator has moved on
    assert not first.equals(second)


# -- schema -----------------------------------------------------------------------------------


def test_schema_and_dtypes(small):
    ev = small.events
    assert list(ev.columns) == COLUMNS
    assert isinstance(ev["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(ev["timestamp"].dt.tz) == "UTC"
    for col in ("customer_id", "touchpoint", "persona", "device"):
        assert pd.api.types.is_string_dtype(ev[col]), col
    for col in ("value", "sentiment"):
        assert ev[col].dtype == np.float64, col
    assert ev["customer_id"].str.fullmatch(r"C\d{6}").all()
    assert ev["customer_id"].nunique() == 2000
    required = ["customer_id", "timestamp", "touchpoint", "persona", "device"]
    assert not ev[required].isna().any().any()


def test_rows_sorted_within_window_and_strictly_increasing(small):
    ev, truth = small.events, small.truth
    assert ev["timestamp"].min() >= truth.start
    assert ev["timestamp"].max() < truth.end
    same = ev["customer_id"].to_numpy()[1:] == ev["customer_id"].to_numpy()[:-1]
    assert (ev["customer_id"].to_numpy()[1:] >= ev["customer_id"].to_numpy()[:-1]).all()
    step = np.diff((ev["timestamp"] - truth.start).dt.total_seconds().to_numpy())
    assert (step[same] > 0).all()


def test_persona_constant_per_customer(small):
    ev = small.events
    assert (ev.groupby("customer_id")["persona"].nunique() == 1).all()
    assert set(ev["persona"]) == set(small.truth.personas)


def test_labels_values_sentiment_and_devices(small):
    ev, truth = small.events, small.truth
    assert set(ev["touchpoint"]) == set(truth.touchpoints) | {"conversion", "churn"}
    conv = ev["touchpoint"] == "conversion"
    outcome = conv | (ev["touchpoint"] == "churn")
    assert ev.loc[conv, "value"].gt(0).all()
    assert ev.loc[~conv, "value"].isna().all()
    assert ev.loc[outcome, "sentiment"].isna().all()
    scored = ev.loc[~outcome, "sentiment"]
    assert set(scored.dropna().unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 0.35 < scored.notna().mean() < 0.45
    assert set(ev["device"]) == set(DEVICES)
    assert (ev.loc[ev["touchpoint"] == "store", "device"] == "store").all()
    assert (ev.loc[ev["touchpoint"] == "app", "device"] == "mobile").all()
    assert not (ev.loc[~outcome & (ev["touchpoint"] != "store"), "device"] == "store").any()
    # an outcome row takes the device of the touchpoint just before it
    prev = ev["device"].shift(1)
    assert (ev.loc[outcome, "device"] == prev[outcome]).all()


def test_value_medians_follow_persona(large):
    ev, truth = large.events, large.truth
    medians = ev[ev["touchpoint"] == "conversion"].groupby("persona")["value"].median()
    for p, par in truth.persona_value.items():
        assert medians[p] == pytest.approx(par["median"], rel=0.05)


# -- truth ------------------------------------------------------------------------------------


def test_truth_shapes_and_rows_sum_to_one():
    t = demo_truth()
    n_t, n_s, n_p = len(t.touchpoints), len(t.stages), len(t.personas)
    assert n_t >= 8 and n_p >= 3 and n_s == 4
    assert t.emission.shape == (n_s, n_t) and t.transmat.shape == (n_s, n_s)
    assert t.exit_prob.shape == (n_s, 3) and t.persona_exit_prob.shape == (n_p, n_s, 3)
    for arr in (t.persona_share, t.start_prob):
        assert arr.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(t.transmat.sum(axis=1), 1.0)
    np.testing.assert_allclose(t.emission.sum(axis=1), 1.0)
    assert ((t.exit_prob >= 0) & (t.persona_exit_prob >= 0)).all()
    assert (t.persona_exit_prob.sum(axis=2) < 1).all()
    # persona effects move mass between conversion and leave only
    np.testing.assert_allclose(t.persona_exit_prob.sum(axis=2), t.exit_prob.sum(axis=1)[None, :]
                               * np.ones((n_p, 1)))
    assert len(set(t.emission.argmax(axis=1))) == n_s  # a distinct dominant channel per stage
    assert t.start_prob[0] > 0.5 and t.start_prob[1] > 0
    assert not t.transmat.flags.writeable
    assert t.days == 365 and t.gap_days == 30


def test_persona_conversion_matches_backward_linear_solve():
    """Forward fundamental matrix in the truth vs a backward solve v = c + diag(1-e) A v."""
    t = demo_truth()
    stay = np.diag(1.0 - t.exit_prob.sum(axis=1)) @ t.transmat
    for i, p in enumerate(t.personas):
        v = np.linalg.solve(np.eye(len(t.stages)) - stay, t.persona_exit_prob[i, :, 0])
        assert t.persona_conversion[p] == pytest.approx(t.start_prob @ v, abs=1e-12)
    rates = [t.persona_conversion[p] for p in t.personas]
    assert 0.15 < min(rates) and max(rates) < 0.5 and max(rates) - min(rates) > 0.05


# -- realised data vs truth ---------------------------------------------------------------------


def test_outcome_mix_is_realistic(small):
    obs = small.journeys["observed_outcome"].value_counts(normalize=True)
    completed = small.journeys.loc[small.journeys["observed_outcome"] != "censored",
                                   "observed_outcome"].value_counts(normalize=True)
    assert 0.20 <= completed["conversion"] <= 0.38
    assert 0.01 <= completed["churn"] <= 0.10
    assert completed["dropoff"] > 0.4
    assert 0.02 <= obs["censored"] <= 0.25
    assert small.journeys.groupby("customer_id").size().max() > 3  # repeat journeys happen


def test_segmentation_of_events_agrees_with_truth(small):
    from journeymodel.data.journeys import load_journeys

    js = load_journeys(small.events)
    expected = small.journeys["observed_outcome"].value_counts().to_dict()
    assert {k: v for k, v in js.outcome_counts().items() if v} == expected
    np.testing.assert_array_equal(np.sort(js.lengths),
                                  np.sort(small.journeys["n_touchpoints"].to_numpy()))
    assert js.n_events == int((small.stage >= 0).sum())


def test_stage_labels_align_with_emission(large):
    truth, stage = large.truth, large.stage
    tp = large.events["touchpoint"].to_numpy()
    assert ((stage < 0) == np.isin(tp, ["conversion", "churn"])).all()
    code = pd.Categorical(tp[stage >= 0], categories=truth.touchpoints).codes
    counts = np.zeros(truth.emission.shape)
    np.add.at(counts, (stage[stage >= 0], code), 1)
    freq = counts / counts.sum(axis=1, keepdims=True)
    se = np.sqrt(truth.emission * (1 - truth.emission) / counts.sum(axis=1, keepdims=True))
    assert (np.abs(freq - truth.emission) < 4.5 * se + 1e-9).all()


def test_conversion_per_persona_matches_truth(large):
    truth, jr = large.truth, large.journeys
    for p, rate in truth.persona_conversion.items():
        mine = jr[jr["persona"] == p]
        freq = (mine["outcome"] == "conversion").mean()
        assert abs(freq - rate) < 4 * _se(rate, len(mine)), (p, freq, rate)
    # as observed in the events: journeys that start 90+ days before the end are resolved (but
    # for the odd very long one), so their observed conversion share is unbiased
    early = jr[jr["start"] < truth.end - pd.Timedelta(days=90)]
    assert (early["observed_outcome"] == "censored").mean() < 1e-3
    early = early[early["observed_outcome"] != "censored"]
    for p, rate in truth.persona_conversion.items():
        mine = early[early["persona"] == p]
        freq = (mine["observed_outcome"] == "conversion").mean()
        assert abs(freq - rate) < 4 * _se(rate, len(mine)), (p, freq, rate)


def test_first_touchpoint_distribution(large):
    truth = large.truth
    first = large.journeys.merge(large.events, left_on=["customer_id", "start"],
                                 right_on=["customer_id", "timestamp"], how="left")
    assert len(first) == len(large.journeys) and first["touchpoint"].notna().all()
    expected = truth.start_prob @ truth.emission
    freq = first["touchpoint"].value_counts(normalize=True).reindex(truth.touchpoints,
                                                                    fill_value=0.0)
    se = np.sqrt(expected * (1 - expected) / len(first))
    assert (np.abs(freq.to_numpy() - expected) < 4.5 * se + 1e-9).all()


def test_dropoff_silence_and_churn_is_final(small):
    jr, ev = small.journeys, small.events
    nxt = jr.groupby("customer_id")["start"].shift(-1)
    dropped = jr["outcome"] == "dropoff"
    assert ((nxt - jr["end"])[dropped & nxt.notna()] > pd.Timedelta(days=30)).all()
    churned = jr["outcome"] == "churn"
    assert nxt[churned].isna().all()
    last_row = ev.groupby("customer_id").tail(1)
    churn_rows = ev[ev["touchpoint"] == "churn"]
    assert churn_rows.index.isin(last_row.index).all()


def test_truth_tables_agree_with_events(small):
    ev, cu, jr = small.events, small.customers, small.journeys
    churn_rows = ev.loc[ev["touchpoint"] == "churn", ["customer_id", "timestamp"]]
    told = cu.dropna(subset=["churn_time"])
    assert sorted(zip(churn_rows["customer_id"], churn_rows["timestamp"], strict=True)) == sorted(
        zip(told["customer_id"], told["churn_time"], strict=True))
    conv = ev[ev["touchpoint"] == "conversion"].groupby("customer_id")["timestamp"].min()
    subs = cu.dropna(subset=["first_conversion"]).set_index("customer_id")["first_conversion"]
    pd.testing.assert_series_equal(conv.sort_index(), subs.sort_index(), check_names=False)
    assert (jr["observed_outcome"] == "churn").sum() == len(churn_rows)
    assert jr["n_touchpoints"].sum() == int((small.stage >= 0).sum())


def test_churn_process_is_shifted_beta_geometric(large):
    truth, cu = large.truth, large.customers
    churn_rows = large.events[large.events["touchpoint"] == "churn"]
    first_conv = large.events[large.events["touchpoint"] == "conversion"].groupby(
        "customer_id")["timestamp"].min()
    # only subscribers churn, after their first conversion
    assert (churn_rows.set_index("customer_id")["timestamp"]
            > first_conv.reindex(churn_rows["customer_id"]).to_numpy()).all()
    period = pd.Timedelta(days=truth.period_days)
    churners = cu.dropna(subset=["churn_time"])
    survived = (churners["churn_time"] - churners["first_conversion"]) // period
    assert (survived == churners["renewals"]).mean() > 0.95
    for p, par in truth.persona_churn.items():
        mine = cu[cu["persona"] == p]
        a, b = par["alpha"], par["beta"]
        sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)) / len(mine))
        assert abs(mine["theta"].mean() - par["mean_theta"]) < 4 * sd
        # observed hazard at the first renewal, among subscribers seen for two full periods
        seen = mine[mine["first_conversion"] < truth.end - 2 * period]
        lost = ((seen["churn_time"] - seen["first_conversion"]) // period == 1).mean()
        assert abs(lost - par["mean_theta"]) < 4 * _se(par["mean_theta"], len(seen)), p


# -- files and arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_sample_events_round_trip(tmp_path, suffix):
    path = tmp_path / f"events{suffix}"
    rows = write_sample_events(path, n_customers=60, seed=2)
    back = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    expected = make_demo_data(60, seed=2).events
    assert rows == len(back) == len(expected)
    assert list(back.columns) == COLUMNS
    ts = pd.to_datetime(back["timestamp"], utc=True)
    assert (ts.to_numpy() == expected["timestamp"].to_numpy()).all()


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(OptionError, match=r"\.csv or \.parquet"):
        write_sample_events(tmp_path / "events.xlsx", 10)
    assert not (tmp_path / "events.xlsx").exists()
    with pytest.raises(OptionError, match="n_customers"):
        make_demo_data(0)
    with pytest.raises(OptionError, match="days"):
        make_demo_data(10, days=0)


def test_window_start_is_honoured():
    demo = make_demo_data(100, seed=4, start="2024-03-01", days=90)
    ts = demo.events["timestamp"]
    assert ts.min() >= pd.Timestamp("2024-03-01", tz="UTC")
    assert ts.max() < pd.Timestamp("2024-05-30", tz="UTC")
    assert demo.truth.end == pd.Timestamp("2024-05-30", tz="UTC")
