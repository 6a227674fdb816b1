"""Model files are untrusted input: every damage found on load is a ModelFileError naming the
file and what is wrong (library), one ``error:`` line and exit 2 (CLI), and nothing else is
printed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from journeymodel.errors import ModelFileError
from journeymodel.io.persist import load_model
from tests.conftest import assert_one_error_line
from tests.model_files import (
    TYPES,
    add_huge_variable,
    rewrite,
    set_attr,
    set_values,
    write_model_files,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_model_files(tmp_path_factory.mktemp("models"))


def _raises(path, match):
    with pytest.raises(ModelFileError, match=match) as info:
        load_model(path)
    assert str(path) in str(info.value)  # the message names the file
    return info


# -- valid files load --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TYPES)
def test_every_model_type_loads_and_passes(files, kind, capfd):
    model = load_model(files[kind])
    assert model.model_type == kind
    assert capfd.readouterr().err == ""


@pytest.mark.slow
def test_other_valid_layouts_load(tmp_path):
    """No false alarms: an order-2 Markov model, funnel stages, plain periods, without value,
    sentiment or device columns, pass the checks."""
    from journeymodel.data.datasets import make_demo_data
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.markov.model import MarkovJourneyModel
    from journeymodel.models.stages.model import StageModel

    events = make_demo_data(120, seed=3).events[["customer_id", "timestamp", "touchpoint"]]
    periods = events.assign(timestamp=events.groupby("customer_id").cumcount() + 1)
    cases = [(events, MarkovJourneyModel(order=2)),
             (events, StageModel(n_stages=2, restarts=1, topology="funnel")),
             (periods, MarkovJourneyModel(order=1))]
    for log, model in cases:
        back = load_model(model.fit(load_journeys(log)).save(tmp_path / "m.nc"))
        assert back.get_params() == model.get_params()


# -- JSON attributes ---------------------------------------------------------------------------


def test_ledger_of_the_wrong_json_type(files, tmp_path):
    bad = set_attr(files["markov"], tmp_path / "l.nc", "ledger", "[]")
    _raises(bad, r"attribute 'ledger' must be a JSON object \(got list\)")


def test_deeply_nested_params(files, tmp_path):
    bad = set_attr(files["stages"], tmp_path / "p.nc", "params", "[" * 100_000)
    _raises(bad, "attribute 'params' is nested too deeply")


@pytest.mark.parametrize("text, match", [
    ("{not json", r"attribute 'params' is not valid JSON"),
    ('{"order": 7}', r"bad parameters: order must be 1, 2, 3, 4 or 'auto' \(got 7\)"),
    ('{"order": 1, "shell": "rm -rf"}', r"'params' has unknown parameters \['shell'\]"),
    ('{"prior": {"a": 1}}', r"parameter 'prior' must be a number, text or a flat list"),
    ('{"prior": NaN}', r"parameter 'prior' must be finite"),
])
def test_bad_params(files, tmp_path, text, match):
    _raises(set_attr(files["markov"], tmp_path / "p.nc", "params", text), match)


def test_ledger_that_does_not_add_up(files, tmp_path):
    ledger = {"source": "x.csv", "rows_read": 10, "rows_used": 3, "rows_dropped": {"bad": 2}}
    bad = set_attr(files["markov"], tmp_path / "l.nc", "ledger", json.dumps(ledger))
    _raises(bad, r"'ledger' does not add up: read 10, used 3, dropped 2")


def test_journeys_with_a_negative_count(files, tmp_path):
    meta = json.loads(_attr(files["markov"], "journeys"))
    meta["n_events"] = -5
    bad = set_attr(files["markov"], tmp_path / "j.nc", "journeys", json.dumps(meta))
    _raises(bad, "'journeys': n_journeys and n_events must be >= 0")


def test_numeric_attribute_of_the_wrong_type(files, tmp_path):
    bad = set_attr(files["markov"], tmp_path / "o.nc", "order_", "one")
    _raises(bad, r"attribute 'order_' must be one integer")
    bad = set_attr(files["markov"], tmp_path / "t.nc", "journeymodel_model_type", 7)
    _raises(bad, "bad journeymodel_model_type attribute 7")
    bad = set_attr(files["markov"], tmp_path / "s.nc", "journeymodel_schema_version", "x")
    _raises(bad, "bad journeymodel_schema_version attribute 'x'")


# -- Markov ------------------------------------------------------------------------------------


def test_markov_nan_total_conversions(files, tmp_path):
    bad = set_attr(files["markov"], tmp_path / "n.nc", "total_conversions", np.nan)
    _raises(bad, r"attribute 'total_conversions' must be a finite number >= 0.0 \(got nan\)")


def test_markov_truncated_transitions(files, tmp_path):
    def cut(nodes, attrs):
        nodes["/"] = nodes["/"].isel(transition=slice(0, 5))

    bad = rewrite(files["markov"], tmp_path / "cut.nc", cut)
    _raises(bad, r"transition probabilities: rows must sum to 1 \(\d+ do not")


def test_markov_index_out_of_range(files, tmp_path):
    bad = set_values(files["markov"], tmp_path / "i.nc", "to_index", 10**6)
    _raises(bad, r"to_index must be in 0\.\.\d+ \(got 1000000\)")


def test_markov_probability_outside_unit_interval(files, tmp_path):
    bad = set_values(files["markov"], tmp_path / "p.nc", "p_conversion", 1.5)
    _raises(bad, r"p_conversion must be finite in \[0.0, 1.0\]; \d+ values are not "
                 r"\(first: 1.5")


def test_markov_arrays_of_different_lengths(files, tmp_path):
    def shorten(nodes, attrs):
        ds = nodes["/"]
        nodes["/"] = ds.assign(p_conversion=("short", ds["p_conversion"].values[:2]))

    bad = rewrite(files["markov"], tmp_path / "s.nc", shorten)
    _raises(bad, r"variable 'p_conversion' has dimensions \('short',\), expected \('state',\)")


@pytest.mark.parametrize("kind", ["markov", "stages"])
def test_holding_times_damaged(files, tmp_path, kind):
    """Issue 17: the holding group is checked on load (a CDF that does not rise to 1, pair
    indices out of range), naming the group."""
    bad = set_values(files[kind], tmp_path / "h.nc", "holding/cdf", 0.5)
    _raises(bad, "group 'holding': damaged holding times: every cdf row must rise from 0 to 1")
    bad = set_values(files[kind], tmp_path / "h2.nc", "holding/pair_src", 10**6)
    _raises(bad, "group 'holding': damaged holding times: pair_src / pair_dst out of range")


def test_markov_censored_counts_damaged(files, tmp_path):
    bad = set_values(files["markov"], tmp_path / "c.nc", "censored_to", 10**6)
    _raises(bad, r"censored_to must be in 0\.\.\d+ \(got 1000000\)")
    bad = set_values(files["markov"], tmp_path / "c2.nc", "censored_count", -1.0)
    _raises(bad, r"censored_count must be finite")


def test_files_without_holding_times_still_load(files, tmp_path):
    """Files written before issue 17 (no holding group, no censored counts) load, without
    holding times and with the old fit's chain."""
    def strip(nodes, attrs):
        nodes.pop("/holding")
        nodes["/"] = nodes["/"].drop_vars(["censored_from", "censored_to", "censored_count"])

    old = load_model(rewrite(files["markov"], tmp_path / "old.nc", strip))
    assert old.holding_ is None and len(old.censored_counts_.count) == 0
    assert old.expected_counts_ is old.counts_


