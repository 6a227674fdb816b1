"""Surprises in valid data, said out loud: things that are not errors but change the answer.

- :func:`infer_sentiment_scale`: the sentiment scale (1-5, 0-10, -1..1, ...) read from the bulk
  of the scores, so that two outliers (99, -50) do not rescale every score.
- :func:`outlying_end`: the end of observation set by a small tail of rows far after the
  others (two customers in 2200), which turns open journeys into drop-offs.
- :func:`conversion_candidates`: touchpoints that look like conversions when the log has no row
  with a conversion label.

Each returns facts; the reader turns them into notes and :class:`~journeymodel.errors.DataWarning`.
All are numpy over whole arrays.
"""

from __future__ import annotations

import re

import numpy as np

#: Common sentiment scales, narrowest first: the first that holds all but at most 1% of the
#: scores is used (an NPS column with 3% zeros is 0-10, not 1-10).
SENTIMENT_SCALES = ((0.0, 1.0), (-1.0, 1.0), (1.0, 5.0), (0.0, 5.0), (1.0, 7.0), (1.0, 10.0),
                    (0.0, 10.0), (0.0, 100.0), (-100.0, 100.0))
#: Share of scores allowed outside an inferred scale (they are counted as invalid).
OUTLIER_SHARE = 0.01
#: Least share of a common scale the scores must span for it to be taken.
MIN_FILL = 0.2
#: A tail of at most this share of rows that sets the end of observation,
#: after a hole longer than the gap and than the time the other rows span, is called outlying.
TAIL_SHARE = 0.05

_CONVERSION_NAME = re.compile(
    r"purchas|order|checkout|sign_?up|signed_?up|subscri|convert|conversion|buy|bought|"
    r"\bpaid|payment_?(complete|success|done)|booking|booked|\bsale|transaction|regist|"
    r"thank_?you|won\b|deal_?closed|activat", re.IGNORECASE)


def infer_sentiment_scale(raw: np.ndarray) -> tuple[tuple[float, float] | None, bool]:
    """The scale of sentiment scores: ``(scale, known)``.

    ``known`` is True when the scale is one of :data:`SENTIMENT_SCALES`: the narrowest that
    holds all but at most ``OUTLIER_SHARE`` of the scores and whose scores span at least
    :data:`MIN_FILL` of it (scores in -3..2 are not on -100..100). Otherwise the observed range
    is returned with ``known`` False (constant scores: the narrowest common scale holding
    them). ``(None, False)`` without any finite score.

    Examples
    --------
    >>> infer_sentiment_scale(np.r_[np.tile([1.0, 2, 3, 4, 5], 100), 99, -50])
    ((1.0, 5.0), True)
    >>> infer_sentiment_scale(np.array([-0.5, 0.25, 0.9]))
    ((-1.0, 1.0), True)
    >>> infer_sentiment_scale(np.array([-3.0, 2.0]))
    ((-3.0, 2.0), False)
    """
    finite = raw[np.isfinite(raw)]
    n = finite.size
    if n == 0:
        return None, False
    allowed = int(np.floor(OUTLIER_SHARE * n))
    lo_obs, hi_obs = float(finite.min()), float(finite.max())
    for lo, hi in SENTIMENT_SCALES:
        if lo <= lo_obs and hi_obs <= hi:
            span = hi_obs - lo_obs
        elif allowed and not (hi_obs < lo or lo_obs > hi):
            inside = finite[(finite >= lo) & (finite <= hi)]
            if n - inside.size > allowed or inside.size == 0:
                continue
            span = float(inside.max() - inside.min())
        else:
            continue
        if span >= MIN_FILL * (hi - lo):
            return (lo, hi), True
    if hi_obs > lo_obs:
        return (lo_obs, hi_obs), False
    for lo, hi in SENTIMENT_SCALES:
        if lo <= lo_obs <= hi:
            return (lo, hi), False
    return (lo_obs - 1.0, lo_obs + 1.0), False


