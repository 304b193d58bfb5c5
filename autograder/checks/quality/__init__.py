"""Training checks: one base (base.py) that trains, exports, loads in safe mode and measures, and one module per
assignment that says what it builds and what it measures (reconstruction.py, vae.py, cvae.py, denoising.py, gan.py).
extra.py declares how a check lists the course.yaml `extra:` settings it reads. The checks register when
`registry` imports them."""

from __future__ import annotations

from .base import QualityCheck, score_metric
from .extra import Setting

__all__ = ["QualityCheck", "Setting", "score_metric"]