def test_markov_experience_counts_below_zero(files, tmp_path):
    bad = set_values(files["markov"], tmp_path / "e.nc", "experience/tp_events", -1.0)
    _raises(bad, r"group 'experience': tp_events must be finite >= 0.0")


def test_experience_arrays_of_the_wrong_length(files, tmp_path):
    """Found by the corruption property test: the stages summary failed in pandas."""
    def shorten(nodes, attrs):
        ds = nodes["/experience"]
        nodes["/experience"] = ds.drop_vars("tp_mean").assign(
            tp_mean=("bad_dim", ds["tp_mean"].values[:-1]))

    bad = rewrite(files["stages"], tmp_path / "x.nc", shorten)
    _raises(bad, r"group 'experience': variable 'tp_mean' has dimensions \('bad_dim',\), "
                 r"expected \('channel',\)")



def test_repeated_labels_of_a_dimension(files, tmp_path):
    """Found by the corruption property test (300 examples): positions relabelled -1, -1, ...
    made the Markov summary fail in pandas (to_dict of a table with a repeated index)."""
    def relabel(nodes, attrs):
        ds = nodes["/experience"]
        nodes["/experience"] = ds.assign_coords(
            position=np.full(ds.sizes["position"], -1))

    bad = rewrite(files["markov"], tmp_path / "r.nc", relabel)
    _raises(bad, r"group 'experience': dimension 'position' repeats the label -1$")

# -- stages ------------------------------------------------------------------------------------


def test_stages_all_nan_transitions(files, tmp_path):
    bad = set_values(files["stages"], tmp_path / "n.nc", "transmat", np.nan)
    _raises(bad, r"damaged stages model file: transmat must be finite in \[0.0, 1.0\]")


def test_stages_negative_emissions(files, tmp_path):
    bad = set_values(files["stages"], tmp_path / "e.nc", "emissionprob", -1.0)
    _raises(bad, r"emissionprob must be finite in \[0.0, 1.0\]; \d+ values are not "
                 r"\(first: -1.0")


def test_stages_rows_not_summing_to_one(files, tmp_path):
    bad = set_values(files["stages"], tmp_path / "r.nc", "exitprob", 0.5)
    _raises(bad, r"exitprob: rows must sum to 1 \(3 do not; row 0 sums to 2.0\)")


def test_stages_fit_record_of_wrong_type(files, tmp_path):
    fit = json.loads(_attr(files["stages"], "fit"))
    fit["converged"] = "yes"
    bad = set_attr(files["stages"], tmp_path / "f.nc", "fit", json.dumps(fit))
    _raises(bad, r"attribute 'fit': 'converged' must be boolean \(got 'yes'\)")


