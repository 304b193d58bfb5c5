"""A worker's plan and the ids of its items: the one place where ids are built and read.

A plan is what one worker process runs, in order: cells (the source's setup cells and answer cells), probes (a
check's `probe` on a student's function) and measures (a check's `evaluate` on an exported model, in the clean
worker). Each item has an `ItemId`: whose code it runs (`run`: "student", "reference", a catalogued mistake's id,
or "clean" for the measuring worker), what it is (`kind`) and its name (a grade_id for cells, a check call's id
`<grade_id>/<index>` for probes and measures). On the wire (the plan file and the worker's events) an id is the
text `run|kind:name`; `ItemId.parse` is its only reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SETUP, ANSWER, PROBE, MEASURE = "setup", "answer", "probe", "measure"
KINDS = (SETUP, ANSWER, PROBE, MEASURE)
STUDENT, REFERENCE, CLEAN = "student", "reference", "clean"


@dataclass(frozen=True, order=True)
class ItemId:
    run: str
    kind: str
    name: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS or "|" in self.run or not self.name:
            raise ValueError(f"not an item id: {self.run!r}, {self.kind!r}, {self.name!r}")

    def __str__(self) -> str:
        return f"{self.run}|{self.kind}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> ItemId:
        run, sep, rest = str(text).partition("|")
        kind, colon, name = rest.partition(":")
        if not sep or not colon:
            raise ValueError(f"not an item id: {text!r}")
        return cls(run, kind, name)

    @property
    def is_cell(self) -> bool:
        return self.kind in (SETUP, ANSWER)

    def describe(self) -> str:
        """How a sentence for a person names the item: "Answer cell encoder_block", "Check decoder_shapes/1"."""
        return {SETUP: "Setup cell", ANSWER: "Answer cell"}.get(self.kind, "Check") + f" {self.name}"

    def code_name(self) -> str:
        """The file name a cell's code is compiled under, so that a traceback can point at the student's line."""
        return f"<{self.kind}:{self.name}>"


@dataclass(frozen=True)
class Cell:
    id: ItemId
    code: str
    timeout_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"id": str(self.id), "ns": self.id.run, "code": self.code, "timeout_s": self.timeout_s})


@dataclass(frozen=True)
class Probe:
    id: ItemId
    check: str
    function: str
    args: dict[str, Any]
    timeout_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_none(
            {
                "id": str(self.id),
                "ns": self.id.run,
                "check": self.check,
                "function": self.function,
                "args": self.args,
                "timeout_s": self.timeout_s,
            }
        )


@dataclass(frozen=True)
class Measure:
    id: ItemId
    check: str
    export_dir: str
    args: dict[str, Any]
    timeout_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_none(
            {
                "id": str(self.id),
                "check": self.check,
                "export_dir": self.export_dir,
                "args": self.args,
                "timeout_s": self.timeout_s,
            }
        )


@dataclass
class Plan:
    """What one worker runs: every cell, then every probe, then every measure. `item_timeout_s` is the limit of an
    item without its own."""

    seed: int
    item_timeout_s: float
    backend: str | None = None  # the Keras backend (KERAS_BACKEND) of the worker; None: Keras' own default
    cells: list[Cell] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)

    @property
    def items(self) -> list[Cell | Probe | Measure]:
        return [*self.cells, *self.probes, *self.measures]

    def timeouts(self) -> dict[ItemId, float]:
        """Every item, in the order the worker runs it, with its own time limit."""
        return {i.id: float(i.timeout_s if i.timeout_s is not None else self.item_timeout_s) for i in self.items}

    def wall_s(self, *, start_up_s: float = 60.0) -> float:
        """The worker's wall-clock limit: each item's own limit, plus start-up. The items' timers fire first."""
        return sum(self.timeouts().values()) + start_up_s

    def to_dict(self, **extra: Any) -> dict[str, Any]:
        """The plan file the worker reads (`extra`: the runner's own keys, such as the items to skip)."""
        return {
            "seed": self.seed,
            "item_timeout_s": self.item_timeout_s,
            "cells": [c.to_dict() for c in self.cells],
            "probes": [p.to_dict() for p in self.probes],
            "evaluations": [m.to_dict() for m in self.measures],
            **extra,
        }


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}
