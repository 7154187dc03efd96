"""Wording shared by every message: one "did you mean" for every misspelt name, and text from
files made safe to show (on a terminal, in a spreadsheet).

Base layer: imports only the standard library.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable

# difflib's own default: close enough that the suggestion is plausibly what was meant
# ("titel" -> "title", "max_model_length" -> "max_model_len"), without suggesting unrelated names.
SIMILARITY_CUTOFF = 0.6

# Characters that change what a terminal or a reader shows rather than being shown: controls (C0,
# DEL, C1: newlines, ESC of terminal escapes), format characters (right-to-left overrides and
# isolates, zero-width spaces and joiners), line and paragraph separators, lone surrogates.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# What a spreadsheet reads as the start of a formula (OWASP's list: = + - @, tab, carriage return)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the option closest to ``name``, or ``""`` when none is close.

    Written to follow the sentence that names the unknown ``name``:
    ``f"unknown key '{key}'{did_you_mean(key, keys)}"``.

    >>> did_you_mean("titel", ["title", "date"])
    "; did you mean 'title'?"
    """
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=SIMILARITY_CUTOFF)
    return f"; did you mean '{close[0]}'?" if close else ""


def is_hidden(char: str) -> bool:
    """Whether ``char`` changes what is shown instead of being shown (``HIDDEN_CATEGORIES``)."""
    return unicodedata.category(char) in HIDDEN_CATEGORIES


def hidden_characters(text: str) -> list[str]:
    """The hidden characters of ``text``, each as ``shown`` writes it (``\\x1b``, ``\\u202e``)."""
    return [shown(char) for char in dict.fromkeys(text) if is_hidden(char)]


def _escape(char: str) -> str:
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text: str) -> str:
    """``text`` with its hidden characters written as escapes, so that a name cannot move the
    cursor, recolour or clear a terminal, start a line of its own, or reorder what follows it:
    a newline becomes the two characters ``\\n``, ESC ``\\x1b``, a right-to-left override
    ``\\u202e``.
    """
    if text.isprintable():  # the usual case: nothing hidden (a space is printable)
        return text
    return "".join(_escape(char) if is_hidden(char) else char for char in text)


def csv_cell(value: object) -> object:
    """A value for a CSV cell: text a spreadsheet would run as a formula gets a leading ``'``
    (OWASP's advice against CSV injection); numbers, also written as text, stay as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def first_of(items: Iterable[str], most: int) -> str:
    """"a, b and 3 more": the first ``most`` of ``items``, and how many more."""
    items = list(items)
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")
