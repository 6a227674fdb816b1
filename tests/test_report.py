"""Journey-map report: page structure, embedded images, offline page, flows and paths checked
against hand-worked chains, any subset of models, CLI and demo step.

Markov and stage models are fitted for real on small demo data (fast). The Bayesian models
(conversion, churn) need a PyMC compile of ~10-30 s each, so their sections are tested in
``tests/test_report_bayes.py`` under ``@pytest.mark.slow``.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from journeymodel.data.journeys import journeys_from_codes
from journeymodel.errors import NotFittedError, OptionError
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.models.stages.model import StageModel
from journeymodel.report.build import build_report
from journeymodel.report.figure import png_size
from journeymodel.report.palette import OUTCOME_COLOURS, TOUCHPOINT_COLOURS, Palette
from tests.conftest import assert_one_error_line

# ---------------------------------------------------------------------------------------------
# Fixtures and page parsing


@pytest.fixture(scope="module")
def journeys():
    from journeymodel.data.datasets import make_demo_data
    from journeymodel.data.journeys import load_journeys

    return load_journeys(make_demo_data(300, seed=1).events)


@pytest.fixture(scope="module")
def markov(journeys):
    return MarkovJourneyModel(order=1).fit(journeys)


@pytest.fixture(scope="module")
def stages(journeys):
    return StageModel(n_stages=3, restarts=1, max_iter=100, seed=0).fit(journeys)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, markov, stages):
    folder = tmp_path_factory.mktemp("models")
    return markov.save(folder / "markov.nc"), stages.save(folder / "stages.nc")


class Page(HTMLParser):
    """Tags of a report page: section ids, images, figure ids, scripts, links, tables."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[dict[str, str]] = []
        self.figures: list[str] = []
        self.tags: list[str] = []
        self.tables: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(a["id"])
        elif tag == "img":
            self.images.append(a)
        elif tag == "figure":
            self.figures.append(a["id"])
        elif tag == "div" and a.get("class") == "table":
            self.tables.append(a["id"])


def decode_png(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    return base64.b64decode(src[len(prefix):], validate=True)


def assert_sane_image(data: bytes) -> None:
    """A real PNG of sane size with something drawn on it (not a blank canvas)."""
    import matplotlib.image

    width, height = png_size(data)
    assert 300 <= width <= 3000 and 100 <= height <= 3000, (width, height)
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].std() > 0.02  # not a single colour


