"""Every ``--json`` output is strict JSON: never NaN or Infinity (non-finite numbers are null)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from journeymodel.cli.output import print_json, strict_json

from tests.model_files import set_attr, write_model_files


def strict_loads(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity (Python's json accepts them)."""
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name} in the output")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null(capsys):
    payload = {"a": float("nan"), "b": [1.0, float("inf"), -float("inf")],
               "c": np.array([np.nan, 2.5]), "d": np.float64("nan"), "e": np.int64(3),
               "f": (np.bool_(True), Path("x/y.nc")), "g": {np.int64(1): np.float32("inf")},
               "h": {float("nan"): 1}}
    print_json(payload)
    back = strict_loads(capsys.readouterr().out)
    assert back == {"a": None, "b": [1.0, None, None], "c": [None, 2.5], "d": None, "e": 3,
                    "f": [True, "x/y.nc"], "g": {"1": None}, "h": {"nan": 1}}


def test_strict_json_keeps_finite_values_exactly():
    values = [0.1, 1e-300, -2.5e300, 7, True, None, "NaN"]
    assert strict_json(values) == values
    assert all(type(a) is type(b) for a, b in zip(strict_json(values), values, strict=True))


def test_unknown_objects_are_still_refused(capsys):
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        print_json({"x": object()})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_model_files(tmp_path_factory.mktemp("json_models"))


def _commands(files):
    ev = files["events"]
    return {
        "markov": [["inspect"], ["attribute"], ["pain-points"], ["predict", "{m}", ev]],
        "stages": [["inspect"], ["pain-points"], ["predict", "{m}", ev]],
        "conversion": [["inspect"], ["forecast", "--journeys", "100"]],
        "churn": [["inspect"], ["forecast", "--horizon", "3"]],
    }


@pytest.mark.parametrize("kind", ["markov", "stages", "conversion", "churn"])
def test_every_json_output_of_every_model_is_strict(files, kind, run_cli):
    for command in _commands(files)[kind]:
        args = [str(a).replace("{m}", str(files[kind])) for a in command]
        if "{m}" not in command:
            args.insert(1, str(files[kind]))
        code, out, err = run_cli(*args, "--json")
        assert code == 0, (args, err)
        assert isinstance(strict_loads(out), dict), args


def test_describe_json_is_strict(files, run_cli):
    code, out, err = run_cli("describe", files["events"], "--json")
    assert code == 0, err
    assert strict_loads(out)["rows_read"] > 0


def test_markov_mean_dwell_of_the_start_state_is_null(files, run_cli):
    """(start) has no dwell time: NaN inside the model, null in JSON (printed NaN before)."""
    code, out, _ = run_cli("inspect", files["markov"], "--json")
    assert code == 0
    assert "NaN" not in out
    text = json.dumps(strict_loads(out))
    assert "null" in text


def test_nan_total_conversions_never_reaches_json(files, tmp_path, run_cli):
    bad = set_attr(files["markov"], tmp_path / "nan.nc", "total_conversions", math.nan)
    code, out, err = run_cli("attribute", bad, "--json")
    assert code == 2 and out == ""
    assert "total_conversions" in err and "NaN" not in out
