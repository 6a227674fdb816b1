"""Writing output files safely: whole or not at all, never over one of the inputs.

Every file journeymodel writes (model files, simulated and sample event logs, prediction and
forecast tables, the report and its PNGs) goes through :func:`atomic_path`: the content is
written to a hidden temporary file in the target's folder (``.NAME.XXXXXXXX.tmp``) and renamed
over the target (:func:`os.replace`, atomic on POSIX and Windows) only once it is complete. On
any error, and on an interrupt (``KeyboardInterrupt``, or SIGTERM turned into an exception by
the CLI), the temporary file is removed and an existing target is left untouched, so a reader
never sees a half-written file. Only a hard kill (SIGKILL, power loss) can leave a ``.tmp``
file behind; it is never mistaken for an output, as its name ends in ``.tmp``.

:func:`check_not_input` refuses an output path that names one of the command's inputs (also
through a symbolic or hard link), before any work is done.

Standard library only at the top (pandas and pyarrow load inside the functions that need them).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from journeymodel.errors import OptionError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Suffix -> table format written by :func:`write_frame` and :class:`FrameWriter`.
FRAME_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".txt": "csv",
                 ".tsv": "tsv"}


def target_path(path: str | Path) -> Path:
    """The file a write to ``path`` lands in: ``path`` itself, or the file a symbolic link there
    points to (writing through the link, as ``open(path, "w")`` does, instead of replacing the
    link by a file)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_target(path: str | Path, what: str = "output") -> Path:
    """``path`` resolved as by :func:`target_path` if a file can be written there, else an
    :class:`OptionError` saying why (a folder, a missing folder, no permission)."""
    path = Path(path)
    target = target_path(path)
    if target.is_dir():
        raise OptionError(f"{path}: is a folder; give the {what}'s file name")
    folder = target.parent
    if not folder.is_dir():
        raise OptionError(f"{path}: cannot write the {what}, the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (
            target.exists() and not os.access(target, os.W_OK)):
        raise OptionError(f"{path}: cannot write the {what} there (permission denied)")
    return target


def _umask() -> int:
    """The process umask, read without changing it where the system says it (Linux), else by
    setting and restoring it."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextmanager
def atomic_path(path: str | Path, what: str = "output") -> Iterator[Path]:
    """A temporary path to write to; renamed to ``path`` when the ``with`` block succeeds.

    The temporary file is created in the target's folder (so the rename never crosses file
    systems) and removed if the block raises anything, including ``KeyboardInterrupt`` and
    ``SystemExit``. The file gets normal permissions (``0o666`` less the umask), or those of
    the file it replaces.

    Raises
    ------
    OptionError
        ``path`` is a folder, its folder does not exist, or it cannot be written.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = pathlib.Path(tmp) / "a.txt"
    ...     with atomic_path(out) as part:
    ...         _ = part.write_text("whole")
    ...     print(out.read_text(), sorted(p.name for p in pathlib.Path(tmp).iterdir()))
    whole ['a.txt']
    """
    target = check_target(path, what)
    mode = (target.stat().st_mode & 0o7777) if target.exists() else 0o666 & ~_umask()
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)  # mkstemp makes 0600
        os.replace(tmp, target)
    finally:  # after a successful replace there is nothing left to remove
        with suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes, what: str = "output") -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path, what) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str, what: str = "output") -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    return write_bytes(path, text.encode("utf-8"), what)


def frame_format(path: str | Path) -> str:
    """``"parquet"``, ``"csv"`` or ``"tsv"`` from the suffix, else an OptionError."""
    try:
        return FRAME_FORMATS[Path(path).suffix.lower()]
    except KeyError:
        raise OptionError(f"{path}: output must end in .csv, .tsv or .parquet") from None


def write_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame to CSV, TSV or Parquet (by the suffix), atomically, without its index.

    Raises
    ------
    OptionError
        Unknown suffix, or a path that cannot be written (checked before writing).
    """
    return write_frames([frame], path)[0]


def write_frames(frames: Iterable[pd.DataFrame], path: str | Path) -> tuple[Path, int]:
    """Write DataFrames one after another (same columns) as one table, atomically.

    The frames can come from a generator: only one is held at a time, so a table larger than
    memory streams to disk. The target appears only after the last frame is written; an error
    or interrupt in between leaves no trace. Returns the path and the number of rows written.
    """
    fmt = frame_format(path)
    with atomic_path(path) as tmp, FrameWriter(tmp, fmt) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path), writer.rows


