"""Name suggestions for error messages: the one "did you mean ...?" helper of the package."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(
    name: str, options: Iterable[str], *, n: int = 1, cutoff: float = 0.5, parens: bool = False
) -> str:
    """``"; did you mean 'x'?"`` (or ``" (did you mean 'x'?)"`` with ``parens``), or ``""``.

    ``difflib`` ratio matching; ``cutoff=0.0`` always suggests the nearest option, useful when the
    options are few and a wrong one is always a typo of some right one.
    """
    close = difflib.get_close_matches(str(name), list(options), n=n, cutoff=cutoff)
    if not close:
        return ""
    text = "did you mean " + ", ".join(repr(c) for c in close) + "?"
    return f" ({text})" if parens else f"; {text}"
