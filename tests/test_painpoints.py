"""Emotion curves, pain points and the pain-points command (issue 8)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from journeymodel.analysis.experience import journey_experience, mean_interval
from journeymodel.analysis.painpoints import (
    N_DRAWS,
    _gap_items,
    drop_interval,
    find_pain_points,
    rank,
)
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.errors import ModelFileError, OptionError
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.models.stages.model import StageModel
from tests.conftest import assert_one_error_line

# -- the building blocks ------------------------------------------------------------------------


def test_mean_interval_equals_student_t_interval():
    rng = np.random.default_rng(1)
    x = rng.normal(0.2, 0.3, 40)
    r = mean_interval(x, np.zeros(40, np.int64), 1, ci=0.94)
    lo, hi = stats.t.interval(0.94, 39, loc=x.mean(), scale=stats.sem(x))
    assert r["mean"][0] == pytest.approx(x.mean())
    assert (r["low"][0], r["high"][0]) == pytest.approx((lo, hi))
    assert r["scored"][0] == 40


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=3, max_size=30), st.floats(0.1, 50))
def test_mean_interval_ignores_a_common_weight_scale(values, scale):
    x = np.array(values)
    g = np.zeros(len(x), np.int64)
    w = np.linspace(0.5, 2.0, len(x))
    a, b = mean_interval(x, g, 1, w), mean_interval(x, g, 1, w * scale)
    for k in ("mean", "low", "high"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-9, atol=1e-12)


def _small():
    js = journeys_from_codes(
        [["web", "call", "web"], ["web", "web"], ["call"], ["web", "call"]],
        ["conversion", "dropoff", "dropoff", "censored"])
    # events: web call web | web web | call | web call
    sentiment = np.array([0.5, -0.5, np.nan, 1.0, np.nan, -1.0, np.nan, 0.0])
    device = np.array([0, 1, 1, 0, 0, 1, 0, 0], np.int32)
    return replace(js, sentiment=sentiment, device=device, devices=("mobile", "desktop"))


def test_experience_counts_by_hand():
    exp = journey_experience(_small())
    pairs = {(a, b): (n, d, c) for a, b, n, d, c in zip(
        exp["pair_from"].values, exp["pair_to"].values, exp["pair_n"].values,
        exp["pair_dropped"].values, exp["pair_converted"].values, strict=True)}
    # arrivals with a known sequel; the censored journey's last step ("web > call") is unknown
    assert pairs == {("(start)", "web"): (3, 0, 1), ("(start)", "call"): (1, 1, 0),
                     ("web", "call"): (1, 0, 1), ("call", "web"): (1, 0, 1),
                     ("web", "web"): (1, 1, 0)}
    dev = {(a, b): (n, d) for a, b, n, d in zip(
        exp["dpair_from"].values, exp["dpair_to"].values, exp["dpair_n"].values,
        exp["dpair_dropped"].values, strict=True)}
    assert dev == {("mobile", "desktop"): (1, 0), ("desktop", "desktop"): (1, 0),
                   ("mobile", "mobile"): (1, 1)}
    tp = exp.sel(channel="web")
    assert float(tp["tp_mean"]) == pytest.approx(0.75)  # 0.5 and 1.0; the unscored web skipped
    assert int(tp["tp_scored"]) == 2 and float(tp["tp_events"]) == 5
    assert int(tp["tp_journeys"]) == 2
    assert exp["pos_mean"].values[:2] == pytest.approx([0.5 / 3, -0.25])  # 0.5, 1, -1 | -0.5, 0
    assert np.isnan(exp["pos_mean"].values[2])  # the only third step is unscored
    assert exp.attrs["scored_events"] == 5 and exp.attrs["events"] == 8


def test_unscored_events_are_never_zero():
    js = _small()
    # a touchpoint with only unscored events has no mean, not 0, and is not friction
    only = replace(js, sentiment=np.where(js.codes == 0, np.nan, js.sentiment))  # call unscored
    exp = journey_experience(only)
    assert np.isnan(float(exp.sel(channel="call")["tp_mean"]))
    assert int(exp.sel(channel="call")["tp_scored"]) == 0
    assert float(exp.sel(channel="call")["tp_events"]) == 3
    # unscored events do not pull any mean towards 0
    assert exp.attrs["sentiment_mean"] == pytest.approx(np.nanmean(only.sentiment))
    assert exp.attrs["scored_events"] == 2
    from journeymodel.analysis.painpoints import friction

    assert "call" not in [i["name"] for i in friction(exp)]


def test_gap_probability_matches_numerical_integration():
    # switch: 30 of 100 dropped; stay: 20 of 100
    items = _gap_items("device", ["m", "m"], ["d", "m"], [100, 100], [30, 20], [35, 40],
                       np.random.default_rng(0), 0.94)
    (item,) = items
    a = stats.beta(31, 71)
    b = stats.beta(21, 81)
    exact = integrate.quad(lambda x: a.pdf(x) * b.cdf(x), 0, 1)[0]
    assert item["p_worse"] == pytest.approx(exact, abs=0.01)
    assert item["cost"] == pytest.approx(100 * (0.30 - 0.20) * 35 / 70)
    assert item["cost_low"] < item["cost"] < item["cost_high"]


def test_state_leak_by_hand():
    # c1 > c2 converts, c1 drops, c2 drops twice: P(drop | c1) = 1/2, P(drop | c2) = 2/3
    js = journeys_from_codes([["c1", "c2"], ["c1"], ["c2"], ["c2"]],
                             ["conversion", "dropoff", "dropoff", "dropoff"])
    m = MarkovJourneyModel().fit(js)
    found = find_pain_points(m, min_prob=0.0)  # three passes are weak evidence: list anyway
    state = {i["name"]: i for i in found.leaks if i["kind"] == "state"}
    baseline = 3 / 5
    assert set(state) == {"c2"}  # c1's drop rate 1/2 is below the baseline 3/5
    # c2: 3 passes, drop 2/3, a journey going on from c2 always converts (c = 1)
    assert state["c2"]["cost"] == pytest.approx(3 * (2 / 3 - baseline) * 1.0)
    assert state["c2"]["baseline"] == pytest.approx(baseline)



def test_leak_cost_stays_inside_its_interval_when_every_pass_drops_off():
    # c3 is passed twice and both journeys drop off there: the observed rate 1 lies above the
    # Jeffreys interval of the rate, so the cost is taken at the interval's end, not above it
    js = journeys_from_codes([["c1", "c2"], ["c1", "c2"], ["c1", "c3"], ["c1", "c3"],
                              ["c2"], ["c1"]],
                             ["conversion", "conversion", "dropoff", "dropoff", "conversion",
                              "conversion"])
    found = find_pain_points(MarkovJourneyModel().fit(js), min_prob=0.0)
    leak = next(i for i in found.leaks if i["kind"] == "state" and i["name"] == "c3")
    assert leak["drop_rate"] == 1.0
    assert leak["cost_low"] <= leak["cost"] <= leak["cost_high"]
    assert leak["cost"] == pytest.approx(leak["cost_high"])

@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.lists(st.sampled_from("abc"), min_size=1, max_size=4),
                          st.sampled_from(["conversion", "dropoff", "churn"])),
                min_size=2, max_size=25))
def test_state_leaks_count_drop_offs_only(journeys):
    """Against a count from the raw paths (repeats merged, as the chain merges them): a state's
    drop-off rate is the drop-offs right after it per pass, churns are not drop-offs, and the
    leaks are exactly the states above the pooled rate."""
    paths, outcomes = zip(*journeys, strict=True)
    m = MarkovJourneyModel().fit(journeys_from_codes([list(p) for p in paths], list(outcomes)))
    passes, drops = {}, {}
    for path, outcome in journeys:
        merged = [t for i, t in enumerate(path) if i == 0 or t != path[i - 1]]
        for t in merged:
            passes[t] = passes.get(t, 0) + 1
        drops[merged[-1]] = drops.get(merged[-1], 0) + (outcome == "dropoff")
    baseline = sum(drops.values()) / sum(passes.values())
    leaks = {i["name"]: i for i in find_pain_points(m, top=None, min_prob=0.0).leaks
             if i["kind"] == "state"}
    assert set(leaks) == {t for t in passes if drops.get(t, 0) / passes[t] > baseline}
    for t, item in leaks.items():
        assert item["journeys"] == passes[t]
        assert item["drop_rate"] == pytest.approx(drops[t] / passes[t])
        assert item["baseline"] == pytest.approx(baseline)
        assert item["cost_low"] <= item["cost_high"]


def test_rank_by_hand():
    items = [{"kind": "state", "name": "a", "cost": 1.0, "p_worse": 0.95},
             {"kind": "state", "name": "b", "cost": 3.0, "p_worse": 0.5},
             {"kind": "stage", "name": "a", "cost": 2.0},
             {"kind": "state", "name": "a", "cost": 0.5, "p_worse": 0.99}]
    assert [(i["kind"], i["name"], i["cost"]) for i in rank(items)] == [
        ("stage", "a", 2.0), ("state", "a", 1.0)]  # b below 0.9, the second "a" a repeat
    assert [i["name"] for i in rank(items, min_prob=0.0, top=2)] == ["b", "a"]


def test_drop_interval_by_hand():
    # Beta(1, 2) (no drop-off in one arrival): CDF 1 - (1 - x)^2
    lo, hi = drop_interval(0, 1, 0.9)
    assert lo == pytest.approx(1 - np.sqrt(0.95)) and hi == pytest.approx(1 - np.sqrt(0.05))
    lo, hi = drop_interval(np.array([30, 0]), np.array([100, 0]), 0.94)
    assert (lo[0], hi[0]) == pytest.approx(stats.beta(31, 71).ppf([0.03, 0.97]))
    assert (lo[1], hi[1]) == pytest.approx((0.03, 0.97))  # no arrivals: the uniform prior
    assert N_DRAWS == 4000


# -- demo data: the planted problems --------------------------------------------------------------


def _models(problems: bool, scale=None, seed=0):
    events = make_demo_data(2000, seed=seed, problems=problems).events
    if scale is not None:
        events = events.assign(sentiment=events["sentiment"] * scale[0] + scale[1])
        lo, hi = 1 * scale[0] + scale[1], 5 * scale[0] + scale[1]
        js = load_journeys(events, sentiment_scale=(lo, hi))
    else:
        js = load_journeys(events)
    return (MarkovJourneyModel(order=1).fit(js),
            StageModel(n_stages=4, seed=0, restarts=1).fit(js))


@pytest.fixture(scope="module")
def planted():
    return find_pain_points(list(_models(True)), top=None)


@pytest.fixture(scope="module")
def clean():
    return find_pain_points(list(_models(False)), top=None)


def _names(items, kind=None):
    return [i["name"] for i in items if kind is None or i["kind"] == kind]


def test_planted_leak_is_in_the_top_three(planted):
    top = planted.leaks[:3]
    assert top[0]["kind"] == "stage" and "(store, call)" in top[0]["name"]
    states = _names(planted.leaks, "state")[:3]
    assert {"store", "call"} <= set(states)
    assert all(i["p_worse"] > 0.99 for i in top)


def test_planted_friction_is_in_the_top_three(planted):
    top = planted.friction[:3]
    assert "support_chat" in _names(top, "touchpoint")
    stage = [i for i in top if i["kind"] == "stage"]
    assert stage and "(app, email)" in stage[0]["name"]  # the loyalty (support) stage
    for i in top:
        assert i["cost_low"] > 0 and i["sentiment"] < i["average"]


def test_planted_device_gap_is_in_the_top_three(planted):
    top = planted.gaps[:3]
    assert "mobile > desktop" in _names(top, "device")
    gap = next(i for i in top if i["name"] == "mobile > desktop")
    assert gap["p_worse"] > 0.999 and gap["drop_rate"] > 2 * gap["stay_drop_rate"]
    assert gap["cost_low"] > 0


def test_removing_the_plants_removes_them(clean):
    leak_states = _names(clean.leaks, "state")
    assert "store" not in leak_states and "call" not in leak_states
    assert not any("(store, call)" in n for n in _names(clean.leaks, "stage"))
    assert "support_chat" not in _names(clean.friction, "touchpoint")
    assert not any("(app, email)" in n for n in _names(clean.friction, "stage"))
    assert "mobile > desktop" not in _names(clean.gaps, "device")
    assert all(i["p_worse"] >= 0.9 for i in clean.leaks + clean.gaps)


def test_json_shape(planted):
    js = planted.to_json()
    assert set(js) == {"leaks", "friction", "gaps"}
    for items in js.values():
        assert items
        for item in items:
            assert {"kind", "name", "cost", "cost_low", "cost_high", "journeys"} <= set(item)
            assert item["cost"] > 0
    json.dumps(js)  # plain JSON types
    costs = [i["cost"] for i in js["leaks"]]
    assert costs == sorted(costs, reverse=True)


def test_any_sentiment_scale_gives_the_same_ranking(planted):
    m, s = _models(True, scale=(25.0, -25.0))  # 1..5 -> 0..100, declared 0,100
    other = find_pain_points([m, s], top=None)
    assert [(i["kind"], i["name"]) for i in other.friction] == [
        (i["kind"], i["name"]) for i in planted.friction]
    np.testing.assert_allclose([i["cost"] for i in other.friction],
                               [i["cost"] for i in planted.friction], rtol=1e-9)


def test_same_seed_same_output_and_round_trip(tmp_path):
    m, s = _models(True, seed=3)
    a = find_pain_points([m, s], seed=5).to_json()
    m2 = MarkovJourneyModel.load(m.save(tmp_path / "m.nc"))
    s2 = StageModel.load(s.save(tmp_path / "s.nc"))
    assert find_pain_points([m2, s2], seed=5).to_json() == a
    assert m2.experience_.equals(m.experience_)
    assert s2.experience_.equals(s.experience_)


def test_library_errors():
    m = MarkovJourneyModel().fit(journeys_from_codes([["a"], ["b"]], ["conversion", "dropoff"]))
    with pytest.raises(OptionError, match="--top must be at least 1"):
        find_pain_points(m, top=0)
    with pytest.raises(OptionError, match="--min-prob must be in"):
        find_pain_points(m, min_prob=1.0)
    with pytest.raises(OptionError, match="--ci must be between 0 and 1"):
        find_pain_points(m, ci=1.5)
    m.experience_ = None
    with pytest.raises(ModelFileError, match="no experience data"):
        find_pain_points(m)
    from types import SimpleNamespace

    with pytest.raises(OptionError, match="markov or stages model .got a conversion"):
        find_pain_points(SimpleNamespace(model_type="conversion"))


# -- CLI ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("pp")
    events = d / "events.parquet"
    make_demo_data(1500, seed=2).events.to_parquet(events)
    m, s = d / "m.nc", d / "s.nc"
    js = load_journeys(events)
    MarkovJourneyModel(order=1).fit(js).save(m)
    StageModel(n_stages=4, seed=0, restarts=1).fit(js).save(s)
    return d, events, m, s


def test_cli_pain_points(saved, run_cli):
    d, _, m, s = saved
    code, out, err = run_cli("pain-points", m, s, "--json", "--top", "2")
    assert code == 0, err
    js = json.loads(out)
    assert set(js) == {"leaks", "friction", "gaps"} and all(len(v) == 2 for v in js.values())
    assert js["gaps"][0]["name"] == "mobile > desktop"
    code, out, err = run_cli("pain-points", m, "-o", d / "all.csv")
    assert code == 0, err
    assert "Leaks" in out and "Friction" in out and "gaps" in out
    import pandas as pd

    table = pd.read_csv(d / "all.csv")
    assert set(table["category"]) == {"leaks", "friction", "gaps"}


def test_cli_errors(saved, run_cli, tmp_path):
    d, events, m, _ = saved
    assert_one_error_line(*run_cli("pain-points", m, "--top", "0")[::2],
                          match="--top must be at least 1")
    assert_one_error_line(*run_cli("pain-points", m, "--ci", "0")[::2],
                          match="--ci must be between 0 and 1")
    assert_one_error_line(*run_cli("pain-points", tmp_path / "none.nc")[::2],
                          match="none.nc")
    assert_one_error_line(*run_cli("pain-points", events)[::2], match="events.parquet")
    old = tmp_path / "old.nc"
    import xarray as xr

    tree = xr.open_datatree(m, engine="h5netcdf").load()
    tree.close()
    del tree["experience"]
    tree.to_netcdf(old, engine="h5netcdf")
    assert_one_error_line(*run_cli("pain-points", old)[::2], match="old.nc.*no experience")


def test_inspect_shows_the_emotion_curve(saved, run_cli):
    _, _, m, s = saved
    code, out, err = run_cli("inspect", s, "--json")
    assert code == 0, err
    emo = json.loads(out)["emotion"]
    assert len(emo["stages"]) == 4
    for row in emo["stages"].values():
        assert row["low"] < row["mean"] < row["high"] and row["scored"] > 0
    code, out, err = run_cli("inspect", m, "--json")
    emo = json.loads(out)["emotion"]
    assert "stages" not in emo and "support_chat" in emo["touchpoints"]
    assert emo["position"][0]["position"] == "1"
    code, out, _ = run_cli("inspect", m)
    assert "Mean sentiment (-1..1) per touchpoint" in out
    bare = MarkovJourneyModel().fit(journeys_from_codes([["a"], ["b"]], ["conversion",
                                                                         "dropoff"]))
    assert bare.summary().json["emotion"] is None  # no sentiment column: no curve


def test_sample_data_without_problems(run_cli, tmp_path):
    from journeymodel.data.datasets import write_sample_events

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run_cli("sample-data", "-o", a, "--customers", "300")[0] == 0
    assert run_cli("sample-data", "-o", b, "--customers", "300", "--no-problems")[0] == 0
    write_sample_events(tmp_path / "ref_a.csv", 300)
    write_sample_events(tmp_path / "ref_b.csv", 300, problems=False)
    assert a.read_bytes() == (tmp_path / "ref_a.csv").read_bytes()
    assert b.read_bytes() == (tmp_path / "ref_b.csv").read_bytes()
    assert a.read_bytes() != b.read_bytes()


def test_demo_step_prints_the_top_pain_points(saved, tmp_path, capsys, monkeypatch):
    import shutil

    monkeypatch.setenv("COLUMNS", "200")  # no wrapped table cells
    from journeymodel.cli.cmd_pain_points import demo_step

    _, events, m, s = saved
    assert demo_step(events, tmp_path, 0) is None  # no models yet: nothing to print
    assert capsys.readouterr().out == ""
    shutil.copy(m, tmp_path / "markov.nc")
    shutil.copy(s, tmp_path / "stages.nc")
    demo_step(events, tmp_path, 0)
    out = capsys.readouterr().out
    assert "Pain points" in out and "mobile > desktop" in out and "support_chat" in out
