"""Progress bars with one switch: TQDM_DISABLE=1 silences every bar, also those that hide themselves on small inputs.

tqdm reads TQDM_DISABLE only for bars that leave `disable=` unset, so a bar that decides for itself
(hidden on small inputs, or on every process but the first) would ignore it.
"""

from __future__ import annotations

import os

from tqdm import tqdm


def hidden(when: bool = False) -> bool:
    """`when`, or always under TQDM_DISABLE."""
    return when or os.environ.get("TQDM_DISABLE", "").strip().lower() in {"1", "true", "yes", "on"}


def bar(iterable=None, hide: bool = False, **kwargs) -> tqdm:
    """tqdm(iterable, **kwargs), hidden when `hide` is true or under TQDM_DISABLE."""
    return tqdm(iterable, disable=hidden(hide), **kwargs)
