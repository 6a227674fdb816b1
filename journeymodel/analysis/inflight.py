"""The journeys in flight and the simulation that continues them (issue 17), for
:mod:`journeymodel.analysis.forecast` (see its module docstring for the method).

:func:`in_flight` finds the censored journeys and the time already spent since their last event;
:func:`make_process` gives a model type's process (:class:`MarkovProcess`: window states with
back-off; :class:`StageProcess`: hidden stages), which draws posterior parameters, the first
move of every journey given the time already spent (exact), and the later moves;
:func:`simulate_chunks` runs every journey under every draw to the horizon, chunk by chunk.

Chance is counter-based (:mod:`journeymodel.analysis.chance`): every uniform a journey-draw
uses is a hash of the journey, the draw, the seed and the use, and the parameters of draw ``d``
come from a generator of the seed and ``d`` alone, so a journey's outcomes do not depend on
which other journeys are simulated with it, nor on how the draws are chunked (a forecast on
the partitions of a log gives every journey the bits of one process, issue 15). Hence every
sum over the options of a journey is written as a loop over the options, element by element
(not a matrix product, whose rounding may depend on the size of the matrices).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from journeymodel.analysis.chance import (
    ACCEPT,
    FIRST,
    HOLD,
    INIT,
    PROPOSE,
    Chance,
    draw_keys,
    journey_keys,
    param_rng,
    particle_keys,
    seed_int,
)
from journeymodel.analysis.draws import (
    categorical,
    categorical_columns,
    categorical_rows,
    columns,
    count_below,
    cumulative,
    first_above,
    products,
    runs,
    segment_cumsum,
    stage_totals,
)
from journeymodel.blas import one_blas_thread
from journeymodel.data.journeyset import CENSORED, JourneySet, ranges
from journeymodel.errors import OptionError

__all__ = ["CHURNED", "CONVERTED", "DROP", "DROPPED", "NONE", "Chunk", "InFlight",
           "MarkovProcess", "StageProcess", "in_flight", "journey_survival", "make_process",
           "simulate_chunks", "subset"]

#: Outcome codes of a journey-draw within the horizon.
NONE, CONVERTED, CHURNED, DROPPED = 0, 1, 2, 3
#: The next event is a drop-off (not a holding-time target).
DROP = -1
#: Journey-draws simulated at once.
CHUNK_PARTICLES = 2_000_000
#: Proposals per journey-draw before the last one is kept (see the module docstring).
MAX_REJECTIONS = 64
#: Cells per row of the guide table of the Markov moves (``MarkovProcess.propose``).
_GUIDE_CELLS = 256
#: Entries of the guide table at most (cells per row shrink below :data:`_GUIDE_CELLS` for
#: many rows: draws x states x 256 cells of the order-3 chain of the sample data, 910 states and
#: 66 draws per chunk, made 15M entries and 15M float starts, 230 MB, and its builds took
#: about half of a 30,000-journey forecast's 10-11 s of CPU under load 7, 5.3 s with the cap).
_GUIDE_BUDGET = 4_000_000
#: Moves per journey-draw at most (a journey still moving then is cut off).
MAX_STEPS = 1000


# ---------------------------------------------------------------------------------------------
# Journeys in flight


@dataclass(frozen=True, eq=False)
class InFlight:
    """The journeys in flight at ``as_of`` that can be continued, and what they need.

    ``journey`` indexes the journeys given; ``src`` is the holding-time touchpoint index of each
    journey's last touchpoint; ``last`` its time; ``elapsed = as_of - last``; ``key`` the
    journey's 64-bit key of chance (:func:`journeymodel.analysis.chance.journey_keys`).
    """

    journey: np.ndarray
    customer: np.ndarray
    start: np.ndarray
    src: np.ndarray
    last: np.ndarray
    elapsed: np.ndarray
    n_censored: int
    n_unknown: int
    survival: np.ndarray | None = None
    key: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.journey)


def in_flight(journeys: JourneySet, holding, as_of: float) -> InFlight:
    """The censored journeys with a touchpoint the holding times know as their last one."""
    censored = np.flatnonzero((journeys.outcome == CENSORED) & (journeys.lengths > 0))
    last_code = journeys.codes[journeys.offsets[1:][censored] - 1]
    index = {t: i for i, t in enumerate(holding.touchpoints)}
    lut = np.array([index.get(t, -1) for t in journeys.touchpoints] or [-1], np.int64)
    src = lut[last_code]
    ok = src >= 0
    j = censored[ok]
    last = journeys.times[journeys.offsets[1:][j] - 1]
    cust = (journeys.customers[journeys.customer[j]] if len(journeys.customers)
            and (journeys.customer[j] >= 0).all() else np.arange(len(j)).astype(str))
    cust = np.asarray(cust, dtype=object)
    return InFlight(j, cust, journeys.start[j], src[ok], last, np.maximum(as_of - last, 0.0),
                    len(censored), int((~ok).sum()), key=journey_keys(cust, journeys.start[j]))


# ---------------------------------------------------------------------------------------------
# Holding times: survival within the gap, and times drawn given the time already spent


def _survival(holding, src, dst, elapsed, gap: float | None) -> np.ndarray:
    """P(T > elapsed | T <= gap) per item (1 for a drop-off, whose time is the gap)."""
    out = np.ones(len(src))
    move = dst != DROP
    if move.any():
        s, d, e = src[move], dst[move], elapsed[move]
        sf = np.asarray(holding.sf(s, d, e), np.float64)
        if gap is not None:  # P(T > gap) per (touchpoint, target): one small table
            nt = len(holding.targets)
            grid = np.arange(len(holding.touchpoints) * nt)
            tail = np.asarray(holding.sf(grid // nt, grid % nt, np.full(len(grid), gap)),
                              np.float64)[s * nt + d]
            sf = np.clip((sf - tail) / np.maximum(1.0 - tail, 1e-300), 0.0, 1.0)
        out[move] = sf
    return out


def _holding_times(holding, src, dst, elapsed, gap: float | None,
                   chance: Chance) -> np.ndarray:
    """Times to the next event, drawn given ``T > elapsed`` (and ``T <= gap``: a few redraws,
    then the gap itself), from the particles' own uniforms."""
    t = np.asarray(holding.sample_uniform(src, dst, elapsed, chance.u(HOLD)), np.float64)
    if gap is None:
        return t
    for round_ in range(1, 9):
        over = np.flatnonzero(t > gap)
        if len(over) == 0:
            break
        t[over] = holding.sample_uniform(src[over], dst[over], elapsed[over],
                                         chance[over].u(HOLD, round_))
    return np.minimum(t, gap)


