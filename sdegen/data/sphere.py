"""Data on the sphere S^2: the four earth datasets (Volcano, Earthquake, Flood, Fire; Mathieu &
Nickel 2020) read from their CSV files, seeded 80/10/10 splits (all events, or distinct
locations only), and a synthetic "weather-style" vMF mixture with a closed-form density and
an analytic velocity field — the default that trains with no files and a test oracle.

The CSVs are not part of the project: pass the folder holding them (`data.path` in configs;
in this workspace `../shared/data/earth`, see its README for provenance and parsing rules).
"""

from __future__ import annotations

import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..errors import DataError, DataMissingError
from ..manifolds import Sphere
from ..vmf import VMFMixture, vmf_log_prob
from .source import ArraySource, DataSource
from .splits import split_indices

# name -> (file, number of events); the sizes are checked on load.
EARTH_FILES = {
    "volcano": ("volerup.csv", 827),
    "earthquake": ("quakes_all.csv", 6120),
    "flood": ("flood.csv", 4875),
    "fire": ("fire.csv", 12809),
}
EARTH_DATASETS = tuple(EARTH_FILES)
SPHERE_DATASETS = ("vmf_mixture", *EARTH_DATASETS)
DEFAULT_EARTH_PATH = "../shared/data/earth"


def read_latlon_csv(path: str | Path) -> np.ndarray:
    """(n, 2) latitude/longitude in degrees from an earth CSV.

    Parsing rule (the data README): drop lines starting with `#` and one non-numeric header line
    before the first data row; every other non-empty line is `lat,lon` in decimal degrees
    (CRLF or LF). Anything else is a `DataError` naming the file, line and fix."""
    path = Path(path)
    if not path.is_file():
        raise DataMissingError(f"earth data file not found: {path}; set data.path to the folder "
                        "holding volerup.csv, quakes_all.csv, flood.csv, fire.csv "
                        f"(here: {DEFAULT_EARTH_PATH})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a UTF-8 text file (byte {err.start}); expected a CSV of "
                        "'lat,lon' rows in degrees") from None
    rows, header_seen = [], False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(",")
        try:
            lat, lon = (float(f) for f in fields) if len(fields) == 2 else (None, None)
        except ValueError:
            lat = lon = None
        if lat is None:
            if not rows and not header_seen and len(fields) == 2:
                header_seen = True  # the one column-header line, e.g. "Latitude,Longitude"
                continue
            raise DataError(f"{path}:{lineno}: malformed row {line[:60]!r}; expected two "
                            "comma-separated numbers 'lat,lon' in degrees")
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or not np.isfinite(lat + lon):
            raise DataError(f"{path}:{lineno}: latitude {lat} / longitude {lon} out of range; "
                            "expected lat in [-90, 90] and lon in [-180, 180] degrees")
        rows.append((lat, lon))
    if not rows:
        raise DataError(f"{path}: no data rows; expected lines 'lat,lon' in degrees")
    return np.asarray(rows, dtype=np.float64)


def latlon_to_unit(latlon_deg: np.ndarray) -> np.ndarray:
    """Unit vectors x = (cos φ cos λ, cos φ sin λ, sin φ) for latitude φ, longitude λ (degrees)."""
    lat, lon = np.deg2rad(latlon_deg[:, 0]), np.deg2rad(latlon_deg[:, 1])
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


def unit_to_latlon(x: np.ndarray) -> np.ndarray:
    """Inverse of `latlon_to_unit`: (n, 2) latitude/longitude in degrees."""
    x = np.asarray(x)
    lat = np.rad2deg(np.arcsin(np.clip(x[:, 2], -1.0, 1.0)))
    lon = np.rad2deg(np.arctan2(x[:, 1], x[:, 0]))
    return np.stack([lat, lon], axis=1)


def lonlat_grid(n_lat: int = 90) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A regular grid for maps: longitudes (2 n_lat + 1,) and latitudes (n_lat + 1,) in radians,
    and the unit vectors of its nodes, shape (n_lat + 1, 2 n_lat + 1, 3)."""
    lon = np.linspace(-np.pi, np.pi, 2 * n_lat + 1)
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lat + 1)
    LON, LAT = np.meshgrid(lon, lat)
    pts = np.stack([np.cos(LAT) * np.cos(LON), np.cos(LAT) * np.sin(LON), np.sin(LAT)], -1)
    return lon, lat, pts


def load_earth(name: str, path: str | Path = DEFAULT_EARTH_PATH) -> np.ndarray:
    """All events of earth dataset `name` as (n, 2) latitude/longitude in degrees."""
    if name not in EARTH_FILES:
        raise DataError(f"unknown earth dataset {name!r}; choose one of {EARTH_DATASETS}")
    fname, expected = EARTH_FILES[name]
    latlon = read_latlon_csv(Path(path) / fname)
    if latlon.shape[0] != expected:
        raise DataError(f"{Path(path) / fname}: {latlon.shape[0]} rows, expected {expected}; "
                        "is this the benchmark file (see the data README)?")
    return latlon


def earth_splits(
    latlon: np.ndarray, seed: int, protocol: str = "standard"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) unit vectors. `protocol="standard"`: random 80/10/10 split of all
    events (the published protocol); `"dedup"`: exact duplicate locations removed first, so no
    test location also occurs in training."""
    if protocol not in ("standard", "dedup"):
        raise ValueError(f"unknown protocol {protocol!r}; choose 'standard' or 'dedup'")
    if protocol == "dedup":
        latlon = np.unique(latlon, axis=0)
    x = latlon_to_unit(latlon)
    tr, va, te = split_indices(x.shape[0], seed)
    return x[tr], x[va], x[te]


