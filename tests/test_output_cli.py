"""What the table-printing commands show at 80 columns with long touchpoint names: every name
whole, no line wider than the terminal, money and durations with units, and one line that says
what each model counts."""

from __future__ import annotations

import re

import pytest

from journeymodel.io.formatting import money

WIDTH = 80
#: Demo touchpoints renamed to names as long as a real export's.
LONG = {"store": "payment_page_checkout", "call": "shipping_options_hotline",
        "support_chat": "removal_confirmation_chat", "reviews": "product_reviews_and_ratings",
        "search_ad": "paid_search_campaign_brand", "web": "website_product_detail_page"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from journeymodel.cli.app import main

    from journeymodel.data.datasets import make_demo_data

    folder = tmp_path_factory.mktemp("longnames")
    events = make_demo_data(300, seed=3).events
    events["touchpoint"] = events["touchpoint"].astype(str).replace(LONG)
    path = folder / "events.csv"
    events.to_csv(path, index=False)
    markov, stages = folder / "m.nc", folder / "s.nc"
    assert main(["fit", "markov", str(path), "-o", str(markov), "--json"]) == 0
    assert main(["fit", "stages", str(path), "-o", str(stages), "--stages", "3",
                 "--restarts", "1", "--max-iter", "60", "--json"]) == 0
    return path, markov, stages


@pytest.fixture
def narrow(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))

    def run(*args):
        code, out, err = run_cli(*args)
        assert code == 0, err
        return out

    return run


def assert_readable(out: str, names=()) -> None:
    too_wide = [line for line in out.splitlines() if len(line) > WIDTH and "│" in line]
    assert not too_wide, "\n".join(too_wide)
    assert "…" not in out  # nothing cut with an ellipsis
    in_tables = [line for line in out.splitlines() if "│" in line]
    assert not re.search(r"\d[eE][+-]\d", "".join(in_tables))  # no scientific notation
    for name in names:
        assert any(name in line for line in in_tables), name


def test_attribute(files, narrow):
    _, markov, _ = files
    out = narrow("attribute", markov, "--draws", "50")
    assert_readable(out, LONG.values())
    value = re.search(r"│ website_product_detail_page\s.*│\s+([\d,]+\.\d\d) │", out)
    assert value, out  # value as money: separators, two decimals
    out = narrow("attribute", markov, "--method", "linear")
    assert_readable(out, LONG.values())
    assert "low_94" not in out and "removal_effect" not in out  # no columns of "-"


def test_pain_points(files, narrow):
    _, markov, stages = files
    out = narrow("pain-points", markov, stages)
    assert_readable(out)
    leaks = out.split("Friction")[0]
    # the names the user needs, whole: at least one long-named step leaks
    assert any(name in leaks for name in LONG.values()), leaks
    assert out.count("counts (") == 2  # one line per model saying what it counts


def test_inspect_and_fit_markov(files, narrow, tmp_path):
    path, markov, _ = files
    out = narrow("inspect", markov)
    assert_readable(out, LONG.values())
    assert re.search(r"\d days? │|\d h │|\d min │", out)  # dwell with a unit
    assert "states" in out and "9 touchpoint states + (start)" in out
    line = [x for x in out.splitlines() if x.startswith("counts: ")]
    assert len(line) == 1 and "conversions of" in line[0] and "in-flight" in line[0]
    out = narrow("fit", "markov", path, "-o", tmp_path / "m.nc")
    assert_readable(out, LONG.values())


def test_inspect_and_fit_stages(files, narrow, tmp_path):
    path, _, stages = files
    out = narrow("inspect", stages)
    assert_readable(out, LONG.values())  # the emission profile lists every touchpoint
    assert len([x for x in out.splitlines() if x.startswith("counts: 3 stages")]) == 1
    out = narrow("fit", "stages", path, "-o", tmp_path / "s.nc", "--stages", "2",
                 "--restarts", "1", "--max-iter", "30")
    assert_readable(out, LONG.values())


def test_predict(files, narrow):
    path, markov, stages = files
    for model in (markov, stages):
        out = narrow("predict", model, path)
        assert_readable(out)


def test_markov_and_report_count_states_alike(files, monkeypatch):
    """Issue 13: the Markov model said 10 states and the report 9 (the start state)."""
    from journeymodel.io.persist import load_model
    from journeymodel.report.palette import palette_for
    from journeymodel.report.sections import markov as figures_markov
    from journeymodel.report.sections.markov import markov_section

    for figure in ("flow_figure", "paths_figure", "heatmap_figure", "attribution_figure",
                   "attribution_table", "hotspots_figure"):  # only the facts are compared
        monkeypatch.setattr(figures_markov, figure, lambda *a, **k: None)
    _, markov, _ = files
    model = load_model(markov)
    monkeypatch.setattr(model, "attribution", lambda *a, **k: None)
    overview = dict(model.summary().tables[0][1].itertuples(index=False))
    n = len(model.journeys_.touchpoints)
    assert overview["states"] == f"{n} touchpoint states + (start)" == model.state_count_text()
    assert model.summary().json["n_states"] == n + 1  # JSON: the chain's states, start included
    facts = dict(markov_section(model, "m.nc", palette_for([model])).facts)
    assert facts["states"] == overview["states"]
    assert overview["conversion value"] == money(model.total_value_)