# ---------------------------------------------------------------------------------------------
# The processes: Markov windows and stages




class MarkovProcess:
    """Particles in a Markov model's window states; parameters: Dirichlet draws of the rows."""

    def __init__(self, model, journeys: JourneySet, flight: InFlight, holding) -> None:
        from journeymodel.stats.transitions import state_sequences

        chain = model.chain_
        self.conc = chain.conc
        self.n = chain.n
        codes = model.state_codes_
        length = (codes >= 0).sum(axis=1)
        cols = chain.conc.indices
        newest = codes[np.minimum(cols, self.n - 1), np.maximum(length[np.minimum(
            cols, self.n - 1)] - 1, 0)]
        tp_index = {t: i for i, t in enumerate(holding.touchpoints)}
        tp_lut = np.array([tp_index.get(t, DROP) for t in model.journeys_.touchpoints],
                          np.int64)
        absorbing = np.array([_target_of(name, holding) for name in chain.absorbing],
                             np.int64)
        target = np.where(cols < self.n, tp_lut[newest], absorbing[np.maximum(cols - self.n, 0)])
        self.row_of = np.repeat(np.arange(self.n), np.diff(chain.conc.indptr))
        mean = chain.conc.data / np.asarray(chain.conc.sum(axis=1)).ravel()[self.row_of]
        # prefix states (journeys shorter than the order) after the chain's states
        prefix_keys, p_ptr, p_tgt, p_next, self.p_prob = _prefix_rows(model, mean, target, tp_lut)
        self.n_states = self.n + len(prefix_keys)
        self.indptr = np.concatenate([chain.conc.indptr, chain.conc.nnz + p_ptr[1:]])
        self.target = np.concatenate([target, p_tgt])
        self.next_state = np.concatenate([np.where(cols < self.n, cols, -1), p_next])
        self.mean = np.concatenate([mean, self.p_prob])
        # where each journey stands: its window, or the windows it backs off to
        sub = journeys.take(flight.journey)
        seq = state_sequences(_recoded(sub, model.journeys_.touchpoints), model.order_,
                              model.collapse_repeats, model.base_)
        last_key = seq.keys[seq.offsets[1:] - 1]
        counts = getattr(model, "expected_counts_", model.counts_)  # as predict backs off
        visits = np.bincount(np.searchsorted(chain.keys, counts.from_key),
                             weights=counts.count, minlength=self.n)
        self.cand_ptr, self.cand_state, self.cand_w, self.backed_off = _candidates(
            last_key, sub, model, visits, prefix_keys)
        self.cand_cum = segment_cumsum(self.cand_w, self.cand_ptr)

    @property
    def usable(self) -> np.ndarray:
        return np.diff(self.cand_ptr) > 0

    @property
    def group_key(self) -> np.ndarray:
        """Journeys in one known window by their state, those that back off last."""
        single = np.diff(self.cand_ptr) == 1
        first = self.cand_state[np.minimum(self.cand_ptr[:-1], max(len(self.cand_state) - 1,
                                                                   0))]
        return np.where(single, first, self.n_states) if len(self.cand_state) else np.zeros(
            len(single), np.int64)

    def first_step(self, params, surv, chance: Chance):
        """(state, target, next state) of the first move of every journey under every draw,
        given the time already spent, each of shape (draws, journeys); ``chance`` holds the
        keys of the journey-draws, shape (draws, journeys).

        Exact for journeys in one known window, state by state (a loop
        over the states journeys stand in, not over journeys): the weights are the draw's row
        times the journey's survival ``p_k * S_k``; a drop-off (``S = 1``) is decided first
        from the row totals (one matrix product), then the move among the entries only for the
        journey-draws that move. Journeys that back off: by proposals (:func:`_by_rejection`).
        """
        n, n_draws = len(self.cand_ptr) - 1, params.shape[0]
        views = [np.empty((n_draws, n), np.int64) for _ in range(3)]
        single = np.diff(self.cand_ptr) == 1
        s1 = np.where(single, self.cand_state[np.minimum(self.cand_ptr[:-1],
                                                         len(self.cand_state) - 1)], -1)
        for lo, hi in runs(s1):  # loop over states (journeys come sorted by state)
            s_ = int(s1[lo])
            if s_ < 0:
                continue
            ent = np.arange(self.indptr[s_], self.indptr[s_ + 1])
            t_ent = self.target[ent]
            mv = t_ent != DROP
            S = surv[lo:hi][:, t_ent[mv]]  # (journeys, moves)
            Wm = params[:, ent[mv]]  # (draws, moves)
            move = products(Wm, S)  # (draws, journeys)
            drop = products(params[:, ent[~mv]], np.ones((1, int((~mv).sum()))))
            u = chance[:, lo:hi].u(FIRST) * (move + drop)
            goes = u < move
            d_i, j_i = np.nonzero(goes)
            Wm_t, S_t = np.ascontiguousarray(Wm.T), np.ascontiguousarray(S.T)
            cum = cumulative([Wm_t[k][d_i] * S_t[k][j_i] for k in range(len(Wm_t))])
            e = ent[mv][count_below(u[d_i, j_i], cum)]
            for view, value, moved in ((views[0], s_, s_), (views[1], DROP, self.target[e]),
                                       (views[2], -1, self.next_state[e])):
                view[:, lo:hi] = value
                view[d_i, lo + j_i] = moved
        many = np.flatnonzero(~single)
        if len(many):
            J, D = np.tile(many, n_draws), np.repeat(np.arange(n_draws), len(many))
            for view, got in zip(views, _by_rejection(self, J, D, params, surv, chance[D, J]),
                                 strict=True):
                view[:, many] = got.reshape(n_draws, len(many))
        return tuple(views)

    def draw_params(self, draws: range, seed: int, mean: bool = False):
        """Posterior draws ``draws`` of every row, shape (len(draws), entries); each draw from
        its own generator of ``seed`` and its number (the same on every partition)."""
        from journeymodel.models.markov.chain import draw_rows

        if mean:
            return self.mean[None, :]
        nnz = self.conc.nnz
        out = np.empty((len(draws), len(self.mean)))
        out[:, nnz:] = self.p_prob  # prefix rows: at their mean
        for i, d in enumerate(draws):  # loop over draws (one generator each)
            out[i, :nnz] = draw_rows(self.conc, 1, param_rng(seed, d))[0]
        return out

    def init_state(self, j: np.ndarray, r: np.ndarray) -> np.ndarray:
        """The state of journeys ``j`` (a draw among their candidates, at uniforms ``r``)."""
        lo = self.cand_ptr[j]
        hi = self.cand_ptr[j + 1]
        pick = lo.copy()
        many = np.flatnonzero(hi - lo > 1)
        if len(many):
            x = r[many] * self.cand_cum[hi[many] - 1]
            pick[many] = first_above(self.cand_cum, lo[many], hi[many], x)
        return self.cand_state[pick]

    def propose(self, state, d, params, chance: Chance, round_: int = 0):
        """(target, next state) of every particle in ``state`` under draw ``d`` of ``params``.

        The entry is the first of the row whose cumulative probability (within the row, the
        same bits in every chunk of draws) is above the particle's uniform: the guide table's
        guess, checked, else a binary search of the row."""
        n_draws, nnz = params.shape
        flat, guide, within = self._row_table(params)
        row = d * self.n_states + state
        r = chance.u(PROPOSE, round_)
        x = r * (1 - 1e-12)
        cells = len(guide) // (n_draws * self.n_states)
        i = guide[row * cells + np.minimum((r * cells).astype(np.int64), cells - 1)]
        lo = d * nnz + self.indptr[state]
        hi = d * nnz + self.indptr[state + 1]
        ok = ((i >= lo) & (i < hi) & (within[np.minimum(i, len(within) - 1)] > x)
              & ((i == lo) | (within[np.maximum(i - 1, 0)] <= x)))
        miss = np.flatnonzero(~ok)
        if len(miss):
            i[miss] = first_above(within, lo[miss], hi[miss], x[miss])
        entry = i % nnz
        return self.target[entry], self.next_state[entry]

    def _row_table(self, params):
        """(:func:`_row_cdf` of ``params``, its guide table: for cell ``c`` of row ``g``, the
        first index of the flat cdf above ``g + c / cells``, and the cumulative probabilities
        within each row), built once per chunk of draws (``propose`` runs every step with the
        same ``params``). ``cells`` per row: :data:`_GUIDE_CELLS`, fewer when the rows are
        many (:data:`_GUIDE_BUDGET`; a guess the guide misses is searched in its row)."""
        cached = getattr(self, "_table_of", None)
        if cached is not None and cached[0] is params:
            return cached[1:]
        flat, within = _row_cdf(params, self.indptr, self.n_states)
        rows = params.shape[0] * self.n_states
        cells = int(np.clip(_GUIDE_BUDGET // max(rows, 1), 1, _GUIDE_CELLS))
        starts = (np.arange(rows)[:, None] + np.arange(cells)[None, :] / cells).ravel()
        guide = np.minimum(np.searchsorted(flat, starts, side="right"), len(flat) - 1)
        self._table_of = (params, flat, guide, within)
        return flat, guide, within

    def next_weights(self, flight: InFlight, holding, gap) -> np.ndarray:
        """P(next event) per in-flight journey given its elapsed time, posterior mean,
        shape (n, n_targets + 1) (last column: drop-off)."""
        P = self.mean
        nt = len(holding.targets)
        out = np.zeros((flight.n, nt + 1))
        cnt = np.diff(self.cand_ptr)
        j_of = np.repeat(np.arange(flight.n), cnt)
        w_c = self.cand_w / np.maximum(np.bincount(j_of, weights=self.cand_w,
                                                  minlength=flight.n)[j_of], 1e-300)
        s = self.cand_state
        per = np.diff(self.indptr)[s]
        jj = np.repeat(j_of, per)
        ent = np.repeat(self.indptr[s], per) + ranges(per)
        w = np.repeat(w_c, per) * P[ent]
        tgt = self.target[ent]
        w = w * flight.survival[jj, tgt]
        np.add.at(out, (jj, np.where(tgt == DROP, nt, tgt)), w)
        return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-300)


class StageProcess:
    """Particles in a stages model's hidden stages; parameters: Dirichlet draws on the expected
    counts of every row (see the module docstring)."""

    def __init__(self, model, journeys: JourneySet, flight: InFlight, holding) -> None:
        from journeymodel.fit import hmm
        from journeymodel.stats.sequences import encode

        K = model.n_stages_
        symbols = model.symbols_[:-1]  # the last symbol is (direct)
        sub = journeys.take(flight.journey)
        enc = encode(sub, model.symbols_, dedupe=False)
        post = np.tile(model.startprob_, (flight.n, 1))
        post[enc.journey] = hmm.filter_last(enc.codes, enc.offsets, model.params_)[0]
        self.post_cum = np.cumsum(post, axis=1)
        self.post = post
        emis = model.emissionprob_[:, :-1]
        self.mean = (model.exitprob_, model.transmat_,
                     emis / np.maximum(emis.sum(axis=1, keepdims=True), 1e-300))
        cont = model.exitprob_[:, 0]
        visits = model.startprob_ @ np.linalg.inv(np.eye(K) - cont[:, None] * model.transmat_)
        counts = model.journeys_.outcome_counts or {}  # weighted journeys (paths have weights)
        n_journeys = float(sum(counts.values())) if counts else float(model.journeys_.n_journeys)
        self.rows = n_journeys * visits  # expected visits of each stage
        self.cont_rows = self.rows * cont
        tp_index = {t: i for i, t in enumerate(holding.touchpoints)}
        self.tp = np.array([tp_index.get(t, DROP) for t in symbols], np.int64)
        self.conv = _target_of("conversion", holding)
        self.churn = _target_of("churn", holding)
        self.usable = np.ones(flight.n, bool)
        self.group_key = np.zeros(flight.n, np.int64)
        self.backed_off = 0

    def draw_params(self, draws: range, seed: int, mean: bool = False):
        """Posterior draws ``draws`` of (exit, transition, emission) rows, their running sums
        and P(continue, then emit) per stage; each draw from its own generator of ``seed`` and
        its number (the same on every partition)."""
        exit_, trans, emis = self.mean
        if mean:
            return exit_[None], trans[None], emis[None]
        parts = []
        for d in draws:  # loop over draws (one generator each)
            rng = param_rng(seed, d)
            one = (_dirichlet(exit_, self.rows, 1, rng),
                   _dirichlet(trans, self.cont_rows, 1, rng),
                   _dirichlet(emis, self.rows, 1, rng))
            parts.append(one + (one[0][:, :, :1] * (one[1] @ one[2]),))
        drawn = tuple(np.concatenate(a) for a in zip(*parts, strict=True))
        return drawn[:3] + tuple(np.cumsum(a, axis=2) for a in drawn[:3]) + drawn[3:]

    def init_state(self, j: np.ndarray, r: np.ndarray) -> np.ndarray:
        return categorical(self.post_cum[j], r)

    def _targets(self) -> np.ndarray:
        """Holding target of each option ``touchpoints..., conversion, churn, dropoff``."""
        return np.concatenate([self.tp, [self.conv, self.churn, DROP]])

    def first_step(self, params, surv, chance: Chance):
        """(stage, target, next stage) of the first move of every journey under every draw,
        given the time already spent, each of shape (draws, journeys); ``chance`` holds the
        keys of the journey-draws, shape (draws, journeys).

        Exact over (current stage, next event) with weights ``post(s) q(k | s) S_k``: the
        drop-off (``S = 1``) is decided first from the totals (matrix products over all
        journey-draws), then the stage and the move only for the journey-draws that move, and
        the next stage given the touchpoint."""
        exit_, trans, emis = params[:3]
        go = params[6]  # (draws, K, touchpoints): continue, then x
        n_draws, K = exit_.shape[:2]
        n = len(self.post)
        q = np.concatenate([go, exit_[:, :, 1:3]], axis=2)  # (draws, K, moves)
        targets = self._targets()[:-1]  # the moves (the drop-off is the last option)
        S = surv[:, targets]  # (n, moves)
        per_stage = np.empty((n_draws, K, n))
        move, stay = np.empty((n_draws, n)), np.empty((n_draws, n))
        stage_totals(np.ascontiguousarray(q), np.ascontiguousarray(S.T),
                      np.ascontiguousarray(self.post.T), np.ascontiguousarray(exit_[:, :, 3]),
                      per_stage, move, stay)
        u = chance.u(FIRST) * (move + stay)
        goes = u < move
        d_i, j_i = np.nonzero(goes)
        ch = chance[d_i, j_i]
        # the stage given a move, then the move given the stage (K + W weights, not K * W)
        # (option by option, gathering with flat indices from contiguous columns)
        post_t, flat_ps = np.ascontiguousarray(self.post.T), per_stage.reshape(-1)
        at = d_i * (K * n) + j_i
        s_ = categorical_columns([post_t[k][j_i] * flat_ps[at + k * n] for k in range(K)],
                                  ch.u(FIRST, k=1))
        ds = d_i * K + s_
        q_t, S_t = columns(q.reshape(n_draws * K, -1)), np.ascontiguousarray(S.T)
        o = categorical_columns([q_t[m][ds] * S_t[m][j_i] for m in range(len(q_t))],
                                 ch.u(FIRST, k=2))
        x = np.minimum(o, len(self.tp) - 1)
        # next stage given it emits x
        trans_t, flat_em = columns(trans.reshape(n_draws * K, K)), emis.reshape(-1)
        at = d_i * (K * emis.shape[2]) + x
        s2 = categorical_columns([trans_t[k][ds] * flat_em[at + k * emis.shape[2]]
                                   for k in range(K)], ch.u(FIRST, k=3))
        state = np.zeros((n_draws, n), np.int64)
        tgt = np.full((n_draws, n), DROP, np.int64)
        nxt = np.full((n_draws, n), -1, np.int64)
        state[d_i, j_i], tgt[d_i, j_i] = s_, targets[o]
        nxt[d_i, j_i] = np.where(o < len(self.tp), s2, s_)
        return state, tgt, nxt

    def propose(self, state, d, params, chance: Chance, round_: int = 0):
        cum_exit, cum_trans, cum_emis = params[3:6]
        K = cum_exit.shape[1]
        e = categorical_rows(cum_exit.reshape(-1, cum_exit.shape[2]), d * K + state,
                              chance.u(PROPOSE, round_, 0))
        nxt = categorical_rows(cum_trans.reshape(-1, K), d * K + state,
                                chance.u(PROPOSE, round_, 1))
        x = categorical_rows(cum_emis.reshape(-1, cum_emis.shape[2]), d * K + nxt,
                              chance.u(PROPOSE, round_, 2))
        # exit 0: the touchpoint emitted; 1, 2: conversion, churn; 3: drop-off
        target = np.where(e == 0, self.tp[x], np.array([DROP, self.conv, self.churn, DROP])[e])
        return target, np.where(e == 0, nxt, state)

    def next_weights(self, flight: InFlight, holding, gap) -> np.ndarray:
        exit_, trans, emis = self.mean
        nt = len(holding.targets)
        out = np.zeros((flight.n, nt + 1))
        step = trans @ emis  # (K, touchpoints): the same on every partition
        post = self.post * exit_[:, 0]
        go = np.zeros((len(post), step.shape[1]))
        for k in range(len(step)):  # loop over stages (element by element, see the module)
            go += post[:, k, None] * step[None, k]
        n, T = go.shape
        jj = np.repeat(np.arange(n), T)
        tgt = np.tile(self.tp, n)
        w = go.ravel() * flight.survival[jj, tgt]
        known = tgt != DROP
        np.add.at(out, (jj[known], tgt[known]), w[known])
        for col, k in ((1, self.conv), (2, self.churn)):
            if k != DROP:
                out[:, k] += products(self.post, exit_[None, :, col])[:, 0] * (
                    flight.survival[:, k])
        out[:, nt] += products(self.post, exit_[None, :, 3])[:, 0]
        return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-300)


