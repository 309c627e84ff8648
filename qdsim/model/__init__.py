"""The forward model (JAX): finite well, variational exciton, exchange, radiative rate."""

from qdsim.model.solve import solve_sphere as solve_sphere
from qdsim.model.types import SolverConfig as SolverConfig
from qdsim.model.types import SphereParams as SphereParams
from qdsim.model.types import SphereSolution as SphereSolution
