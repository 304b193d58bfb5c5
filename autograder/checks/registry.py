"""Finding checks by name, telling their calls apart by kind, and the questions asked of the whole set of them.

The check modules register their checks when they are imported; `get` imports them all on first use, so a caller
never needs to know which module holds which check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .base import REGISTRY, Check, CheckBase
from .quality.base import TrainingCheck


class _Call(Protocol):
    @property
    def check(self) -> str: ...


AnyCall = TypeVar("AnyCall", bound=_Call)


def _load_all() -> None:
    from . import blocks, conditioning, gan_loss, latent_arithmetic, noise, sampler, sparsity, vae_loss  # noqa: F401
    from .quality import cvae, denoising, gan, reconstruction, vae  # noqa: F401
    from .quality.submitted import register_twins

    register_twins()  # every training check's submitted-weights twin, once the training checks are registered


def get(name: str) -> CheckBase:
    _load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no check named {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def value_check(name: str) -> Check:
    """The value check `name`: its probe result is judged against the reference's."""
    check = get(name)
    if not isinstance(check, Check):
        raise KeyError(f"{name!r} is a training check, not a value check")
    return check


def training_check(name: str) -> TrainingCheck:
    """The training check `name`: trained in the student's worker, measured in a clean one."""
    check = get(name)
    if not isinstance(check, TrainingCheck):
        raise KeyError(f"{name!r} is a value check, not a training check")
    return check


def split_calls(calls: Iterable[AnyCall]) -> tuple[tuple[AnyCall, ...], tuple[AnyCall, ...]]:
    """The one place where check calls are told apart by kind: (the value checks' calls, the training checks'
    calls), each in the order given. A call is anything that names its check in `check` (`notebook.CheckCall`);
    `notebook.Spec.value_calls` and `training_calls` are its answer for a notebook."""
    values: list[AnyCall] = []
    training: list[AnyCall] = []
    for call in calls:
        (training if isinstance(get(call.check), TrainingCheck) else values).append(call)
    return tuple(values), tuple(training)


def training_checks() -> list[TrainingCheck]:
    _load_all()
    return [check for _, check in sorted(REGISTRY.items()) if isinstance(check, TrainingCheck)]


def validate_extra(
    extra: Mapping[str, Any] | None, *, where: str, file: Path | str | None = None, names: Iterable[str] | None = None
) -> dict[str, Any]:
    """A training profile's `extra:` settings, validated against what the training checks `names` (default: every
    training check) declare: each key declared by one of them, each value of its declared type. Returns the
    settings as given, with values read as their types (no defaults added: each check adds its own)."""
    from .quality.extra import merge_schemas, read_extra

    chosen = training_checks() if names is None else [training_check(n) for n in names]
    schema = merge_schemas({check.name: check.extra for check in chosen})
    return read_extra(extra, schema, where=where, file=file, defaults=False)
