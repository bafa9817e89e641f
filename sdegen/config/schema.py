"""The config schema: one dataclass per section, each field with its type, default, allowed
range and a docstring. Name choices are read from the tables of `config.build` (processes,
objectives, models, datasets) and `sdegen.solvers.METHODS` (sampling methods), never typed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..fields import PARAMETERISATIONS
from ..loggers import LOGGERS
from ..objectives import WEIGHTINGS
from ..solvers import GRIDS, METHODS
from .build import DATASETS, MODELS, OBJECTIVES, PROCESSES, names_in


def _choice(*options: str) -> dict:
    return {"choices": options}


def _positive() -> dict:
    return {"min": 0.0, "min_exclusive": True}


IMAGE_NAMES = names_in("images")
SPHERE_NAMES = names_in("sphere")
"""Data on S^2: the synthetic weather-style vMF mixture (no files) and the earth CSVs."""
SDE_KINDS = tuple(k for k, e in PROCESSES.items() if e.field == "score" and e.space == "euclidean")
FLOW_KINDS = tuple(k for k, e in PROCESSES.items()
                   if e.field == "velocity" and e.space == "euclidean")
"""Process kinds: SDEs (score field) and velocity processes (the field is the velocity)."""
SPHERE_KINDS = tuple(k for k, e in PROCESSES.items() if e.space == "sphere")
"""Processes on S^2: Brownian motion with β(t) = beta_min + t (beta_max − beta_min) (RSGM, a
score field) and the geodesic flow-matching path (RFM, a velocity field)."""
PATH_OBJECTIVES = tuple(k for k, e in OBJECTIVES.items() if e.trains == ("flow_linear", "flow_vp"))
FAMILY_OBJECTIVES = {m: tuple(o for o, e in OBJECTIVES.items() if e.family and e.trains == (m,))
                     for m, e in MODELS.items() if e.family}
"""The classic families (`sdegen.families`): model.kind -> the objectives that train it. They
have no forward process (process.kind=none) and generate by ancestral sampling."""
SPHERE_OBJECTIVES = {o: e.trains[0] for o, e in OBJECTIVES.items()
                     if e.trains and e.trains[0] in PROCESSES
                     and PROCESSES[e.trains[0]].space == "sphere"}
"""Objectives on S^2 and the process each trains."""


@dataclass
class DataConfig:
    name: str = field(default="8gaussians",
                      metadata=_choice(*DATASETS))
    path: str = ""
    """Folder holding a file-based dataset (earth CSVs, MNIST idx, CIFAR-10 batches); empty
    means the dataset's default (earth: ../shared/data/earth)."""
    protocol: str = field(default="standard", metadata=_choice("standard", "dedup"))
    """Earth data: 80/10/10 split of all events (standard) or of distinct locations (dedup);
    the split's seed is the config's `seed`."""
    binarize: bool = False
    """Images only: pixels above half range → 1, else 0 (no dequantisation), e.g. for the
    Helmholtz machine and Bernoulli VAEs."""
    conditional: bool = False
    """Images only: batches are (x, label) pairs, for class-conditional score models and flows
    (objective.kind=dsm, fm or ot_cfm, with label dropout `objective.label_dropout`) and
    `objective.kind=classifier`."""
    holdout: int = field(default=-1, metadata={"min": -1})
    """Images only: leave this class out of the training split (-1: none), e.g. digits 0–8 for
    anomaly detection of 9s."""

@dataclass
class ProcessConfig:
    kind: str = field(default="vp", metadata=_choice(*PROCESSES))
    """none: no forward process, for the classic families (model.kind=vae|helmholtz|gan)."""
    beta_min: float = field(default=0.1, metadata=_positive())
    beta_max: float = field(default=20.0, metadata=_positive())
    """VP/sub-VP β(t); for sphere_bm the Brownian time change (RSGM: 1e-3 and 24 give
    τ(1) = 6, uniform to 6e-6)."""
    sigma_min: float = field(default=0.01, metadata=_positive())
    sigma_max: float = field(default=10.0, metadata=_positive())
    path_sigma_min: float = field(default=0.0, metadata={"min": 0.0, "max": 0.99})
    """σ_min of the linear flow-matching path (`flow_linear`; Lipman et al. 2023, eq. 20)."""


