"""Censored (in-flight) journeys in the Markov fit: what their last state contributes.

A journey still in flight at the end of observation has made its moves (counted as usual) and
then stayed silent in its last state ``s`` for ``e = observed_until - last event time``
(``e <= gap``, or it would be a drop-off). What is known of its next step is only that it has
not happened yet: with ``p_sk`` the chain's transition probabilities and ``S_k`` the survival of
the holding time before next event ``k`` (:class:`~journeymodel.stats.holding.HoldingTimes`),

    P(silent for e | s) = sum_k p_sk S_{a(s),k}(e) + p_s,dropoff

(drop-off is declared only after the gap, so its survival at ``e`` is 1; ``a(s)`` is the last
touchpoint of the window ``s``). Ignoring this term (counting nothing for the last state) loses
exactly the journeys that are about to drop off, so drop-off probabilities come out low on a
log cut mid-stream. The maximum-likelihood chain is found by EM: each censored last state is
allocated to its competing next events in proportion to ``p_sk S_k(e)``, the expected counts
are added to the observed ones, and the two steps alternate until the allocation stops moving
(the log-likelihood is concave in each row, so EM reaches the maximum). The Dirichlet posterior
(attribution intervals, predictions) is then built from the corrected expected counts.

With ``collapse_repeats`` a repeat of the last touchpoint keeps the journey in its state (a
window of one touchpoint repeated): with ``r`` the probability that the next event repeats it,
the survival of each next event ``k`` is ``r S_aa(e) + (1 - r) S_ak(e)`` (that of drop-off
``r S_aa(e) + 1 - r``): a repeat first, then the chain's own next step.

``censored="ignore"`` keeps the behaviour of ChannelAttribution (and of journeymodel before
issue 17), which counts nothing for censored journeys: for users comparing with it.
"""

from __future__ import annotations

import numpy as np

from journeymodel.choices import MARKOV_CENSORED
from journeymodel.stats.holding import HoldingTimes
from journeymodel.stats.transitions import CensoredStates, TransitionCounts, decode_keys

#: How censored journeys' last states enter the fit (``MarkovJourneyModel(censored=...)``).
CENSORED_HANDLING = MARKOV_CENSORED
_TOL = 1e-10
_MAX_ITER = 2000
_DROPOFF = -2
#: The dense EM block is used while it holds at most this many times the entries, and from
#: this many entries on (below, its Python loops over pair and cell ranks cost more than the
#: flat step's passes: at 1,000 customers 2x slower).
_DENSE_PAD = 2.5
_DENSE_MIN = 20_000
#: What a block of :func:`_dense_step` costs on its own, and each step of its loops, in places
#: of the block (measured: 20 us and 1.5 us against 1 ns a place).
_BLOCK_COST = 20_000
_LOOP_COST = 1_500


def bin_middles(edges: np.ndarray) -> np.ndarray:
    """A representative elapsed time per grid bin: the log-middle (the middle of bin 0)."""
    lo, hi = edges[:-1], edges[1:]
    with np.errstate(invalid="ignore"):
        mid = np.sqrt(lo * hi)
    mid[0] = hi[0] / 2.0
    return mid


