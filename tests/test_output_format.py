"""Text output a person can read: money, durations, no scientific notation, names never cut."""

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from journeymodel.cli.output import print_frame, print_result

from journeymodel.io import formatting as fmt
from journeymodel.models.base import Result

SCI = re.compile(r"\d[eE][+-]?\d")


# ---------------------------------------------------------------------------------------------
# journeymodel.io.formatting


@pytest.mark.parametrize("value, text", [
    (26180.5512, "26,180.55"), (9633.0, "9,633.00"), (-1234567.891, "-1,234,567.89"),
    (0.5, "0.50"), (np.float64(167238.0), "167,238.00"), (float("nan"), "-"), (None, "-")])
def test_money(value, text):
    assert fmt.money(value) == text


@pytest.mark.parametrize("seconds, text", [
    (136671, "1.6 days"), (86400 * 45.2, "45.2 days"), (86400 * 400, "400 days"),
    (3600 * 5.2, "5.2 h"), (3600 * 1.2, "72.0 min"), (45, "45.0 s"), (2.5, "2.5 s"),
    (0.25, "0.25 s"), (float("nan"), "-")])
def test_duration_picks_a_unit(seconds, text):
    assert fmt.duration(seconds) == text


def test_duration_column_shares_one_unit():
    # 83,500 s alone would be 23.2 h; in a column of day-long dwells it is 0.97 days
    assert fmt.format_column([136671.0, 83500.0, float("nan")], "duration") == [
        "1.6 days", "0.97 days", "-"]


@pytest.mark.parametrize("value, text", [
    (4.80134, "4.801"), (0.27871, "0.2787"), (136671.2, "136,671"), (26180.5, "26,180"),
    (2618.4, "2,618"), (1652.0, "1,652"), (7.468e-06, "0.0000075"), (2.45e3, "2,450"),
    (0.3, "0.3"), (-0.33188, "-0.3319"), (1e-12, "0"), (float("inf"), "inf")])
def test_number_never_scientific(value, text):
    assert fmt.number(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_no_kind_prints_scientific_notation(x):
    for kind in fmt.KINDS:
        assert not SCI.search(fmt.cell(x, kind)), (x, kind)


@pytest.mark.parametrize("value, text", [(1652.0, "1,652"), (96.66, "96.7"), (3, "3")])
def test_count(value, text):
    assert fmt.count(value) == text


def test_probability():
    assert [fmt.probability(v) for v in (0.27871, 1.0, 0.0, 7.5e-06, 3.8e-08, -2e-05)] == [
        "0.279", "1.000", "0.000", "<0.001", "<0.001", ">-0.001"]


# ---------------------------------------------------------------------------------------------
# print_frame


def _print(capsys, frame, width=80, **kw):
    print_frame("T", frame, width=width, **kw)
    return capsys.readouterr().out


def _lines_fit(text, width):
    return all(len(line) <= width for line in text.splitlines())


def test_kinds_format_columns(capsys):
    frame = pd.DataFrame({"state": ["web", "store"], "value": [26180.5512, 9633.0],
                          "mean_dwell": [136671.0, 83500.0], "visits": [3946.0, 2170.0]})
    out = _print(capsys, frame, kinds={"mean_dwell": "duration", "visits": "count"})
    assert "26,180.55" in out and "9,633.00" in out  # "value" is money by its name
    assert "1.6 days" in out and "0.97 days" in out
    assert "3,946" in out and not SCI.search(out)


def test_all_missing_columns_are_left_out(capsys):
    frame = pd.DataFrame({"name": ["a", "b"], "low": [np.nan, np.nan], "x": [1.5, np.nan],
                          "empty": [None, None]})
    out = _print(capsys, frame)
    assert "low" not in out and "empty" not in out
    assert "x" in out and "-" in out  # one missing cell in a column with values stays


LONG = ["payment_page_checkout_step", "shipping_options_selection",
        "removal_confirmation_dialog", "support_chat_with_a_human_agent"]


def test_long_names_are_never_cut_at_80_columns(capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"name": [f"{a} > {b}" for a, b in zip(LONG, LONG[::-1],
                                                                 strict=True)],
                          "kind": ["transition"] * 4})
    for col in ("lost conversions", "interval_low", "passes", "drop_off_rate",
                "P(worse)", "conversion_value"):
        frame[col] = rng.random(4) * 1000
    out = _print(capsys, frame.set_index("name"))
    assert _lines_fit(out, 80)
    assert "…" not in out
    for a, b in zip(LONG, LONG[::-1], strict=True):
        assert f"{a} > {b}" in out  # whole, on one line
    assert "(continued)" in out  # too wide for one table: the rest follows, names repeated
    tables = out.count("┏")
    assert tables >= 2  # every table repeats the names
    assert out.count("payment_page_checkout_step > support_chat_with_a_human_agent") == tables


