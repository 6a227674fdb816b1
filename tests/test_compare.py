"""journeymodel compare (issue 16): what changed, and for whom.

Planted incidents are found at the top with their window; logs where nothing changes give no
finding beyond the stated false-discovery rate (several seeds, by period and by device, with
the censoring trap of the last weeks); posterior numbers by hand on a tiny log; p_diff against
posterior draws; the statistic adds up over parts; JSON keys; determinism; user errors.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache

import numpy as np
import pytest
from pandas.testing import assert_frame_equal

from journeymodel.analysis.compare import KEYS, beta_comparison, compare, compare_stats
from journeymodel.data.incidents import Incident, make_incident_data, stationary_events
from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.errors import InputError, OptionError
from journeymodel.stats.groups import grouped_transitions, parse_by
from tests.conftest import assert_one_error_line
from tests.stats_helpers import split_parts

#: A checkout-like incident: 90% of the conversions right after `store` lost for 3 weeks.
STORE_INCIDENT = Incident("store", start="2025-03-03", end="2025-03-24", share=0.9)


@cache
def incident_log():
    return make_incident_data(15000, [STORE_INCIDENT], seed=2, days=182)


@cache
def device_log():
    """Mobile abandons more: 40% of the conversions right after a mobile touchpoint lost."""
    return make_incident_data(15000, [Incident(device="mobile", share=0.4)], seed=5, days=182)


@cache
def stationary(seed: int):
    return load_journeys(stationary_events(8000, seed=seed, days=182))


def with_personas(paths, outcomes, personas):
    js = journeys_from_codes(paths, outcomes)
    names = tuple(sorted(set(personas)))
    return replace(js, persona=np.array([names.index(p) for p in personas], np.int32),
                   personas=names)


# ---------------------------------------------------------------------------------------------
# Planted differences are found, at the top, with their window


def test_planted_incident_is_found_at_the_top_with_its_window():
    data = incident_log()
    found = compare(load_journeys(data.events), by="period:7D")
    top = found.differences.iloc[0]
    assert (top["kind"], top["from"], top["to"]) == ("exit", "store", "conversion")
    assert (top["start"], top["end"]) == ("2025-03-03", "2025-03-23")  # three weeks, one line
    assert top["diff"] < 0 and top["low"] <= top["diff"] <= top["high"] < 0
    assert top["p_diff"] > 0.999
    # the conversions at stake are about those the incident removed
    assert abs(top["impact"]) == pytest.approx(data.lost[0], rel=0.3)
    # every finding is this incident (its conversion and its drop-off side)
    assert set(zip(found.differences["from"], found.differences["to"], strict=True)) <= {
        ("store", "conversion"), ("store", "dropoff")}
    assert found.sentences(1)[0].startswith(
        "store -> conversion fell from 0.17 to 0.02 between 3 and 23 March 2025, about ")


def test_a_device_that_abandons_more_is_found():
    found = compare(load_journeys(device_log().events), by="device")
    d = found.differences
    assert len(d) and d.iloc[0]["group"] == "mobile"
    conv = d[(d["group"] == "mobile") & (d["to"] == "conversion")]
    assert len(conv) >= 3 and (conv["diff"] < 0).all() and (conv["impact"] < 0).all()
    assert d["start"].isna().all() and d["end"].isna().all()


# ---------------------------------------------------------------------------------------------
# Nothing changed: no finding beyond the false-discovery rate


@pytest.mark.parametrize("by", ["period:7D", "device"])
def test_no_findings_beyond_the_fdr_where_nothing_changed(by):
    runs_with_findings = sum(len(compare(stationary(seed), by=by).differences) > 0
                             for seed in range(5))
    # Benjamini-Hochberg at 5%: where nothing changed a run lists anything with probability
    # at most 0.05 (expected 0.25 runs of 5; 2 or more has probability < 3%)
    assert runs_with_findings <= 1


def test_censored_journeys_do_not_fake_a_drop_off_fall_in_the_last_weeks():
    js = stationary(0)
    fair = compare(js, by="period:7D")
    assert not len(fair.differences)
    assert fair.notes[1].startswith("not compared: ") and "after 2025-06-01" in fair.notes[1]
    # the trap: counting every step (no gap: censored ends left out, nothing else) makes
    # drop-off look rarer in the last weeks
    naive = compare(replace(js, gap=None), by="period:7D")
    d = naive.differences
    fell = d[(d["to"] == "dropoff") & (d["diff"] < 0)]
    assert len(fell) and (fell["start"] >= "2025-06-01").all()


# ---------------------------------------------------------------------------------------------
# Numbers by hand


def tiny():
    paths = [["web"]] * 10
    outcomes = ["conversion"] * 2 + ["dropoff"] * 2 + ["conversion"] + ["dropoff"] * 5
    return with_personas(paths, outcomes, ["a"] * 4 + ["b"] * 6)


def test_posterior_numbers_by_hand():
    # web row: a converts 2 of 4, b 1 of 6; pooled 3/10, prior weight 1 spread as the pool
    found = compare(tiny(), by="persona")
    cells = found.cells.set_index(["group", "to"])
    a = cells.loc[("a", "conversion")]
    assert a["rate"] == pytest.approx(2.3 / 5)  # Beta(2 + 0.3, 2 + 0.7)
    assert a["baseline_rate"] == pytest.approx(1.3 / 7)  # Beta(1 + 0.3, 5 + 0.7)
    assert a["diff"] == pytest.approx(2.3 / 5 - 1.3 / 7)
    assert a["journeys"] == 4
    assert a["impact"] == pytest.approx((2.3 / 5 - 1.3 / 7) * 4)  # exit to conversion: x 1
    b = cells.loc[("b", "dropoff")]
    assert b["rate"] == pytest.approx(5.7 / 7)  # Beta(5 + 0.7, 1 + 0.3)
    # drop-off: diff x journeys x (0 - P(convert | web)), P(convert | web) = 3 / 10
    assert b["impact"] == pytest.approx(b["diff"] * 6 * -0.3)
    rng = np.random.default_rng(0)
    x, y = rng.beta(2.3, 2.7, 400_000), rng.beta(1.3, 5.7, 400_000)
    assert a["p_diff"] == pytest.approx(np.mean(x > y), abs=0.01)
    assert found.tests == 4 and not len(found.differences)  # 10 journeys: nothing credible


def test_p_diff_agrees_with_posterior_draws():
    rng = np.random.default_rng(1)
    c1, n1 = rng.integers(0, 40, 30).astype(float), np.full(30, 40.0)
    c2, n2 = rng.integers(0, 400, 30).astype(float), np.full(30, 400.0)
    post = beta_comparison(c1, n1, c2, n2, np.full(30, 0.3), 1.0)
    x = rng.beta(post["a1"], post["b1"], (100_000, 30))
    y = rng.beta(post["a2"], post["b2"], (100_000, 30))
    sign = np.sign(post["diff"])
    draws = np.mean(np.sign(x - y) == sign, axis=0)
    assert np.allclose(post["p_diff"], draws, atol=0.012)
    assert np.allclose(post["tail"], 1 - post["p_diff"])


def test_p_diff_of_a_rate_of_zero_is_not_understated():
    # Beta(0.14, 491) against Beta(73, 418): the log-odds approximation alone said 0.95
    post = beta_comparison(np.array([0.0]), np.array([491.0]), np.array([72.86]),
                           np.array([491.0]), np.array([0.143]), 1.0)
    assert post["tail"][0] < 1e-6 and post["p_diff"][0] > 0.999999


def test_ties_are_broken_by_kind_step_and_group():
    # mirror images: a converts 90 of 100 after web, b 10 of 100 (same |impact| for both)
    outcomes = (["conversion"] * 90 + ["dropoff"] * 10 + ["conversion"] * 10
                + ["dropoff"] * 90)
    js = with_personas([["web"]] * 200, outcomes, ["a"] * 100 + ["b"] * 100)
    d = compare(js, by="persona").differences
    assert d["impact"].abs().iloc[0] == pytest.approx(d["impact"].abs().iloc[1])
    assert list(zip(d["group"], d["to"], strict=True)) == [
        ("a", "conversion"), ("b", "conversion"), ("a", "dropoff"), ("b", "dropoff")]


def test_busy_harmless_self_loop_does_not_crowd_out_a_rare_costly_step():
    # with repeats kept, web -> web is busy and changes a lot between personas, but moves no
    # conversion (P(convert | web) on both sides): impact 0, ranked below the rare loss
    paths = ([["web"] * 6 + ["call"]] * 300 + [["web", "web", "call"]] * 300
             + [["call"]] * 400)
    outcomes = (["conversion"] * 100 + ["dropoff"] * 200 + ["conversion"] * 100
                + ["dropoff"] * 200 + ["conversion"] * 160 + ["dropoff"] * 40)
    outcomes += ["conversion"] * 80 + ["dropoff"] * 120
    personas = ["a"] * 300 + ["b"] * 300 + ["a"] * 200 + ["b"] * 200
    js = with_personas(paths, outcomes, personas)
    found = compare(js, by="persona", collapse_repeats=False)
    d = found.differences
    loops = d[(d["from"] == "web") & (d["to"] == "web")]
    assert len(loops) and (loops["impact"].abs() < 1e-9).all()
    assert d.iloc[0]["from"] == "call" and d.iloc[0]["to"] in ("conversion", "dropoff")


# ---------------------------------------------------------------------------------------------
# The statistic adds up; results are deterministic; JSON keys


def test_grouped_transitions_add_up_over_parts_of_a_log():
    js = load_journeys(make_incident_data(400, seed=3).events)
    labels = np.random.default_rng(0).integers(0, 3, len(js.customers))
    for by in ("period:7D", "device", "persona", "period:1M"):
        parts = split_parts(js, labels, by_customer=True)
        stats = [grouped_transitions(p, by, order=2) for p in parts]
        whole = grouped_transitions(js, by, order=2)
        assert sum(stats[::-1]).equals(whole)
        assert sum(stats).equals(sum(stats[::-1]))
    a = compare_stats(sum(grouped_transitions(p, "device") for p in parts))
    b = compare(js, by="device")
    assert json.dumps(a.to_json()) == json.dumps(b.to_json())
    assert a.cells.equals(b.cells)


def test_adding_statistics_of_other_settings_is_refused():
    js = stationary(0)
    with pytest.raises(OptionError, match="same order, repeat handling, grouping"):
        grouped_transitions(js, "device") + grouped_transitions(js, "period:7D")


def test_json_has_the_exact_keys_and_runs_are_deterministic():
    js = load_journeys(incident_log().events)
    one = compare(js, by="period:7D", seed=4).to_json()
    two = compare(js, by="period:7D", seed=4).to_json()
    assert json.dumps(one) == json.dumps(two)
    assert list(one) == ["by", "groups", "differences"]
    assert one["by"] == "period:7D" and one["groups"][0] == "2024-12-30"
    assert all(list(d) == list(KEYS) for d in one["differences"])
    first = one["differences"][0]
    assert first["group"] == "2025-03-03/2025-03-23" and first["kind"] == "exit"


def test_a_findings_numbers_do_not_depend_on_which_others_are_listed():
    js = load_journeys(device_log().events)
    every = compare(js, by="device")
    assert len(every.differences) >= 3
    assert_frame_equal(compare(js, by="device", top=1).differences, every.differences.head(1))


def test_report_section_draws_the_heat_map_with_the_findings_outlined():
    from journeymodel.report.figure import rc_context
    from journeymodel.report.sections.compare import compare_section, main_steps

    found = compare(load_journeys(incident_log().events), by="period:7D")
    assert main_steps(found)[:2] == [("store", "conversion"), ("store", "dropoff")]
    with rc_context():
        section = compare_section(found)
    assert (section.id, section.title) == ("compare-period-7d", "What changed")
    assert [f.key for f in section.figures] == ["compare-period-7d-heat"]
    table = section.items[-1].frame
    assert list(table.index) == ["store -> conversion", "store -> dropoff"]
    assert table["when"].iloc[0] == "2025-03-03 to 2025-03-23"


def test_periods_of_months_and_days_have_their_labels():
    js = stationary(1)
    assert compare(js, by="period:1M").groups[:2] == ["2025-01", "2025-02"]
    days = load_journeys(stationary_events(1500, seed=1, days=60))
    assert compare(days, by="period:1D").groups[:2] == ["2025-01-01", "2025-01-02"]
    assert compare(days, by="period:12h").groups[:2] == ["2025-01-01T00:00", "2025-01-01T12:00"]


def test_plain_period_numbers_group_by_a_number_of_periods():
    events = stationary_events(1500, seed=1, days=182)
    minute = (events["timestamp"] - events["timestamp"].min()).dt.total_seconds() // 60 + 1
    js = load_journeys(events.assign(timestamp=minute.astype(int)), gap=str(30 * 1440))
    assert js.time_kind == "period"
    found = compare(js, by="period:10080")  # weeks of minutes
    assert found.groups[:3] == ["0", "10080", "20160"] and not len(found.differences)
    with pytest.raises(OptionError, match="'period:7D': the timestamps are plain period num"):
        compare(js, by="period:7D")
    with pytest.raises(OptionError, match="'period:7': give the period with a unit"):
        compare(stationary(0), by="period:7")


def test_order_two_names_windows():
    found = compare(stationary(0), by="device", order=2)
    assert found.cells["from"].str.contains(" > ").any()


# ---------------------------------------------------------------------------------------------
# User errors


@pytest.mark.parametrize(("by", "match"), [
    ("period:7X", "--by 'period:7X': the period must be a positive number"),
    ("period:", r"--by must be period:LENGTH .* \(got 'period:'\)"),
    ("weekday", r"\(got 'weekday'\)"),
    ("period:1.5M", "months must be whole"),
])
def test_bad_by_is_refused(by, match):
    with pytest.raises(OptionError, match=match):
        parse_by(by)


def test_unknown_column_one_group_and_missing_columns_are_refused():
    events = incident_log().events
    with pytest.raises(InputError, match="column 'acq' given by --by column:acq does not"):
        compare(events, by="column:acq")
    with pytest.raises(OptionError, match=r"at least two groups .* \(found 'researcher'\)"):
        compare(events, by="persona")
    with pytest.raises(OptionError, match="--by device needs a device column"):
        compare(events.drop(columns="device"), by="device")
    with pytest.raises(OptionError, match="column:acq: a column is read from the event log"):
        compare(load_journeys(events), by="column:acq")
    with pytest.raises(OptionError, match="needs timestamps"):
        compare(tiny(), by="period:7D")
    with pytest.raises(OptionError, match=r"--min-prob must be .* \(got 0.3\)"):
        compare(tiny(), by="persona", min_prob=0.3)


def test_a_column_groups_by_the_customers_value():
    events = incident_log().events.copy()
    first = events["customer_id"].str[-1].astype(int) % 2
    events["channel"] = np.where(first == 0, "paid", "organic")
    found = compare(events, by="column:channel")
    assert found.groups == ["organic", "paid"] and not len(found.differences)


# ---------------------------------------------------------------------------------------------
# The command


@pytest.fixture(scope="module")
def incident_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "incident.parquet"
    incident_log().events.to_parquet(path)
    return path


def test_cli_prints_the_finding_in_words_and_json(run_cli, incident_file):
    code, out, err = run_cli("compare", incident_file, "--by", "period:7D")
    assert code == 0, err
    assert "store -> conversion fell from 0.17 to 0.02 between 3 and 23 March 2025" in out
    assert "3-23 Mar 2025" in out and "Benjamini-Hochberg" in out
    code, out, _ = run_cli("compare", incident_file, "--by", "period:7D", "--json", "--top", "1")
    payload = json.loads(out)
    assert len(payload["differences"]) == 1
    assert payload["differences"][0]["start"] == "2025-03-03"


@pytest.mark.parametrize(("args", "match"), [
    (["--by", "period:7X"], "period:7X"),
    (["--by", "column:acq"], "column 'acq' given by --by column:acq"),
    (["--by", "persona"], "found 'researcher'"),
    (["--by", "device", "--order", "5"], r"--order must be 1, 2, 3 or 4 \(got '5'\)"),
    (["--by", "device", "--fdr", "2"], r"--fdr must be between 0 and 1 \(got 2.0\)"),
])
def test_cli_user_errors_exit_2_with_one_line(run_cli, incident_file, args, match):
    code, _, err = run_cli("compare", incident_file, *args)
    assert_one_error_line(code, err, match)


def test_cli_report_page_and_report_section(run_cli, incident_file, tmp_path):
    page = tmp_path / "changes.html"
    code, out, err = run_cli("compare", incident_file, "--by", "period:7D", "--report", page)
    assert code == 0, err
    text = page.read_text()
    assert 'id="compare-period-7d"' in text and "What changed" in text
    assert "store -&gt; conversion" in text
    code, _, err = run_cli("compare", incident_file, "--by", "device", "--report",
                           incident_file)
    assert_one_error_line(code, err, "--report .* is the input")


def test_report_command_gains_the_comparison_sections(run_cli, incident_file, tmp_path):
    from pathlib import Path

    model = Path(__file__).parent / "data" / "conversion.nc"
    out = tmp_path / "map.html"
    code, stdout, err = run_cli("report", model, "--events", incident_file, "--compare",
                                "period:7D", "--compare", "device", "-o", out, "--json")
    assert code == 0, err
    sections = json.loads(stdout)["sections"]
    assert "compare-period-7d" in sections and "compare-device" in sections
    assert sections.index("compare-device") < sections.index("data")
    code, _, err = run_cli("report", model, "--compare", "device", "-o", out)
    assert_one_error_line(code, err, "--compare needs the event log")