def censored_allocation(counts: TransitionCounts, censored: CensoredStates,
                        holding: HoldingTimes, *, accelerate: bool = True,
                        steps: list | None = None) -> TransitionCounts:
    """Expected transitions of the censored last states (fractional counts), by EM.

    Parameters
    ----------
    counts : TransitionCounts
        Observed transitions.
    censored : CensoredStates
        Censored last states by elapsed-time bin (same order, repeat handling and names).
    holding : HoldingTimes
        Fitted holding times, on the same touchpoints.
    accelerate : bool
        Extrapolate the EM steps by SQUAREM (same fixed point, fewer steps); False: plain EM.
    steps : list, optional
        The number of EM steps taken is appended to it.

    Returns
    -------
    TransitionCounts
        Only the expected counts of the censored journeys (``counts + result`` is what the
        posterior is built from). States with no observed way out are left out (their rows
        get the prior's note in :func:`~journeymodel.models.markov.chain.build_chain`).
    """
    order, collapse, names = counts.order, counts.collapse, counts.touchpoints
    base = len(names) + 1
    empty = _counts(counts, *(np.zeros(0, np.int64),) * 2, np.zeros(0))
    rows, inv_cell = np.unique(censored.key, return_inverse=True)
    has_row = np.isin(rows, counts.from_key)
    if not has_row.any():
        return empty
    # the pairs of every censored state: its observed moves, plus drop-off
    sel = np.isin(counts.from_key, rows[has_row])
    pf, pt, pn = counts.from_key[sel], counts.to_key[sel], counts.count[sel]
    # rows are sorted and distinct: setdiff1d's result without its np.unique (which imports
    # numpy.ma, 5-10 ms of every fit markov process; issue 20)
    missing = rows[has_row][~np.isin(rows[has_row], pf[pt == _DROPOFF])]
    pf, pt, pn = (np.concatenate([pf, missing]),
                  np.concatenate([pt, np.full(len(missing), _DROPOFF)]),
                  np.concatenate([pn, np.zeros(len(missing))]))
    srt = np.lexsort((pt, pf))
    pf, pt, pn = pf[srt], pt[srt], pn[srt]
    prow = np.searchsorted(rows, pf)
    # cells (state, bin) and their expansion over the state's pairs
    cell_ok = has_row[inv_cell]
    crow, cbin, cc = inv_cell[cell_ok], censored.bin[cell_ok], censored.count[cell_ok]
    starts = np.searchsorted(prow, crow, "left")
    n_per = np.searchsorted(prow, crow, "right") - starts
    ent_cell = np.repeat(np.arange(len(crow)), n_per)
    ent_pair = np.repeat(starts, n_per) + (np.arange(int(n_per.sum()))
                                           - np.repeat(np.cumsum(n_per) - n_per, n_per))
    surv = _survival(pf, pt, ent_pair, cbin[ent_cell], holding, base, order,
                     collapse)
    start_extra = np.where(pt == _DROPOFF, 1.0, 0.0)  # start with room for drop-off
    expected, n_steps = _em(pn, prow, len(rows), ent_cell, ent_pair, surv, cc, start_extra,
                            accelerate)
    if steps is not None:
        steps.append(n_steps)
    keep = expected > 0
    return _counts(counts, pf[keep], pt[keep], expected[keep])


def _em(pn, prow, n_rows, ent_cell, ent_pair, surv, cc, start_extra, accelerate=True
        ) -> tuple[np.ndarray, int]:
    """Expected counts per pair at the maximum of the likelihood (see the module docstring),
    and the number of EM steps taken.

    With ``accelerate`` the steps are extrapolated by SQUAREM (Varadhan and Roland 2008,
    scheme S3): from ``x``, two EM steps give ``r = F(x) - x`` and ``v = F(F(x)) - 2 F(x) + x``,
    and the next point is ``x - 2 a r + a^2 v`` with ``a = -|r| / |v|`` (at most -1; ``a = -1``
    is the two plain steps). The censored states are independent problems (a state's pairs
    and cells meet no other state's), so each state takes its own step length, from the norms
    of its own ``r`` and ``v``: one length for all made the slowest state set the pace (issue
    20: at order 3 on the 100k and 1M tracker logs 340 and 288 steps, per state 70 and 77,
    with the same stopping rule and the result as close to a 10^4 times tighter solution:
    278 against 422, and 429 against 437, times the tolerance). The EM map and the stopping
    rule are the same, so the fixed point is the same; a state whose extrapolated point leaves
    the feasible set (a negative count) takes the plain steps' point, and an extrapolation
    that moves the map more than the plain steps did is replaced by the plain steps' point.
    """
    scale = _TOL * max(cc.sum(), 1.0)
    flat = _lazy(_flat_step, pn, prow, n_rows, ent_cell, ent_pair, surv, cc)
    step = _dense_step(pn, prow, n_rows, ent_cell, ent_pair, surv, cc, flat) or flat

    # the plain EM starts from zero expected counts, its first step from start_extra
    x, steps = step(start_extra), 1
    fallback, basis = None, np.inf  # the plain steps' point, and how far they moved
    while steps < _MAX_ITER:  # EM steps (whole arrays each)
        f1 = step(x)
        steps += 1
        res = np.abs(f1 - x).max(initial=0.0)
        if res <= scale:
            return f1, steps
        if fallback is not None and res > basis:  # the extrapolation did not help
            x, fallback, basis = fallback, None, np.inf
            continue
        if not accelerate:
            x = f1
            continue
        f2 = step(f1)
        steps += 1
        res2 = np.abs(f2 - f1).max(initial=0.0)
        if res2 <= scale:
            return f2, steps
        r, v = f1 - x, f2 - 2.0 * f1 + x
        a = _step_lengths(r, v, prow, n_rows)
        x_new = x - 2.0 * a * r + a * a * v
        # a state whose extrapolation leaves the feasible set takes the plain steps' point
        out = np.bincount(prow, weights=x_new < 0, minlength=n_rows)[prow] > 0
        plain = (a == -1.0) | out
        if plain.all():
            x, fallback = f2, None
        else:
            x, fallback, basis = np.where(plain, f2, x_new), f2, res2
    return x, steps


