"""Report sections of the Bayesian models (conversion, churn), alone and with all four models.

Slow: each model needs a PyMC compile (~10-30 s here) before sampling, even on small data.
"""

from __future__ import annotations

import warnings

import pytest

from journeymodel.errors import ConvergenceWarning
from journeymodel.report.build import build_report
from tests.test_report import check_page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def journeys():
    from journeymodel.data.datasets import make_demo_data
    from journeymodel.data.journeys import load_journeys

    return load_journeys(make_demo_data(300, seed=1).events)


@pytest.fixture(scope="module")
def bayes_models(journeys):
    from journeymodel.models.churn.model import ChurnModel
    from journeymodel.models.conversion.model import ConversionModel

    with warnings.catch_warnings():  # few draws on purpose: the report, not the fit, is tested
        warnings.simplefilter("ignore", ConvergenceWarning)
        conversion = ConversionModel(draws=200, tune=200, chains=2, seed=0).fit(journeys)
        churn = ChurnModel(draws=200, tune=200, chains=2, seed=0).fit(journeys)
    return conversion, churn


def test_conversion_alone(tmp_path, bayes_models):
    conversion, _ = bayes_models
    report = build_report([conversion], tmp_path / "map.html")
    page = check_page(report.path, ["conversion", "data"])
    assert "fig-conversion-forest" in page.figures
    assert "table-conversion-greater" in page.tables
    caption = report.figures[0].caption
    assert "highest-density interval" in caption and "R-hat" in caption
    text = report.path.read_text()
    for persona in conversion.journeys_.personas:
        assert persona in text  # the P(A > B) table names every persona


def test_churn_alone(tmp_path, bayes_models):
    _, churn = bayes_models
    report = build_report([churn], tmp_path / "map.html")
    page = check_page(report.path, ["churn", "data"])
    assert {"fig-churn-retention", "fig-churn-forecast"} <= set(page.figures)
    captions = {f.key: f.caption for f in report.figures}
    assert "highest-density" in captions["churn-retention"]
    assert "highest-density" in captions["churn-forecast"]


def test_churn_forecast_bands(bayes_models):
    from journeymodel.report.sections.churn import HORIZONS, forecast_bands

    _, churn = bayes_models
    bands = forecast_bands(churn)
    mean, low, high = bands["mean"], bands["low"], bands["high"]
    assert mean.shape == (len(churn.personas_) + 1, len(HORIZONS) + 1)
    assert ((low <= mean + 1e-9) & (mean <= high + 1e-9)).all()
    if bands["what"] == "survivors":  # survivors never increase with the horizon
        assert (mean[:, 1:] <= mean[:, :-1] + 1e-9).all()
        assert mean[-1] == pytest.approx(mean[:-1].sum(0))


def test_all_four_models(tmp_path, bayes_models, journeys):
    from journeymodel.models.markov.model import MarkovJourneyModel
    from journeymodel.models.stages.model import StageModel

    markov = MarkovJourneyModel().fit(journeys)
    stages = StageModel(n_stages=3, restarts=1, max_iter=100).fit(journeys)
    report = build_report([*bayes_models, markov, stages], tmp_path / "map.html",
                          events=journeys)
    check_page(report.path, ["stages", "markov", "conversion", "churn", "forecast", "forecast-2",
                             "pain", "data"])


def test_cli_all_four(run_cli, tmp_path, bayes_models, journeys):
    from journeymodel.models.markov.model import MarkovJourneyModel

    paths = [bayes_models[0].save(tmp_path / "conversion.nc"),
             bayes_models[1].save(tmp_path / "churn.nc"),
             MarkovJourneyModel().fit(journeys).save(tmp_path / "markov.nc")]
    out = tmp_path / "map.html"
    code, _, err = run_cli("report", *paths, "-o", out, "--png-dir", tmp_path / "png")
    assert code == 0, err
    check_page(out, ["markov", "conversion", "churn", "pain", "data"])