def _by_rejection(process, J, D, params, surv, chance: Chance):
    """The first move of journey-draws by proposals from the model (state included), each
    accepted with probability ``surv`` of its next event (see the module docstring);
    ``chance`` holds the keys of the journey-draws ``(J, D)``."""
    state = process.init_state(J, chance.u(INIT))
    tgt, nxt = process.propose(state, D, params, chance)
    pending = np.arange(len(J))
    for round_ in range(MAX_REJECTIONS):  # loop over rounds of proposals, not over journeys
        keep = chance[pending].u(ACCEPT, round_) < surv[J[pending], tgt[pending]]
        pending = pending[~keep]
        if len(pending) == 0:
            break
        ch = chance[pending]
        state[pending] = process.init_state(J[pending], ch.u(INIT, round_ + 1))
        tgt[pending], nxt[pending] = process.propose(state[pending], D[pending], params, ch,
                                                     round_ + 1)
    return state, tgt, nxt




def _dirichlet(probs: np.ndarray, rows: np.ndarray, n_draws: int, rng) -> np.ndarray:
    """Draws (n_draws, *probs.shape) of Dirichlet(probs[k] * rows[k]) for every row k."""
    conc = probs * np.maximum(rows, 1e-9)[:, None]
    g = rng.standard_gamma(np.broadcast_to(conc, (n_draws, *probs.shape)))
    s = g.sum(axis=-1, keepdims=True)
    return np.where(s > 0, g / np.where(s > 0, s, 1.0), probs[None])


