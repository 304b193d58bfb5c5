"""The checks: one name per check, used by three callers (the student's kernel, `autograder check`, the grader).

The layout, one home per concern:
- base.py: `Check`, `Verdict`, the registry (`register`); registry.py: `get`, `is_training`, `validate_extra`;
- student.py: `call_student`, the one way a probe calls student code; messages.py: how messages write shapes,
  numbers and "got X, expected Y";
- kernel.py: `run_check`, the notebook side;
- one module per topic: blocks (encoder/decoder blocks), sampler (the VAE's sampling layer), vae_loss,
  conditioning (the CVAE's condition), latent_arithmetic (attribute vectors), noise (adding noise to images),
  sparsity (the KL sparsity penalty), gan_loss (the GAN's discriminator and generator losses);
- quality/: the training checks, on one base that trains, exports, loads in safe mode and measures.
"""

from __future__ import annotations

from .base import REGISTRY, Check, Verdict, register
from .kernel import CheckFailed, run_check
from .registry import get, is_training, training_checks, validate_extra

__all__ = ["Check", "CheckFailed", "REGISTRY", "Verdict", "get", "is_training", "register", "run_check",
           "training_checks", "validate_extra"]
