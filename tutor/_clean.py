"""Make untrusted text safe for a terminal: the one cleaner every path to a screen uses.

A problem file, a command-line argument or a file name can carry bytes that a
terminal obeys rather than shows: escape sequences (colours, cursor moves,
window titles, hyperlinks), other C0 and C1 control characters, and the
Unicode bidirectional controls that make text read in another order than it
was written. :func:`clean` removes all of them, keeping newlines and tabs.

>>> clean("w\\x1b[31mred\\x1b[0m \\u202eevil\\u202c")
'wred evil'
"""

from __future__ import annotations

import re

#: Escape sequences as whole units, so that their parameters do not remain as text:
#: CSI (ESC [ … final), OSC (ESC ] … BEL or ST), and two-byte ESC sequences.
_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, terminated or cut short
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]"  # other ESC sequences
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI as one C1 byte
)

#: Bidirectional formatting: embeddings and overrides (U+202A–U+202E), isolates
#: (U+2066–U+2069) and the marks (U+200E, U+200F, U+061C).
BIDI_CONTROLS = frozenset([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C])


#: Every character :func:`is_unsafe` names, as one class: removing them with it is
#: fifty times faster than asking per character, which a long run's output needs.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f" + "".join(re.escape(chr(c)) for c in sorted(BIDI_CONTROLS)) + "]"
)


def is_unsafe(ch: str) -> bool:
    """Return whether a terminal would act on ``ch`` instead of showing it (newline, tab aside)."""
    code = ord(ch)
    if ch in "\n\t":
        return False
    return code < 0x20 or 0x7F <= code < 0xA0 or code in BIDI_CONTROLS


def clean(text: str) -> str:
    """Return ``text`` without escape sequences, control characters or bidi controls.

    >>> clean("a\\tb\\nc\\x07\\x9b2J")
    'a\\tb\\nc'
    """
    return _UNSAFE.sub("", _SEQUENCE.sub("", text))


def escape_for_json(text: str) -> str:
    """Return JSON text with every unsafe character written as a ``\\uXXXX`` escape.

    JSON already escapes C0 controls; C1 and bidi controls may stand raw in a
    string. Escaping keeps the data while keeping it off the terminal.

    >>> escape_for_json('"a\\u202eb"')
    '"a\\\\u202eb"'
    """
    return "".join(f"\\u{ord(ch):04x}" if is_unsafe(ch) else ch for ch in text)