def _target_of(name: str, holding) -> int:
    return holding.targets.index(name) if name in holding.targets else DROP


def _recoded(journeys: JourneySet, names: tuple[str, ...]) -> JourneySet:
    """``journeys`` in the codes of ``names`` (touchpoints the model does not know become the
    first name; :func:`_candidates` leaves those journeys out)."""
    from dataclasses import replace

    index = {t: i for i, t in enumerate(names)}
    lut = np.array([index.get(t, 0) for t in journeys.touchpoints] or [0], np.int32)
    return replace(journeys, codes=lut[journeys.codes], touchpoints=names)


def _candidates(last_key, journeys: JourneySet, model, visits, prefix_keys):
    """Per journey (CSR): the states it may stand in, with cumulative visit weights.

    A full window the model knows is the one state; a journey shorter than the order whose
    path begins some window from the start stands in that path's prefix state (index
    ``n + position in prefix_keys``). Otherwise (an unseen window, or an unseen short path)
    the journey backs off to the full windows whose newest ``m`` touchpoints are its own
    newest ``m``, for the largest ``m`` with any, drawn in proportion to their visits (as
    :func:`journeymodel.models.markov.predict.state_of_journeys`; none: the journey cannot be
    continued).
    """
    from journeymodel.stats.transitions import decode_keys

    chain = model.chain_
    order, base = model.order_, model.base_
    n_j = len(last_key)
    known_t = np.isin(np.asarray(journeys.touchpoints, dtype=object),
                      np.asarray(model.journeys_.touchpoints, dtype=object))
    bad = np.bincount(journeys.journey_of_event[~known_t[journeys.codes]],
                      minlength=n_j) > 0 if journeys.n_events else np.zeros(n_j, bool)
    codes = decode_keys(chain.keys, base, order)
    length = (codes >= 0).sum(axis=1)
    full = np.flatnonzero(length == order)
    full = full[full > 0]
    pos = np.clip(np.searchsorted(chain.keys, last_key), 0, chain.n - 1)
    exact = (chain.keys[pos] == last_key) & (length[pos] == order) & ~bad
    jl = decode_keys(last_key, base, order)
    jlen = (jl >= 0).sum(axis=1)
    ppos = np.clip(np.searchsorted(prefix_keys, last_key), 0, max(len(prefix_keys) - 1, 0))
    short = (jlen < order) & ~bad & (prefix_keys[ppos] == last_key if len(prefix_keys)
                                     else np.zeros(n_j, bool))
    cand_j = [np.flatnonzero(exact), np.flatnonzero(short)]
    cand_s = [pos[exact], chain.n + ppos[short]]
    exact = exact | short
    todo = ~exact & ~bad
    for m in range(order - 1 if order > 1 else 1, 0, -1):  # loop over suffix lengths (<= 3)
        if m > order:
            continue
        sfx_state = _suffix_keys(codes[full], length[full], m, base)
        sfx_j = _suffix_keys(jl, jlen, m, base)
        need = np.flatnonzero(todo & (jlen >= m))
        if len(need) == 0:
            break
        srt = np.argsort(sfx_state, kind="stable")
        lo = np.searchsorted(sfx_state[srt], sfx_j[need], "left")
        hi = np.searchsorted(sfx_state[srt], sfx_j[need], "right")
        cnt = hi - lo
        hit = cnt > 0
        cand_j.append(np.repeat(need[hit], cnt[hit]))
        cand_s.append(full[srt][np.repeat(lo[hit], cnt[hit]) + ranges(cnt[hit])])
        todo[need[hit]] = False
    cj, cs = np.concatenate(cand_j), np.concatenate(cand_s)
    srt = np.lexsort((cs, cj))
    cj, cs = cj[srt], cs[srt]
    ptr = np.zeros(n_j + 1, np.int64)
    np.cumsum(np.bincount(cj, minlength=n_j), out=ptr[1:])
    w = np.maximum(visits[np.minimum(cs, chain.n - 1)], 1e-12)  # prefix states: alone
    return ptr, cs, w, int((~exact & (np.diff(ptr) > 0)).sum())


