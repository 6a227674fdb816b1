"""Shared test helpers."""

from __future__ import annotations

import pytest


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
