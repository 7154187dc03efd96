"""Wording shared by every message: one "did you mean" for every misspelt name.

Base layer: imports only the standard library.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's own default: close enough that the suggestion is plausibly what was meant
# ("titel" -> "title", "max_model_length" -> "max_model_len"), without suggesting unrelated names.
SIMILARITY_CUTOFF = 0.6


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the option closest to ``name``, or ``""`` when none is close.

    Written to follow the sentence that names the unknown ``name``:
    ``f"unknown key '{key}'{did_you_mean(key, keys)}"``.

    >>> did_you_mean("titel", ["title", "date"])
    "; did you mean 'title'?"
    """
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=SIMILARITY_CUTOFF)
    return f"; did you mean '{close[0]}'?" if close else ""
