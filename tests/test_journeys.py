"""Segmentation, sorting and censoring against hand-worked cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from journeymodel.data.journeys import OUTCOMES, journeys_from_codes, load_journeys
from journeymodel.errors import InputError, OptionError


def frame(rows, columns=("customer_id", "timestamp", "touchpoint")):
    return pd.DataFrame(rows, columns=list(columns))


def outcomes(js):
    return [OUTCOMES[o] for o in js.outcome]


def test_two_conversions_make_two_journeys_and_unsorted_input_is_sorted():
    # customer a converts twice; rows are shuffled on purpose
    df = frame([
        ("a", "2025-01-05", "conversion"),
        ("a", "2025-01-01", "email"),
        ("a", "2025-01-07", "web"),
        ("a", "2025-01-03", "web"),
        ("a", "2025-01-08", "conversion"),
    ])
    js = load_journeys(df)
    assert js.n_journeys == 2
    assert list(js.path_strings()) == ["email > web", "web"]
    assert outcomes(js) == ["conversion", "conversion"]
    # journey end is the outcome row's time; start the first touchpoint's
    day = 86400.0
    t0 = pd.Timestamp("2025-01-01", tz="UTC").value / 1e9
    np.testing.assert_allclose(js.start - t0, [0, 6 * day])
    np.testing.assert_allclose(js.end - t0, [4 * day, 7 * day])


def test_gap_cuts_a_journey_into_dropoff_then_censored():
    df = frame([
        ("b", "2025-01-01", "web"),
        ("b", "2025-01-02", "email"),
        ("b", "2025-03-01", "web"),  # 58 days later: new journey
        ("z", "2025-03-10", "call"),  # another customer keeps the data going to 03-10
    ])
    js = load_journeys(df)
    b = js.take(js.customer == list(js.customers).index("b"))
    assert list(b.path_strings()) == ["web > email", "web"]
    # first journey: quiet > 30 days before the data end -> dropoff; second: 9 days -> censored
    assert outcomes(b) == ["dropoff", "censored"]


def test_gap_none_never_cuts_and_gap_option_changes_cut():
    rows = [("b", "2025-01-01", "web"), ("b", "2025-01-03", "email"),
            ("b", "2025-01-20", "web"), ("b", "2025-01-21", "conversion")]
    assert load_journeys(frame(rows), gap="none").n_journeys == 1
    js = load_journeys(frame(rows), gap="7D")
    assert list(js.path_strings()) == ["web > email", "web"]
    assert outcomes(js) == ["dropoff", "conversion"]


def test_open_journey_at_data_end_is_censored_not_dropoff():
    df = frame([("c", "2025-05-01", "web"), ("d", "2025-05-20", "email")])
    assert outcomes(load_journeys(df)) == ["censored", "censored"]
    # with a later observation end the gap has passed: drop-off
    js = load_journeys(df, observed_until="2025-12-31")
    assert outcomes(js) == ["dropoff", "dropoff"]


def test_observed_until_drops_later_rows_into_the_ledger():
    df = frame([("c", "2025-05-01", "web"), ("c", "2025-06-20", "conversion")])
    js = load_journeys(df, observed_until="2025-06-01")
    assert js.ledger.dropped == {"after_observed_until": 1}
    assert js.ledger.rows_used == 1
    assert outcomes(js) == ["dropoff"]


def test_churn_ends_a_journey_and_repeated_touchpoints_are_kept():
    df = frame([("e", 1, "web"), ("e", 2, "web"), ("e", 3, "web"), ("e", 4, "churn"),
                ("e", 5, "email")])
    js = load_journeys(df)
    assert js.time_kind == "period" and js.gap is None
    assert list(js.path_strings()) == ["web > web > web", "email"]
    assert outcomes(js) == ["churn", "censored"]


def test_period_numbers_with_a_numeric_gap():
    df = frame([("e", 1, "web"), ("e", 2, "email"), ("e", 9, "web"), ("f", 20, "call")])
    js = load_journeys(df, gap="3")
    e = js.take(js.customer == 0)
    assert list(e.path_strings()) == ["web > email", "web"]
    assert outcomes(e) == ["dropoff", "dropoff"]
    with pytest.raises(OptionError, match="plain periods"):
        load_journeys(df, gap="30D")


def test_direct_conversion_is_an_empty_journey():
    js = load_journeys(frame([("a", 1, "web"), ("a", 2, "conversion"), ("a", 3, "conversion")]))
    assert js.lengths.tolist() == [1, 0]
    assert outcomes(js) == ["conversion", "conversion"]
    assert list(js.path_strings()) == ["web", ""]


def test_multiple_conversion_labels_and_custom_churn_label():
    df = frame([("a", 1, "web"), ("a", 2, "purchase"), ("b", 1, "web"), ("b", 2, "signup"),
                ("c", 1, "web"), ("c", 2, "cancel")])
    js = load_journeys(df, conversion_labels=("purchase", "signup"), churn_label="cancel")
    assert outcomes(js) == ["conversion", "conversion", "churn"]
    assert js.touchpoints == ("web",)
    with pytest.raises(OptionError, match="also a --conversion-label"):
        load_journeys(df, conversion_labels=("cancel",), churn_label="cancel")


def test_value_sums_per_journey_and_persona_is_per_customer():
    df = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b"],
        "timestamp": [1, 2, 3, 1],
        "touchpoint": ["web", "conversion", "web", "email"],
        "persona": ["p1", None, "p1", "p2"],
        "value": [None, 99.5, None, None],
    })
    js = load_journeys(df)
    assert js.value.tolist() == [99.5, 0.0, 0.0]
    assert [js.personas[p] for p in js.persona] == ["p1", "p1", "p2"]
    assert js.persona_customers() == {"p1": 1, "p2": 1}


def test_conflicting_personas_keep_the_first_and_are_noted():
    df = pd.DataFrame({"customer_id": ["a", "a"], "timestamp": [1, 2],
                       "touchpoint": ["web", "email"], "persona": ["p1", "p2"]})
    js = load_journeys(df)
    assert js.personas[js.persona[0]] == "p1"
    assert any("more than one persona" in n for n in js.ledger.notes)


def test_take_and_split_keep_events_aligned():
    js = journeys_from_codes([["a", "b"], ["c"], [], ["a", "a", "c"]],
                             ["conversion", "dropoff", "conversion", "censored"])
    sub = js.take(np.array([3, 0]))
    assert list(sub.path_strings()) == ["a > a > c", "a > b"]
    assert sub.offsets.tolist() == [0, 3, 5]
    train, test = js.split(0.5, seed=1)
    assert train.n_journeys + test.n_journeys == 4
    assert train.n_events + test.n_events == js.n_events


def test_path_keys_group_equal_paths():
    js = journeys_from_codes([["a", "b"], ["b", "a"], ["a", "b"], [], ["a"], ["a", "b", "a"]],
                             ["dropoff"] * 6)
    k = js.path_keys()
    assert k[0] == k[2]
    assert len(set(k.tolist())) == 5


def test_only_outcome_rows_is_an_error():
    with pytest.raises(InputError, match="no touchpoints"):
        load_journeys(frame([("a", 1, "conversion"), ("b", 1, "churn")]))


def test_channelattribution_path_table_is_weighted_not_expanded():
    pt = pd.DataFrame({"path": ["c1 > c2 > c3", "c1", "c2>c3", "c1 > c2 > c3"],
                       "total_conversions": [1, 0, 0, 2],
                       "total_null": [0, 1, 1, 3],
                       "total_conversion_value": [10.0, 0, 0, 50.0]})
    js = load_journeys(pt)
    assert js.time_kind == "none"
    assert js.n_journeys == 5  # 2 converting rows + 3 rows with nulls
    assert js.outcome_counts() == {"conversion": 3, "churn": 0, "dropoff": 5, "censored": 0}
    assert list(js.path_strings()) == ["c1 > c2 > c3", "c1 > c2 > c3", "c1", "c2 > c3",
                                       "c1 > c2 > c3"]
    assert js.weight.tolist() == [1, 2, 1, 1, 3]
    assert js.value.tolist() == [10.0, 25.0, 0, 0, 0]


def test_path_table_bad_rows_are_counted_or_raise_in_strict_mode():
    pt = pd.DataFrame({"path": ["a > b", "", "a > > b", "b"],
                       "total_conversions": ["1", "2", "0", "-1"], "total_null": [0, 1, 1, 1]})
    js = load_journeys(pt)
    assert js.ledger.dropped == {"bad_count": 1, "bad_path": 2}
    assert js.ledger.rows_used == 1
    with pytest.raises(InputError, match=r"row 2, column 'path'"):
        load_journeys(pt, strict=True)
