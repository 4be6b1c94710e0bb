"""What retrieval returns: ranked rows (:class:`RowHit`) with the explanation of their scores, and the
ranked list for one task (:class:`RetrievalResult`), with their ``rebase-tui retrieve --json`` forms."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RowHit:
    """One ranked row, with the explanation of its score.

    ``key`` is the datastore key (``rows.id``); ``row_id`` the row's 0-based position in its config's split
    at the source; ``row`` the full row (column -> value). ``input_column``/``output_column`` name the cells
    that gave the input and output scores; ``input_text``/``output_text`` are those cells' text.
    """

    rank: int
    key: int
    dataset_id: str
    config: str
    split: str
    row_id: int
    score: float
    input_score: float
    output_score: float
    dataset_score: float
    input_column: str
    output_column: str
    input_text: str
    output_text: str
    row: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``rebase-tui retrieve --json`` form of one result."""
        return {"rank": self.rank, "dataset_id": self.dataset_id, "config": self.config, "row_id": self.row_id,
                "score": self.score, "input_score": self.input_score, "output_score": self.output_score,
                "dataset_score": self.dataset_score, "input_column": self.input_column,
                "output_column": self.output_column, "row": dict(self.row)}


@dataclass(frozen=True)
class RetrievalResult:
    """A ranked list of rows for one task.

    ``exact`` is False only when ``approximate=True`` could not prove its list equals the exact one.
    ``seconds`` holds ``embed`` (query embeddings), ``score`` (scoring + selection) and ``fetch`` (reading
    the rows); ``candidates`` the rows scored (all rows when exact).
    """

    task: str
    top: int
    exact: bool
    results: tuple[RowHit, ...]
    seconds: dict[str, float]
    weights: tuple[float, float, float]
    exclude: tuple[str, ...]
    approximate: bool = False
    candidates: int = 0

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[RowHit]:
        return iter(self.results)

    def to_json(self) -> dict[str, Any]:
        """The ``rebase-tui retrieve --json`` document."""
        return {"task": self.task, "top": self.top, "exact": self.exact, "exclude": list(self.exclude),
                "seconds": {"embed": round(self.seconds.get("embed", 0.0), 6),
                            "score": round(self.seconds.get("score", 0.0), 6)},
                "results": [h.to_json() for h in self.results]}
