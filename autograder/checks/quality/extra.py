"""The `extra:` settings of a training profile (course.yaml), declared by the training checks that read them.

Each training check lists the keys it reads in its `extra` class attribute, as `ExtraSetting`s (a type, a default,
a sentence). Two readers use those declarations, and nothing else reads `extra` with a default of its own:
- config.py, on loading course.yaml: each key of a profile's `extra` must be declared by a training check, with
  a value of the declared type (`registry.validate_extra`); otherwise a KitError names the key and the file;
- the check itself, in a worker or in calibration: `TrainingCheck.settings(recipe)` gives every declared key,
  from the profile or from its default.

This module needs neither NumPy nor Keras: config.py imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import KitError


@dataclass(frozen=True)
class ExtraSetting:
    """One key that a training check reads from a profile's `extra:` settings: its type, default and meaning."""

    kind: type  # int, float, str, bool or list
    default: Any  # None where the check works the default out from the data (e.g. "all the training images")
    help: str = ""
    item: type | None = None  # for a list: the type of each item
    choices: tuple = ()  # when not empty: the allowed values (of each item, for a list)

    def read(self, value: Any, where: str, file: Path | str | None) -> Any:
        """`value` as this setting's type (an int where a float is declared becomes a float), or a KitError."""
        if value is None:
            return None
        if self.kind is list:
            if not isinstance(value, list):
                _wrong(where, file, f"must be a list of {self.item.__name__ if self.item else 'values'}", value)
            return [
                ExtraSetting(self.item, None, choices=self.choices).read(v, where, file) if self.item else v
                for v in value
            ]
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind in (int, float) and isinstance(value, bool)):
            _wrong(where, file, f"must be a {self.kind.__name__}", value)
        if self.choices and value not in self.choices:
            raise KitError(f"{_prefix(file)}'{where}' has {value!r}; use one of {', '.join(map(str, self.choices))}.")
        return value


def _wrong(where: str, file, what: str, value: Any):
    raise KitError(f"{_prefix(file)}'{where}' {what}, got {value!r}.")


def _prefix(file) -> str:
    return f"{file}: " if file else ""


def read_extra(
    extra: Mapping[str, Any] | None,
    schema: Mapping[str, ExtraSetting],
    *,
    where: str = "extra",
    file: Path | str | None = None,
    defaults: bool = True,
    unknown: bool = False,
) -> dict[str, Any]:
    """Validate `extra` against `schema`: each value read as its declared type; with `defaults`, every declared key
    is there (its default where `extra` lacks it). A key the schema does not declare is a KitError, or, with
    `unknown=True`, left out (a key that another training check of the assignment reads)."""
    extra = dict(extra or {})
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if key not in schema:
            if unknown:
                continue
            known = ", ".join(sorted(schema)) or "none (no training check reads extra settings)"
            raise KitError(f"{_prefix(file)}unknown key '{where}.{key}'. Known keys here: {known}.")
        out[key] = schema[key].read(value, f"{where}.{key}", file)
    if defaults:
        for key, setting in schema.items():
            out.setdefault(key, setting.default)
    return out


def merge_schemas(schemas: Mapping[str, Mapping[str, ExtraSetting]]) -> dict[str, ExtraSetting]:
    """One schema from several checks' (name -> schema). A key that two checks declare must have one type in both;
    the first check's default stands (each check reads its own default)."""
    merged: dict[str, ExtraSetting] = {}
    owner: dict[str, str] = {}
    for name, schema in schemas.items():
        for key, setting in schema.items():
            if key in merged and (merged[key].kind, merged[key].item) != (setting.kind, setting.item):
                raise TypeError(
                    f"extra setting {key!r} is declared as {merged[key].kind.__name__} by "
                    f"{owner[key]} and as {setting.kind.__name__} by {name}"
                )
            merged.setdefault(key, setting)
            owner.setdefault(key, name)
    return merged
