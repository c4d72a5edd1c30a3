"""The shape every data set is turned into, whatever its file looked like."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    """One row: what the model is asked (`instruction`, optional `input`) and the answer.

    `output` is None for test files without answers. `references` holds every accepted
    answer (BIG-bench `targets`, several summaries); it starts with `output` when both exist.
    """

    id: str
    instruction: str
    input: str = ""
    output: str | None = None
    references: tuple[str, ...] = ()

    @property
    def answers(self) -> tuple[str, ...]:
        if self.references:
            return self.references
        return (self.output,) if self.output is not None else ()


@dataclass
class Dataset:
    """A loaded data set. `shape` names the layout that was detected (see playground.data)."""

    name: str
    examples: list[Example]
    shape: str
    source: str = ""
    sha256: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def has_outputs(self) -> bool:
        return any(e.output is not None for e in self.examples)
