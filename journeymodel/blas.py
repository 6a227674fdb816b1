"""BLAS on one thread, for code made of many small matrix products.

OpenBLAS splits a product over its threads; for the small products of an EM step or of a batch
of posterior draws the hand-offs cost more than the work, and on a busy machine far more
(measured: the chain's batched solves 25x slower; the holding-time fit at 100k journeys 0.35 s
of CPU with two threads against 0.04 s with one). A product's bits also depend on how it was
split, so code that must give the same bits on every machine runs its products on one thread.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

__all__ = ["one_blas_thread"]

_CONTROLLER = None


def one_blas_thread() -> AbstractContextManager:
    """A context in which BLAS runs on one thread (threadpoolctl; a no-op without it). The
    controller, which scans the loaded libraries (~10 ms), is made once per process."""
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with the scientific stack
        from contextlib import nullcontext

        return nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")
