"""sdegen's samplers as Diffrax solvers, and the one place sdegen calls `diffrax.diffeqsolve`.

- `integrate`: the solve (`integrate`), its checks (`check`, `validate`), NFE (`stats_of`,
  `evals_per_step`, `SolveStats`) and the adaptive set-up (`adaptive`, `ADAPTIVE_SOLVERS`).
- `base`: `CountsFieldEvals` (the `field_evals` a solver states), `AbstractGridSampler`, the
  processes it steps (`GaussianKernel`: linear SDEs and Gaussian flow-matching paths) and
  `FromPureNoise` (the exact first step from a pure-noise prior).
- one file per sampler family: `langevin` (predictor–corrector), `geodesic` (random walk on a
  manifold), `replacement` (inpainting wrapper), `edm` (EDM Heun/churn), `dpm_solver` (DDIM
  with η, DPM-Solver++ 2M / 3M / 2S / 2M SDE), `ipndm` (iPNDM), `deis` (DEIS-tAB), `unipc`
  (UniPC); `grids` (fixed time grids), `noise` (diagonal diffusion).
- `methods.METHODS`: method name -> (terms, solver builder, default grid), the only list of
  the method names of `sdegen.sample`.
"""

from .base import AbstractGridSampler as AbstractGridSampler
from .base import CountsFieldEvals as CountsFieldEvals
from .base import FromPureNoise as FromPureNoise
from .base import GaussianKernel as GaussianKernel
from .deis import DEIS as DEIS
from .dpm_solver import DDIM as DDIM
from .dpm_solver import DPMSolverPP2M as DPMSolverPP2M
from .dpm_solver import DPMSolverPP2MSDE as DPMSolverPP2MSDE
from .dpm_solver import DPMSolverPP2S as DPMSolverPP2S
from .dpm_solver import DPMSolverPPMultistep as DPMSolverPPMultistep
from .edm import EDMSampler as EDMSampler
from .geodesic import GeodesicRandomWalk as GeodesicRandomWalk
from .grids import GRIDS as GRIDS
from .grids import default_grid as default_grid
from .grids import karras_grid as karras_grid
from .grids import logsnr_grid as logsnr_grid
from .grids import save_times as save_times
from .grids import solver_times as solver_times
from .grids import time_grid as time_grid
from .grids import time_quadratic_grid as time_quadratic_grid
from .grids import uniform_grid as uniform_grid
from .integrate import ADAPTIVE_SOLVERS as ADAPTIVE_SOLVERS
from .integrate import SolveStats as SolveStats
from .integrate import adaptive as adaptive
from .integrate import as_solver as as_solver
from .integrate import batch_max_norm as batch_max_norm
from .integrate import check as check
from .integrate import evals_per_step as evals_per_step
from .integrate import evals_saved as evals_saved
from .integrate import integrate as integrate
from .integrate import stats_of as stats_of
from .integrate import validate as validate
from .ipndm import IPNDM as IPNDM
from .langevin import ReverseDiffusionLangevin as ReverseDiffusionLangevin
from .methods import METHODS as METHODS
from .methods import Method as Method
from .methods import Options as Options
from .metropolis import MetropolisCorrected as MetropolisCorrected
from .noise import diagonal_noise as diagonal_noise
from .optimal_grid import optimized_grid as optimized_grid
from .replacement import Replacement as Replacement
from .unipc import UniPC as UniPC
