"""Help texts wrap cleanly: a command's summary in `journeymodel --help` is one flowing sentence,
broken only where rich wraps it (issue 13: summaries broke mid-sentence at 80 columns because
docstrings were hard-wrapped). Enum-like options list their choices in one `error:` line."""

from __future__ import annotations

import inspect
import re

import pytest
import typer

from tests.conftest import assert_one_error_line

WIDTH = 80


def _commands():
    from journeymodel.cli.app import app, fit_app

    top = {c.name: c.callback for c in app.registered_commands}
    fit = {c.name: c.callback for c in fit_app.registered_commands}
    return top, fit


def _summary(func) -> str:
    return inspect.cleandoc(func.__doc__ or "").split("\n\n")[0]


def _panel(text: str, title: str = "Commands") -> dict[str, str]:
    """Command name -> its summary lines (inner text), from a rich help panel."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if f"─ {title} ─" in line)
    entries: dict[str, list[str]] = {}
    name = None
    for line in lines[start + 1:]:
        if line.startswith("╰"):
            break
        inner = line.strip("│").rstrip()
        m = re.match(r" (\S+)\s+(\S.*)$", inner)
        if m and not inner.startswith("   "):
            name = m.group(1)
            entries[name] = [m.group(2)]
            indent = inner.index(m.group(2))
        elif name is not None and inner.strip():
            entries[name].append(inner[indent:])
    return {k: v for k, v in entries.items()}, indent


@pytest.mark.parametrize("group", ["top", "fit"])
def test_every_summary_is_one_flowing_paragraph(group):
    top, fit = _commands()
    for name, func in (top if group == "top" else fit).items():
        summary = _summary(func)
        assert summary, name
        assert "\n" not in summary, f"{name}: hard-wrapped summary {summary!r}"


@pytest.mark.parametrize("args", [["--help"], ["fit", "--help"]])
def test_help_panel_wraps_at_word_boundaries(run_cli, monkeypatch, args):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    code, out, _ = run_cli(*args)
    assert code == 0
    assert all(len(line) <= WIDTH for line in out.splitlines())
    entries, indent = _panel(out)
    top, fit = _commands()
    commands = top if args == ["--help"] else fit
    width = WIDTH - 2 - 1 - indent  # borders, the panel's right padding
    for name, func in commands.items():
        lines = entries[name]
        # the lines put together are the summary, word for word
        assert " ".join(" ".join(lines).split()) == " ".join(_summary(func).split()), name
        # a line ends early only because the next word would not fit (rich's own wrapping)
        for line, following in zip(lines, lines[1:], strict=False):
            next_word = following.split()[0]
            assert len(line.rstrip()) + 1 + len(next_word) > width, (name, line, following)


@pytest.mark.parametrize("args, choices", [
    (["attribute", "{model}", "--method", "foo"], "'removal', 'first', 'last', 'linear', "
                                                  "'shapley'"),
    (["fit", "stages", "{events}", "-o", "x.nc", "--topology", "foo"], "'free', 'funnel'"),
    (["fit", "stages", "{events}", "-o", "x.nc", "--engine", "foo"], "'numba', 'hmmlearn'"),
    (["describe", "{events}", "--timestamps", "foo"], "'auto', 'datetime', 'epoch', 'period'"),
    (["fit", "conversion", "{events}", "-o", "x.nc", "--by", "foo"], "'first_touchpoint'"),
    (["fit", "conversion", "{events}", "-o", "x.nc", "--parameterization", "foo"],
     "'auto', 'centered', 'non-centered'"),
    (["fit", "conversion", "{events}", "-o", "x.nc", "--sampler", "foo"], "'nutpie', 'pymc'"),
    (["fit", "churn", "{events}", "-o", "x.nc", "--model", "foo"], "'sbg', 'weibull', 'bgnbd'"),
    (["fit", "churn", "{events}", "-o", "x.nc", "--time-unit", "foo"], "'D', 'W', 'M', 'Y'"),
    (["fit", "churn", "{events}", "-o", "x.nc", "--origin", "foo"],
     "'auto', 'first-event', 'first-conversion'"),
])
def test_enum_options_list_their_choices(run_cli, tmp_path, args, choices):
    model = tmp_path / "m.nc"
    model.write_text("x")
    events = tmp_path / "e.csv"
    events.write_text("customer_id,timestamp,touchpoint\na,2025-01-01,web\n")
    args = [a.format(model=model, events=events) for a in args]
    code, _, err = run_cli(*args)
    assert_one_error_line(code, err, re.escape(f"'foo' is not one of {choices}"))
    assert "Value error" not in err


def test_cli_choices_come_from_the_library():
    from journeymodel.cli.cmd_attribute import Method
    from journeymodel.cli.cmd_fit_stages import Engine, Topology

    from journeymodel import choices
    from journeymodel.fit.hmm import ENGINES
    from journeymodel.models.markov.model import METHODS
    from journeymodel.models.stages.model import TOPOLOGIES

    assert tuple(m.value for m in Method) == METHODS == choices.ATTRIBUTION_METHODS
    assert tuple(t.value for t in Topology) == TOPOLOGIES == choices.STAGE_TOPOLOGIES
    assert tuple(e.value for e in Engine) == ENGINES == choices.HMM_ENGINES
    assert all(isinstance(m, str) for m in Method)  # typer shows and parses them as text
    assert typer  # the CLI modules imported above need only typer at the top


def _values(enum) -> tuple[str, ...]:
    return tuple(m.value for m in enum)


def test_every_cli_choice_is_generated_from_the_library_tuples():
    """Each Enum option of the CLI holds exactly a tuple of journeymodel.choices, and the
    library checks its parameters against the same values."""
    import typing

    from journeymodel.cli.cmd_fit_churn import ChurnKind, Origin, TimeUnit
    from journeymodel.cli.cmd_fit_conversion import Parameterization, Sampler, SecondGrouping
    from journeymodel.cli.options import TimestampKind

    from journeymodel import choices
    from journeymodel.data.options import TimestampKind as LibraryTimestampKind
    from journeymodel.models.churn import data as churn_data
    from journeymodel.models.churn import model as churn_model
    from journeymodel.models.conversion import model as conversion_model
    from journeymodel.stats.conversion import GROUPINGS

    assert _values(TimestampKind) == choices.TIMESTAMP_KINDS == typing.get_args(
        LibraryTimestampKind)
    assert _values(SecondGrouping) == choices.CONVERSION_GROUPINGS[1:] == GROUPINGS[1:]
    assert choices.CONVERSION_GROUPINGS == GROUPINGS
    assert _values(Parameterization) == choices.PARAMETERIZATIONS == (
        conversion_model.PARAMETERIZATIONS)
    assert _values(Sampler) == choices.SAMPLERS
    assert _values(ChurnKind) == choices.CHURN_MODELS == churn_model.MODELS
    assert _values(TimeUnit) == choices.CHURN_TIME_UNITS == tuple(churn_data.UNIT_SECONDS)
    assert tuple(v.replace("-", "_") for v in _values(Origin)) == choices.CHURN_ORIGINS == (
        churn_data.ORIGINS)


def test_the_samplers_the_library_accepts_are_the_cli_choices():
    from journeymodel import choices
    from journeymodel.errors import OptionError
    from journeymodel.fit.bayes import sample

    with pytest.raises(OptionError, match=re.escape(
            "sampler must be " + " or ".join(repr(s) for s in choices.SAMPLERS))):
        sample(lambda: None, sampler="foo")
