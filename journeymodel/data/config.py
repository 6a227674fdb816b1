"""The config file: reading options said once, in ``journeymodel.toml``.

A ``[read]`` table holds the event-log reading options under their command-line names with
underscores (``--customer-col`` is ``customer_col``)::

    [read]
    customer_col = "user"
    time_col = "ts"
    conversion_label = ["purchase", "signup"]
    gap = "14D"
    time_format = "%d/%m/%Y %H:%M"

The CLI reads ``journeymodel.toml`` from the working directory, or the file given with
``--config``; options given on the command line override the file. Unknown tables or keys,
values of the wrong type and malformed TOML are :class:`~journeymodel.errors.OptionError`\\ s
naming the file (and the key, or the line). Read with the standard library's :mod:`tomllib`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from journeymodel.choices import TIMESTAMP_KINDS
from journeymodel.errors import OptionError

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.data.options import ReadOptions

#: The file looked for in the working directory.
CONFIG_NAME = "journeymodel.toml"
#: The one table a config file may hold.
TABLE = "read"

_TEXT = "text"
#: key -> what the value must be (checked by :func:`_value`)
KEYS: dict[str, str] = {
    "customer_col": _TEXT, "time_col": _TEXT, "touchpoint_col": _TEXT, "persona_col": _TEXT,
    "value_col": _TEXT, "sentiment_col": _TEXT, "device_col": _TEXT,
    "conversion_label": "text or a list of text", "churn_label": _TEXT,
    "gap": "text (30D, 12h, none) or a number", "observed_until": "a date, text or a number",
    "strict": "true or false", "sep": _TEXT,
    "timestamps": f"one of {', '.join(TIMESTAMP_KINDS)}",
    "sentiment_scale": "two numbers [min, max] or text 'min,max'", "time_format": _TEXT,
}


class Config(NamedTuple):
    """A config file's reading options (a named tuple: defined in a quarter of a frozen
    dataclass's time, paid by every command, issue 20).

    Attributes
    ----------
    path : Path or None
        The file read; None when there was none.
    read : mapping
        The ``[read]`` table, keys as in :data:`KEYS`, values as the command line gives them
        (text, or a list of text for ``conversion_label``; ``strict`` a bool); empty and
        read-only without a file.
    """

    path: Path | None = None
    read: Mapping[str, Any] = MappingProxyType({})


def find_config(path: str | Path | None = None, *, cwd: str | Path | None = None) -> Path | None:
    """The config file to use: ``path`` if given (it must exist), else ``journeymodel.toml``
    in ``cwd`` (default: the working directory) if there is one, else None."""
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise OptionError(f"{path}: config file not found")
        if not path.is_file():
            raise OptionError(f"{path}: config file is not a file")
        return path
    candidate = Path(cwd) / CONFIG_NAME if cwd is not None else Path(CONFIG_NAME)
    return candidate if candidate.is_file() else None


def load_config(path: str | Path | None = None, *, cwd: str | Path | None = None) -> Config:
    """Read and check the config file (see :func:`find_config` for which one).

    Raises
    ------
    OptionError
        Malformed TOML (naming the file and the line), an unknown table or key, or a value of
        the wrong type (naming the file and the key).
    """
    found = find_config(path, cwd=cwd)
    if found is None:
        return Config()
    import tomllib  # only with a file to read: 3 ms of every command otherwise (issue 20)

    try:
        with open(found, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"{found}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionError(f"{found}: cannot read the config file: {exc}") from None
    unknown = sorted(set(data) - {TABLE})
    if unknown:
        what = "table" if isinstance(data[unknown[0]], dict) else "key"
        raise OptionError(f"{found}: unknown {what} {unknown[0]!r}; a config file holds one "
                          f"table, [{TABLE}]")
    table = data.get(TABLE, {})
    if not isinstance(table, dict):
        raise OptionError(f"{found}: {TABLE!r} must be a table ([{TABLE}])")
    read = {}
    for key, value in table.items():
        if key not in KEYS:
            hint = _suggest(key)
            raise OptionError(f"{found}: unknown key {key!r} in [{TABLE}]"
                              f"{f' (did you mean {hint!r}?)' if hint else ''}; known keys: "
                              f"{', '.join(KEYS)}")
        read[key] = _value(found, key, value)
    return Config(found, read)


def read_options(path: str | Path | None = None, **overrides: Any) -> ReadOptions:
    """A :class:`~journeymodel.data.options.ReadOptions` from the config file, ``overrides``
    (keys as in :data:`KEYS`) taking precedence. For Python users who keep a
    ``journeymodel.toml``."""
    config = load_config(path)
    read = to_read_options({**config.read, **overrides})
    return read if config.path is None else read.replace(config_path=str(config.path))


def to_read_options(values: dict[str, Any]) -> ReadOptions:
    """ReadOptions from option values named as in :data:`KEYS` (the command line's and the
    config file's): ``conversion_label`` a label or list of labels (default ``conversion``),
    ``sentiment_scale`` ``"MIN,MAX"``; the rest as ReadOptions takes them."""
    from journeymodel.data.options import ReadOptions

    values = dict(values)
    labels = values.pop("conversion_label", None) or ("conversion",)
    labels = (labels,) if isinstance(labels, str) else tuple(labels)
    if any(not lab.strip() for lab in labels):
        raise OptionError("--conversion-label must not be empty")
    scale = values.pop("sentiment_scale", None)
    if scale is not None:
        try:
            lo, hi = (float(x) for x in str(scale).split(","))
        except ValueError:
            raise OptionError(
                f"--sentiment-scale must be MIN,MAX like 1,5 (got {scale!r})") from None
        scale = (lo, hi)
    return ReadOptions(conversion_labels=labels, sentiment_scale=scale, **values)


def _suggest(key: str) -> str | None:
    import difflib

    close = difflib.get_close_matches(key.replace("-", "_"), KEYS, n=1, cutoff=0.7)
    return close[0] if close else None


def _value(path: Path, key: str, value: Any) -> Any:
    """The value as the command line would give it, or an OptionError naming file and key."""
    def wrong() -> OptionError:
        return OptionError(f"{path}: [{TABLE}] {key} must be {KEYS[key]} (got {value!r})")

    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if KEYS[key] == _TEXT:
        if not isinstance(value, str):
            raise wrong()
        return value
    if key == "conversion_label":
        labels = [value] if isinstance(value, str) else value
        if not isinstance(labels, list) or not labels or not all(
                isinstance(x, str) and x.strip() for x in labels):
            raise wrong()
        return labels
    if key == "gap":
        if isinstance(value, str) or is_number:
            return str(value)
        raise wrong()
    if key == "observed_until":
        if isinstance(value, (dt.datetime, dt.date)):
            return value.isoformat()
        if isinstance(value, str) or is_number:
            return str(value)
        raise wrong()
    if key == "strict":
        if not isinstance(value, bool):
            raise wrong()
        return value
    if key == "timestamps":
        if value not in TIMESTAMP_KINDS:
            raise wrong()
        return value
    if key == "sentiment_scale":
        if isinstance(value, str):
            return value
        if (isinstance(value, list) and len(value) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
            return f"{value[0]},{value[1]}"
        raise wrong()
    raise wrong()  # pragma: no cover - every key of KEYS is handled above