@dataclass
class ModelConfig:
    kind: str = field(default="mlp", metadata=_choice(*MODELS))
    """mlp: `nets.TimeMLP` (images are flattened); unet: `nets.UNet` on (H, W, C) images;
    vae, helmholtz, gan: the classic families of `sdegen.families` (their MLPs use width, depth
    and latent_dim)."""
    width: int = field(default=128, metadata=_positive())
    depth: int = field(default=3, metadata=_positive())
    n_freq: int = field(default=16, metadata=_positive())
    max_freq: float = field(default=64.0, metadata=_positive())
    parameterisation: str = field(default="noise",
                                  metadata=_choice(*PARAMETERISATIONS, "energy"))
    """noise / score / edm: `fields.ScoreField`; energy: `energy.EnergyField` of the scalar
    `energy.DenoiserEnergy` (score = −∇E, so MCMC, tempering and composition apply)."""
    latent_dim: int = field(default=8, metadata=_positive())
    """vae, gan: latent dimension; helmholtz: units in the top binary layer."""
    decoder: str = field(default="gaussian", metadata=_choice("gaussian", "bernoulli"))
    """vae: p(x | z); bernoulli needs binary data (data.binarize=true)."""
    sigma_data: float = field(default=0.5, metadata=_positive())
    """edm: the data standard deviation σ_d of Karras et al. (2022) preconditioning."""
    channels: int = field(default=16, metadata=_positive())
    """unet: base channel count (times each of channel_mults per resolution level)."""
    channel_mults: list = field(default_factory=lambda: [1, 1])
    """unet: channel multiplier per resolution level (each level after the first halves H, W)."""
    num_res_blocks: int = field(default=1, metadata=_positive())
    attn_resolutions: list = field(default_factory=lambda: [4])
    """unet: spatial sizes (H at that level) with self-attention."""
    num_classes: int = field(default=0, metadata={"min": 0})
    """unet: > 0 adds a label embedding (labels 0..num_classes−1, plus a null label)."""
    activation: str = field(default="silu", metadata=_choice("silu", "sin", "tanh"))
    """Sphere data (`nets.TangentMLP`, chosen for data on S^2): hidden activation."""
    x_freq: int = field(default=0, metadata={"min": 0})
    """Sphere data: number of random Fourier features of the position (0: none)."""
    x_scale: float = field(default=10.0, metadata=_positive())
    """Sphere data: their frequency scale (angular resolution ~ 1/x_scale rad)."""


@dataclass
class ObjectiveConfig:
    kind: str = field(default="dsm", metadata=_choice(*OBJECTIVES))
    """classifier: a noise-conditioned classifier p(y | x_t, t) (`sdegen.guidance`), on
    labelled data (`data.conditional=true`), for classifier guidance and feature distances;
    elbo, iwae, wake_sleep, gan: the classic families (`model.kind` vae, helmholtz, gan);
    rdsm, rism, rfm: the sphere objectives (`sdegen.objectives.sphere`)."""
    weighting: str = field(default="song", metadata=_choice(*WEIGHTINGS))
    t_eps: float = field(default=1e-5, metadata={"min": 0.0, "max": 0.5})
    trace: str = field(default="hutchinson", metadata=_choice("hutchinson", "exact"))
    """maxlik: divergence estimator during training (evaluation always uses the exact one)."""
    kinetic: float = field(default=0.0, metadata={"min": 0.0})
    """maxlik: RNODE kinetic-energy weight λ_K (Finlay et al. 2020)."""
    frobenius: float = field(default=0.0, metadata={"min": 0.0})
    """maxlik: RNODE Jacobian-Frobenius weight λ_J (Finlay et al. 2020)."""
    train_tol: float = field(default=1e-3, metadata=_positive())
    """maxlik: rtol = atol of the training solve."""
    label_dropout: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
    """dsm, fm, ot_cfm with data.conditional: probability of training on the null label
    (classifier-free guidance, Ho & Salimans 2022)."""
    k: int = field(default=8, metadata=_positive())
    """iwae: importance samples per example in the training bound."""
    r1: float = field(default=1.0, metadata={"min": 0.0})
    """gan: weight γ of the R1 penalty on real data (Mescheder et al. 2018)."""