def _lazy(make, *args):
    """The EM map ``make(*args)``, made when first called (the dense step needs the flat one
    only for cells whose total is NaN: its gathers over the entries are saved otherwise)."""
    made = []

    def step(extra):
        if not made:
            made.append(make(*args))
        return made[0](extra)

    return step


def _flat_step(pn, prow, n_rows, ent_cell, ent_pair, surv, cc):
    """The EM map on the entries as they come (one per cell and pair of its state)."""
    cc_ent = cc[ent_cell]  # gathered once: every step uses the same values
    n_per = np.bincount(ent_cell, minlength=len(cc))  # entries of each cell (contiguous)
    buf = np.empty(len(ent_pair))  # the entries' buffer, reused by every step

    def step(extra):
        tot = pn + extra
        rowsum = np.bincount(prow, weights=tot, minlength=n_rows)[prow]
        p = np.divide(tot, rowsum, out=np.zeros_like(tot), where=rowsum > 0)
        num = np.take(p, ent_pair, out=buf)
        num *= surv
        Z = np.bincount(ent_cell, weights=num, minlength=len(cc))
        if not (Z > 0).all():
            if np.isnan(Z).any():
                return _plain_step(p, num, Z, ent_cell, ent_pair, cc_ent, len(pn))
            Z[Z <= 0] = 1.0  # a cell of Z = 0 has num = 0 everywhere: its share stays 0
        # in place, whole arrays: the same operations (and bits) as share = num / Z, then
        # cc * share, with 4 passes over the entries less (issue 20: 20% of the step)
        num /= np.repeat(Z, n_per)
        num *= cc_ent
        return np.bincount(ent_pair, weights=num, minlength=len(pn))

    return step


def _dense_step(pn, prow, n_rows, ent_cell, ent_pair, surv, cc, flat):
    """The EM map of :func:`_flat_step` on dense blocks of states, or None where the blocks
    would hold more than :data:`_DENSE_PAD` times the entries, or where there are fewer than
    :data:`_DENSE_MIN` entries.

    A state's cells and pairs meet no other state's, so the entries of a set of states fill
    a block indexed by the pair's rank among its state's pairs, the cell's rank among its
    state's cells (in cell order) and the state; empty places hold zeros. States are put in
    blocks by their number of cells (:func:`_state_blocks`), so that little of a block is
    empty. The sums are made as the flat step's ``bincount`` makes them, one term after the
    other in the same order (over pairs for a cell's total, over cells for a pair's expected
    count; a zero added at the end changes nothing), so the result is the same bits, without
    the gathers and scattered sums over the entries (issue 20: at order 3 on 100k customers,
    1.7x faster a step). Cells whose total is NaN take the flat step's way.
    """
    P, C = len(pn), len(cc)
    n_per = np.bincount(ent_cell, minlength=C)
    if len(ent_pair) < _DENSE_MIN or not (n_per > 0).all():
        return None
    first = np.searchsorted(prow, np.arange(n_rows))
    slot = np.arange(P) - first[prow]  # the pair's rank among its state's pairs
    crow = prow[ent_pair[np.cumsum(n_per) - n_per]]  # each cell's state
    ncell = np.bincount(crow, minlength=n_rows)
    npair = np.bincount(prow, minlength=n_rows)
    blocks = _state_blocks(ncell, npair)
    if sum(int(ncell[b].max() * npair[b].max()) * len(b) for b in blocks) > (
            _DENSE_PAD * len(ent_pair)):
        return None
    by_state = np.argsort(crow, kind="stable")
    rank = np.empty(C, np.int64)  # the cell's rank among its state's cells
    rank[by_state] = np.arange(C) - (np.cumsum(ncell) - ncell)[crow[by_state]]
    local = np.empty(n_rows, np.int64)  # a state's place in its block
    block_of = np.empty(n_rows, np.int64)
    for i, states in enumerate(blocks):
        local[states], block_of[states] = np.arange(len(states)), i
    # each entry's place (pair slot, cell rank, state) and block, made once for all (a
    # cell's entries are contiguous: what is the cell's is repeated, not gathered)
    e_slot = slot[ent_pair]
    e_rank, e_local = np.repeat(rank, n_per), np.repeat(local[crow], n_per)
    e_block = np.repeat(block_of[crow], n_per)
    parts = []
    for i, states in enumerate(blocks):
        J, K, R = int(npair[states].max()), int(ncell[states].max()), len(states)
        pairs = np.flatnonzero(block_of[prow] == i)
        ents = np.flatnonzero(e_block == i) if len(blocks) > 1 else slice(None)
        cells = np.flatnonzero(block_of[crow] == i)
        S = np.zeros((J, K, R))
        place = e_slot[ents] * K
        place += e_rank[ents]
        place *= R
        place += e_local[ents]
        S.ravel()[place] = surv[ents]  # one flat scatter (each entry has its own place)
        weight = np.zeros((K, R))
        weight[rank[cells], local[crow[cells]]] = cc[cells]
        parts.append((pairs, slot[pairs], local[prow[pairs]], S, weight))

    def step(extra):
        tot = pn + extra
        rowsum = np.bincount(prow, weights=tot, minlength=n_rows)[prow]
        p = np.divide(tot, rowsum, out=np.zeros_like(tot), where=rowsum > 0)
        out = np.empty(P)
        done = _block_steps(parts, p, out)
        return out if done else flat(extra)

    return step