def _prefix_rows(model, P: np.ndarray, target: np.ndarray, tp_target: np.ndarray):
    """Prefix states: a journey that has shown ``l < order`` touchpoints has not entered a
    window yet; its future is the start state's next windows that begin with its path
    (reweighted), as :func:`journeymodel.models.markov.predict.state_of_journeys` reads it.
    One state per such path; its moves: the next touchpoint ``y`` to the prefix ``path + y``
    (or to the full window, at length ``order``), and the path's own outcomes where it was a
    whole short journey (the short window's absorbing row).

    ``P`` holds the chain's mean probabilities (CSR layout of ``chain_.conc``), ``target`` the
    holding target of each entry, ``tp_target`` of each touchpoint code. Returns (sorted
    prefix keys, CSR indptr of their rows, target, next state (``n + prefix`` index, a
    window, or -1), probability) of the rows."""
    from journeymodel.stats.transitions import decode_keys

    chain, order, base = model.chain_, model.order_, model.base_
    n, conc = chain.n, chain.conc
    start = np.arange(conc.indptr[0], conc.indptr[1])
    start = start[conc.indices[start] < n]
    win = conc.indices[start]
    codes = decode_keys(chain.keys[win], base, order)
    length = (codes >= 0).sum(axis=1)
    w0 = P[start]
    keys, tgts, nexts, probs, nxt_keys = [], [], [], [], []
    for ell in range(1, order):  # loop over prefix lengths (at most 3)
        pk = _prefix_key(codes, ell, base)
        go = length > ell
        # the next touchpoint: the entry of the start row into the window, with its code
        y = codes[go, ell]
        y_target = tp_target[y]
        keys.append(pk[go])
        tgts.append(y_target)
        probs.append(w0[go])
        longer = _prefix_key(codes[go], ell + 1, base)
        nxt_keys.append(np.where(ell + 1 < order, longer, -1))
        nexts.append(np.where(ell + 1 < order, -1, win[go]))
        end = np.flatnonzero(length == ell)  # the path was a whole journey: its outcomes
        for i in end:  # loop over the short windows (a few per prefix length)
            ents = np.arange(conc.indptr[win[i]], conc.indptr[win[i] + 1])
            keys.append(np.full(len(ents), pk[i]))
            tgts.append(target[ents])
            probs.append(w0[i] * P[ents])
            nxt_keys.append(np.full(len(ents), -1))
            nexts.append(np.full(len(ents), -1))
    if not keys:
        empty = np.zeros(0, np.int64)
        return empty, np.zeros(1, np.int64), empty, empty, np.zeros(0)
    key, tgt, prob = np.concatenate(keys), np.concatenate(tgts), np.concatenate(probs)
    nxt_key, nxt = np.concatenate(nxt_keys), np.concatenate(nexts)
    uk = np.unique(key)
    row = np.searchsorted(uk, key)
    nxt = np.where(nxt_key >= 0, n + np.searchsorted(uk, np.maximum(nxt_key, 0)), nxt)
    # one entry per (row, target, next); rows sorted, each normalised
    combo, inv = np.unique(np.stack([row, tgt, nxt]), axis=1, return_inverse=True)
    p = np.bincount(inv.ravel(), weights=prob, minlength=combo.shape[1])
    z = np.bincount(combo[0], weights=p, minlength=len(uk))
    indptr = np.zeros(len(uk) + 1, np.int64)
    np.cumsum(np.bincount(combo[0], minlength=len(uk)), out=indptr[1:])
    return uk, indptr, combo[1], combo[2], p / np.maximum(z[combo[0]], 1e-300)