# -- conversion and churn ----------------------------------------------------------------------


def test_conversion_more_conversions_than_trials(files, tmp_path):
    bad = set_values(files["conversion"], tmp_path / "c.nc", "conversions", 10**6)
    _raises(bad, "conversions must not exceed trials")


def test_conversion_nan_posterior(files, tmp_path):
    bad = set_values(files["conversion"], tmp_path / "c.nc", "posterior/mu", np.inf)
    _raises(bad, r"posterior mu must be finite")


def test_conversion_missing_group(files, tmp_path):
    def drop(nodes, attrs):
        del nodes["/sample_stats"]

    _raises(rewrite(files["conversion"], tmp_path / "g.nc", drop),
            "the 'sample_stats' group is missing")


def test_churn_negative_parameter(files, tmp_path):
    bad = set_values(files["churn"], tmp_path / "a.nc", "posterior/alpha", -2.0)
    _raises(bad, r"posterior alpha must be finite >= 0.0")


def test_churn_at_risk_persona_out_of_range(files, tmp_path):
    bad = set_values(files["churn"], tmp_path / "p.nc", "at_risk/cell_persona", 99)
    _raises(bad, r"group 'at_risk': cell_persona must be in 0\.\.2")


def test_churn_unknown_model_name(files, tmp_path):
    params = json.loads(_attr(files["churn"], "params"))
    params["model"] = "magic"
    bad = set_attr(files["churn"], tmp_path / "m.nc", "params", json.dumps(params))
    _raises(bad, "bad parameters: model must be one of sbg, weibull, bgnbd")


# -- sizes declared before reading, damaged bytes ----------------------------------------------


def test_huge_declared_variable_is_refused_before_reading(files, tmp_path):
    import resource

    bad = add_huge_variable(files["markov"], tmp_path / "bomb.nc")
    assert bad.stat().st_size < 200_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _raises(bad, r"variable 'bomb' declares 3,000,000,000 elements of float64 .* damaged or "
                 r"hostile file")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100


def test_bit_flips_never_print_and_never_escape(files, tmp_path, capfd):
    import os

    data = files["markov"].read_bytes()
    rng = np.random.default_rng(7)
    outcomes = set()
    open_before = len(os.listdir("/proc/self/fd"))
    for i in range(5):
        flipped = bytearray(data)
        pos = int(rng.integers(0, 4096))  # the HDF5 superblock and object headers
        flipped[pos] ^= 1 << int(rng.integers(8))
        path = tmp_path / f"flip{i}.nc"
        path.write_bytes(bytes(flipped))
        try:
            load_model(path)
            outcomes.add("loaded")
        except ModelFileError as exc:
            assert str(path) in str(exc)
            outcomes.add("refused")
    assert "refused" in outcomes
    assert capfd.readouterr().err == ""
    assert len(os.listdir("/proc/self/fd")) == open_before  # every file closed


def test_truncated_file(files, tmp_path):
    data = files["stages"].read_bytes()
    cut = tmp_path / "cut.nc"
    cut.write_bytes(data[: len(data) // 3])
    _raises(cut, "not a readable model file")


# -- through the CLI ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["inspect"], ["simulate", "-n", "5", "-o", "{tmp}/sim.csv"], ["pain-points"],
    ["predict", "{model}", "{events}"]])
def test_cli_refuses_a_damaged_stages_model(files, tmp_path, run_cli, command):
    bad = set_values(files["stages"], tmp_path / "bad.nc", "transmat", np.nan)
    args = [a.format(tmp=tmp_path, model=bad, events=files["events"]) for a in command]
    if "{model}" not in command:
        args.insert(1, str(bad))
    code, out, err = run_cli(*args)
    assert_one_error_line(code, err, r"bad\.nc: damaged stages model file: transmat must be "
                                     "finite")
    assert out == ""


def test_cli_attribute_on_a_truncated_markov_model(files, tmp_path, run_cli):
    def cut(nodes, attrs):
        nodes["/"] = nodes["/"].isel(transition=slice(0, 3))

    bad = rewrite(files["markov"], tmp_path / "cut.nc", cut)
    code, out, err = run_cli("attribute", bad, "--json")
    assert_one_error_line(code, err, "rows must sum to 1")
    assert out == ""


def test_cli_bomb_and_deep_json(files, tmp_path, run_cli):
    bomb = add_huge_variable(files["churn"], tmp_path / "bomb.nc")
    assert_one_error_line(*run_cli("inspect", bomb)[::2], "declares 3,000,000,000 elements")
    deep = set_attr(files["conversion"], tmp_path / "deep.nc", "params", "[" * 100_000)
    assert_one_error_line(*run_cli("inspect", deep)[::2], "nested too deeply")


# -- helpers -----------------------------------------------------------------------------------


def _attr(path, name):
    import h5py

    with h5py.File(path, "r") as f:
        return f.attrs[name]


def test_copy_of_a_valid_file_still_loads(files, tmp_path):
    copy = shutil.copy(files["churn"], tmp_path / "copy.nc")
    assert load_model(copy).model_type == "churn"
