"""Counter-based chance for the simulation of journeys in flight (issue 15): every journey gets
the same random numbers whatever else is simulated with it, so a forecast split over the
partitions of a log (Dask workers) gives each journey the bits one process gives it.

A journey-draw (a *particle*: journey ``j`` under posterior draw ``d``) has a 64-bit key, a hash
of the journey (its customer id and start time, :func:`journey_keys`) and of the draw and the
seed (:func:`draw_keys`). Every uniform it needs is a hash of its key and a *counter* naming
the use: the step of the simulation, the round of a rejection loop and the purpose (the first
move, the holding time, ...). The hash is SplitMix64's finaliser, as in
:meth:`journeymodel.data.journeyset.JourneySet.uniforms`; the customer ids are hashed with
:func:`journeymodel.data.hashing.fnv1a`. Vectorised over particles: no Python loop per journey.

The posterior parameters of draw ``d`` come from a numpy Generator seeded by the seed and ``d``
alone (:func:`param_rng`), the same on every partition: the draws stay joint across journeys
(every journey of draw ``d`` sees the same parameters), so intervals of totals do not narrow
when the journeys are split.
"""

from __future__ import annotations

import numba
import numpy as np

from journeymodel.data.hashing import splitmix as mix

__all__ = ["FIRST", "HOLD", "INIT", "ACCEPT", "PROPOSE", "Chance", "draw_keys",
           "journey_keys", "mix", "param_rng", "particle_keys", "seed_int"]

_GOLDEN = np.array([0x9E3779B97F4A7C15], np.uint64)
#: Purposes of the uniforms (a counter is ``((step * 128 + round) * 16 + purpose) * 8 + k``,
#: ``k`` numbering the uniforms one use takes).
FIRST, INIT, ACCEPT, PROPOSE, HOLD = 1, 2, 3, 4, 5
#: Stream of the posterior parameter draws (apart from every other use of the seed).
PARAM_STREAM = 0x5EED_F0CA


def seed_int(seed: int | np.random.Generator) -> int:
    """The seed as an integer in ``[0, 2**64)`` (a Generator gives one draw)."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**63))
    return int(seed) % 2**64


def journey_keys(customers: np.ndarray, start: np.ndarray) -> np.ndarray:
    """A 64-bit key per journey: its customer id (as text) hashed with its start time."""
    from journeymodel.data.hashing import text_hashes

    if len(customers) == 0:
        return np.zeros(0, np.uint64)
    ids = text_hashes(np.asarray(customers))  # numpy's text: Arrow's pa.array imports pandas
    bits = np.ascontiguousarray(start, np.float64).view(np.uint64)
    return mix(ids.astype(np.uint64) ^ mix(bits ^ _GOLDEN))


def draw_keys(seed: int, n_draws: int) -> np.ndarray:
    """A 64-bit key per posterior draw ``0..n_draws-1`` under ``seed``."""
    base = mix(np.array([seed % 2**64], np.uint64))
    return mix(base ^ (np.arange(1, n_draws + 1, dtype=np.uint64) * _GOLDEN))


def particle_keys(journeys: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """The key of every journey-draw, shape (len(draws), len(journeys)):
    ``mix(journeys[j] ^ draws[d])``."""
    out = np.empty((len(draws), len(journeys)), np.uint64)
    _particle_keys(np.ascontiguousarray(journeys, np.uint64),
                   np.ascontiguousarray(draws, np.uint64), out)
    return out


@numba.njit(cache=True, nogil=True)
def _particle_keys(journeys, draws, out):  # pragma: no cover - compiled
    for d in range(len(draws)):
        for j in range(len(journeys)):
            z = journeys[j] ^ draws[d]
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            out[d, j] = z ^ (z >> np.uint64(31))


def param_rng(seed: int, draw: int) -> np.random.Generator:
    """The Generator of the posterior parameters of draw ``draw`` (seed and draw alone)."""
    return np.random.default_rng(np.random.SeedSequence([seed % 2**64, PARAM_STREAM, draw]))


class Chance:
    """The uniforms of some particles at one step of the simulation.

    Parameters
    ----------
    keys : ndarray of uint64
        The particles' keys (any shape); the uniforms have that shape.
    step : int
        The step of the simulation (0: the first move).
    """

    __slots__ = ("keys", "step")

    def __init__(self, keys: np.ndarray, step: int = 0) -> None:
        self.keys = keys
        self.step = step

    def __getitem__(self, index) -> Chance:
        return Chance(self.keys[index], self.step)

    def __len__(self) -> int:
        return len(self.keys)

    def u(self, purpose: int, round_: int = 0, k: int = 0) -> np.ndarray:
        """Uniforms on [0, 1) for ``purpose`` (rejection round ``round_``, ``k``-th number
        of the use), one per particle."""
        counter = ((self.step * 128 + round_) * 16 + purpose) * 8 + k
        c = mix(np.array([counter], np.uint64) * _GOLDEN)
        keys = np.ascontiguousarray(self.keys)
        out = np.empty(keys.shape)
        _uniforms(keys.reshape(-1), c[0], out.reshape(-1))
        return out


@numba.njit(cache=True, nogil=True)
def _uniforms(keys, c, out):  # pragma: no cover - compiled
    """``out[i]``: the top 53 bits of ``mix(keys[i] ^ c)`` as a float on [0, 1) (one pass; the
    numpy version's six passes over temporaries took a sixth of a forecast)."""
    for i in range(len(keys)):
        z = keys[i] ^ c
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        out[i] = np.float64(z >> np.uint64(11)) * 2.0**-53
