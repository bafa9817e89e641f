"""Energy-based models and their samplers: `energy` (E(x, t) and its compositions: products,
tempering, negation, mixtures), `mcmc` (MALA, HMC and the Metropolis-corrected reverse-SDE
solver) and `annealed` (`annealed_mcmc`, reverse-process sampling with MCMC corrections)."""

from .energy import DenoiserEnergy as DenoiserEnergy
from .energy import Energy as Energy
from .energy import EnergyField as EnergyField
from .energy import Mixture as Mixture
from .energy import WeightedSum as WeightedSum
from .energy import mixture as mixture
from .energy import negation as negation
from .energy import product as product
from .energy import tempered as tempered
