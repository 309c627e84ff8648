"""Placement of measured dots on the phase diagram, and calibration over many dots.

The layer above the model, the sweep and the analysis (pyproject's import contracts: none of
them imports it). `place` gives the posterior over one dot's diameter and composition with the
uncalibrated constants marginalised (grid engine on a cached table, or NUTS); `calibrate` fits
the shared constants over many dots.
"""

from __future__ import annotations

from qdsim.placement.api import MODEL_ERROR as MODEL_ERROR
from qdsim.placement.api import place as place
from qdsim.placement.calibrate import Calibration as Calibration
from qdsim.placement.calibrate import calibrate as calibrate
from qdsim.placement.grid import GridSpec as GridSpec
from qdsim.placement.measurements import Measurement as Measurement
from qdsim.placement.measurements import PlacementError as PlacementError
from qdsim.placement.measurements import PlacementWarning as PlacementWarning
from qdsim.placement.priors import Prior as Prior
from qdsim.placement.result import Placement as Placement

__all__ = [
    "MODEL_ERROR",
    "Calibration",
    "calibrate",
    "GridSpec",
    "Measurement",
    "Placement",
    "PlacementError",
    "PlacementWarning",
    "Prior",
    "place",
]
