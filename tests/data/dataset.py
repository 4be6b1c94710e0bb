"""One dataset of the test datastore: its folder name, its card text and its configs' rows.

The rows of the test datastore are written for the tests, one function per dataset (``corpus_*.py``).
Every value is a string, as in a datastore of flattened rows, and rows repeat some values on purpose (the
same passage under several questions, the same label everywhere), since the datastore stores and embeds
each distinct text once. The kinds mirror what retrieval has to tell apart: NLI, paraphrase and question
pairs, yes/no and multiple-choice QA, reading comprehension, sentiment, question types, coreference,
commonsense explanations and Python code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    folder: str
    description: str
    configs: dict[str, list[dict[str, str]]]

    @property
    def name(self) -> str:
        return self.folder.replace("__", "/")