class FrameWriter:
    """Append DataFrames with the same columns to one CSV/TSV file or one Parquet file.

    CSV: the header comes with the first frame, the rest is appended, so the file equals
    ``pd.concat(frames).to_csv(index=False)``. Parquet: each frame is one row group, every
    frame cast to the first frame's schema. Use on a temporary path (:func:`atomic_path`).
    """

    def __init__(self, path: str | Path, fmt: str) -> None:
        if fmt not in ("csv", "tsv", "parquet"):
            raise OptionError(f"unknown table format {fmt!r}")
        self.path, self.fmt = Path(path), fmt
        self.rows = 0
        self._writer = None  # pyarrow ParquetWriter once the first frame fixed the schema
        self._started = False

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "parquet":
            self._write_parquet(frame)
        else:
            frame.to_csv(self.path, index=False, sep="\t" if self.fmt == "tsv" else ",",
                         mode="a" if self._started else "w", header=not self._started)
        self._started = True
        self.rows += len(frame)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self._writer = pq.ParquetWriter(self.path, table.schema)
        else:
            table = pa.Table.from_pandas(frame, schema=self._writer.schema,
                                         preserve_index=False)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # follows symbolic links, sees hard links
    except OSError:  # one of them does not exist (yet): compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def _inside(path: Path, folder: Path) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, base]) == base


def check_not_input(out: str | Path | None, inputs: Iterable[str | Path | None], *,
                    option: str = "-o") -> None:
    """Refuse an output path that is one of ``inputs`` (or inside an input folder).

    Compares the files themselves (:func:`os.path.samefile`), so a symbolic link or a hard
    link to an input is caught too. ``None`` entries are skipped.

    Raises
    ------
    OptionError
        Naming the option, the output and the input it would overwrite.

    Examples
    --------
    >>> check_not_input("model.nc", ["events.csv"])
    >>> check_not_input("data/../events.csv", ["events.csv"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    journeymodel.errors.OptionError: -o data/../events.csv: is the input events.csv; ...
    """
    if out is None:
        return
    out = Path(out)
    for inp in inputs:
        if inp is None:
            continue
        inp = Path(inp)
        if inp.is_dir() and _inside(out, inp):
            raise OptionError(f"{option} {out}: is inside the input folder {inp}; writing there "
                              "would change the input, choose another output file")
        if _same_file(out, inp):
            raise OptionError(f"{option} {out}: is the input {inp}; writing there would "
                              "overwrite it, choose another output file")


def check_table_output(out: str | Path, inputs: Iterable[str | Path | None], what: str, *,
                       option: str = "-o") -> Path:
    """Everything that can be checked about a table output before the work that fills it: not
    one of ``inputs`` (:func:`check_not_input`), a known suffix (:func:`frame_format`), and a
    writable place (:func:`check_target`). Returns ``out`` as a Path."""
    check_not_input(out, inputs, option=option)
    frame_format(out)
    check_target(out, what)
    return Path(out)


# ---------------------------------------------------------------------------------------------
# Folders of part files (tables written by Dask workers)


def check_folder_output(out: str | Path, inputs: Iterable[str | Path | None], what: str, *,
                        option: str = "-o") -> Path:
    """Everything that can be checked about a folder output (a table written as part files)
    before the work that fills it: not one of ``inputs`` nor inside one, not an existing
    file or folder (a folder cannot be replaced whole), its parent folder writable.

    Raises
    ------
    OptionError
        Naming the option and the path.
    """
    check_not_input(out, inputs, option=option)
    out = Path(out)
    if out.exists() or out.is_symlink():
        kind = "folder" if out.is_dir() else "file"
        raise OptionError(f"{option} {out}: a {kind} of that name exists; the {what} are "
                          "written as a new folder of part files, choose a new name or "
                          "remove it")
    folder = out.parent
    if not folder.is_dir():
        raise OptionError(f"{option} {out}: cannot write the {what}, the folder {folder} "
                          "does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OptionError(f"{option} {out}: cannot write the {what} there (permission denied)")
    return out


@contextmanager
def atomic_folder(path: str | Path, what: str = "output") -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; renamed to ``path`` when the ``with`` block
    succeeds, so the folder appears whole or not at all.

    The temporary folder (``.NAME.XXXXXXXX.tmp``, in the target's folder: the rename never
    crosses file systems) is removed with everything in it if the block raises anything,
    including ``KeyboardInterrupt``. ``path`` must not exist (:func:`check_folder_output`);
    it is checked again just before the rename. The folder gets normal permissions
    (``0o777`` less the umask).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = pathlib.Path(tmp) / "parts"
    ...     with atomic_folder(out) as part:
    ...         _ = (part / "part-00000.txt").write_text("whole")
    ...     print(sorted(p.name for p in out.iterdir()), len(list(pathlib.Path(tmp).iterdir())))
    ['part-00000.txt'] 1
    """
    import shutil

    target = check_folder_output(path, [], what)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if target.exists() or target.is_symlink():  # made by someone else meanwhile
            raise OptionError(f"{path}: appeared while the {what} were written; they are not "
                              "written over it")
        os.rename(tmp, target)
    finally:  # after a successful rename there is nothing left to remove
        shutil.rmtree(tmp, ignore_errors=True)


def write_part(frame: pd.DataFrame, folder: str | Path, name: str) -> Path:
    """Write ``frame`` as the Parquet file ``folder/name`` atomically (no index); a file of
    that name is replaced (a task run again writes the same part again)."""
    target = Path(folder) / name
    with atomic_path(target, "part file") as tmp:
        frame.to_parquet(tmp, index=False)
    return target