def assert_offline(text: str) -> None:
    assert not re.search(r"https?://", text)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*//""", text)
    assert not re.search(r"<script|<link|@import|url\(|<iframe|<object|<embed", text, re.I)
    srcs = re.findall(r"""src\s*=\s*["']([^"']*)""", text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    hrefs = re.findall(r"""href\s*=\s*["']([^"']*)""", text)
    assert all(h.startswith("#") for h in hrefs)


def check_page(path: Path, sections: list[str]) -> Page:
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert page.sections == sections
    assert page.images and len(page.images) == len(page.figures)
    assert len(set(page.figures)) == len(page.figures)
    for img in page.images:
        assert img["alt"]
        data = decode_png(img["src"])
        assert_sane_image(data)
        assert (int(img["width"]), int(img["height"])) == png_size(data)
    assert_offline(text)
    assert text.count("<figcaption>") == len(page.images)
    return page


# ---------------------------------------------------------------------------------------------
# Pages for subsets of models


@pytest.fixture(scope="module")
def full(tmp_path_factory, markov, stages, journeys):
    """Two Markov models (orders 1 and 2), a stage model and the event log, with PNGs."""
    folder = tmp_path_factory.mktemp("full")
    second = MarkovJourneyModel(order=2).fit(journeys)
    report = build_report([markov, second, stages], folder / "map.html", png_dir=folder / "png",
                          events=journeys)
    return report, folder


def test_all_fast_models_with_events(full, markov, journeys):
    report, folder = full
    page = check_page(report.path, ["stages", "markov", "markov-2", "forecast", "forecast-2",
                                    "forecast-3", "pain", "data"])
    for sid in ("markov", "markov-2"):
        assert {f"fig-{sid}-{k}" for k in ("flow", "paths", "transitions", "attribution",
                                            "hotspots")} <= set(page.figures)
        assert f"table-{sid}-attribution-table" in page.tables
    assert {"fig-stages-map", "fig-stages-emotion", "fig-pain-gaps", "fig-pain-sentiment",
            "fig-data-outcomes", "fig-data-usage"} <= set(page.figures)
    assert {"table-stages-stages", "table-stages-transitions", "table-data-ledger",
            "table-data-journeys"} <= set(page.tables)
    text = report.path.read_text()
    assert "window of the last 2 touchpoints" in text
    assert "conversion rate (ended journeys)" in text  # a fact from the event log
    # the next 30 days of each model's journeys in flight, as forecast_in_flight gives them
    assert {"fig-forecast-daily", "fig-forecast-2-daily", "fig-forecast-3-daily"} <= set(
        page.figures)
    from journeymodel.analysis.forecast import forecast_in_flight

    expected = forecast_in_flight(markov, journeys, "30D", n_draws=200, seed=0).summary()
    assert f"{expected['in_flight']:,} journeys in flight" in text
    # every figure also written as PNG, byte for byte
    written = sorted(p.name for p in (folder / "png").iterdir())
    assert written == sorted(f"{f.key}.png" for f in report.figures)
    for fig in report.figures:
        assert (folder / "png" / f"{fig.key}.png").read_bytes() == fig.png


def test_captions_say_how_uncertain(full):
    captions = {f.key: f.caption for f in full[0].figures}
    assert "credible interval" in captions["markov-attribution"]
    assert "credible interval" in captions["markov-hotspots"]
    assert "no intervals" in captions["stages-map"]
    assert "0.5/sqrt(n+1)" in captions["markov-transitions"]
    assert "Observed counts" in captions["data-outcomes"]
    assert all(len(c) > 80 for c in captions.values())


def test_markov_alone(tmp_path, markov):
    report = build_report([markov], tmp_path / "map.html")
    page = check_page(report.path, ["markov", "pain", "data"])
    # five Markov figures, the gap chart and touchpoint sentiment, outcome mix and usage
    assert len(page.images) == 9


def test_stages_alone_is_deterministic(tmp_path, stages):
    a = build_report({"my stages": stages}, tmp_path / "a.html", title="Stages <only>")
    b = build_report({"my stages": stages}, tmp_path / "b.html", title="Stages <only>")
    text = a.path.read_text()
    assert text == b.path.read_text()
    page = check_page(a.path, ["stages", "pain", "data"])
    # a stage model stores no outcome counts: no data figures
    assert page.figures == ["fig-stages-map", "fig-stages-emotion", "fig-pain-gaps",
                            "fig-pain-sentiment"]
    assert "<title>Stages &lt;only&gt;</title>" in text  # escaped
    assert "my stages" in text


# ---------------------------------------------------------------------------------------------
# Library errors


def test_build_errors(tmp_path, markov):
    with pytest.raises(OptionError, match="at least one fitted model"):
        build_report([], tmp_path / "x.html")
    with pytest.raises(OptionError, match="journeymodel models .*got dict"):
        build_report([{}], tmp_path / "x.html")
    with pytest.raises(NotFittedError, match="not fitted"):
        build_report([MarkovJourneyModel()], tmp_path / "x.html")
    with pytest.raises(OptionError, match="folder .*missing.* does not exist"):
        build_report([markov], tmp_path / "missing" / "x.html")
    with pytest.raises(OptionError, match="is a folder"):
        build_report([markov], tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OptionError, match="--png-dir .* not a folder"):
        build_report([markov], tmp_path / "x.html", png_dir=tmp_path / "file")


# ---------------------------------------------------------------------------------------------
# Palette


def test_palette_consistent_and_distinct():
    a = Palette(["web", "email", "store"], ["b", "a"])
    b = Palette(["store", "web", "email", "web"], ["a", "b"])
    for tp in ("web", "email", "store"):
        assert a.touchpoint(tp) == b.touchpoint(tp)
    assert a.persona("a") == b.persona("a") != a.persona("b")
    many = Palette([f"t{i:02d}" for i in range(len(TOUCHPOINT_COLOURS))])
    colours = [many.touchpoint(t) for t in many.touchpoints]
    assert len(set(colours)) == len(colours)
    assert not set(colours) & set(OUTCOME_COLOURS.values())
    assert a.touchpoint("unknown") == a.touchpoint("(direct)")


# ---------------------------------------------------------------------------------------------
# Flows, paths and hot spots against hand-worked chains


@pytest.fixture(scope="module")
def tiny():
    js = journeys_from_codes([["a", "b"], ["a"], ["b"]], ["conversion", "dropoff", "dropoff"])
    return MarkovJourneyModel().fit(js)


def test_step_flows_hand_worked(tiny):
    from journeymodel.report.sections.markov import step_flows

    # start -> a 2/3, b 1/3; a -> b 1/2, a -> dropoff 1/2; b -> conversion 1/2, dropoff 1/2
    f = step_flows(tiny, steps=3)
    conv, drop = f["absorbing"].index("conversion"), f["absorbing"].index("dropoff")
    np.testing.assert_allclose(f["first"], [2 / 3, 1 / 3])
    np.testing.assert_allclose(f["between"][0], [[0, 1 / 3], [0, 0]])
    np.testing.assert_allclose(f["ended"][0][:, conv], [0, 1 / 6])
    np.testing.assert_allclose(f["ended"][0][:, drop], [1 / 3, 1 / 6])
    np.testing.assert_allclose(f["ended"][1][:, conv], [0, 1 / 6])
    np.testing.assert_allclose(f["ended"][2], 0)
    assert f["beyond"] == pytest.approx(0)
    np.testing.assert_allclose(f["direct"], 0)


def test_step_flows_conserve_mass(markov):
    from journeymodel.report.sections.markov import step_flows

    f = step_flows(markov, steps=6)
    assert f["first"].sum() + f["direct"].sum() == pytest.approx(1)
    mass = f["first"]
    for t in range(6):
        out = f["ended"][t].sum() + (f["between"][t].sum() if t < 5 else 0)
        if t < 5:
            assert mass.sum() == pytest.approx(out, abs=1e-12)
            np.testing.assert_allclose(f["between"][t].sum(1) + f["ended"][t].sum(1), mass,
                                       atol=1e-12)
            mass = f["between"][t].sum(0)
    assert f["beyond"] == pytest.approx(mass.sum() - f["ended"][5].sum(), abs=1e-12)
    # all journeys end: ended over many steps plus direct approaches P(absorption) = 1
    g = step_flows(markov, steps=200)
    total = g["ended"].sum(axis=(0, 1)) + g["direct"]
    np.testing.assert_allclose(total, markov.absorption_[0], atol=1e-6)


def test_top_paths_hand_worked(tiny):
    from journeymodel.report.sections.markov import top_paths

    found = top_paths(tiny, k=5)
    a, b = tiny.journeys_.touchpoints.index("a"), tiny.journeys_.touchpoints.index("b")
    conv = dict(found["conversion"])
    drop = dict(found["dropoff"])
    assert conv == pytest.approx({(a, b): 1 / 6, (b,): 1 / 6})
    assert drop == pytest.approx({(a,): 1 / 3, (b,): 1 / 6, (a, b): 1 / 6})


def test_top_paths_bounded_by_absorption(markov):
    from journeymodel.report.sections.markov import top_paths

    found = top_paths(markov, k=50)
    for j, name in enumerate(markov.chain_.absorbing):
        probs = [p for _, p in found[name]]
        assert probs == sorted(probs, reverse=True)
        assert sum(probs) <= markov.absorption_[0, j] + 1e-12
        assert len({path for path, _ in found[name]}) == len(probs)


def test_hotspots_are_the_pain_points_leaks(markov):
    """One definition of a leak: the report's hot spots are the state and transition leaks
    find_pain_points gives for the same model, item for item, interval for interval."""
    from journeymodel.analysis.painpoints import find_pain_points
    from journeymodel.report.sections.markov import hotspots

    states, moves = hotspots(markov, top=100)
    leaks = find_pain_points(markov, top=None, seed=0).leaks
    assert states == [i for i in leaks if i["kind"] == "state"]
    assert moves == [i for i in leaks if i["kind"] == "transition"]
    assert states and moves  # the demo data's planted leaks at store and call
    assert {"store", "call"} <= {i["name"] for i in states}
    top = hotspots(markov, top=1)
    assert top == (states[:1], moves[:1])
    # another interval mass, another interval, the same as find_pain_points at that mass
    wide = hotspots(markov, top=100, ci=0.5)[0]
    assert wide == [i for i in find_pain_points(markov, top=None, ci=0.5).leaks
                    if i["kind"] == "state"]


def test_hotspots_count_drop_offs_not_churn():
    """A state followed only by churns is no leak; one followed by drop-offs is, with the
    cost find_pain_points gives by hand: passes x (d - baseline) x P(convert | going on)."""
    from journeymodel.report.sections.markov import hotspots

    js = journeys_from_codes([["a", "c"]] * 4 + [["a"]] * 4 + [["b"]] * 6 + [["c"]] * 2,
                             ["conversion"] * 4 + ["churn"] * 4 + ["dropoff"] * 6
                             + ["conversion"] * 2)
    model = MarkovJourneyModel().fit(js)
    states, _ = hotspots(model)
    # passes: a 8 (4 churn), b 6 (6 drop-offs), c 6; drop-offs 6 of 20 passes
    assert [i["name"] for i in states] == ["b"]
    (b,) = states
    assert b["drop_rate"] == 1.0 and b["baseline"] == pytest.approx(6 / 20)
    assert b["journeys"] == 6
    # b never goes on: c falls back to the passes-weighted mean of the others (a 1/2, c 1)
    c = (0.5 * 8 + 1.0 * 6) / (8 + 6)
    # every pass of b dropped off: the observed rate 1 lies above the Jeffreys interval, so the
    # cost is taken at the interval's end (its upper end is just below 1)
    assert b["cost"] == pytest.approx(b["cost_high"])
    assert b["cost"] == pytest.approx(6 * (1 - 6 / 20) * c, rel=1e-3)


def test_hotspots_without_leaks(tmp_path, tiny):
    """No step is worse than average with P(worse) >= 90%: the figure says so, no empty axes."""
    from journeymodel.report.sections.markov import hotspots

    assert hotspots(tiny) == ([], [])
    report = build_report([tiny], tmp_path / "tiny.html")
    page = check_page(report.path, ["markov", "pain", "data"])
    assert "fig-markov-hotspots" in page.figures


def test_hotspots_of_a_model_file_without_experience_data(markov):
    """A model saved before pain points existed: its states ranked as find_pain_points ranks
    them, no transitions (they come from the experience data)."""
    import copy

    from journeymodel.report.sections.markov import hotspots

    old = copy.copy(markov)
    old.experience_ = None
    states, moves = hotspots(old, top=100)
    assert states == hotspots(markov, top=100)[0] and moves == []


def test_transition_counts_sum_to_observed(markov):
    from journeymodel.report.sections.markov import transition_counts

    M, rows, cols = transition_counts(markov)
    assert M.sum() == pytest.approx(markov.counts_.count.sum())
    assert rows[0] == "(start)" and cols[-len(markov.chain_.absorbing):] == list(
        markov.chain_.absorbing)


def test_stage_flows_match_simulation(stages):
    """Expected steps per journey and P(conversion) from the closed form agree with journeys
    simulated from the same model."""
    from journeymodel.report.sections.stages import stage_flows

    f = stage_flows(stages)
    sim = stages.simulate(20_000, seed=3)
    n = sim["customer_id"].nunique()
    outcome = sim["touchpoint"].isin(["conversion", "churn"])
    steps = (~outcome).sum() / n
    conv = (sim["touchpoint"] == "conversion").sum() / n
    assert conv == pytest.approx(f["ends"][0], abs=0.015)
    direct = stages.emissionprob_[:, -1] @ f["visits"]
    assert steps == pytest.approx(f["visits"].sum() - direct, rel=0.03)
    np.testing.assert_allclose(f["ends"].sum(), 1, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_report(run_cli, tmp_path, saved):
    out, png = tmp_path / "map.html", tmp_path / "png"
    code, stdout, err = run_cli("report", saved[1], "-o", out, "--png-dir", png,
                                "--title", "Wall map")
    assert code == 0, err
    assert f"wrote {out}" in " ".join(stdout.split())
    check_page(out, ["stages", "pain", "data"])
    assert "<title>Wall map</title>" in out.read_text()
    assert len(list(png.glob("*.png"))) == len(Page(out.read_text()).images)


def test_cli_report_json_with_events(run_cli, tmp_path, saved, journeys):
    from journeymodel.data.datasets import write_sample_events

    events = tmp_path / "events.parquet"
    write_sample_events(events, n_customers=300, seed=1)
    out = tmp_path / "map.html"
    code, stdout, err = run_cli("report", saved[1], "-o", out, "--events", events, "--json")
    assert code == 0, err
    payload = json.loads(stdout)
    assert payload["sections"] == ["stages", "forecast", "pain", "data"]
    assert payload["figures"] == ["stages-map", "stages-emotion", "forecast-daily", "pain-gaps",
                                  "pain-sentiment", "data-outcomes", "data-usage"]
    assert payload["png"] == []
    check_page(out, ["stages", "forecast", "pain", "data"])


def test_cli_errors(run_cli, tmp_path, saved):
    out = tmp_path / "map.html"
    assert_one_error_line(*run_cli("report", "-o", out)[::2], match="Missing argument")
    bogus = tmp_path / "notes.nc"
    bogus.write_text("not a model")
    assert_one_error_line(*run_cli("report", saved[0], bogus, "-o", out)[::2],
                          match="notes.nc: not a readable model file")
    assert_one_error_line(*run_cli("report", tmp_path / "nope.nc", "-o", out)[::2],
                          match="does not exist")
    assert_one_error_line(*run_cli("report", saved[0], "-o", tmp_path / "no" / "m.html")[::2],
                          match="folder .* does not exist")
    assert_one_error_line(*run_cli("report", saved[0], "-o", tmp_path)[::2],
                          match="directory|folder")
    assert not out.exists()


def test_demo_step(tmp_path, capsys, saved, journeys):
    import shutil

    from journeymodel.cli.cmd_report import DEMO_ORDER, demo_step

    from journeymodel.data.datasets import write_sample_events

    assert DEMO_ORDER == 90
    events = tmp_path / "events.parquet"
    write_sample_events(events, n_customers=300, seed=1)
    assert demo_step(events, tmp_path, 0) is None
    assert "nothing to draw" in capsys.readouterr().out
    shutil.copy(saved[1], tmp_path / saved[1].name)
    path = demo_step(events, tmp_path, 0)
    assert path == tmp_path / "journey-map.html"
    assert str(path.resolve()) in "".join(capsys.readouterr().out.split())
    page = check_page(path, ["stages", "forecast", "pain", "data"])
    assert "fig-data-outcomes" in page.figures


def test_help_is_quick_and_light():
    import subprocess
    import sys

    code = ("import sys; from journeymodel.cli import cmd_report; "
            "print(sorted(m for m in ('matplotlib', 'numpy', 'pandas', 'xarray') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_data_section_reads_what_the_models_remember(markov, journeys):
    """Outcome mix and touchpoint use come from what the model remembers of its journeys
    (``journeys_.outcome_counts``, ``experience_``): equal to the event log's own counts, and
    to the chain's absorbed journeys."""
    from journeymodel.report.sections.data import outcome_mixes, touchpoint_usage

    ((label, mix),) = outcome_mixes([("m", markov)])
    done = journeys.outcome_counts()
    assert label == "ended journeys (m)"
    assert mix == {k: done[k] for k in ("conversion", "dropoff", "churn") if done[k]}
    c = markov.counts_
    absorbed = {a: c.count[c.to_key == -1 - j].sum() for j, a in
                enumerate(markov.chain_.absorbing)}
    assert mix == pytest.approx({k: v for k, v in absorbed.items() if v})
    tps, personas, source = touchpoint_usage([("m", markov)])
    assert tps.to_dict() == journeys.touchpoint_counts()  # events, as describe counts them
    assert personas.empty and source == "the m model's training journeys"
    _, _, source = touchpoint_usage([("m", markov)], journeys)
    assert source == "the event log"



def test_outcome_mix_of_the_bayesian_models():
    """Conversion and churn models say what they counted (the data section draws it as is)."""
    from journeymodel.io.persist import load_model
    from journeymodel.report.sections.data import outcome_mixes

    data = Path(__file__).parent / "data"
    conv, churn = load_model(data / "conversion.nc"), load_model(data / "churn.nc")
    assert conv.outcome_mix() == ("journeys", {
        "conversion": conv.counts_.conversions.sum(),
        "no conversion": conv.counts_.trials.sum() - conv.counts_.conversions.sum(),
        "censored": conv.counts_.censored})
    what, mix = churn.outcome_mix()
    assert what == "customers" and churn.model == "sbg"
    assert mix == {"churn": churn.events_.sum(),
                   "still active": churn.customers_.sum() - churn.events_.sum()}
    bg = copy.copy(churn)
    bg.model = "bgnbd"  # repeat buyers among the customers, not churn
    assert set(bg.outcome_mix()[1]) == {"repeat purchase", "no repeat yet"}
    assert [label for label, _ in outcome_mixes([("c", conv), ("s", churn)])] == [
        "journeys (c)", "customers (s)"]

def test_data_section_without_remembered_counts(markov):
    """A model file saved before models remembered the outcome mix and the experience data
    gives no outcome row and no usage figure (nothing re-derived from the chain)."""
    import copy
    from dataclasses import replace

    from journeymodel.report.sections.data import outcome_mixes, touchpoint_usage

    old = copy.copy(markov)
    old.journeys_ = replace(markov.journeys_, outcome_counts=None)
    old.experience_ = None
    assert outcome_mixes([("old", old)]) == []
    assert touchpoint_usage([("old", old)]) is None


def test_data_facts_rate_is_describes(markov, journeys):
    from journeymodel.analysis.describe import describe_journeys
    from journeymodel.report.figure import rc_context
    from journeymodel.report.palette import palette_for
    from journeymodel.report.sections.data import data_section

    with rc_context():
        facts = dict(data_section([("m", markov)], palette_for([markov]), journeys).facts)
    rate = describe_journeys(journeys).json["conversion_rate_completed"]
    assert facts["conversion rate (ended journeys)"] == f"{rate:.1%}"


def test_report_times_outside_the_nanosecond_range():
    """The reader keeps dates from year 1 to 9999; the report prints them (pandas' seconds
    constructor refuses some floats near 2262 and everything before 1677)."""
    from journeymodel.report.sections.data import _when

    assert _when(10_413_792_000.0, "datetime") == "2300-01-01 00:00 UTC"
    assert _when(-11_676_096_000.0, "datetime") == "1600-01-01 00:00 UTC"


def test_conversion_section_draws_the_models_rates():
    """The forest plot's rates are the model's own table (``rates()``) and its pooled band the
    pooled rate of the model's summary: nothing recomputed in the report."""
    from pathlib import Path

    import pandas as pd

    from journeymodel.io.persist import load_model
    from journeymodel.report.sections.conversion import conversion_rates

    model = load_model(Path(__file__).parent / "data" / "conversion.nc")
    rates, pooled = conversion_rates(model)
    ref = model.rates()
    assert list(rates.index) == [str(v) for v in ref.index]
    pd.testing.assert_frame_equal(rates.reset_index(drop=True), ref.reset_index(drop=True))
    summary = model.summary().json["pooled_rate"]
    assert pooled == pytest.approx(summary, abs=5e-7)  # the summary rounds to 6 decimals


def test_conversion_section_splits_what_it_left_out():
    """The section says what the model left out as the model's own counts line does: journeys
    in flight and journeys started within the last gap, apart (tests/data/conversion.nc is the
    demo's conversion model, cut to 2 chains x 50 draws)."""
    from pathlib import Path

    from journeymodel.io.persist import load_model
    from journeymodel.report.palette import palette_for
    from journeymodel.report.sections.conversion import conversion_section

    model = load_model(Path(__file__).parent / "data" / "conversion.nc")
    facts = dict(conversion_section(model, "conversion.nc", palette_for([model])).facts)
    c = model.counts_
    assert facts["left out: in flight"] == f"{c.in_flight:,}"
    assert facts["left out: started within the last gap"] == f"{c.recent:,}"
    assert c.in_flight + c.recent == c.censored