@dataclass
class TrainConfig:
    steps: int = field(default=5000, metadata=_positive())
    batch_size: int = field(default=512, metadata=_positive())
    lr: float = field(default=2e-3, metadata=_positive())
    warmup: int = field(default=200, metadata={"min": 0})
    lr_schedule: str = field(default="constant", metadata=_choice("constant", "cosine"))
    """After warm-up: constant lr, or cosine decay to lr/100 at `steps`."""
    grad_clip: float = field(default=1.0, metadata=_positive())
    ema_decay: float = field(default=0.999, metadata={"min": 0.0, "max": 1.0})
    ckpt_every: int = field(default=1000, metadata=_positive())
    keep: int = field(default=3, metadata=_positive())
    log_every: int = field(default=100, metadata=_positive())
    on_nonfinite: str = field(default="stop", metadata=_choice("stop", "skip"))
    """What a non-finite loss/gradient does: stop the run, or skip that update."""
    max_skips: int = field(default=10, metadata={"min": 0})
    """With on_nonfinite=skip: stop after this many skipped updates in a row."""
    devices: int = field(default=0, metadata={"min": 0})
    """Data-parallel training over this many devices (0: all visible devices; 1: one device):
    the batch is sharded over a 1-D `jax.sharding.Mesh`, parameters replicated."""
    async_ckpt: bool = False
    """Write checkpoints in the background (orbax async checkpointing)."""
    loggers: list = field(default_factory=list, metadata={"item_choices": tuple(LOGGERS)})
    """Tracker writers that also receive each `metrics.jsonl` row (`sdegen.loggers`), e.g.
    [tensorboard] (TensorBoard event files in `<run_dir>/tensorboard/`; `pip install
    sdegen[tensorboard]`) or [wandb] (`pip install sdegen[wandb]`)."""


@dataclass
class SampleConfig:
    method: str = field(default="ode", metadata=_choice(*METHODS))
    n: int = field(default=5000, metadata=_positive())
    rtol: float = field(default=1e-5, metadata=_positive())
    atol: float = field(default=1e-5, metadata=_positive())
    num_steps: int = field(default=500, metadata=_positive())
    snr: float = field(default=0.05, metadata=_positive())
    n_corrector: int = field(default=1, metadata={"min": 0})
    t_eps: float = field(default=1e-3, metadata={"min": 0.0, "max": 0.5})
    max_steps: int = field(default=16_384, metadata=_positive())
    """Step limit of the adaptive ODE solver (method=ode)."""
    grid: str = field(default="", metadata=_choice("", *GRIDS))
    """Time grid of a fixed-step method (empty: the method's own, e.g. karras for the few-step
    samplers); with method=ode a grid makes the PF-ODE solve fixed-step."""
    rho: float = field(default=7.0, metadata=_positive())
    """Exponent of the karras grid (Karras et al. 2022, eq. 5)."""
    churn: float = field(default=10.0, metadata={"min": 0.0})
    """S_churn of method=edm_churn (Karras et al. 2022, Alg. 2)."""
    order: int = field(default=0, metadata={"min": 0, "max": 4})
    """Order of a multistep sampler (dpm3m, ipndm, deis, unipc); 0: the method's default."""
    eta: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    """DDIM's η (method=ddim): 0 deterministic, 1 DDPM's ancestral sampler."""


@dataclass
class EvalConfig:
    n_test: int = field(default=2000, metadata=_positive())
    t_eps: float = field(default=1e-5, metadata={"min": 0.0, "max": 0.5})
    rtol: float = field(default=1e-5, metadata=_positive())
    atol: float = field(default=1e-5, metadata=_positive())
    max_steps: int = field(default=16_384, metadata=_positive())
    """Step limit of the likelihood ODE solve."""
    use_ema: bool = True
    k: int = field(default=512, metadata=_positive())
    """vae, helmholtz: importance samples of the test log-likelihood estimate."""
    trace: str = field(default="auto", metadata=_choice("auto", "exact", "hutchinson"))
    """Images: divergence of the likelihood ODE (auto: exact up to 64 dimensions, e.g. 8×8
    digits, Hutchinson above)."""


@dataclass
class Config:
    name: str = field(default="toy2d", metadata={"nonempty": True})
    seed: int = field(default=0, metadata={"min": 0, "max": 2**32 - 1})
    out_dir: str = ""
    """Run directory; empty means `runs/<name>`."""
    data: DataConfig = field(default_factory=DataConfig)
    process: ProcessConfig = field(default_factory=ProcessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir or f"runs/{self.name}")

