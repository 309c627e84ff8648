"""Materials: TOML parameter files with provenance, validation and Vegard interpolation."""

from qdsim.materials.loader import System as System
from qdsim.materials.loader import load_system as load_system
from qdsim.materials.schema import MaterialsError as MaterialsError
