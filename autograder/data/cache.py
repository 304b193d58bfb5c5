"""Where decoded data sets are cached."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache folder: `override`, else $AUTOENCODER_KIT_CACHE, else ~/.cache/autoencoder-kit."""
    path = Path(override or os.environ.get("AUTOENCODER_KIT_CACHE") or Path.home() / ".cache" / "autoencoder-kit")
    path.mkdir(parents=True, exist_ok=True)
    return path
