"""Training checks: one base (base.py, `TrainingCheck`) that builds, trains, exports, loads in safe mode, measures
and judges against the calibrated thresholds (thresholds.py), and one module per assignment that says what it builds
and what it measures (reconstruction.py, vae.py, cvae.py, denoising.py, gan.py). extra.py declares how a check lists
the course.yaml `extra:` settings it reads. The checks register when `registry` imports them."""

from __future__ import annotations

from .base import SourceBuilder, TrainingCheck
from .extra import ExtraSetting
from .thresholds import MetricRule, Thresholds, score_metric

__all__ = ["ExtraSetting", "MetricRule", "SourceBuilder", "Thresholds", "TrainingCheck", "score_metric"]
