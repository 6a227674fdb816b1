"""Through the CLI: `-o` naming an input is refused before any work, outputs appear whole or not
at all (also when the process is killed with SIGTERM or SIGINT, in real subprocesses), and
sizes that cannot fit are refused with the limit and why."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import assert_one_error_line


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small event log (CSV and Parquet) and a Markov model fitted on it."""
    from journeymodel.data.datasets import write_sample_events
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.markov.model import MarkovJourneyModel

    folder = tmp_path_factory.mktemp("outputs_cli")
    csv = folder / "s.csv"
    write_sample_events(csv, 200, seed=1)
    parquet = folder / "s.parquet"
    write_sample_events(parquet, 200, seed=1)
    model = MarkovJourneyModel(order=1).fit(load_journeys(csv)).save(folder / "m.nc")
    return {"csv": csv, "parquet": parquet, "model": model, "folder": folder}


def _snapshot(files) -> dict[str, bytes]:
    return {k: Path(v).read_bytes() for k, v in files.items() if k != "folder"}


@pytest.mark.parametrize("command", [
    ["fit", "markov", "{csv}", "-o", "{csv}"],
    ["fit", "stages", "{parquet}", "-o", "{parquet}"],
    ["fit", "conversion", "{csv}", "-o", "{csv}"],
    ["fit", "churn", "{csv}", "-o", "{csv}"],
    ["predict", "{model}", "{csv}", "-o", "{csv}"],
    ["predict", "{model}", "{csv}", "-o", "{model}"],
    ["simulate", "{model}", "-o", "{model}"],
    ["attribute", "{model}", "-o", "{model}"],
    ["pain-points", "{model}", "-o", "{model}"],
    ["forecast", "{model}", "-o", "{model}"],
    ["report", "{model}", "-o", "{model}"],
    ["report", "{model}", "--events", "{csv}", "-o", "{csv}"],
])
def test_output_naming_an_input_is_refused(run_cli, files, command):
    before = _snapshot(files)
    args = [a.format(**files) for a in command]
    code, out, err = run_cli(*args)
    assert_one_error_line(code, err, r"-o .*: is the input .*; writing there would overwrite "
                                     "it, choose another output file")
    assert _snapshot(files) == before and leftovers(files["folder"]) == []