def _block_steps(parts, p: np.ndarray, out: np.ndarray) -> bool:
    """The EM map of :func:`_dense_step` on its blocks ``parts``: each pair's expected count
    written to ``out``; False (and ``out`` left part-written) where a cell's total is NaN."""
    for pairs, pair_slot, pair_state, S, weight in parts:
        p_block = np.zeros((S.shape[0], S.shape[2]))
        p_block[pair_slot, pair_state] = p[pairs]
        num = S * p_block[:, None, :]
        Z = _ordered_sum(num, 0)  # a cell's total over its pairs, in pair order
        if np.isnan(Z).any():
            return False
        Z[Z <= 0] = 1.0  # empty places and cells of Z = 0: num = 0 there, the share stays 0
        num /= Z
        num *= weight
        total = _ordered_sum(num, 1)  # a pair's expected count over its cells, in order
        out[pairs] = total[pair_slot, pair_state]
    return True


def _ordered_sum(a: np.ndarray, axis: int) -> np.ndarray:
    """``a`` (3-d, C order) summed over ``axis`` (0 or 1) one term after the other, in order:
    the bits of ``a[0] + a[1] + ...``. With more than one place along the last axis numpy's
    reduction runs along that axis inside and adds the terms in order (one pass, 2.5x faster
    than a loop over the terms at order 3); alone along it, the terms would be the inner loop,
    which numpy sums pairwise (other bits), so they are added in a loop."""
    if a.shape[-1] > 1 and a.flags.c_contiguous:
        return np.add.reduce(a, axis=axis)
    terms = np.moveaxis(a, axis, 0)
    total = terms[0].copy()
    for term in terms[1:]:
        total += term
    return total


def _state_blocks(ncell: np.ndarray, npair: np.ndarray) -> list[np.ndarray]:
    """States grouped for :func:`_dense_step`: by ranges of their number of cells, chosen by
    dynamic programming to make the blocks' places (cells x pairs x states, with a cost per
    block and per loop step of the EM map: :data:`_BLOCK_COST`, :data:`_LOOP_COST`) fewest."""
    ks, group = np.unique(ncell, return_inverse=True)
    n = np.bincount(group).tolist()
    jmax = np.zeros(len(ks), np.int64)
    np.maximum.at(jmax, group, npair)
    ks, jmax = ks.tolist(), jmax.tolist()
    best, cut = [0.0] + [np.inf] * len(ks), [0] * (len(ks) + 1)
    for end in range(1, len(ks) + 1):  # blocks of the cell counts ks[start:end]
        j, states = 0, 0
        for start in range(end - 1, -1, -1):
            j, states = max(j, jmax[start]), states + n[start]
            cost = (best[start] + ks[end - 1] * j * states + _BLOCK_COST
                    + _LOOP_COST * (ks[end - 1] + j))
            if cost < best[end]:
                best[end], cut[end] = cost, start
    bounds, end = [], len(ks)
    while end > 0:
        bounds.append((cut[end], end))
        end = cut[end]
    return [np.flatnonzero((group >= a) & (group < b)) for a, b in reversed(bounds)]


