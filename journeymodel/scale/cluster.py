"""The Dask client a scaled run uses: a local cluster of worker processes, a running scheduler,
or the caller's own :class:`dask.distributed.Client`.

:class:`Engine` holds the command line's ``--workers``, ``--cluster`` and ``--worker-memory``;
:func:`connect` turns it into a client for the length of a ``with`` block (a local cluster it
started is closed at the end; a client the caller passed is left open).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from journeymodel.errors import OptionError

__all__ = ["Engine", "connect", "parse_memory"]

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
          "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12,
          "tib": 2**40, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_memory(text: str) -> int:
    """``--worker-memory``: bytes from ``1.5GiB``, ``800MB``, ``4G`` or a number of bytes.

    Examples
    --------
    >>> parse_memory("1.5GiB"), parse_memory("800MB")
    (1610612736, 800000000)
    """
    match = _SIZE.match(str(text))
    if not match:
        raise OptionError(f"--worker-memory must be a size like 1.5GiB, 800MB or 4G "
                          f"(got {text!r})")
    size = float(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    if size < 2**26:
        raise OptionError(f"--worker-memory must be at least 64MiB (got {text!r})")
    return int(size)


@dataclass(frozen=True)
class Engine:
    """Where a scaled run happens (the CLI's ``--workers``, ``--cluster``, ``--worker-memory``).

    Parameters
    ----------
    workers : int or None
        Start a local cluster of this many worker processes (one thread each).
    cluster : str or None
        Address of a running Dask scheduler (``tcp://host:8786``): a real cluster.
    worker_memory : str or None
        Memory limit of each local worker (``1.5GiB``); Dask spills to disk near it.
    client : dask.distributed.Client, optional
        Use this client (Python callers); the other fields must be unset.
    """

    workers: int | None = None
    cluster: str | None = None
    worker_memory: str | None = None
    client: Any = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise OptionError(f"--workers must be a whole number >= 1 (got {self.workers})")
        if self.cluster is not None and self.workers is not None:
            raise OptionError("--cluster connects to a running scheduler; --workers starts a "
                              "local cluster: give one of them")
        if self.worker_memory is not None:
            if self.workers is None:
                raise OptionError("--worker-memory caps the workers --workers starts; give "
                                  "--workers N too")
            parse_memory(self.worker_memory)

    @property
    def active(self) -> bool:
        """True when the run goes to Dask."""
        return self.workers is not None or self.cluster is not None or self.client is not None


@contextmanager
def connect(engine: Engine, *, say=None) -> Iterator[Any]:
    """A :class:`dask.distributed.Client` for ``engine`` while the block runs.

    ``say`` (default: print to stderr) receives the line naming the dashboard of a local
    cluster this starts.
    """
    if engine.client is not None:
        yield engine.client
        return
    from dask.distributed import Client, LocalCluster

    say = say or (lambda text: print(text, file=sys.stderr))
    if engine.cluster is not None:
        try:
            client = Client(engine.cluster, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise OptionError(f"--cluster {engine.cluster}: cannot reach the scheduler "
                              f"({exc})") from None
        try:
            say(f"Dask cluster {engine.cluster}: {len(client.scheduler_info()['workers'])} "
                f"workers; dashboard {client.dashboard_link}")
            yield client
        finally:
            client.close()
        return
    memory = parse_memory(engine.worker_memory) if engine.worker_memory else "auto"
    with LocalCluster(n_workers=engine.workers, threads_per_worker=1, processes=True,
                      memory_limit=memory, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        say(f"Dask local cluster: {engine.workers} workers"
            + (f" of {engine.worker_memory}" if engine.worker_memory else "")
            + f"; dashboard {client.dashboard_link}")
        yield client
