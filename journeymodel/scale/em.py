"""The stages model's EM on Dask: the distinct sequences stay on the workers, which run the
E-step; the client runs the M-step (issue 15).

One process fits the stages HMM from the distinct sequences of the whole log
(:class:`~journeymodel.stats.sequences.SequenceStats`). On Dask each shuffled partition keeps
its own distinct sequences on its worker (:func:`~journeymodel.scale.engine.persist_parts`),
and the client receives only what is small:

1. **Vocabulary**: the touchpoints, journey totals and holding-time statistics of every
   partition, added (:func:`vocabulary_only`). Each worker then recodes its sequences to
   the whole log's touchpoints (:func:`aligned_part`) and sends back its symbol counts, its
   weighted number of steps and the cells of its censored last steps (:class:`PartInfo`):
   everything the start of EM reads (the starting point is drawn from the seed and the
   summed symbol frequencies, so it is the one of one process).
2. **Censored cells**: the client builds the survival terms of the cells from the summed
   holding times (:meth:`RemoteSequences.censored_cells`) and each worker marks its censored
   last steps with their cell's symbol.
3. **EM**: each iteration the client sends the parameters, every worker runs the compiled
   forward-backward (:func:`journeymodel.fit.hmm.forward_backward`) over its sequences and
   returns its expected counts and log-likelihood (:class:`ExpectedCounts`, additive), summed
   in a tree on the workers; the client completes the counts of the censored cells and takes
   the M-step (:func:`journeymodel.fit.hmm.em`: the same loop and stopping rule).
4. **Stage order**: the posterior mean position of every stage, summed the same way.

The sums differ from one process's only in the order of the additions: the log-likelihoods
agreed to 4.4e-16 relative at 2M events (the issue asks 1e-9;
``benchmarks/bench_scale_stages.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from journeymodel.errors import OptionError
from journeymodel.fit import hmm
from journeymodel.models.stages.censoring import CensoredCells, censored_cells
from journeymodel.models.stages.fit import PositionSums, position_sums
from journeymodel.scale.engine import persist_parts, tree_sum
from journeymodel.scale.parts import PartResult
from journeymodel.stats.additive import Additive
from journeymodel.stats.sequences import N_STATUS, UNKNOWN, SequenceStats, StageStats
from journeymodel.stats.vocab import align

__all__ = ["ExpectedCounts", "PartInfo", "RemoteSequences", "WorkerSequences", "aligned_part",
           "check_engine", "fit_stages_scaled", "vocabulary_only"]

#: Cell key of a censored last step: ``touchpoint * CELL_BASE + elapsed bin``, the key
#: :func:`~journeymodel.models.stages.censoring.censored_cells` sorts its cells by.
CELL_BASE = 10_000


def fit_stages_scaled(model: Any, source: Any, options: Any, client: Any, *,
                      show_progress: bool = False, progress: Any = None) -> PartResult:
    """Fit the stages model ``model`` on the log ``source`` with the E-step on the workers.

    Parameters
    ----------
    model : StageModel
    source, options
        As :func:`journeymodel.scale.engine.map_log`.
    client : dask.distributed.Client
        Held open while the fit runs.
    show_progress : bool
        Progress bars of the scan and the shuffle.
    progress : callable(str), optional
        Receives a line after every E-step (``K=3: E-step 12 on 4 partitions ...``) and
        every restart.

    Returns
    -------
    PartResult
        The whole log's summary (``stats``: the sequences' vocabulary, totals and holding
        statistics), ledger and journey facts.

    Raises
    ------
    OptionError
        An engine other than ``"numba"`` (hmmlearn runs in one process).
    """
    check_engine(model)
    parts, summary = persist_parts(source, options, client, model.stats_of, vocabulary_only,
                                   progress=show_progress)
    remote = RemoteSequences(client, parts, summary.stats.sequences.touchpoints,
                             progress=progress)
    del parts  # the aligned sequences replace them on the workers
    try:
        model.fit_stats(summary.stats, progress=progress, remote=remote)
    finally:
        remote.release()
    return summary


def check_engine(model: Any) -> None:
    """OptionError unless the stages model's forward-backward can run on the workers."""
    if model.engine != "numba":
        raise OptionError(f"engine {model.engine!r} runs in one process; on Dask the E-step "
                          "runs on the workers with engine 'numba' (--engine numba)")


def vocabulary_only(stats: StageStats) -> StageStats:
    """A partition's :class:`StageStats` without its sequences (their touchpoints kept):
    what the client sums (vocabulary, journey totals, holding times)."""
    seqs = stats.sequences
    empty = SequenceStats(seqs.touchpoints, np.zeros(0, np.int64), np.zeros(1, np.int64),
                          np.zeros(0))
    return StageStats(empty, stats.totals, stats.holding)


