"""Float64 whatever the user's JAX settings (architecture.md §3.4).

qdsim never flips `jax_enable_x64` globally. Entry points that own the computation run inside
`float64()`, JAX's scoped x64 context. Code traced in the user's own jit/vmap/grad must already be
in float64 (`jax_enable_x64` or inside `with qdsim.float64():`); otherwise `require_x64` raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax
import jax.numpy as jnp

__all__ = ["X64_MESSAGE", "float64", "require_x64", "x64_enabled"]

X64_MESSAGE = (
    "qdsim needs float64: enable jax_enable_x64 (jax.config.update('jax_enable_x64', True)) "
    "or trace inside `with qdsim.float64():`"
)


def x64_enabled() -> bool:
    """True when JAX currently produces float64 by default (globally or in a scoped context)."""
    return jax.dtypes.canonicalize_dtype(jnp.float64) == jnp.float64


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """Context manager: run JAX in float64 inside the block, restoring the setting after.

    Use it around your own `jax.jit`/`jax.vmap`/`jax.grad` of qdsim functions when your JAX
    default is float32::

        with qdsim.float64():
            dE_dR = jax.grad(lambda r: qdsim.solve_sphere(p, r).energy_eV)(5.0)
    """
    if x64_enabled():
        yield
        return
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older JAX
        from jax.experimental import enable_x64 as enable
    with enable(True):
        yield


def require_x64(*leaves) -> None:
    """Raise TypeError if x64 is off or any floating leaf is narrower than float64."""
    if not x64_enabled():
        raise TypeError(X64_MESSAGE)
    for leaf in leaves:
        dt = getattr(leaf, "dtype", None)
        if dt is not None and jnp.issubdtype(dt, jnp.floating) and dt != jnp.float64:
            raise TypeError(f"{X64_MESSAGE} (got a {dt} input)")
