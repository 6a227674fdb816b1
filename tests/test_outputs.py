"""Outputs written whole or not at all, never over an input, and simulation/attribution in
bounded memory (library side; the CLI side is tests/test_outputs_cli.py)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest

from journeymodel.errors import ModelFileError, OptionError
from journeymodel.io import outputs


def leftovers(folder) -> list[str]:
    """Temporary files an atomic write may have left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(scope="module")
def journeys():
    from journeymodel.data.datasets import make_demo_data
    from journeymodel.data.journeys import load_journeys

    return load_journeys(make_demo_data(300, seed=4).events)


@pytest.fixture(scope="module")
def markov(journeys):
    from journeymodel.models.markov.model import MarkovJourneyModel

    return MarkovJourneyModel(order=1, seed=0).fit(journeys)


@pytest.fixture(scope="module")
def stages(journeys):
    from journeymodel.models.stages.model import StageModel

    return StageModel(n_stages=2, restarts=1, max_iter=300, seed=0).fit(journeys)


# ---------------------------------------------------------------------------------------------
# atomic_path


def test_atomic_write_replaces_whole_and_leaves_nothing(tmp_path):
    out = tmp_path / "a.txt"
    outputs.write_text(out, "old")
    outputs.write_text(out, "new")
    assert out.read_text() == "new" and leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt(),
                                 SystemExit(143)])
def test_error_or_interrupt_mid_write_keeps_the_old_file(tmp_path, exc):
    out = tmp_path / "a.csv"
    out.write_text("old content\n")
    with pytest.raises(type(exc)):
        with outputs.atomic_path(out) as tmp:
            tmp.write_text("half of the new")
            assert leftovers(tmp_path) == [tmp.name]  # written beside the target
            raise exc
    assert out.read_text() == "old content\n" and leftovers(tmp_path) == []


def test_new_file_gets_umask_permissions_existing_keeps_its_own(tmp_path):
    old = os.umask(0o027)
    try:
        fresh = outputs.write_text(tmp_path / "fresh.txt", "x")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # 0o666 less the umask, not 0o600
        kept = tmp_path / "kept.txt"
        kept.write_text("x")
        kept.chmod(0o604)
        outputs.write_text(kept, "y")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o604
    finally:
        os.umask(old)


def test_write_through_a_symbolic_link(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    outputs.write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_target_checks(tmp_path):
    with pytest.raises(OptionError, match="is a folder"):
        outputs.write_text(tmp_path, "x")
    with pytest.raises(OptionError, match="the folder .*nowhere does not exist"):
        outputs.write_text(tmp_path / "nowhere" / "a.txt", "x")
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(OptionError, match="permission denied"):
            outputs.write_text(ro / "a.txt", "x")


# ---------------------------------------------------------------------------------------------
# tables


FRAME = pd.DataFrame({"customer_id": ["a", "b", "c"], "value": [1.5, np.nan, 3.0]})


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.parquet", "t.PQ", "t.txt"])
def test_write_frame_round_trip(tmp_path, name):
    path = outputs.write_frame(FRAME, tmp_path / name)
    fmt = outputs.frame_format(path)
    back = (pd.read_parquet(path) if fmt == "parquet"
            else pd.read_csv(path, sep="\t" if fmt == "tsv" else ","))
    pd.testing.assert_frame_equal(back, FRAME, check_dtype=False)
    assert leftovers(tmp_path) == []


def test_write_frame_refuses_unknown_suffix(tmp_path):
    with pytest.raises(OptionError, match=r"t\.xlsx: output must end in \.csv, \.tsv or "):
        outputs.write_frame(FRAME, tmp_path / "t.xlsx")


@pytest.mark.parametrize("name", ["s.csv", "s.parquet"])
def test_chunks_equal_one_frame(tmp_path, name):
    whole = pd.DataFrame({"id": [f"x{i}" for i in range(10)], "v": np.arange(10) / 3})
    _, rows = outputs.write_frames((whole[i:i + 3] for i in range(0, 10, 3)), tmp_path / name)
    ref = tmp_path / f"ref{os.path.splitext(name)[1]}"
    if name.endswith(".csv"):
        whole.to_csv(ref, index=False)
        assert (tmp_path / name).read_bytes() == ref.read_bytes()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / name), whole)
    assert rows == 10