def test_links_to_an_input_are_refused(run_cli, files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("link.csv").symlink_to(files["csv"])
    os.link(files["csv"], "hard.csv")
    before = _snapshot(files)
    for alias in ("link.csv", "hard.csv"):
        code, out, err = run_cli("fit", "markov", files["csv"], "-o", alias)
        assert_one_error_line(code, err, f"-o {alias}: is the input")
        code, out, err = run_cli("fit", "markov", alias, "-o", files["csv"])
        assert_one_error_line(code, err, "is the input")
    assert _snapshot(files) == before


def test_simulate_too_many_is_refused_without_a_trace(run_cli, files, tmp_path):
    out = tmp_path / "sim.parquet"
    code, _, err = run_cli("simulate", files["model"], "-n", str(10**12), "-o", out)
    assert_one_error_line(code, err, r"1,000,000,000,000 simulated journeys would take about "
                                     r"[\d.,]+ TiB \(measured on the first 100,000: .*\), but "
                                     r".* free; simulate fewer journeys")
    assert list(tmp_path.iterdir()) == []


def test_simulate_error_mid_stream_keeps_the_old_file(run_cli, files, tmp_path, monkeypatch):
    from journeymodel.errors import OptionError
    from journeymodel.models import simulate
    from journeymodel.models.markov import predict as markov_predict

    out = tmp_path / "sim.csv"
    assert run_cli("simulate", files["model"], "-n", "30", "-o", out)[0] == 0
    before = out.read_bytes()
    calls = []
    real = markov_predict.simulate_chunk

    def third_chunk_fails(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise OptionError("something went wrong in chunk 3")
        return real(*args, **kw)

    monkeypatch.setattr(simulate, "CHUNK_JOURNEYS", 10)
    monkeypatch.setattr(markov_predict, "simulate_chunk", third_chunk_fails)
    code, _, err = run_cli("simulate", files["model"], "-n", "50", "-o", out, "--seed", "9")
    assert_one_error_line(code, err, "something went wrong in chunk 3")
    assert out.read_bytes() == before and leftovers(tmp_path) == []


def test_simulate_ids_and_streaming_through_the_cli(run_cli, files, tmp_path, monkeypatch):
    from journeymodel.models import simulate

    monkeypatch.setattr(simulate, "CHUNK_JOURNEYS", 40)  # 3 chunks
    out = tmp_path / "sim.parquet"
    code, stdout, err = run_cli("simulate", files["model"], "-n", "100", "-o", out)
    assert code == 0, err
    back = pd.read_parquet(out)
    assert back["customer_id"].str.fullmatch(r"sim(0\d\d|100)").all()
    assert back["customer_id"].nunique() > 80 and back["customer_id"].is_monotonic_increasing
    assert f"wrote {len(back)} events of 100 simulated journeys" in stdout


def test_attribute_draws_bounded_before_loading(run_cli, tmp_path):
    missing = tmp_path / "m.nc"
    missing.write_text("not even a model: the bound comes first")
    code, _, err = run_cli("attribute", missing, "--draws", str(10**9))
    assert_one_error_line(code, err, r"--draws must be at most 100,000 \(got 1,000,000,000\)")


def test_sample_data_bounded(run_cli, tmp_path):
    for command in (["sample-data", "-o", tmp_path / "e.csv"], ["demo", "--out", tmp_path]):
        code, _, err = run_cli(*command, "--customers", "2000000")
        assert_one_error_line(code, err, r"--customers must be at most 1,000,000 \(got "
                                         r"2,000,000\): the sample log is built in memory")
    assert list(tmp_path.iterdir()) == []


def test_predict_and_attribute_outputs_whole(run_cli, files, tmp_path):
    pred = tmp_path / "pred.parquet"
    code, _, err = run_cli("predict", files["model"], files["csv"], "-o", pred)
    assert code == 0, err
    assert len(pd.read_parquet(pred)) > 0
    table = tmp_path / "attr.csv"
    code, _, err = run_cli("attribute", files["model"], "--draws", "50", "-o", table)
    assert code == 0, err
    assert "channel" in pd.read_csv(table).columns and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Real processes killed mid-write


def _start_simulate(model: Path, out: Path, n: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "journeymodel", "simulate", str(model),
                             "-n", str(n), "-o", str(out), "--seed", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_partial(folder: Path, proc: subprocess.Popen, timeout: float = 60) -> Path:
    """The temporary file once it holds at least one chunk (the process is mid-write)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        tmp = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        if tmp and tmp[0].exists() and tmp[0].stat().st_size > 100_000:
            return tmp[0]
        if proc.poll() is not None:
            raise AssertionError(f"simulate ended before the test could stop it: "
                                 f"{proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no partial output appeared")


@pytest.mark.parametrize("sig, code, name, existing", [
    (signal.SIGTERM, 143, "SIGTERM", False),  # a new output: nothing appears
    (signal.SIGINT, 130, "SIGINT", True),  # an existing output: untouched
])
def test_killed_simulate_leaves_no_partial_output(files, tmp_path, sig, code, name, existing):
    out = tmp_path / "sim.csv"
    if existing:
        out.write_text("customer_id,timestamp,touchpoint\nc1,2025-01-01,web\n")
    before = out.read_bytes() if existing else None
    proc = _start_simulate(files["model"], out, 5_000_000)
    tmp = _wait_for_partial(tmp_path, proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert [line for line in stderr.splitlines() if line.strip()] == [
        f"error: interrupted by {name}; no partial output was left behind"]
    assert not tmp.exists() and leftovers(tmp_path) == []
    assert (out.read_bytes() if out.exists() else None) == before


_SLOW_SAVE = """
import sys, time
import journeymodel.io.persist as persist
from journeymodel.cli.app import main

real = persist.write_tree

def slow(tree, target, model_type):  # write the model, then hang as a slow disk would
    real(tree, target, model_type)
    print("saving", flush=True)
    time.sleep(60)

persist.write_tree = slow
sys.exit(main(sys.argv[1:]))
"""


def test_fit_killed_while_saving_leaves_no_temp_file(files, tmp_path):
    """A fit killed during the save (the moment that used to leave ``tmpXXXX.nc.tmp``)."""
    out = tmp_path / "m.nc"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, "fit", "markov",
                             str(files["csv"]), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "saving", proc.communicate()
    assert len(leftovers(tmp_path)) == 1  # the whole model, under its temporary name
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "error: interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_output_naming_the_config_file_is_refused(run_cli, files, tmp_path):
    config = tmp_path / "journeymodel.toml"
    config.write_text("[read]\nchurn_label = \"churn\"\n")
    before = config.read_bytes()
    for command in (["fit", "markov", files["csv"]], ["predict", files["model"], files["csv"]],
                    ["report", files["model"]]):
        code, _, err = run_cli(*command, "--config", config, "-o", config)
        assert_one_error_line(code, err, r"journeymodel\.toml: is the input")
    assert config.read_bytes() == before