def _prefix_key(codes: np.ndarray, ell: int, base: int) -> np.ndarray:
    """Key of the oldest ``ell`` touchpoints of each window (codes oldest first)."""
    key = np.zeros(len(codes), np.int64)
    for i in range(ell):  # ell <= 3
        key = key * base + codes[:, i] + 1
    return key


def _suffix_keys(codes: np.ndarray, length: np.ndarray, m: int, base: int) -> np.ndarray:
    """Key of the newest ``m`` touchpoints of each window (codes oldest first, -1 padded)."""
    key = np.zeros(len(codes), np.int64)
    for i in range(m):  # m <= 3
        col = np.clip(length - m + i, 0, codes.shape[1] - 1)
        key = key * base + codes[np.arange(len(codes)), col] + 1
    return np.where(length >= m, key, -1)


def _row_cdf(params: np.ndarray, indptr: np.ndarray, n: int) -> np.ndarray:
    """Flat increasing CDF of every draw's CSR rows: draw ``d``, row ``r`` spans
    ``(d * n + r, d * n + r + 1]``; and the cumulative probabilities within each row (flat,
    the last of a row 1)."""
    D, nnz = params.shape
    c = np.cumsum(params, axis=1)
    counts = np.diff(indptr)
    before = np.concatenate([np.zeros((D, 1)), c], axis=1)[:, indptr[:-1]]
    within = c - np.repeat(before, counts, axis=1)
    ends = indptr[1:][counts > 0] - 1
    within[:, ends] = 1.0
    row_of = np.repeat(np.arange(len(counts)), counts)
    return (within + row_of[None, :] + (np.arange(D) * n)[:, None]).ravel(), within.ravel()