@pytest.mark.parametrize("name", ["s.csv", "s.parquet"])
def test_failing_stream_leaves_the_old_file(tmp_path, name):
    out = tmp_path / name
    outputs.write_frame(FRAME, out)
    before = out.read_bytes()

    def frames():
        yield FRAME
        raise OptionError("the second chunk failed")

    with pytest.raises(OptionError, match="second chunk"):
        outputs.write_frames(frames(), out)
    assert out.read_bytes() == before and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# outputs that name an input


def test_output_naming_an_input_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "s.csv"
    src.write_text("customer_id\n")
    outputs.check_not_input(tmp_path / "m.nc", [src, None])  # another file: fine
    outputs.check_not_input(None, [src])
    for same in ["s.csv", "./s.csv", str(src), "sub/../s.csv"]:
        with pytest.raises(OptionError, match=r"-o .*s\.csv: is the input .*s\.csv; writing "
                                              "there would overwrite it"):
            outputs.check_not_input(same, [tmp_path / "other.nc", src])
    (tmp_path / "link.csv").symlink_to(src)
    os.link(src, tmp_path / "hard.csv")
    for alias in ["link.csv", "hard.csv"]:
        with pytest.raises(OptionError, match=f"-o {alias}: is the input"):
            outputs.check_not_input(alias, [src])
    with pytest.raises(OptionError, match=r"--png-dir s\.csv: is the input"):
        outputs.check_not_input("s.csv", [src], option="--png-dir")
    parts = tmp_path / "parts"
    parts.mkdir()
    with pytest.raises(OptionError, match="is inside the input folder"):
        outputs.check_not_input(parts / "m.nc", [parts])


def test_check_table_output_checks_everything_first(tmp_path):
    src = tmp_path / "m.nc"
    src.write_bytes(b"model")
    with pytest.raises(OptionError, match="is the input"):
        outputs.check_table_output(src, [src], "predictions")
    with pytest.raises(OptionError, match="must end in"):
        outputs.check_table_output(tmp_path / "p.json", [src], "predictions")
    with pytest.raises(OptionError, match="cannot write the predictions"):
        outputs.check_table_output(tmp_path / "no" / "p.csv", [src], "predictions")


# ---------------------------------------------------------------------------------------------
# model files, sample data and the report