def weather_mixture() -> VMFMixture:
    """The synthetic "weather-style" default: eight vMF "storm" components of concentration
    8–120 spread over both hemispheres (a fixed, closed-form density; NLL = its entropy)."""
    lat = np.array([15.0, 25.0, -20.0, 45.0, 60.0, -40.0, 5.0, -60.0])
    lon = np.array([-60.0, 130.0, 80.0, -20.0, 100.0, -70.0, 20.0, 160.0])
    mus = latlon_to_unit(np.stack([lat, lon], axis=1))
    kappas = np.array([40.0, 80.0, 20.0, 120.0, 8.0, 60.0, 30.0, 15.0])
    weights = np.array([0.2, 0.15, 0.1, 0.15, 0.1, 0.1, 0.1, 0.1])
    return VMFMixture(weights, mus, kappas)


class VMFMixtureFlow(eqx.Module):
    """An analytic velocity field on S^2 that carries `mixture` (at t = 0) to the uniform
    density (t = T) through p_t = Σ w_k vMF(μ_k, κ_k (1 − t/T)) — a test oracle for
    `sdegen.log_prob` / `sample` with `SphereGeodesicPath` (whose field is a velocity).

    Derivation (continuity equation, component by component, then linearity): the mass of the
    cap {⟨μ, y⟩ ≥ c} under vMF(μ, κ) is F(c) = expm1(−κ(1 − c))/expm1(−2κ); its rate of change
    equals minus the flux through the cap's boundary circle of length 2π sin θ, so
    p_k v_k = (∂_t F_k)/(2π sin²θ_k) P_x μ_k, and v = Σ w_k p_k v_k / Σ w_k p_k solves
    ∂_t p + div(p v) = 0 for the mixture."""

    mixture: VMFMixture
    T: float = 1.0

    def kappas(self, t: Float[ArrayLike, ""]) -> Float[Array, " k"]:
        return jnp.maximum(self.mixture.kappas * (1.0 - t / self.T), 1e-9)

    def density_at(self, t: Float[ArrayLike, ""]) -> VMFMixture:
        """The mixture p_t (closed form)."""
        return VMFMixture(jnp.exp(self.mixture.log_weights), self.mixture.mus, self.kappas(t))

    def __call__(self, x: Float[Array, " 3"], t: Float[ArrayLike, ""]) -> Float[Array, " 3"]:
        x = x / jnp.linalg.norm(x)
        c = jnp.clip(self.mixture.mus @ x, -1.0 + 1e-12, 1.0 - 1e-12)  # (k,)

        def cap_mass(tt):
            k = self.kappas(tt)
            return jnp.expm1(-k * (1.0 - c)) / jnp.expm1(-2.0 * k)

        dF = jax.jacfwd(cap_mass)(jnp.asarray(t, x.dtype))  # (k,)
        tangent = self.mixture.mus - c[:, None] * x[None, :]  # P_x μ_k
        flux = (dF / (2 * math.pi * (1.0 - c**2)))[:, None] * tangent
        kappas = self.kappas(t)
        log_pk = jax.vmap(lambda m, k: vmf_log_prob(x, m, k))(self.mixture.mus, kappas)
        log_p = jax.nn.logsumexp(self.mixture.log_weights + log_pk)
        w = jnp.exp(self.mixture.log_weights)
        return jnp.sum(w[:, None] * flux, axis=0) / jnp.exp(log_p)


class VMFMixtureSource(DataSource):
    """A vMF mixture on S^2 as a `DataSource`: train and test draws from its sampler under
    independent keys (the mixture is a pytree field, so the jit-ted training step sees it as
    data)."""

    mixture: VMFMixture

    def __init__(self, mixture: VMFMixture):
        self.mixture = mixture
        self.shape = (3,)
        self.manifold = Sphere()

    def train_batch(self, key: PRNGKeyArray, n: int) -> Float[Array, "n 3"]:
        return self.mixture.sample(key, n)

    def test_set(self, key: PRNGKeyArray, n: int) -> Float[Array, "n 3"]:
        return self.mixture.sample(key, n)


def sphere_source(name: str, path: str | Path, seed: int, protocol: str = "standard") -> DataSource:
    """The `DataSource` of sphere dataset `name` (`SPHERE_DATASETS`): the synthetic mixture,
    or an earth dataset read from folder `path` (empty: `DEFAULT_EARTH_PATH`) and split 80/10/10
    with `seed` under `protocol` (training draws from the train split, tests on the test split;
    the validation split is `earth_splits(...)[1]`)."""
    if name == "vmf_mixture":
        return VMFMixtureSource(weather_mixture())
    train, _, test = earth_splits(load_earth(name, path or DEFAULT_EARTH_PATH), seed, protocol)
    return ArraySource(train, test, manifold=Sphere())
