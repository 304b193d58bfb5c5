"""Finding checks by name, and the questions asked of the whole set of them.

The check modules register their checks when they are imported; `get` imports them all on first use, so a caller
never needs to know which module holds which check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from .base import REGISTRY, Check


def _load_all() -> None:
    from . import blocks, conditioning, gan_loss, latent_arithmetic, noise, sampler, sparsity, vae_loss  # noqa: F401
    from .quality import cvae, denoising, gan, reconstruction, vae  # noqa: F401


def get(name: str) -> Check:
    _load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no check named {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def is_training(name: str) -> bool:
    """Whether the check trains a model (scored against calibrated thresholds, measured in a clean worker)."""
    return bool(get(name).quality)


def training_checks() -> list[Check]:
    _load_all()
    return [check for _, check in sorted(REGISTRY.items()) if check.quality]


def validate_extra(extra: Mapping[str, Any] | None, *, where: str, file: Path | str | None = None,
                   names: Iterable[str] | None = None) -> dict[str, Any]:
    """A training profile's `extra:` settings, validated against what the training checks `names` (default: every
    training check) declare: each key declared by one of them, each value of its declared type. Returns the
    settings as given, with values read as their types (no defaults added: each check adds its own)."""
    from .quality.extra import merge_schemas, read_extra

    chosen = training_checks() if names is None else [get(n) for n in names if is_training(n)]
    schema = merge_schemas({check.name: getattr(check, "extra", {}) for check in chosen})
    return read_extra(extra, schema, where=where, file=file, defaults=False)