def test_save_model_is_atomic(markov, tmp_path, monkeypatch):
    import journeymodel.io.persist as persist

    path = markov.save(tmp_path / "m.nc")
    before = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~outputs._umask()

    def half_then_interrupt(tree, target, model_type):  # the writer of every model type
        with open(target, "wb") as fh:
            fh.write(before[: len(before) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(persist, "write_tree", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        markov.save(path)
    assert path.read_bytes() == before and leftovers(tmp_path) == []  # the old model, whole
    with pytest.raises(ModelFileError, match="is a folder"):
        markov.save(tmp_path)


def test_sample_events_bounded_and_atomic(tmp_path, monkeypatch):
    import journeymodel.data.datasets as ds

    with pytest.raises(OptionError, match=r"n_customers must be at most 1,000,000 \(got "
                                          r"1,000,000,000\): the sample log is built in memory"):
        ds.write_sample_events(tmp_path / "e.csv", 10**9)
    out = tmp_path / "e.csv"
    out.write_text("old")

    def fail(*a, **k):
        raise RuntimeError("generator failed")

    monkeypatch.setattr(ds, "make_demo_data", fail)
    with pytest.raises(RuntimeError):
        ds.write_sample_events(out, 60)
    assert out.read_text() == "old" and leftovers(tmp_path) == []


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG (stdlib only)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


def test_report_and_pngs_written_whole(markov, tmp_path, monkeypatch):
    from journeymodel.report import build
    from journeymodel.report.figure import Figure, Section

    figures = [Figure(key, key, "", tiny_png()) for key in ("flow", "leaks", "gaps")]
    monkeypatch.setattr(build, "build_sections",
                        lambda named, events=None, comparisons=(): [
                            Section("s", "S", "", list(figures))])
    html = tmp_path / "map.html"
    html.write_text("old page")
    calls = []
    real = outputs.write_bytes

    def second_png_fails(path, data, what="output"):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(path, data, what)

    monkeypatch.setattr(outputs, "write_bytes", second_png_fails)
    with pytest.raises(OSError, match="No space left"):
        build.build_report([markov], html, png_dir=tmp_path / "png")
    assert html.read_text() == "old page"
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "png") == []
    assert [p.name for p in (tmp_path / "png").iterdir()] == ["flow.png"]  # one whole PNG
    assert (tmp_path / "png" / "flow.png").read_bytes() == tiny_png()
    monkeypatch.setattr(outputs, "write_bytes", real)
    report = build.build_report([markov], html, png_dir=tmp_path / "png")
    assert html.read_text().count("<img") == 3 and len(report.png_paths) == 3
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "png") == []


# ---------------------------------------------------------------------------------------------
# simulation: ids, chunks, bounds


def test_simulated_ids_one_format_for_every_model(markov, stages):
    from journeymodel.models.simulate import simulated_ids

    assert simulated_ids(3, n_total=1000, offset=998).tolist() == [
        "sim0999", "sim1000", "sim1001"]  # padded to the width of n_total only
    for model in (markov, stages):
        sim = model.simulate(12, seed=1)
        ids = sim["customer_id"].unique()
        assert set(ids) <= {f"sim{i:02d}" for i in range(1, 13)}, (model.model_type, ids)
        assert sim["customer_id"].is_monotonic_increasing
        one = model.simulate(1, seed=1)["customer_id"].unique().tolist()
        assert one in ([], ["sim1"])


@pytest.mark.parametrize("kind", ["markov", "stages"])
def test_chunked_simulation_deterministic_unique_and_equal_to_file(kind, markov, stages,
                                                                    tmp_path):
    from journeymodel.models.simulate import simulate_frame, simulate_to_file

    model = {"markov": markov, "stages": stages}[kind]
    frame = simulate_frame(model, 50, seed=7, chunk=8)  # 7 chunks
    pd.testing.assert_frame_equal(frame, simulate_frame(model, 50, seed=7, chunk=8))
    assert frame["customer_id"].str.fullmatch(r"sim\d\d").all()
    # ids run on across chunks: journey k of chunk c is customer 8 c + k + 1
    starts = frame.groupby("customer_id", sort=False).size()
    assert starts.index.is_unique and starts.index.is_monotonic_increasing
    assert len(starts) > 40 and int(starts.index[-1][3:]) <= 50
    for name in ("sim.parquet", "sim.csv"):
        written = simulate_to_file(model, 50, tmp_path / name, seed=7, chunk=8)
        assert written.journeys == 50 and written.events == len(frame)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sim.parquet"), frame)
    back = pd.read_csv(tmp_path / "sim.csv")
    assert back["customer_id"].tolist() == frame["customer_id"].tolist()
    assert leftovers(tmp_path) == []
    # within one chunk: exactly one vectorised draw of all the journeys (the model's own)
    pd.testing.assert_frame_equal(model.simulate(50, seed=7), simulate_frame(model, 50, seed=7,
                                                                             chunk=50))


def test_in_memory_simulation_is_bounded_before_any_work(markov, stages):
    from journeymodel.models.simulate import MAX_IN_MEMORY

    for model in (markov, stages):
        with pytest.raises(OptionError, match=r"cannot simulate 1,000,000,000,000 journeys in "
                                              r"memory \(at most 5,000,000.*simulate_to_file"):
            model.simulate(10**12)
        with pytest.raises(OptionError, match="n must be >= 1"):
            model.simulate(0)
    assert MAX_IN_MEMORY == 5_000_000


def test_simulation_that_would_fill_the_disk_is_refused(markov, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from journeymodel.models import simulate

    out = tmp_path / "sim.csv"
    out.write_text("old")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(OptionError, match=r"sim\.csv: 100,000 simulated journeys would take "
                                          r"about .* \(measured on the first 10: .* bytes each\)"
                                          r", but .* has 976\.6 KiB free"):
        simulate.simulate_to_file(markov, 100_000, out, chunk=10)
    assert out.read_text() == "old" and leftovers(tmp_path) == []


def test_simulation_of_a_model_that_cannot(tmp_path):
    from journeymodel.models.conversion.model import ConversionModel
    from journeymodel.models.simulate import simulate_to_file

    model = ConversionModel()
    with pytest.raises(OptionError, match="simulation applies to markov and stages models, "
                                          "not to a conversion model"):
        simulate_to_file(model, 10, tmp_path / "s.csv")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# attribution draws


def test_attribution_draws_bounded(markov):
    from journeymodel.models.markov.attribution import MAX_DRAWS, check_draws

    with pytest.raises(OptionError, match=r"n_draws must be at most 100,000 \(got "
                                          r"1,000,000,000\): .*Monte-Carlo error"):
        markov.attribution(n_draws=10**9)
    assert MAX_DRAWS == 100_000 and check_draws(MAX_DRAWS) == MAX_DRAWS
    with pytest.raises(OptionError, match="--draws must be a whole number"):
        check_draws(1.5, "--draws")


def test_attribution_in_batches_equals_one_batch(markov, monkeypatch):
    from journeymodel.models.markov import attribution as ma
    from journeymodel.models.markov import chain as mc

    monkeypatch.setattr(mc, "STREAM_VARIATES", 1)  # streams of 16 draws: 4 to a batch of 64
    one = markov.attribution(n_draws=300, seed=5)
    calls = []
    real = ma.draw_rows

    def counting(conc, n, rng):
        calls.append(n)
        return real(conc, n, rng)

    monkeypatch.setattr(ma, "draw_rows", counting)
    monkeypatch.setattr(ma, "DRAW_BATCH_BYTES", 64 * 8 * (8 * markov.chain_.conc.nnz
                                                          + 6 * markov.chain_.n
                                                          + 4 * (len(markov.journeys_.touchpoints)
                                                                 + 1)))
    batched = markov.attribution(n_draws=300, seed=5)
    assert sorted(calls) == [44, 64, 64, 64, 64]  # batches run on the pool's threads
    np.testing.assert_allclose(batched.conversions_low, one.conversions_low, rtol=1e-10)
    np.testing.assert_allclose(batched.removal_effect_high, one.removal_effect_high, rtol=1e-10)


def test_sampled_shapley_bounded_and_batched(monkeypatch):
    from journeymodel.data.journeys import journeys_from_codes
    from journeymodel.models.markov import attribution as ma
    from journeymodel.models.markov.model import MarkovJourneyModel

    rng = np.random.default_rng(3)
    names = [f"c{i:02d}" for i in range(ma.SHAPLEY_EXACT_MAX + 1)]  # too many for exact
    seqs = [list(rng.choice(names, rng.integers(1, 4))) for _ in range(400)]
    outs = ["conversion" if rng.random() < 0.4 else "dropoff" for _ in seqs]
    model = MarkovJourneyModel(order=1).fit(journeys_from_codes(seqs, outs))
    with pytest.raises(OptionError, match=r"n_permutations must be at most 100,000"):
        model.attribution("shapley", n_permutations=10**9)
    one = model.attribution("shapley", n_permutations=40, seed=2)
    monkeypatch.setattr(ma, "DRAW_BATCH_BYTES", 1)  # one order per batch
    batched = model.attribution("shapley", n_permutations=40, seed=2)
    np.testing.assert_allclose(batched.conversions, one.conversions, rtol=1e-10)
    np.testing.assert_allclose(batched.conversions_low, one.conversions_low, rtol=1e-10)