def test_numbers_are_never_cut(capsys):
    frame = pd.DataFrame({"channel": LONG, "value": [1234567.891, 2.0, 3.5, 4.25],
                          "share": [0.1, 0.2, 0.3, 0.4], "removal_effect": [0.5] * 4,
                          "conversions": [260.0, 222.2, 96.66, 1.0]})
    out = _print(capsys, frame, width=60, kinds={"conversions": "count"})
    assert _lines_fit(out, 60) and "…" not in out
    assert "1,234,567.89" in out and "222.2" in out and "96.7" in out
    for name in LONG:
        assert name in out


def test_narrow_text_columns_wrap_at_spaces_not_cut(capsys):
    frame = pd.DataFrame({"name": LONG, "94%": ["226.9 .. 288.2"] * 4, "lost": [1.5] * 4})
    out = _print(capsys, frame.set_index("name"), width=50, kinds={"94%": "text"})
    assert _lines_fit(out, 50) and "…" not in out
    assert "226.9" in out and "288.2" in out


def test_fits_unchanged_when_wide_enough(capsys):
    frame = pd.DataFrame({"touchpoint": ["web", "email"], "mean": [0.4198, 0.3164]})
    out = _print(capsys, frame, width=120)
    assert "(continued)" not in out
    assert re.search(r"│ web\s+│\s+0\.4198 │", out)


def test_print_result_uses_the_result_kinds(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    res = Result(json={}, tables=[("Money", pd.DataFrame({"channel": ["web"],
                                                          "amount": [26180.5512]}))],
                 kinds={"amount": "money"})
    print_result(res, as_json=False)
    assert "26,180.55" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# the HTML report's tables


def test_report_cells_never_scientific():
    from journeymodel.report.html import _cell

    assert [_cell(x) for x in (1.2e-05, 0.2787, 12.34, 9633.2, 5.0, float("nan"))] == [
        "0.000012", "0.279", "12.3", "9,633", "5", "-"]


def test_report_attribution_value_is_money():
    from journeymodel.data.journeys import journeys_from_codes
    from journeymodel.models.markov.model import MarkovJourneyModel
    from journeymodel.report.sections.markov import attribution_table

    js = journeys_from_codes([["c1", "c2", "c3"], ["c1"], ["c2", "c3"]],
                             ["conversion", "dropoff", "conversion"])
    js = dataclasses.replace(js, value=np.array([1234.5, 0.0, 20000.0]))  # revenue
    m = MarkovJourneyModel().fit(js)
    table = attribution_table(m.attribution("removal", n_draws=0), "markov")
    values = table.frame["value"].tolist()
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})*\.\d\d", v) for v in values), values


def test_plain_number_columns_share_their_decimals():
    """Numbers in one column line up: the decimals of the largest value's 4 significant digits
    (3.62 next to 3.706 read as different precision), whole columns stay whole, and a value the
    shared decimals would round to zero keeps its own digits."""
    assert fmt.format_column([4.801, 3.706, 3.62, float("nan")]) == [
        "4.801", "3.706", "3.620", "-"]
    assert fmt.format_column([0.3492, -0.3319, 0.02605]) == ["0.3492", "-0.3319", "0.0261"]
    assert fmt.format_column([1652.0, 96.0]) == ["1,652", "96"]
    assert fmt.format_column([7.468e-06, 0.3]) == ["0.0000075", "0.3000"]
    assert fmt.format_column(["(start)", 1.5]) == ["(start)", "1.500"]
