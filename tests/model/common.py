"""Shared inputs and helpers of the forward-model tests (reduced units where possible)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import sici

import qdsim

INF = math.inf

#: Impenetrable sphere, m_e = m_h = 0.2 (mu = 0.1), eps = 10: reduced units Ry*, a_B.
P_INF = qdsim.SphereParams(
    Eg_eV=0.0, me_in=0.2, mh_in=0.2, me_out=0.2, mh_out=0.2, eps=10.0, dEc_eV=INF, dEv_eV=INF
)
RY = float(qdsim.rydberg_star_eV(P_INF))
AB = float(qdsim.bohr_star_nm(P_INF))

#: physics.md C.5 finite-barrier case (x = 0.30, f_v = 0.5, m = 2 mu), R = 5 nm.
P_C5 = qdsim.SphereParams(
    Eg_eV=1.7206,
    me_in=0.195,
    mh_in=0.195,
    me_out=0.23,
    mh_out=0.23,
    eps=9.071,
    dEc_eV=0.2562,
    dEv_eV=0.2562,
)

#: A deliberately asymmetric finite-barrier dot (every e/h parameter different).
P_ASYM = qdsim.SphereParams(
    Eg_eV=1.8,
    me_in=0.17,
    mh_in=0.24,
    me_out=0.21,
    mh_out=0.31,
    eps=8.8,
    dEc_eV=0.18,
    dEv_eV=0.35,
    dSR_eV=2e-4,
    hwLT_eV=1.5e-3,
    eps_bg_in=6.0,
    eps_bg_out=4.5,
)

SI2, SI4 = sici(2 * np.pi)[0], sici(4 * np.pi)[0]
COULOMB_COEFF = 2.0 - SI2 / np.pi + SI4 / (2.0 * np.pi)  # 1.7860731681516873
CONTACT_COEFF = np.pi * (SI2 - SI4 / 2.0)  # 2.1113732


def richardson(f, x, h):
    """Central difference at h and h/2, Richardson-combined (error O(h^4))."""
    d1 = (f(x + h) - f(x - h)) / (2 * h)
    d2 = (f(x + h / 2) - f(x - h / 2)) / h
    return (4 * d2 - d1) / 3
