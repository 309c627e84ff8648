"""Which inputs move a dot on the phase diagram? Exact sensitivities by jax.grad, and f_v.

Run: python studies/02_sensitivity.py
1. For a dot like the paper's dot 3 (d = 10 nm, x = 0.36 from studies/03), the derivative of the
   emission energy and of the dark-bright splitting with respect to R, x and every alloy-level
   input (implicit differentiation through the BDD roots and the lambda optimum), each times a
   plausible uncertainty of that input: the error budget of a placement.
2. The uncalibrated valence-band share f_v (design/physics.md A.2, E; sensitivity range 0.3-0.8).
   With m_e = m_h its first derivative vanishes at f_v = 0.5 (electron-hole symmetry), so the
   finite sweep shows its second-order effect:
   how the composition inferred for a 1.8167 eV, d = 10 nm dot moves with it.
Writes studies/out/sensitivity.png.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import brentq

import qdsim
from qdsim.materials.loader import alloy_params
from qdsim.plotting._style import pyplot

OUT = Path(__file__).resolve().parent / "out"
R0, X0 = 5.0, 0.3575

# plausible one-sigma uncertainty of each input (for the budget column only)
SIGMAS = {
    "radius (nm)": 0.5,
    "x": 0.02,
    "f_v": 0.15,
    "x0.Eg (eV)": 0.01,
    "x1.Eg (eV)": 0.01,
    "x0.me (m0)": 0.036,
    "x0.eps_eff": 0.5,
    "hwLT (eV)": 0.2e-3,
}


def main():
    OUT.mkdir(exist_ok=True)
    system = qdsim.load_system()
    with qdsim.float64():
        values = {k: jnp.asarray(v) for k, v in system.values.items()}

        def outputs(R, x, vals):
            s = qdsim.solve_sphere(alloy_params(vals, x), R)
            return jnp.stack([s.bright_energy_eV, s.dark_bright_eV])

        jac = jax.jacfwd(outputs, argnums=(0, 1, 2))(jnp.float64(R0), jnp.float64(X0), values)
    dR, dx, dv = (np.asarray(j) if not isinstance(j, dict) else j for j in jac)
    rows = {
        "radius (nm)": np.asarray(dR),
        "x": np.asarray(dx),
        "f_v": np.asarray(dv["f_v"]),
        "x0.Eg (eV)": np.asarray(dv["x0.Eg"]),
        "x1.Eg (eV)": np.asarray(dv["x1.Eg"]),
        "x0.me (m0)": np.asarray(dv["x0.me"]),
        "x0.eps_eff": np.asarray(dv["x0.eps_eff"]),
        "hwLT (eV)": np.asarray(dv["hwLT_x0"]) + np.asarray(dv["hwLT_x1"]),
    }
    print(f"dot-3-like dot, R = {R0} nm, x = {X0}: d(output)/d(input) and sigma x derivative")
    print(
        f"{'input':<14}{'dE/dp (eV/u)':>16}{'dDB/dp (meV/u)':>17}{'sigma':>9}"
        f"{'dE (meV)':>10}{'dDB (meV)':>11}"
    )  # noqa: E501
    for name, d in rows.items():
        s = SIGMAS[name]
        print(
            f"{name:<14}{d[0]:>16.4g}{d[1] * 1e3:>17.4g}{s:>9.3g}{abs(d[0] * s) * 1e3:>10.3g}"
            f"{abs(d[1] * s) * 1e3:>11.3g}"
        )

    # f_v: composition of a 1.8167 eV dot at d = 10 nm
    fvs = np.linspace(0.3, 0.8, 11)
    xs = []
    for fv in fvs:
        f = lambda x, fv=fv: float(system.solve(x, R0, f_v=fv).bright_energy_eV) - 1.8167  # noqa: E731
        xs.append(brentq(f, 0.0, 0.6, xtol=1e-8))
    print(
        "\nf_v  -> x of a 1.8167 eV, d = 10 nm dot:",
        ", ".join(f"{a:.2f}: {b:.3f}" for a, b in zip(fvs, xs, strict=True)),
    )  # noqa: E501
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    ax.plot(fvs, xs, "o-")
    ax.set_xlabel("valence-band share f_v (uncalibrated)")
    ax.set_ylabel("inferred Br fraction x")
    ax.set_title("dot 3 (1.8167 eV, d = 10 nm)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(OUT / "sensitivity.png", dpi=130)


if __name__ == "__main__":
    main()