# ---------------------------------------------------------------------------------------------
# On the workers


@dataclass(frozen=True)
class WorkerSequences:
    """A partition's distinct sequences over the whole log's alphabet, kept on its worker.

    Attributes
    ----------
    codes : ndarray of int64
        Combined symbols (``touchpoint * 5 + exit status``).
    offsets : ndarray of int64
    weight : ndarray of float64
    elapsed_bin : ndarray of int64
        Elapsed-time bin of each censored sequence (-1 for the others).
    em_codes : ndarray of int64
        What EM reads: ``codes`` with each censored last step of a known cell replaced by its
        cell's symbol (equal to ``codes`` without cells).
    """

    codes: np.ndarray
    offsets: np.ndarray
    weight: np.ndarray
    elapsed_bin: np.ndarray
    em_codes: np.ndarray

    def cell_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the censored last steps with a known elapsed bin, and their cell
        keys (the selection of :func:`~journeymodel.models.stages.censoring.censored_cells`)."""
        last = self.offsets[1:] - 1
        cens = np.flatnonzero((self.elapsed_bin >= 0) & (np.diff(self.offsets) > 0))
        cens = cens[self.codes[last[cens]] % N_STATUS == UNKNOWN]
        at = last[cens]
        return at, self.codes[at] // N_STATUS * CELL_BASE + self.elapsed_bin[cens]


@dataclass(frozen=True, eq=False)
class PartInfo(Additive):
    """What the start of EM reads of a partition's sequences: weighted symbol counts, the
    weighted number of steps, and the distinct cells of its censored last steps with their
    weights.

    Attributes
    ----------
    counts : ndarray of float64, shape (n_symbols,)
    n_obs : float
    cell_keys : ndarray of int64
        Sorted distinct cell keys (``touchpoint * CELL_BASE + elapsed bin``).
    cell_weights : ndarray of float64
        Weighted censored last steps in each cell.
    """

    counts: np.ndarray
    n_obs: float
    cell_keys: np.ndarray
    cell_weights: np.ndarray

    def _add(self, other: PartInfo) -> PartInfo:
        keys = np.union1d(self.cell_keys, other.cell_keys)
        weights = np.zeros(len(keys))
        weights[np.searchsorted(keys, self.cell_keys)] += self.cell_weights
        weights[np.searchsorted(keys, other.cell_keys)] += other.cell_weights
        return PartInfo(self.counts + other.counts, self.n_obs + other.n_obs, keys, weights)


@dataclass(frozen=True, eq=False)
class ExpectedCounts(Additive):
    """A partition's E-step: weighted log-likelihood and expected counts (they add)."""

    log_likelihood: float
    start: np.ndarray
    trans: np.ndarray
    emission: np.ndarray

    def _add(self, other: ExpectedCounts) -> ExpectedCounts:
        return ExpectedCounts(self.log_likelihood + other.log_likelihood,
                              self.start + other.start, self.trans + other.trans,
                              self.emission + other.emission)


def aligned_part(part: PartResult, touchpoints: tuple[str, ...]) -> WorkerSequences:
    """A partition's sequences recoded to the whole log's ``touchpoints`` (no sequences for a
    partition without usable rows)."""
    if part.stats is None:
        none = np.zeros(0, np.int64)
        return WorkerSequences(none, np.zeros(1, np.int64), np.zeros(0), none, none)
    seqs = part.stats.sequences
    union, index, _ = align(seqs.touchpoints, tuple(touchpoints))
    seqs = seqs.recoded(union, index)
    return WorkerSequences(seqs.codes, seqs.offsets, seqs.weight, seqs.elapsed_bins,
                           seqs.codes)


def part_info(part: WorkerSequences, n_symbols: int) -> PartInfo:
    """The :class:`PartInfo` of a partition (``n_symbols``: the combined alphabet's size)."""
    lengths = np.diff(part.offsets)
    counts = np.bincount(part.codes, weights=np.repeat(part.weight, lengths),
                         minlength=n_symbols)
    at, keys = part.cell_keys()
    step_weight = np.repeat(part.weight, lengths)[at]
    cells, of = np.unique(keys, return_inverse=True)
    return PartInfo(counts, float(np.dot(part.weight, lengths)), cells,
                    np.bincount(of, weights=step_weight, minlength=len(cells)))


def with_cells(part: WorkerSequences, keys: np.ndarray, n_base: int) -> WorkerSequences:
    """The partition with each censored last step as the symbol ``n_base + cell`` of its cell
    among the whole log's sorted cell ``keys``."""
    at, own = part.cell_keys()
    codes = part.codes.copy()
    codes[at] = n_base + np.searchsorted(keys, own)
    return dataclasses.replace(part, em_codes=codes)


