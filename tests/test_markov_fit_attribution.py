"""MarkovJourneyModel.fit_attribution (issue 20: what ``attribute EVENTS`` fits): the same
attribution as fit(), every method, order and option, on a log with in-flight journeys; the
summary, model file and experience of such a model raise NotFittedError; fit() afterwards
makes the whole model."""

from __future__ import annotations

import json

import known_process as kp
import numpy as np
import pytest

from journeymodel.errors import NotFittedError
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.stats.transitions import transition_stats


def journeys():
    f = kp.simulate(3000, 5, span=60.0, p=kp.P)
    return kp.journeys(kp.cut(f, kp.cut_for_share(f, 0.3, span=60.0)))


@pytest.mark.parametrize("order, options", [
    (1, {}), (2, {"collapse_repeats": False}), (3, {"prior": 0.5}),
    (1, {"censored": "ignore"}), ("auto", {})])
def test_same_attribution_as_fit(order, options):
    js = journeys()
    whole = MarkovJourneyModel(order=order, **options).fit(js)
    part = MarkovJourneyModel(order=order, **options).fit_attribution(js)
    assert part.order_ == whole.order_
    for method, draws in (("removal", 300), ("shapley", 0), ("first", 0), ("linear", 0)):
        a = whole.attribution(method, n_draws=draws, seed=3).to_json()
        b = part.attribution(method, n_draws=draws, seed=3).to_json()
        assert json.dumps(a) == json.dumps(b), method
    assert np.array_equal(part.conversion_value_, whole.conversion_value_)
    assert part.journeys_ == whole.journeys_


def test_summary_file_and_experience_need_the_whole_fit(tmp_path):
    js = journeys()
    m = MarkovJourneyModel().fit_attribution(js)
    for use in (m.summary, lambda: m.save(tmp_path / "m.nc"), lambda: m.experience_):
        with pytest.raises(NotFittedError, match="fitted for attribution only"):
            use()
    assert not (tmp_path / "m.nc").exists()
    m.fit(js)  # the whole fit afterwards: summary and file as usual
    assert m.summary().json["order"] == 1
    assert m.save(tmp_path / "m.nc").exists()


def test_statistics_without_experience_add_up_without_it():
    js = journeys()
    a = transition_stats(js, 1, experience=False)
    b = transition_stats(js, 1)
    assert a.experience is None and (a + b).experience is None
    assert (a + a).equals(transition_stats(js, 1, experience=False) + a)
    assert not a.equals(b)
