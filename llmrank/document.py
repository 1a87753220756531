"""The candidate document type, shared by the file readers (:mod:`llmrank.runs`) and the
training records (:mod:`llmrank.data.record`).

It lives outside the ``llmrank.data`` package so that :mod:`llmrank.runs` (plain-file parsing)
needs nothing from ``llmrank.data`` and ``llmrank.data.readers`` can import :mod:`llmrank.runs`
without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Doc:
    """A candidate document. ``title`` is kept apart so each family can join it its own way."""

    docid: str
    text: str
    title: str | None = None

    def full_text(self, sep: str = " ") -> str:
        """Title and text joined the BEIR way (``title + sep + text``) when a title exists."""
        return f"{self.title}{sep}{self.text}" if self.title else self.text