def make_process(model, journeys: JourneySet, flight: InFlight, holding):
    """The simulation process of a model type (Markov windows or hidden stages)."""
    if model.model_type == "markov":
        return MarkovProcess(model, journeys, flight, holding)
    if model.model_type == "stages":
        return StageProcess(model, journeys, flight, holding)
    raise OptionError(f"forecasting journeys in flight applies to markov and stages models, "
                      f"not to a {model.model_type} model")


# ---------------------------------------------------------------------------------------------
# The simulation


@dataclass
class Chunk:
    """One chunk of draws: ``outcome`` and its ``time`` (NaN when none), shape (draws, n);
    with ``record``, the events: journey, draw, time and target of every event."""

    draws: slice
    outcome: np.ndarray
    time: np.ndarray
    events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None


def simulate_chunks(process, flight: InFlight, holding, gap, end: float, n_draws: int,
                    seed: int | np.random.Generator, *, record: bool = False
                    ) -> Iterator[Chunk]:
    """Every in-flight journey continued under each posterior draw, chunk by chunk.

    A journey's outcome under draw ``d`` depends on the journey, ``d`` and ``seed`` only (see
    the module docstring): not on the other journeys of ``flight`` nor on the chunks."""
    n = flight.n
    seed = seed_int(seed)
    keys = draw_keys(seed, n_draws)
    per = max(1, min(n_draws, CHUNK_PARTICLES // max(n, 1)))
    for d0 in range(0, n_draws, per):
        dc = min(per, n_draws - d0)
        params = process.draw_params(range(d0, d0 + dc), seed)
        chance = Chance(particle_keys(flight.key, keys[d0:d0 + dc]))
        # many small products per state and chunk: BLAS threads only hand off (first move
        # 2.8 s against 0.9 s for 100,000 journeys x 40 draws on a busy machine, measured)
        with one_blas_thread():
            chunk = _run_chunk(process, flight, holding, gap, end, params, dc, d0, chance,
                               record)
        yield chunk


def journey_survival(holding, flight: InFlight, gap: float | None) -> np.ndarray:
    """P(T > elapsed | T <= gap) of every journey in flight for every next event, shape
    (n, n_targets + 1) (last column: a drop-off, 1), computed once for all draws."""
    nt = len(holding.targets)
    src = np.repeat(flight.src, nt)
    dst = np.tile(np.arange(nt), flight.n)
    out = np.ones((flight.n, nt + 1))
    out[:, :nt] = _survival(holding, src, dst, np.repeat(flight.elapsed, nt), gap).reshape(
        flight.n, nt)
    return out


def _run_chunk(process, flight, holding, gap, end, params, dc, d0, chance, record) -> Chunk:
    """Run ``dc`` draws of every journey in flight to the horizon.

    The first move is decided for every journey-draw at once as (draws, journeys) arrays;
    drop-offs end there. The journey-draws that move go on in compact arrays (journey-draw
    ``a`` is journey ``a % n`` under draw ``a // n``), compacted after every step."""
    n = flight.n
    code_of = np.zeros(len(holding.targets) + 1, np.int8)  # by target + 1 (0: drop-off)
    code_of[0] = DROPPED
    for name, code in (("conversion", CONVERTED), ("churn", CHURNED)):
        if name in holding.targets:
            code_of[holding.targets.index(name) + 1] = code
    state, tgt, nxt = process.first_step(params, flight.survival, chance)
    drop = tgt == DROP
    at_gap = flight.last + (np.inf if gap is None else gap)
    dropped = drop & (at_gap <= end)[None, :]
    outcome = np.where(dropped, DROPPED, NONE).astype(np.int8).ravel()
    when = np.where(dropped, at_gap[None, :], np.nan).ravel()
    a = np.flatnonzero(~drop.ravel())
    key = chance.keys.ravel()[a]  # each journey-draw's key, compacted with ``a``
    j = a % n
    src, t, elapsed = flight.src[j], flight.last[j], flight.elapsed[j]
    tgt, nxt = tgt.ravel()[a], nxt.ravel()[a]
    ev = []
    for step in range(1, MAX_STEPS + 1):  # loop over steps; every journey-draw moving at once
        if len(a) == 0:
            break
        t = t + _holding_times(holding, src, tgt, elapsed, gap, Chance(key, step))
        code = np.where(t <= end, code_of[tgt + 1], -1)  # -1: nothing more within the horizon
        done = np.flatnonzero(code > 0)
        hit = a[done]
        outcome[hit], when[hit] = code[done], t[done]
        if record:
            show = code >= 0
            ev.append((a[show], t[show], tgt[show]))
        go = np.flatnonzero(code == 0)  # (indices taken from every array: one pass)
        a, src, t, state, key = a[go], tgt[go], t[go], nxt[go], key[go]
        tgt, nxt = (process.propose(state, a // n, params, Chance(key, step)) if len(a)
                    else (a, a))
        drop = tgt == DROP  # a drop-off after a move: at that event plus the gap
        if drop.any():
            t_drop = t[drop] + (np.inf if gap is None else gap)
            inside = t_drop <= end
            hit = a[drop][inside]
            outcome[hit], when[hit] = DROPPED, t_drop[inside]
            keep = np.flatnonzero(~drop)
            a, src, t, tgt, nxt, key = (a[keep], src[keep], t[keep], tgt[keep], nxt[keep],
                                        key[keep])
        elapsed = np.zeros(len(a))
    events = None
    if record:
        p = np.concatenate([e[0] for e in ev]) if ev else np.zeros(0, np.int64)
        events = (p % n, d0 + p // n,
                  np.concatenate([e[1] for e in ev]) if ev else np.zeros(0),
                  np.concatenate([e[2] for e in ev]) if ev else np.zeros(0, np.int64))
    return Chunk(slice(d0, d0 + dc), outcome.reshape(dc, n), when.reshape(dc, n), events)

def subset(flight: InFlight, ok: np.ndarray) -> InFlight:
    """The journeys of ``flight`` at ``ok`` (a mask or indices), in that order."""
    return InFlight(flight.journey[ok], flight.customer[ok], flight.start[ok], flight.src[ok],
                    flight.last[ok], flight.elapsed[ok], flight.n_censored, flight.n_unknown,
                    key=None if flight.key is None else flight.key[ok])
