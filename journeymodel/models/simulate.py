"""Forward simulation of journeys from a fitted model, in bounded memory.

Every model that simulates (Markov, stages) draws journeys in chunks of
:data:`CHUNK_JOURNEYS` from one random generator made from ``seed``: the same seed gives the
same journeys, whether they are kept in memory (``model.simulate(n)``) or streamed to a file
(:func:`simulate_to_file`, which the CLI's ``simulate -o`` uses), and a simulation of at most
one chunk is exactly what one vectorised draw of all the journeys gives.

Simulated customers are numbered ``sim`` + their number from 1 to ``n``, zero-padded to the
width of ``n`` (``sim001`` ... ``sim250`` for 250 journeys), the same for every model type and
unique across chunks.

Bounds, and why:

* in memory, at most :data:`MAX_IN_MEMORY` journeys (a DataFrame takes about 0.2 GB per
  million journeys, and about five times that while they are drawn);
* to a file, any number: one chunk at a time is in memory (about 0.3 GB); after the first
  chunk the size of the whole output is estimated, and a simulation that would not fit in the
  free space of the target's file system is refused before it fills the disk.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from journeymodel.errors import OptionError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from journeymodel.models.base import JourneyModel

#: Journeys drawn at once (peak memory about 0.3 GB for the demo models).
CHUNK_JOURNEYS = 100_000
#: Most journeys ``model.simulate(n)`` returns as one DataFrame.
MAX_IN_MEMORY = 5_000_000
#: Free space kept on the target's file system beyond the estimated output size.
DISK_MARGIN = 64 * 2**20

#: Model type -> "module:function(model, n, rng, *, offset, n_total, **options)" drawing one
#: chunk as a canonical event log.
SIMULATORS = {
    "markov": "journeymodel.models.markov.predict:simulate_chunk",
    "stages": "journeymodel.models.stages.simulate:simulate_chunk",
}


def simulated_ids(n: int, *, offset: int = 0, n_total: int | None = None) -> np.ndarray:
    """Customer ids of journeys ``offset + 1 .. offset + n`` of ``n_total`` (default ``n``).

    Examples
    --------
    >>> simulated_ids(3, n_total=250, offset=99).tolist()
    ['sim100', 'sim101', 'sim102']
    >>> simulated_ids(2).tolist()
    ['sim1', 'sim2']
    """
    n_total = n if n_total is None else n_total
    width = len(str(max(int(n_total), 1)))
    numbers = np.arange(offset + 1, offset + n + 1).astype(str)
    return np.char.add("sim", np.char.zfill(numbers, width)).astype(object)


def check_journeys(n: Any, limit: int | None = None) -> int:
    """``n`` as an int >= 1 (and <= ``limit``), else an OptionError saying why."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise OptionError(f"the number of journeys n must be a whole number (got {n!r})")
    n = int(n)
    if n < 1:
        raise OptionError(f"the number of journeys n must be >= 1 (got {n})")
    if limit is not None and n > limit:
        raise OptionError(
            f"cannot simulate {n:,} journeys in memory (at most {limit:,}: a DataFrame takes "
            "about 0.2 GB per million journeys, several times that while they are drawn); "
            "write them to a file instead with "
            "journeymodel.models.simulate.simulate_to_file(model, "
            f"n, path), which streams them in chunks of {CHUNK_JOURNEYS:,} (the CLI's "
            "`journeymodel simulate -o` does)")
    return n


def _simulator(model: JourneyModel):
    target = SIMULATORS.get(model.model_type)
    if target is None:
        raise OptionError(f"simulation applies to {' and '.join(SIMULATORS)} models, not to a "
                          f"{model.model_type} model")
    model._check_fitted()
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def simulate_chunks(model: JourneyModel, n: int, *, seed: int | np.random.Generator = 0,
                    chunk: int | None = None, **options: Any) -> Iterator[pd.DataFrame]:
    """Yield ``n`` simulated journeys as event-log DataFrames of at most ``chunk`` journeys
    (default :data:`CHUNK_JOURNEYS`).

    One generator (``np.random.default_rng(seed)``) draws every chunk in turn, so the output is
    fixed by ``seed`` and ``chunk``; customer ids run on across chunks. ``options`` go to the
    model's simulator (``max_steps`` for Markov, ``max_length`` for stages).
    """
    n = check_journeys(n)
    chunk = _chunk(chunk)
    draw = _simulator(model)
    rng = np.random.default_rng(seed)
    for offset in range(0, n, chunk):
        size = min(chunk, n - offset)
        yield draw(model, size, rng, offset=offset, n_total=n, **options)


