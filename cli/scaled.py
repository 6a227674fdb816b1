"""What ``predict``, ``forecast`` and ``describe`` need to run on Dask (``--workers``,
``--cluster``): the engine of the running command and the checks of a folder output.

Not a command module (no ``cmd_`` prefix): the commands import it inside their functions.
"""

from pathlib import Path
from typing import Any


def current_engine() -> Any:
    """The engine (``--workers``/``--cluster``) of the running command, or None (set by
    :func:`~journeymodel.cli.options.with_read_options`)."""
    from journeymodel.cli.options import current_engine as engine

    return engine()


def check_parts_output(out: Path | None, inputs: list, what: str, command: str) -> Path:
    """``-o OUT`` of a command on Dask: required, a new folder (not a .csv/.tsv file name),
    not an input; checked before any work."""
    from journeymodel.errors import OptionError
    from journeymodel.io.outputs import check_folder_output

    if out is None:
        raise OptionError(f"--workers/--cluster: `journeymodel {command}` writes its {what} "
                          "with -o OUT, a new folder of Parquet part files (written by the "
                          "workers); give -o")
    if Path(out).suffix.lower() in (".csv", ".tsv", ".txt"):
        raise OptionError(f"-o {out}: on Dask the {what} are a folder of Parquet part files; "
                          f"give a folder name such as {Path(out).with_suffix('')}/ or "
                          f"{Path(out).with_suffix('.parquet')}")
    return check_folder_output(out, inputs, what)
