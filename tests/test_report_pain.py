"""The emotion curve and the pain-point section of the journey-map report.

On demo data with its planted problems (a leak in the purchase stage at store and call,
friction at support_chat and in the loyalty stage, a mobile -> desktop device gap): the emotion
curve runs under the stage columns of the map, the pain-point tables list the planted problems,
the gap chart is drawn; without sentiment or device, and with model files saved before the
experience data existed, the parts that have nothing to show are left out (no empty axes) and
nothing fails. Pages are checked with the helpers of ``tests/test_report.py``.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from journeymodel.analysis.painpoints import find_pain_points
from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.models.stages.model import StageModel
from journeymodel.report.build import build_report
from journeymodel.report.figure import Figure, Table, rc_context
from journeymodel.report.palette import Palette, palette_for
from tests.test_report import Page, check_page

# ---------------------------------------------------------------------------------------------
# Fixtures: demo data with the planted problems, and the same kind of data without sentiment
# and device


@pytest.fixture(scope="module")
def demo():
    from journeymodel.data.datasets import make_demo_data

    return load_journeys(make_demo_data(1500, seed=0).events)


@pytest.fixture(scope="module")
def markov(demo):
    return MarkovJourneyModel(order=1).fit(demo)


@pytest.fixture(scope="module")
def stages(demo):
    return StageModel(n_stages=4, restarts=1, seed=0).fit(demo)


@pytest.fixture(scope="module")
def plain():
    """Markov and stage models of a log without sentiment and device columns."""
    from journeymodel.data.datasets import make_demo_data

    events = make_demo_data(400, seed=2).events.drop(columns=["sentiment", "device"])
    js = load_journeys(events)
    assert js.sentiment is None and js.device is None
    return (MarkovJourneyModel(order=1).fit(js),
            StageModel(n_stages=3, restarts=1, max_iter=100, seed=0).fit(js))


@pytest.fixture(scope="module")
def full(tmp_path_factory, markov, stages):
    folder = tmp_path_factory.mktemp("pain")
    report = build_report([markov, stages], folder / "map.html", png_dir=folder / "png")
    return report, folder


def old_file(model):
    """``model`` as loaded from a file saved before the experience data existed."""
    old = copy.copy(model)
    old.experience_ = None
    return old


def items(section, cls):
    return {item.key: item for item in section.items if isinstance(item, cls)}


def pain_section_of(named):
    from journeymodel.report.sections.pain import pain_section

    with rc_context():
        return pain_section(named, palette_for([m for _, m in named]))


# ---------------------------------------------------------------------------------------------
# With sentiment and device


def test_sections_figures_and_tables(full):
    report, folder = full
    page = check_page(report.path, ["stages", "markov", "pain", "data"])
    assert {"fig-stages-map", "fig-stages-emotion", "fig-pain-gaps",
            "fig-pain-sentiment"} <= set(page.figures)
    assert page.figures.index("fig-stages-emotion") == page.figures.index("fig-stages-map") + 1
    assert {"table-pain-leaks", "table-pain-friction", "table-pain-switches"} <= set(
        page.tables)
    text = report.path.read_text()
    assert '<a href="#pain">Pain points: what to fix</a>' in text
    for fig in report.figures:  # every figure also as PNG, byte for byte
        assert (folder / "png" / f"{fig.key}.png").read_bytes() == fig.png
    captions = {f.key: f.caption for f in report.figures}
    assert "94% interval" in captions["stages-map"] and "no intervals" in captions["stages-map"]
    assert "scored events" in captions["stages-emotion"]
    assert "posterior probability" in captions["pain-gaps"]
    assert "friction" in captions["pain-sentiment"]
    texts = list(captions.values()) + [t.caption + t.title for s in report.sections
                                       for t in s.items if isinstance(t, Table)]
    assert not [t for t in texts if "{" in t or "}" in t]  # every template filled in


def test_tables_list_the_planted_problems(markov, stages):
    from journeymodel.report.sections.stages import journey_order

    section = pain_section_of([("markov", markov), ("stages", stages)])
    tables = items(section, Table)
    leaks, friction, gaps = (tables[f"pain-{k}"].frame for k in ("leaks", "friction",
                                                                  "switches"))
    # the leaking purchase stage (typical touchpoints store and call) and both its touchpoints
    leak_stage = [n for n, k in zip(leaks.index, leaks["kind"], strict=True) if k == "stage"]
    assert leak_stage and {"store", "call"} <= set(leak_stage[0].split("(")[1].rstrip(")")
                                                   .split(", "))
    assert {"store", "call"} <= {n for n, k in zip(leaks.index, leaks["kind"], strict=True)
                                 if k == "state"}
    # friction: support_chat first, and the loyalty stage (last in journey order)
    assert friction.index[0] == "support_chat" and friction["kind"].iloc[0] == "touchpoint"
    loyalty = stages.stage_names_[journey_order(stages)[-1]]
    assert loyalty in [n for n, k in zip(friction.index, friction["kind"], strict=True)
                       if k == "stage"]
    # the device gap heads the switches
    assert gaps.index[0] == "mobile → desktop" and gaps["kind"].iloc[0] == "device"
    # numbers as find_pain_points ranks them, at most five per kind
    found = find_pain_points([markov, stages], top=5, seed=0)
    assert len(leaks) == len(found.leaks) <= 5
    assert leaks["conversions lost"].tolist() == [f"{i['cost']:,.1f}" for i in found.leaks]
    assert friction["below average"].tolist() == [f"{i['cost']:.2f}" for i in found.friction]
    assert gaps["94% interval"].tolist() == [
        f"{i['cost_low']:,.1f} to {i['cost_high']:,.1f}" for i in found.gaps]
    top = found.gaps[0]
    assert gaps["drop-off after the switch"].iloc[0] == f"{top['drop_rate']:.1%}"
    assert gaps["switches"].iloc[0] == f"{top['journeys']:,.0f}"
    # facts name the worst of each kind
    facts = dict(section.facts)
    assert facts["biggest gap"].startswith("mobile > desktop")
    assert facts["worst friction"].startswith("support_chat")
    figures = items(section, Figure)
    assert list(figures) == ["pain-gaps", "pain-sentiment"]


def test_emotion_curve_lines_up_under_the_stage_columns(stages):
    from matplotlib.collections import PathCollection

    from journeymodel.report.sections.emotion import sentiment_of
    from journeymodel.report.sections.stages import draw_map, journey_order, stage_flows

    exp = sentiment_of(stages)
    order = journey_order(stages)
    K = len(order)
    with rc_context():
        fig, caption = draw_map(stages, stage_flows(stages), Palette(stages.symbols_), exp)
        fig.canvas.draw()
        bare, _ = draw_map(stages, stage_flows(stages), Palette(stages.symbols_), None)
    assert len(bare.axes) == 3 and len(fig.axes) == 4
    flows_ax, _, outcomes, emotion = fig.axes
    for ax in fig.axes[1:]:  # same horizontal extent and data range: column k at x = k
        assert ax.get_position().x0 == pytest.approx(flows_ax.get_position().x0, abs=1e-9)
        assert ax.get_position().x1 == pytest.approx(flows_ax.get_position().x1, abs=1e-9)
        assert ax.get_xlim() == pytest.approx(flows_ax.get_xlim())
    assert emotion.get_position().y1 < outcomes.get_position().y0  # under the outcome bars
    # one point per stage at its column, at the stage's mean sentiment (journey order)
    points = np.vstack([c.get_offsets() for c in emotion.collections
                        if isinstance(c, PathCollection)])
    np.testing.assert_allclose(points[:, 0], np.arange(K))
    np.testing.assert_allclose(points[:, 1], exp["stage_mean"].values[order])
    # bar groups of the outcomes share the columns (the middle bar of each group at x = k)
    groups = [[p.get_x() + p.get_width() / 2 for p in bars] for bars in outcomes.containers]
    assert len(groups) == 3
    np.testing.assert_allclose(np.mean(groups, axis=0), np.arange(K), atol=1e-12)
    labels = [t.get_text() for t in emotion.texts]
    for k in order:
        assert f"{exp['stage_scored'].values[k]:,.0f} scored events" in labels
        assert any(t.startswith(f"{exp['stage_mean'].values[k]:+.2f}") for t in labels)
    assert any("friction" in t for t in labels)  # the loyalty stage
    assert [t.get_text() for t in emotion.get_xticklabels()] == [
        stages.stage_names_[k].split(": ")[0] for k in order]
    assert "Bottom, the emotion curve" in caption


def test_stage_table_gains_sentiment(full, stages):
    from journeymodel.report.sections.emotion import interval_text
    from journeymodel.report.sections.stages import journey_order

    section = full[0].sections[0]
    frame = items(section, Table)["stages-stages"].frame
    exp = stages.experience_
    expected = [interval_text(*(exp[f"stage_{q}"].values[k] for q in ("mean", "low", "high")),
                              signed=True) for k in journey_order(stages)]
    assert frame["sentiment"].tolist() == expected
    assert all(s.count("[") == 1 for s in expected)
    assert dict(section.facts)["average sentiment (-1..1)"] == (
        f"{exp.attrs['sentiment_mean']:+.2f}")


# ---------------------------------------------------------------------------------------------
# Without sentiment, device, gaps, or experience data


def test_without_sentiment_and_device(tmp_path, plain):
    markov, stages = plain
    report = build_report([stages], tmp_path / "map.html")
    page = check_page(report.path, ["stages", "pain", "data"])
    assert "fig-stages-emotion" not in page.figures
    assert "fig-pain-sentiment" not in page.figures
    assert "table-pain-friction" not in page.tables
    assert "table-pain-leaks" in page.tables
    stages_section, pain = report.sections[0], report.sections[1]
    assert "sentiment" not in items(stages_section, Table)["stages-stages"].frame.columns
    assert "average sentiment (-1..1)" not in dict(stages_section.facts)
    assert "no sentiment" in pain.intro and "no device" in pain.intro
    switches = items(pain, Table).get("pain-switches")
    if switches is not None:  # only channel gaps can be found
        assert set(switches.frame["kind"]) == {"channel"}
        assert "fig-pain-gaps" in page.figures
    else:
        assert "fig-pain-gaps" not in page.figures
    # the map has its three rows, as before sentiment existed
    with rc_context():
        from journeymodel.report.sections.stages import draw_map, stage_flows

        fig, caption = draw_map(stages, stage_flows(stages), Palette(stages.symbols_))
    assert len(fig.axes) == 3 and "emotion" not in caption
    # with the Markov model too: its states join the leaks, still no friction
    both = pain_section_of([("markov", markov), ("stages", stages)])
    tables = items(both, Table)
    assert "pain-friction" not in tables and "pain-sentiment" not in items(both, Figure)
    assert "state" in set(tables["pain-leaks"].frame["kind"])


def test_no_gaps_and_no_sentiment_leave_no_empty_figures():
    # switching a -> b is followed by less drop-off than staying a -> a; b -> a as b -> b
    js = journeys_from_codes([["a", "a"]] * 2 + [["a", "b"]] * 2 + [["b", "b"], ["b", "a"]],
                             ["dropoff"] * 2 + ["conversion"] * 4)
    model = MarkovJourneyModel().fit(js)
    section = pain_section_of([("markov", model)])
    assert not section.figures
    assert list(items(section, Table)) == ["pain-leaks"]
    assert not find_pain_points(model).gaps


def test_old_model_files_without_experience(tmp_path, markov, stages):
    report = build_report([old_file(stages)], tmp_path / "old.html")
    page = check_page(report.path, ["stages", "data"])
    assert page.figures == ["fig-stages-map"]
    assert "sentiment" not in items(report.sections[0], Table)["stages-stages"].frame.columns
    # one old file beside a new one: the pain points come from the new one, the old is named
    section = pain_section_of([("old.nc", old_file(markov)), ("stages.nc", stages)])
    assert "From stages.nc." in section.intro and "Left out: old.nc" in section.intro
    found = find_pain_points([stages], top=5, seed=0)
    assert items(section, Table)["pain-switches"].frame.index[0] == (
        found.gaps[0]["name"].replace(" > ", " → "))
    assert pain_section_of([("old.nc", old_file(markov))]) is None


# ---------------------------------------------------------------------------------------------
# Determinism, model files, CLI


def test_cli_from_model_file_is_deterministic(run_cli, tmp_path, full, stages):
    """The page drawn by the CLI from the saved model equals the page drawn from the model in
    memory (same label), byte for byte: the drawing is deterministic and the experience data
    round-trip through the file; its figures equal those of the full report."""
    path = stages.save(tmp_path / "stages.nc")
    out = tmp_path / "map.html"
    code, stdout, err = run_cli("report", path, "-o", out, "--png-dir", tmp_path / "png",
                                "--json")
    assert code == 0, err
    payload = json.loads(stdout)
    assert payload["sections"] == ["stages", "pain", "data"]
    assert payload["figures"] == ["stages-map", "stages-emotion", "pain-gaps",
                                  "pain-sentiment"]
    check_page(out, payload["sections"])
    memory = build_report({"stages.nc": stages}, tmp_path / "memory.html")
    assert out.read_bytes() == memory.path.read_bytes()
    # the Markov model's experience is the stage model's (same journeys): same pain figures
    drawn = {f.key: f.png for f in full[0].figures}
    for key in payload["figures"]:
        assert (tmp_path / "png" / f"{key}.png").read_bytes() == drawn[key], key
    text = out.read_text()
    pain = text[text.index('<section id="pain">'):]
    assert Page(pain[:pain.index("</section>") + 10]).tables == [
        "table-pain-leaks", "table-pain-friction", "table-pain-switches"]
