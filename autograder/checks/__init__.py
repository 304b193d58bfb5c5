"""The checks: one name per check, used by three callers (the student's kernel, `autograder check`, the grader).

Two kinds, each its own type: a value check (`Check`: its probe result judged against the reference's) and a
training check (`TrainingCheck`: trained in the student's worker, measured in a clean worker, judged against
calibrated `Thresholds`). The layout, one home per concern:
- base.py: `CheckBase` (what both kinds have), `Check`, `Verdict`, the registry (`register`); registry.py: `get`,
  `value_check`, `training_check`, `split_calls` (the one place that tells calls apart by kind), `validate_extra`;
- student.py: `call_student`, the one way a probe calls student code; messages.py: how messages write shapes,
  numbers and "got X, expected Y";
- kernel.py: `run_check`, the notebook side;
- one module per topic: blocks (encoder/decoder blocks), sampler (the VAE's sampling layer), vae_loss,
  conditioning (the CVAE's condition), latent_arithmetic (attribute vectors), noise (adding noise to images),
  sparsity (the KL sparsity penalty), gan_loss (the GAN's discriminator and generator losses);
- quality/: the training checks, on one base that builds, trains, exports, loads in safe mode and measures.
"""

from __future__ import annotations

from .base import REGISTRY, Check, CheckBase, Verdict, register
from .kernel import CheckFailed, run_check
from .quality import SourceBuilder, Thresholds, TrainingCheck
from .registry import get, split_calls, training_check, training_checks, validate_extra, value_check

__all__ = [
    "Check",
    "CheckBase",
    "CheckFailed",
    "REGISTRY",
    "SourceBuilder",
    "Thresholds",
    "TrainingCheck",
    "Verdict",
    "get",
    "register",
    "run_check",
    "split_calls",
    "training_check",
    "training_checks",
    "validate_extra",
    "value_check",
]
