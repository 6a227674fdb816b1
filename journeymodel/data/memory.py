"""Reuse of freed memory while an event log is ingested (the allocator part: glibc only).

Ingesting 8M rows makes a few dozen arrays of 8M items. glibc hands every block above its mmap
threshold (at most 32 MiB) straight back to the kernel when freed, so each new array of 64 MB
is fresh memory that the kernel must map and zero page by page (with transparent huge pages,
compact): measured on the tracker log of issue 20, more system time than the ingestion's own
work. :func:`reuse_freed_memory` raises the thresholds for the duration, so freed arrays are
reused by the next ones, and on the way out sets them to what glibc's own adaptive rule
reaches (32 MiB mmap threshold, 64 MiB trim threshold) and returns the free memory to the
system (``malloc_trim``).

Threads started within the block (the two-thread steps of ingestion, Arrow's reader threads)
allocate from the main heap too (``M_ARENA_MAX`` 1; glibc gives each new thread an arena of its
own otherwise, whose freed memory the other threads cannot reuse): on the 100k-customer
tracker log (800k rows) the first ingestion in a process then touches about 20 MB less fresh
memory (5,000 fewer page faults of the 25,000, each costing 2 microseconds of system time on
the machine of issue 20). The arena limit afterwards is glibc's default (8 per core).

Within the block Arrow allocates from the same allocator (``pyarrow.system_memory_pool``,
glibc's malloc, instead of its default mimalloc), so the Parquet reader's and the compute
kernels' freed buffers are reused by numpy's arrays and the other way round: on the 8M-row
tracker log (busy machine, five runs each) 0.8 s of system time instead of 1.2-1.6 s, user
time a little lower.

Numpy also stops asking for transparent huge pages for its arrays (by
default it calls ``madvise`` on every array above 4 MiB). Where the kernel's THP defrag setting is
``madvise`` (the usual default), each such fault may compact memory to find a free 2 MiB page.
On the tracker log of issue 20 (8M rows, fresh processes, a shared machine) huge pages cost
0.4-0.5 s of system time when free ones were at hand and 2-4 s when the kernel compacted
first (half the runs, and most runs while other jobs churned memory); 4 KiB pages cost
0.9-1.1 s every time (the user time was the same). The steady cost is chosen. Results are
unaffected; only where memory comes from changes.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa

__all__ = ["reuse_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
#: Thresholds while ingesting: the largest mallopt accepts (an int), so no array is mmapped.
_HOLD = 2**31 - 1
#: Thresholds afterwards: the largest values of glibc's adaptive rule (mmap 32 MiB, trim 2x).
_AFTER_MMAP, _AFTER_TRIM = 32 << 20, 64 << 20
#: Arenas afterwards: the limit set by MALLOC_ARENA_MAX, else glibc's own on a 64-bit system
#: (8 per core; mallopt cannot unset it).
_AFTER_ARENAS = (int(os.environ.get("MALLOC_ARENA_MAX", "0")) if os.environ.get(
    "MALLOC_ARENA_MAX", "").isdigit() else 0) or 8 * (os.cpu_count() or 1)

_lock = threading.Lock()
_depth = 0
_huge_before = True  # numpy's huge-page setting outside the block
_pool_before = None  # Arrow's default memory pool outside the block


def _set_numpy_huge_pages(enabled: bool) -> bool:
    """numpy's ``madvise(MADV_HUGEPAGE)`` of large arrays on or off (the switch behind its
    ``NUMPY_MADVISE_HUGEPAGE`` variable); returns the previous setting (``enabled`` when this
    numpy has no such switch)."""
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    return bool(switch(enabled)) if switch is not None else enabled


def _libc():
    try:
        # glibc by its soname: ctypes.util.find_library would import subprocess, shutil and
        # more (20 ms of every command) to find the same file
        lib = ctypes.CDLL("libc.so.6")
        lib.mallopt.argtypes, lib.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        lib.malloc_trim.argtypes, lib.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        lib.gnu_get_libc_version  # noqa: B018 (glibc: the only allocator these options are for)
    except (OSError, AttributeError):
        return None
    return lib


_LIBC = _libc()


@contextmanager
def reuse_freed_memory(release: bool = True) -> Iterator[None]:
    """Within the block, freed large arrays are reused instead of returned to the system
    (nested and concurrent uses are counted; the last one out restores).

    Parameters
    ----------
    release : bool
        Whether the last one out returns the free memory to the system (``malloc_trim``: 7-9
        ms after ``attribute EVENTS`` at 100k customers). False for a block that ends just
        before its process does; the heap's free memory is then kept for the process's reuse.

    Examples
    --------
    >>> import numpy as np
    >>> with reuse_freed_memory():
    ...     total = sum(int(np.ones(1000).sum()) for _ in range(3))
    >>> total
    3000
    """
    global _depth, _huge_before, _pool_before
    with _lock:
        _depth += 1
        if _depth == 1:
            _huge_before = _set_numpy_huge_pages(False)
            if _LIBC is not None:
                _LIBC.mallopt(_M_MMAP_THRESHOLD, _HOLD)
                _LIBC.mallopt(_M_TRIM_THRESHOLD, _HOLD)
                _LIBC.mallopt(_M_ARENA_MAX, 1)  # threads started now share the main heap
                _pool_before = pa.default_memory_pool()
                pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set_numpy_huge_pages(_huge_before)
                if _pool_before is not None:
                    pa.set_memory_pool(_pool_before)
                    _pool_before = None
                if _LIBC is not None:
                    _LIBC.mallopt(_M_MMAP_THRESHOLD, _AFTER_MMAP)
                    _LIBC.mallopt(_M_TRIM_THRESHOLD, _AFTER_TRIM)
                    _LIBC.mallopt(_M_ARENA_MAX, _AFTER_ARENAS)
                    if release:
                        _LIBC.malloc_trim(0)