def outlying_end(time: np.ndarray, gap: float | None, end: float | None = None
                 ) -> tuple[float, float, int] | None:
    """``(bulk_end, end, n_tail)`` when the last of the (finite) ``time`` values (``end``) is set
    by a small tail of rows
    that lie more than ``gap`` after the end of all the others (``bulk_end``), else None.

    A tail is outlying when it holds at most ``TAIL_SHARE`` of the rows and the
    hole before it is longer than the gap and than the time all the other rows span (a log
    that pauses and resumes is not flagged). Detection halves the time range: rows in the
    later half are the tail when they are few; the search repeats on the earlier rows while
    the tail stays small (a tail in 2200 and another in 2100).
    Without a gap nothing turns into a drop-off, so nothing is reported. ``end``: the maximum,
    when the caller has it already.

    Examples
    --------
    >>> t = np.r_[np.arange(1000.0), 1e6, 1e6 + 5]
    >>> outlying_end(t, 30.0)
    (999.0, 1000005.0, 2)
    >>> outlying_end(np.arange(1000.0), 30.0) is None
    True
    """
    if gap is None or time.size < 2:
        return None
    end = float(time.max()) if end is None else end
    limit = int(TAIL_SHARE * time.size)  # below 20 rows no row is a "small" tail
    if limit == 0:
        return None
    lo, hi, tail = float(time.min()), end, 0
    if time.size > 200_000:  # most logs: a strided sample shows the later half is no tail
        step = time.size // 100_000
        if np.count_nonzero(time[::step] > lo + (hi - lo) / 2) > 4 * TAIL_SHARE * 100_000:
            return None
    for _ in range(8):
        if hi <= lo:
            break
        mid = lo + (hi - lo) / 2
        later = int(np.count_nonzero(time > mid))
        if tail + later > limit or later == 0:
            break
        bulk_end = float(time[time <= mid].max())
        if hi - bulk_end <= max(gap, bulk_end - lo):
            break
        tail += later
        time = time[time <= mid]
        hi = bulk_end
    if tail == 0:
        return None
    return hi, end, tail


def conversion_candidates(labels, touchpoint: np.ndarray, first: np.ndarray,
                          exclude: set[str], value: np.ndarray | None = None,
                          top: int = 5) -> list[tuple[str, str]]:
    """Touchpoints that look like conversions: ``[(label, why), ...]``, named ones first.

    By name (purchase, order, checkout_complete, signup, subscribe, ...) and by behaviour,
    among touchpoints seen at least 5 times: one that ends most (over half) of the journeys it
    appears in, or one whose rows mostly carry a value (revenue). ``touchpoint`` holds each
    row's code into ``labels`` (rows sorted by customer and time), ``first`` the first row of
    each journey, ``value`` each row's value (NaN where none).
    """
    n, L = len(touchpoint), len(labels)
    if n == 0 or L == 0:
        return []
    jid = np.zeros(n, np.int64)
    jid[first[1:]] = 1
    np.cumsum(jid, out=jid)
    last = np.append(first[1:] - 1, n - 1)
    ends = np.bincount(touchpoint[last], minlength=L)
    contains = np.bincount(np.unique(jid * L + touchpoint) % L, minlength=L)
    rows = np.bincount(touchpoint, minlength=L)
    valued = (np.bincount(touchpoint, weights=(np.nan_to_num(value) != 0), minlength=L)
              if value is not None else np.zeros(L))
    with np.errstate(invalid="ignore", divide="ignore"):
        end_share, value_share = ends / contains, valued / rows
    found = []
    for i, lab in enumerate(str(x) for x in labels):
        if lab in exclude:
            continue
        why = ["its name"] if _CONVERSION_NAME.search(lab) else []
        if contains[i] >= 5 and end_share[i] > 0.5:
            why.append(f"ends {end_share[i]:.0%} of the {contains[i]:,} journeys it is in")
        if rows[i] >= 5 and value_share[i] >= 0.5:
            why.append(f"{value_share[i]:.0%} of its rows carry a value")
        if why:
            found.append((why[0] != "its name", -len(why), -rows[i], lab, "; ".join(why)))
    return [(lab, why) for *_, lab, why in sorted(found)][:top]