def part_estep(part: WorkerSequences, params: hmm.HMMParams) -> ExpectedCounts:
    """A partition's E-step under ``params``."""
    e = hmm.forward_backward(part.em_codes, part.offsets, params, part.weight)
    return ExpectedCounts(e.total(part.weight), e.start_counts, e.trans_counts,
                          e.emission_counts)


def part_positions(part: WorkerSequences, params: hmm.HMMParams) -> PositionSums:
    """A partition's posterior-weighted step positions of the stages."""
    return position_sums(params, part.codes, part.offsets, part.weight)


# ---------------------------------------------------------------------------------------------
# On the client


class RemoteSequences:
    """The distinct sequences of a log, held by the Dask workers that run their E-steps.

    What :meth:`StageModel.fit_stats <journeymodel.models.stages.model.StageModel.fit_stats>`
    (``remote=``) and :func:`journeymodel.fit.hmm.fit_hmm` (``data=``) read: ``n_obs``,
    ``base_counts``, :meth:`symbol_counts`, :meth:`estep`, :meth:`censored_cells` and
    :meth:`mean_position`. No sequence comes to the client.

    Parameters
    ----------
    client : dask.distributed.Client
    parts : list of Future
        The partitions' :class:`~journeymodel.scale.parts.PartResult` with
        :class:`StageStats` (from :func:`~journeymodel.scale.engine.persist_parts`).
    touchpoints : tuple of str
        The whole log's touchpoints (sorted union of the partitions').
    progress : callable(str), optional
        Receives a line after every E-step.
    """

    def __init__(self, client: Any, parts: list, touchpoints: tuple[str, ...], *,
                 progress: Any = None) -> None:
        self.client, self.touchpoints, self.progress = client, tuple(touchpoints), progress
        self.n_base = (len(self.touchpoints) + 1) * N_STATUS
        self._parts = [client.submit(aligned_part, p, self.touchpoints, pure=False)
                       for p in parts]
        info = self._sum(part_info, self.n_base)
        self.base_counts, self.n_obs = info.counts, info.n_obs
        self._keys, self._key_weights = info.cell_keys, info.cell_weights
        self._iterations: dict[int, int] = {}

    def _sum(self, fn: Any, *args: Any) -> Any:
        futures = [self.client.submit(fn, p, *args, pure=False) for p in self._parts]
        return tree_sum(self.client, futures).result()

    def censored_cells(self, holding: Any) -> CensoredCells | None:
        """The cells of the censored last steps with their survival under ``holding`` (the
        client's copy holds no sequence codes); the workers mark their cells for EM."""
        if holding is None or not len(self._keys):
            return None
        n = len(self._keys)
        probe = SequenceStats(self.touchpoints, self._keys // CELL_BASE * N_STATUS + UNKNOWN,
                              np.arange(n + 1, dtype=np.int64), np.ones(n),
                              self._keys % CELL_BASE)  # one sequence per cell
        cells = censored_cells(probe, holding)
        self._parts = [self.client.submit(with_cells, p, self._keys, self.n_base, pure=False)
                       for p in self._parts]
        return dataclasses.replace(cells, codes=np.zeros(0, np.int64))

    def symbol_counts(self, n_symbols: int) -> np.ndarray:
        """Weighted count of each symbol EM reads: the base alphabet's (``n_symbols`` equal to
        it), or with the censored last steps moved to their cells' symbols after it."""
        counts = np.zeros(n_symbols)
        counts[:self.n_base] = self.base_counts
        if n_symbols > self.n_base:
            np.subtract.at(counts, self._keys // CELL_BASE * N_STATUS + UNKNOWN,
                           self._key_weights)
            counts[self.n_base:] = self._key_weights
        return counts

    def estep(self, params: hmm.HMMParams) -> tuple[hmm.EStep, float]:
        """One E-step on every worker, summed: the expected counts and the log-likelihood."""
        total = self._sum(part_estep, params)
        K = params.n_states
        self._iterations[K] = n = self._iterations.get(K, 0) + 1
        if self.progress is not None:
            self.progress(f"K={K}: E-step {n} on {len(self._parts)} partitions, "
                          f"log-likelihood {total.log_likelihood:,.2f}")
        return (hmm.EStep(np.zeros(0), total.start, total.trans, total.emission),
                total.log_likelihood)

    def mean_position(self, params: hmm.HMMParams) -> np.ndarray:
        """Posterior mean step index of each stage over every worker's sequences."""
        return self._sum(part_positions, params).mean()

    def release(self) -> None:
        """Let the workers drop the sequences."""
        self._parts = []
