"""Old import path of :mod:`monitor.text` (text normalisation, shared by rules, archive and
alerts). Kept while open branches still import ``monitor.rules.normalize``."""

from ..text import (  # noqa: F401
    NON_WORD_CHAR, PROCLITICS, WORD_CHAR, WORD_RE, OffsetMap, is_arabic_script, normalize, normalize_with_offsets,
    original_span, proclitic_forms, proclitic_stems, scan_text, search_text, text_span, word_text,
)
