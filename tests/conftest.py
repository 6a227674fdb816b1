"""Shared test helpers."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def client():
    """A small in-process Dask cluster (2 workers, one thread each) for a test module, closed
    after it (the scale tests share it)."""
    import logging

    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from journeymodel.cli.app import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def assert_one_error_line(code: int, err: str, match: str) -> None:
    """A user error: exit 2 and exactly one line ``error: ...`` containing ``match``."""
    import re

    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2, (code, err)
    assert len(errors) == 1, err
    assert "Traceback" not in err
    assert re.search(match, errors[0]), errors[0]


def pytest_addoption(parser):
    parser.addoption("--reverse-order", action="store_true",
                     help="run the tests in reverse order: proves that no test depends on "
                          "another having run first (fixtures, caches, files)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reverse-order"):
        items.reverse()
