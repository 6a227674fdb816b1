"""The stages model's EM on Dask (issue 15): the distinct sequences stay on the workers, which
run the E-step; the client runs the M-step. Same start, same log-likelihood (to 1e-9
relative) and same parameters as one process, on a messy log of many files, for a fixed K and
for ``n_stages="auto"``. One small in-process LocalCluster serves the module."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.errors import OptionError
from journeymodel.fit import hmm
from journeymodel.models.stages.fit import combine, mean_position
from journeymodel.models.stages.model import StageModel
from journeymodel.scale.em import RemoteSequences, fit_stages_scaled, vocabulary_only
from journeymodel.scale.engine import persist_parts
from journeymodel.scale.fit import fit_scaled

pytest.importorskip("dask.distributed")

PARAMETERS = ("startprob_", "transmat_", "emissionprob_", "exitprob_", "mean_position_")


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """A messy demo log as one Parquet file per month: rows without a customer, unreadable
    times, exact duplicates, ids padded with spaces (one customer's rows in many files), and
    a log cut mid-stream (in-flight journeys: the censored cells of the survival term)."""
    df = make_demo_data(300, seed=5).events.copy()
    df = df[df.timestamp < df.timestamp.quantile(0.8)].copy()  # journeys in flight
    df["timestamp"] = df.timestamp.astype(str)
    month = df.timestamp.str[:7]
    df.loc[df.index[4::89], "customer_id"] = None
    df.loc[df.index[9::113], "timestamp"] = "not a time"
    padded = df.index[13::5]
    df.loc[padded, "customer_id"] = " " + df.loc[padded, "customer_id"] + " "
    df = pd.concat([df, df.iloc[2::41]])
    month = pd.concat([month, month.iloc[2::41]])
    root = tmp_path_factory.mktemp("stages") / "events"
    for key, rows in df.groupby(month.to_numpy()):
        (root / f"date={key}").mkdir(parents=True)
        rows.to_parquet(root / f"date={key}" / "part-0.parquet", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        journeys = load_journeys(root)
    return root, journeys


def assert_same_fit(scaled: StageModel, whole: StageModel) -> None:
    assert scaled.log_likelihood_ == pytest.approx(whole.log_likelihood_, rel=1e-9)
    np.testing.assert_allclose(scaled.history_, whole.history_, rtol=1e-9)
    assert (scaled.n_iter_, scaled.converged_) == (whole.n_iter_, whole.converged_)
    assert scaled.symbols_ == whole.symbols_
    assert scaled.stage_names_ == whole.stage_names_
    for name in PARAMETERS:
        np.testing.assert_allclose(getattr(scaled, name), getattr(whole, name),
                                   rtol=1e-7, atol=1e-9, err_msg=name)
    assert scaled.bic_ == pytest.approx(whole.bic_, rel=1e-9)
    assert scaled.n_parameters_ == whole.n_parameters_
    assert scaled.censored_survival_ == whole.censored_survival_


@pytest.mark.filterwarnings("ignore::Warning")
def test_fixed_k_same_em_and_parameters_as_one_process(client, log):
    root, journeys = log
    kw = {"n_stages": 3, "restarts": 2, "seed": 3, "max_iter": 25}
    whole = StageModel(**kw).fit(journeys)
    assert whole.censored_survival_  # the censored cells take part
    assert journeys.ledger.dropped.keys() >= {"missing_customer", "bad_timestamp", "duplicate"}
    lines: list[str] = []
    scaled = fit_scaled(StageModel(**kw), root, client=client, progress=lines.append)
    assert_same_fit(scaled, whole)
    assert scaled.journeys_.n_journeys == journeys.n_journeys
    assert scaled.ledger_.rows_read == journeys.ledger.rows_read
    steps = [line for line in lines if ": E-step " in line]  # one line per EM iteration
    assert [int(line.split()[2]) for line in steps] == list(range(1, len(steps) + 1))
    assert whole.n_iter_ < len(steps) <= 2 * 25  # both restarts' iterations
    assert steps[-1].startswith("K=3: E-step ") and "log-likelihood" in steps[-1]
    assert sum("restart" in line for line in lines) == 2


@pytest.mark.filterwarnings("ignore::Warning")
def test_auto_same_selection_as_one_process(client, log):
    root, journeys = log
    kw = {"n_stages": "auto", "auto_range": [2, 3], "restarts": 2, "warmup": 4, "seed": 0,
          "max_iter": 20, "topology": "funnel"}
    whole = StageModel(**kw).fit(journeys)
    scaled = fit_scaled(StageModel(**kw), root, client=client)
    assert_same_fit(scaled, whole)
    pd.testing.assert_frame_equal(scaled.selection_, whole.selection_, rtol=1e-9)
    np.testing.assert_array_equal(scaled.funnel_rank_, whole.funnel_rank_)


@pytest.mark.filterwarnings("ignore::Warning")
def test_the_summed_e_step_is_the_e_step_of_the_whole_log(client, log):
    """The workers' E-steps added equal one forward-backward over the whole log's distinct
    sequences (counts and log-likelihood), and no sequence comes to the client."""
    root, journeys = log
    model = StageModel(n_stages=3, censored="ignore")
    stats = model.stats_of(journeys)
    seqs = stats.sequences
    parts, summary = persist_parts(root, None, client, model.stats_of, vocabulary_only)
    assert len(parts) >= 2 and summary.stats.sequences.n_sequences == 0
    remote = RemoteSequences(client, parts, summary.stats.sequences.touchpoints)
    assert remote.n_obs == pytest.approx(seqs.n_obs, rel=1e-12)
    rng = np.random.default_rng(1)
    n_x = len(seqs.symbols)
    em_, ex = rng.dirichlet(np.ones(n_x), 3), rng.dirichlet(np.ones(4), 3)
    params = hmm.HMMParams(rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(3), 3),
                           combine(em_, ex))
    e, ll = remote.estep(params)
    one = hmm.forward_backward(seqs.codes, seqs.offsets, params, seqs.weight)
    assert ll == pytest.approx(one.total(seqs.weight), rel=1e-12)
    for got, want in ((e.start_counts, one.start_counts), (e.trans_counts, one.trans_counts),
                      (e.emission_counts, one.emission_counts)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    fit = StageModel(n_stages=3, censored="ignore", max_iter=3).fit(journeys).stage_fit()
    np.testing.assert_allclose(remote.mean_position(fit.params), mean_position(fit, seqs),
                               rtol=1e-10)
    remote.release()


@pytest.mark.filterwarnings("ignore::Warning")
def test_hmmlearn_engine_runs_in_one_process_only(client, log):
    root, _ = log
    model = StageModel(n_stages=2, engine="hmmlearn", censored="ignore", max_iter=3)
    with pytest.raises(OptionError, match="engine 'hmmlearn' runs in one process"):
        fit_stages_scaled(model, root, None, client)


@pytest.mark.filterwarnings("ignore::Warning")
def test_cli_fit_stages_on_a_local_cluster(run_cli, log, tmp_path):
    """``fit stages --workers 1`` prints the fit of one process; hmmlearn is refused before
    the cluster starts."""
    import json

    from conftest import assert_one_error_line

    root, _ = log
    args = ("fit", "stages", root, "--stages", "2", "--restarts", "1", "--max-iter", "15",
            "--json")
    code, one, err = run_cli(*args, "-o", tmp_path / "one.nc")
    assert code == 0, err
    code, dask, err = run_cli(*args, "-o", tmp_path / "dask.nc", "--workers", "1")
    assert code == 0, err
    assert "Dask local cluster: 1 workers" in err
    one, dask = json.loads(one), json.loads(dask)
    assert dask["log_likelihood"] == pytest.approx(one["log_likelihood"], rel=1e-9)
    assert [s["name"] for s in dask["stages"]] == [s["name"] for s in one["stages"]]
    code, _, err = run_cli("fit", "stages", root, "-o", tmp_path / "h.nc", "--engine",
                           "hmmlearn", "--workers", "1")
    assert_one_error_line(code, err, "engine 'hmmlearn' runs in one process")
