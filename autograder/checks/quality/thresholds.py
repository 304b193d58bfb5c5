"""What a training check is judged against: one profile's calibrated thresholds, typed, and the rule that turns a
metric's value into partial credit between the failure level and full marks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MetricRule:
    """One metric's calibrated rule: full marks at or beyond `threshold`, none at or beyond `fail`."""

    threshold: float
    fail: float
    higher_is_better: bool


@dataclass(frozen=True)
class Thresholds:
    """One profile's thresholds, by metric, and the profile's name, which the judge's message names."""

    profile: str
    metrics: Mapping[str, MetricRule] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], *, profile: str) -> Thresholds:
        """A profile's entry of thresholds.json ({"metrics": {"test_mse": {"threshold", "fail",
        "higher_is_better", ...}}}, as `files.profile_thresholds` reads it); an empty entry has no rule."""
        rules = {
            str(metric): MetricRule(float(rule["threshold"]), float(rule["fail"]), bool(rule["higher_is_better"]))
            for metric, rule in dict(entry.get("metrics", {})).items()
        }
        return cls(profile, rules)


def score_metric(value: float, *, threshold: float, fail: float, higher_is_better: bool) -> float:
    """Full credit at or beyond the threshold, none at or beyond the failure level, linear between."""
    if not np.isfinite(value):
        return 0.0
    if higher_is_better:
        value, threshold, fail = -value, -threshold, -fail
    if value <= threshold:
        return 1.0
    if value >= fail:
        return 0.0
    return float((fail - value) / (fail - threshold))
