"""Lazy re-exports (PEP 562): a package names what it offers, and each name's module loads on
first use, so ``import journeymodel`` and the CLI's ``--help`` stay fast and importing one
module of a package does not load its siblings."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``, which re-exports ``names`` lazily.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict of str to str
        Exported name -> the module that defines it.

    Examples
    --------
    >>> getattr_ = exports("journeymodel", {"OptionError": "journeymodel.errors"})
    >>> getattr_("OptionError").__name__
    'OptionError'
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        vars(sys.modules[package])[name] = value  # later uses skip this function
        return value

    return __getattr__
