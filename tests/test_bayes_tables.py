"""Printed results of the Bayesian models, for a person (issue 13, sections 1 and 4).

Posteriors are built by hand here (no sampling), so each case is exact and fast: a weakly
identified churn parameter whose mean lies far outside its HDI, a crossed conversion model,
the remedies of a failed convergence check.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymodel.fit import bayes
from journeymodel.fit.bayes import Diagnostics
from journeymodel.fit.intervals import hdi
from journeymodel.models.churn.model import ChurnModel
from journeymodel.models.conversion.model import ConversionModel
from journeymodel.stats.conversion import ConversionCounts

INTERVAL = re.compile(r"^(-?[\d,.]+) \[(-?[\d,.]+), (-?[\d,.]+)\]$")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _meta(personas=(), gap=None):
    from journeymodel.models.base import JourneyMeta

    return JourneyMeta(touchpoints=("app", "email"), personas=tuple(personas), devices=(),
                       time_kind="datetime", gap=gap, observed_until=1e9, n_journeys=5510,
                       n_events=20000)


def _posterior(values: dict[str, np.ndarray], coords: dict | None = None,
               dims: dict[str, tuple[str, ...]] | None = None) -> xr.DataTree:
    """A posterior DataTree from arrays of shape (chain, draw, ...); extra dims ``persona``
    (then ``first_touchpoint``) unless ``dims`` names them."""
    data = {}
    for name, arr in values.items():
        extra = (dims or {}).get(name, ("persona", "first_touchpoint")[: arr.ndim - 2])
        data[name] = (("chain", "draw", *extra), arr)
    post = xr.Dataset(data, coords=coords or {})
    chains, draws = next(iter(values.values())).shape[:2]
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))})
    return xr.DataTree.from_dict({"/posterior": post, "/sample_stats": stats})


@pytest.fixture
def skewed_sbg():
    """Two personas: ``bold`` has alpha, beta pinned down; ``vague`` does not: 4% of its alpha
    draws wander to ~30,000 (as a concentration the data bound from below only does), which
    puts the mean of alpha far above its HDI; its beta is in the thousands."""
    rng = np.random.default_rng(4)
    shape = (2, 2000)
    wander = rng.random(shape) < 0.04
    vague_alpha = np.where(wander, np.exp(rng.normal(10.0, 1.0, shape)),
                           np.exp(rng.normal(0.0, 1.0, shape)))
    alpha = np.stack([rng.normal(0.7, 0.02, shape), vague_alpha], -1)
    beta = np.stack([rng.normal(1.2, 0.03, shape), np.exp(rng.normal(7.5, 1.0, shape))], -1)
    model = ChurnModel("sbg")
    model.posterior_ = _posterior({"alpha": alpha, "beta": beta},
                                  {"persona": ["bold", "vague"]})
    model.personas_ = ("bold", "vague")
    model.customers_ = np.array([1500, 12], np.int64)
    model.events_ = np.array([900, 3], np.int64)
    model.cells_ = {"cell_persona": np.array([0]), "cell_age": np.array([1.0]),
                    "cell_count": np.array([1])}
    model.info_ = {"time_unit": "M", "origin": "first_conversion", "notes": [],
                   "sampler": "nutpie", "compile_seconds": 1.0, "sample_seconds": 2.0}
    model.diagnostics_ = Diagnostics(r_hat_max=1.001, ess_bulk_min=900, divergences=0,
                                     chains=2, draws=2000)
    model.journeys_ = _meta(model.personas_)
    return model


def test_churn_parameters_show_the_median_inside_its_hdi(skewed_sbg):
    res = skewed_sbg.summary()
    cell = res.json["personas"]["vague"]["params"]["alpha"]
    assert cell["mean"] > cell["hdi_high"]  # the trap of the old table
    assert cell["hdi_low"] <= cell["median"] <= cell["hdi_high"]
    title, table = res.tables[-1]
    assert title.startswith("Model parameters sbg per persona (median [94% HDI])")
    for persona in ("bold", "vague"):
        for name in ("alpha", "beta"):
            text = table.loc[persona, name]
            assert "e+" not in text and "e-" not in text, text
            mid, low, high = (_number(g) for g in INTERVAL.match(text).groups())
            assert low <= mid <= high, text
    high = res.json["personas"]["vague"]["params"]["beta"]["hdi_high"]
    assert high > 1000 and f"{high:,.0f}" in table.loc["vague", "beta"]  # separators


def test_churn_summary_leads_with_key_figures_and_names_weak_parameters(skewed_sbg):
    res = skewed_sbg.summary()
    titles = [t for t, _ in res.tables]
    assert titles[0].startswith("Key figures per persona")
    assert titles[1].startswith("Retention")
    key = res.tables[0][1]
    assert list(key.columns) == ["churn at first renewal", "retention after 12 M"]
    a, b = (skewed_sbg.draws_of(n)[:, 0] for n in ("alpha", "beta"))
    mid = _number(INTERVAL.match(key.loc["bold", "churn at first renewal"]).group(1))
    assert mid == pytest.approx(np.median(a / (a + b)), abs=6e-4)
    assert res.json["weakly_identified"] == {"alpha": ["vague"], "beta": ["vague"]}
    weak = [n for n in res.notes if n.startswith("weakly identified")]
    assert len(weak) == 1 and "alpha (vague); beta (vague)" in weak[0]
    assert "key figures" in weak[0]
    assert res.kinds["customers"] == "count" and res.kinds["alpha"] == "text"


def test_well_identified_parameters_get_no_weak_note(skewed_sbg):
    skewed_sbg.posterior_ = _posterior(
        {n: skewed_sbg.draws_of(n)[:, :1].reshape(2, 2000, 1) for n in ("alpha", "beta")},
        {"persona": ["bold"]})
    skewed_sbg.personas_ = ("bold",)
    skewed_sbg.customers_, skewed_sbg.events_ = np.array([1500]), np.array([900])
    res = skewed_sbg.summary()
    assert res.json["weakly_identified"] == {}
    assert not [n for n in res.notes if n.startswith("weakly")]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.1, 4.0), st.integers(20, 400))
def test_median_always_inside_the_hdi(seed, spread, n):
    """Any interval holding 94% of the draws holds their median (each tail has < 50%)."""
    rng = np.random.default_rng(seed)
    draws = np.exp(rng.normal(0.0, spread, size=(1, n, 3)))
    low, high = hdi(draws.reshape(n, 3), 0.94)
    med = np.median(draws.reshape(n, 3), axis=0)
    assert (low <= med).all() and (med <= high).all()
    da = xr.DataArray(draws, dims=("chain", "draw", "persona"))
    iv = bayes.interval(da)
    assert (iv["hdi_low"] <= iv["median"]).all() and (iv["median"] <= iv["hdi_high"]).all()


# -- conversion ------------------------------------------------------------------------------


@pytest.fixture
def crossed():
    """A crossed conversion model (persona x first touchpoint) with a hand-made posterior."""
    rng = np.random.default_rng(2)
    counts = ConversionCounts(("persona", "first_touchpoint"),
                              (("bargain_hunter", "loyalist"), ("app", "email")),
                              np.array([[1200, 300], [2000, 1012]]),
                              np.array([[400, 60], [700, 311]]), censored=998, recent=219)
    shape = (2, 500)
    model = ConversionModel(by=["persona", "first_touchpoint"])
    model.posterior_ = _posterior({
        "mu": rng.normal(-1, 0.05, shape), "logit_levels": rng.normal(-1, 0.05, (*shape, 2)),
        "effect_second": rng.normal(0, 0.05, (*shape, 2)),
        "effect_cells": rng.normal(0, 0.05, (*shape, 2, 2))},
        {"persona": ["bargain_hunter", "loyalist"], "first_touchpoint": ["app", "email"]},
        {"effect_second": ("first_touchpoint",)})
    model.counts_ = counts
    model.diagnostics_ = Diagnostics(r_hat_max=1.002, ess_bulk_min=800, divergences=0,
                                     chains=2, draws=500)
    model.parameterization_ = {"levels": "centered", "second": "centered",
                               "cells": "non-centered"}
    model.timing_ = {"sampler": "nutpie", "compile_seconds": 1.0, "sample_seconds": 1.0}
    model.journeys_ = _meta(("bargain_hunter", "loyalist"), gap=30 * 86400.0)
    return model


def test_crossed_rows_are_labelled_for_people_not_as_tuples(crossed):
    res = crossed.summary()
    title, cells = res.tables[-1]
    assert cells.index.name == "persona / first_touchpoint"
    assert list(cells.index) == ["bargain_hunter / app", "bargain_hunter / email",
                                 "loyalist / app", "loyalist / email"]
    assert "(" not in "".join(cells.index)
    assert list(cells.columns) == ["journeys", "conversions", "observed", "rate", "hdi_low",
                                   "hdi_high"]
    assert ((cells["hdi_low"] <= cells["rate"]) & (cells["rate"] <= cells["hdi_high"])).all()
    assert "posterior median" in title
    assert res.kinds["rate"] == "probability" and res.kinds["journeys"] == "count"


def test_conversion_says_what_it_counts(crossed):
    line = crossed.counts_line()
    assert line == ("counts: 1,471 conversions in 4,512 journeys whose outcome is known; left "
                    "out 998: 779 in flight and 219 that started within the last 30 days (only "
                    "a conversion could be known for them yet)")
    assert crossed.summary().notes[0] == line
    js = crossed.summary().json["counted"]
    assert js == {"journeys": 4512, "conversions": 1471, "left_out_in_flight": 779,
                  "left_out_started_within_gap": 219}


def test_counts_line_without_a_gap_or_anything_left_out(crossed):
    from dataclasses import replace

    crossed.journeys_ = replace(crossed.journeys_, gap=None)
    assert crossed.counts_line().endswith("; left out 998 in flight")
    crossed.counts_ = replace(crossed.counts_, censored=0, recent=0)
    assert crossed.counts_line() == ("counts: 1,471 conversions in 4,512 journeys whose "
                                     "outcome is known")


# -- remedies ----------------------------------------------------------------------------------


def _diag(r_hat=1.0, ess=1000.0, div=0):
    return Diagnostics(r_hat_max=r_hat, ess_bulk_min=ess, divergences=div, chains=4, draws=1000)


def test_remedies_follow_the_settings_used():
    assert bayes.remedies(_diag(r_hat=1.02), draws=1000, tune=1000, chains=4,
                          target_accept=0.8) == [
        "run longer: --draws 2000 --tune 2000 (this fit: 1000 and 1000)"]
    assert bayes.remedies(_diag(ess=100), draws=300, tune=300, chains=2,
                          target_accept=0.8) == [
        "run longer: --draws 600 --tune 1000 (this fit: 300 and 300)",
        "run 4 chains (--chains 4; this fit: 2) so R-hat can detect poor mixing"]
    assert bayes.remedies(_diag(div=3), draws=1000, tune=1000, chains=4, target_accept=0.8,
                          extra=["merge small personas"]) == [
        "take smaller steps: --target-accept 0.95 (this fit: 0.8)", "merge small personas"]
    assert bayes.remedies(_diag(div=3), draws=1000, tune=1000, chains=4,
                          target_accept=0.95) == [
        "take smaller steps: --target-accept 0.99 (this fit: 0.95)"]
    assert bayes.remedies(_diag(div=3), draws=1000, tune=1000, chains=4,
                          target_accept=0.99) == []


def test_convergence_warning_never_advises_the_default_chains():
    import warnings

    from journeymodel.errors import ConvergenceWarning

    advice = bayes.remedies(_diag(r_hat=1.05), draws=1000, tune=1000, chains=4,
                            target_accept=0.8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bayes.check_convergence(_diag(r_hat=1.05), what="churn model", remedies=advice)
    message = str(caught[0].message)
    assert caught[0].category is ConvergenceWarning
    assert "chains" not in message and "--draws 2000 --tune 2000" in message


@pytest.mark.parametrize("command", [["conversion"], ["churn", "--model", "bgnbd"]])
@pytest.mark.parametrize("value", ["1.5", "0"])
def test_cli_target_accept_out_of_range(command, value, tmp_path, run_cli):
    from conftest import assert_one_error_line

    events = tmp_path / "ev.csv"
    events.write_text("customer_id,timestamp,touchpoint\nc1,2024-01-01,web\n")
    code, _, err = run_cli("fit", *command, events, "-o", tmp_path / "m.nc",
                           "--target-accept", value)
    assert_one_error_line(code, err, r"--target-accept must be between 0 and 1")


def test_bgnbd_takes_smaller_steps_where_the_data_are_weak():
    """0.95 on data that identify a pooled coordinate weakly (2 divergences at 0.8 on the
    500-customer sample data), 0.8 where every coordinate is identified."""
    from journeymodel.models.churn.model import default_target_accept

    assert default_target_accept("bgnbd", frozenset({"log_concentration"})) == 0.95
    assert default_target_accept("bgnbd", frozenset()) == 0.8
    assert default_target_accept("weibull", frozenset({"log_shape"})) == 0.8
    assert default_target_accept("sbg", frozenset()) == 0.98