def _chunk(chunk: int | None) -> int:
    chunk = CHUNK_JOURNEYS if chunk is None else chunk
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise OptionError(f"chunk must be a whole number >= 1 (got {chunk!r})")
    return int(chunk)


def simulate_frame(model: JourneyModel, n: int, *, seed: int | np.random.Generator = 0,
                   chunk: int | None = None, **options: Any) -> pd.DataFrame:
    """``n`` simulated journeys as one DataFrame (at most :data:`MAX_IN_MEMORY`).

    The rows equal those :func:`simulate_to_file` writes for the same seed.

    Raises
    ------
    OptionError
        ``n`` < 1, or above :data:`MAX_IN_MEMORY` (the message names :func:`simulate_to_file`).
    """
    import pandas as pd

    n = check_journeys(n, MAX_IN_MEMORY)
    frames = list(simulate_chunks(model, n, seed=seed, chunk=chunk, **options))
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


@dataclass
class Simulated:
    """What :func:`simulate_to_file` wrote."""

    path: Path
    journeys: int
    events: int


def simulate_to_file(model: JourneyModel, n: int, path: str | Path, *,
                     seed: int | np.random.Generator = 0, chunk: int | None = None,
                     progress=None, **options: Any) -> Simulated:
    """Simulate ``n`` journeys straight into a CSV, TSV or Parquet event log, in bounded memory.

    Chunks of ``chunk`` journeys are appended to a temporary file in the target's folder,
    renamed to ``path`` once complete (:func:`journeymodel.io.outputs.atomic_path`): an error or
    an interrupt leaves neither a partial file nor the temporary one, and an existing ``path``
    is untouched until then. The content equals ``model.simulate(n, seed=seed)``.

    Parameters
    ----------
    progress : callable, optional
        Called with the number of journeys written so far after each chunk.

    Raises
    ------
    OptionError
        ``n`` < 1; an unknown suffix or a path that cannot be written (checked first); a model
        type that does not simulate; or an output that would not fit in the free disk space
        (estimated from the first chunk, before writing the rest).
    """
    from journeymodel.io.outputs import FrameWriter, atomic_path, frame_format

    n = check_journeys(n)
    fmt = frame_format(path)
    chunk = _chunk(chunk)
    with atomic_path(path, "simulated event log") as tmp, FrameWriter(tmp, fmt) as writer:
        done = 0
        for frame in simulate_chunks(model, n, seed=seed, chunk=chunk, **options):
            writer.write(frame)
            first = done == 0
            done += min(chunk, n - done)
            if first and done < n:
                _check_space(tmp, done, n, path)
            if progress is not None:
                progress(done)
    return Simulated(Path(path), n, writer.rows)


def _check_space(tmp: Path, done: int, n: int, path: str | Path) -> None:
    """Refuse when the whole output, extrapolated from the first ``done`` journeys, would not
    fit in the free space of the target's file system."""
    per = tmp.stat().st_size / done
    need = per * (n - done)
    free = shutil.disk_usage(tmp.parent).free
    if need + DISK_MARGIN > free:
        raise OptionError(
            f"{path}: {n:,} simulated journeys would take about {_size(per * n)} (measured on "
            f"the first {done:,}: {per:,.0f} bytes each), but {tmp.parent} has {_size(free)} "
            "free; simulate fewer journeys or write elsewhere")


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:,.0f} {unit}" if unit == "bytes" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1024
    raise AssertionError  # pragma: no cover
