"""Reuse of freed memory while an event log is ingested (glibc only; elsewhere a no-op).

Ingesting 8M rows makes a few dozen arrays of 8M items. glibc hands every block above its mmap
threshold (at most 32 MiB) straight back to the kernel when freed, so each new array of 64 MB
is fresh memory that the kernel must map and zero page by page (with transparent huge pages,
compact): measured on the tracker log of issue 20, more system time than the ingestion's own
work. :func:`reuse_freed_memory` raises the thresholds for the duration, so freed arrays are
reused by the next ones, and on the way out sets them to what glibc's own adaptive rule
reaches (32 MiB mmap threshold, 64 MiB trim threshold) and returns the free memory to the
system (``malloc_trim``). Results are unaffected; only where memory comes from changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["reuse_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Thresholds while ingesting: the largest mallopt accepts (an int), so no array is mmapped.
_HOLD = 2**31 - 1
#: Thresholds afterwards: the largest values of glibc's adaptive rule (mmap 32 MiB, trim 2x).
_AFTER_MMAP, _AFTER_TRIM = 32 << 20, 64 << 20

_lock = threading.Lock()
_depth = 0


def _libc():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        lib.mallopt.argtypes, lib.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        lib.malloc_trim.argtypes, lib.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        lib.gnu_get_libc_version  # noqa: B018 (glibc: the only allocator these options are for)
    except (OSError, AttributeError):
        return None
    return lib


_LIBC = _libc()


@contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Within the block, freed large arrays are reused instead of returned to the system
    (nested and concurrent uses are counted; the last one out restores).

    Examples
    --------
    >>> import numpy as np
    >>> with reuse_freed_memory():
    ...     total = sum(int(np.ones(1000).sum()) for _ in range(3))
    >>> total
    3000
    """
    global _depth
    if _LIBC is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _LIBC.mallopt(_M_MMAP_THRESHOLD, _HOLD)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, _HOLD)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _LIBC.mallopt(_M_MMAP_THRESHOLD, _AFTER_MMAP)
                _LIBC.mallopt(_M_TRIM_THRESHOLD, _AFTER_TRIM)
                _LIBC.malloc_trim(0)