def _plain_step(p, num, Z, ent_cell, ent_pair, cc_ent, n_pairs) -> np.ndarray:
    """The EM step's last part where a cell's total is NaN (no share there)."""
    Z = Z[ent_cell]
    share = np.divide(num, Z, out=np.zeros_like(num), where=Z > 0)
    return np.bincount(ent_pair, weights=cc_ent * share, minlength=n_pairs)


def _step_lengths(r: np.ndarray, v: np.ndarray, prow: np.ndarray, n_rows: int) -> np.ndarray:
    """SQUAREM's ``a = -|r| / |v|`` (at most -1) of each pair's state, from the norms over
    that state's pairs."""
    nr = np.sqrt(np.bincount(prow, weights=r * r, minlength=n_rows))
    nv = np.sqrt(np.bincount(prow, weights=v * v, minlength=n_rows))
    ratio = np.divide(nr, nv, out=np.ones(n_rows), where=nv > 0)
    return np.minimum(-ratio, -1.0)[prow]


def _survival(from_key, to_key, entry, bins, holding: HoldingTimes, base, order, collapse):
    """Survival of each competing next event at each censored cell's elapsed time: entry
    ``i`` is pair ``entry[i]`` (``from_key``, ``to_key``) at grid bin ``bins[i]``. What
    depends on the pair alone (touchpoints, repeat probability) is worked out per pair, then
    gathered (at order 3 a pair has a dozen or more entries); the survivals themselves depend
    on the pair's touchpoints and the bin alone: one table of every (touchpoint, next event,
    bin), gathered (at order 3 on 100k customers 290k entries, 10k places in the table; the
    same bits, each place worked out as each entry was)."""
    T = len(holding.touchpoints)
    width = T + 2
    n_bins = len(holding.edges) - 1
    # a censored elapsed time beyond the gap cannot happen (it would be a drop-off)
    mid = np.minimum(bin_middles(holding.edges), np.nextafter(holding.edges[-1], 0))
    src, dst = np.divmod(np.arange(T * width), width)
    table = holding.sf(src[:, None], dst[:, None], mid[None, :]).ravel()  # (T * width * bins)
    a = from_key % base - 1  # the newest touchpoint is the lowest digit
    a = np.where(from_key == 0, 0, a)
    target = np.where(to_key >= 0, to_key % base - 1,
                      np.where(to_key == -1, T, T + 1))  # -1 conversion, -3 churn
    drop = to_key == _DROPOFF
    start = (from_key == 0)[entry]
    drop_e = drop[entry]
    place = (a * width + np.where(drop, 0, target))[entry] * n_bins + bins
    s_k = np.where(drop_e, 1.0, table[place])
    if not collapse:
        return np.where(start, 1.0, s_k)
    # the repeat probability is the from state's: worked out once per state (a dozen pairs
    # each at order 3), then gathered
    states, of_pair = np.unique(from_key, return_inverse=True)
    r = _repeat_probability(states, np.where(states == 0, 0, states % base - 1), holding, base,
                            order)[of_pair][entry]
    s_aa = table[(a * (width + 1))[entry] * n_bins + bins]
    return np.where(start, 1.0, r * s_aa + (1.0 - r) * s_k)


def _repeat_probability(keys, a, holding: HoldingTimes, base, order) -> np.ndarray:
    """P(the next event repeats the last touchpoint and the state stays the same): windows
    of one touchpoint repeated (every window at order 1); 0 elsewhere."""
    codes = decode_keys(keys, base, order)
    uniform = np.all((codes == codes[:, :1]) | (codes < 0), axis=1) & (keys > 0)
    width = len(holding.touchpoints) + 2
    pk = holding.pair_src * width + holding.pair_dst
    key = a * width + a
    pos = np.clip(np.searchsorted(pk, key), 0, max(len(pk) - 1, 0))
    hit = (pk[pos] == key) if len(pk) else np.zeros(len(key), bool)
    r = np.where(hit, holding.p_next[pos] if len(pk) else 0.0, 0.0)
    return np.where(uniform, r, 0.0)


def _counts(like: TransitionCounts, f, t, c) -> TransitionCounts:
    z = np.zeros(0)
    return TransitionCounts(like.order, like.collapse, like.touchpoints, f.astype(np.int64),
                            t.astype(np.int64), c.astype(np.float64), np.zeros(len(c)),
                            z.astype(np.int64), z, z)

