"""One table per axis: every name in each table builds what it names (and its loss evaluates to a
finite number on a tiny batch), the schema's choices, `sdegen list` and the CLI are the tables'
names, and a name outside a table is refused everywhere — never a fall-through to a default."""

import io
import math
from contextlib import redirect_stdout
from pathlib import Path

import jax
import pytest

import sdegen
from sdegen import config as C
from sdegen.cli import main
from sdegen.fit import mean_loss

TINY = {"model": {"width": 8, "depth": 1, "latent_dim": 2}}
# one consistent config per objective; together they use every process and model kind
BY_OBJECTIVE = {
    "dsm": {},
    "ssm": {"objective": {"kind": "ssm"}, "process": {"kind": "subvp"}},
    "fm": {"objective": {"kind": "fm"}, "process": {"kind": "flow_linear"}},
    "ot_cfm": {"objective": {"kind": "ot_cfm"}, "process": {"kind": "flow_vp"}},
    "maxlik": {"objective": {"kind": "maxlik"}, "process": {"kind": "cnf"}},
    "classifier": {"objective": {"kind": "classifier"}, "data": {"name": "digits",
                                                                 "conditional": True}},
    "elbo": {"objective": {"kind": "elbo"}, "process": {"kind": "none"},
             "model": {"kind": "vae"}},
    "iwae": {"objective": {"kind": "iwae"}, "process": {"kind": "none"},
             "model": {"kind": "vae"}},
    "wake_sleep": {"objective": {"kind": "wake_sleep"}, "process": {"kind": "none"},
                   "model": {"kind": "helmholtz", "depth": 2},
                   "data": {"name": "digits", "binarize": True}},
    "gan": {"objective": {"kind": "gan"}, "process": {"kind": "none"}, "model": {"kind": "gan"}},
    "rdsm": {"objective": {"kind": "rdsm"}, "process": {"kind": "sphere_bm"},
             "data": {"name": "vmf_mixture"}},
    "rism": {"objective": {"kind": "rism"}, "process": {"kind": "sphere_bm"},
             "data": {"name": "vmf_mixture"}},
    "rfm": {"objective": {"kind": "rfm"}, "process": {"kind": "sphere_geodesic"},
            "data": {"name": "vmf_mixture"}},
    # the UNet, on digits (a tiny one: building a UNet compiles one program per shape)
    "dsm+unet": {"data": {"name": "digits"}, "process": {"kind": "ve"},
                 "model": {"kind": "unet", "channels": 4, "channel_mults": [1],
                           "attn_resolutions": [], "num_res_blocks": 1}},
}


def _merge(a, b):
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in a.items()}
    for k, v in b.items():
        out[k] = {**out.get(k, {}), **v} if isinstance(v, dict) else v
    return out


def test_the_configs_below_cover_every_objective_process_and_model():
    used = {"objective": set(), "process": set(), "model": set()}
    for override in BY_OBJECTIVE.values():
        cfg = C.from_dict(_merge(TINY, override))
        for axis in used:
            used[axis].add(getattr(cfg, axis).kind)
    assert used == {"objective": set(C.OBJECTIVES), "process": set(C.PROCESSES),
                    "model": set(C.MODELS)}, "a table name without a config in BY_OBJECTIVE"


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n == "dsm+unet" else n for n in BY_OBJECTIVE])
def test_every_objective_process_and_model_builds_and_its_loss_is_finite(name):
    """(The UNet row is slow: building even a tiny UNet compiles one program per parameter
    shape; `make test` builds UNets in tests/test_unet.py.)"""
    cfg = C.from_dict(_merge(TINY, BY_OBJECTIVE[name]))
    data = C.build_data(cfg)
    process = C.build_process(cfg.process)
    assert (process is None) == (cfg.process.kind == "none"), name
    if process is not None:
        assert isinstance(process, sdegen.AbstractProcess), name
    model = C.build_field(cfg, data.shape, jax.random.key(0), data=data)
    loss = C.build_loss(cfg, process, getattr(data, "num_classes", None))
    batch = data.train_batch(jax.random.key(1), 4)
    value = float(mean_loss(loss, model, batch, jax.random.key(2)))
    assert math.isfinite(value), (name, value)


def test_every_dataset_builds_or_names_its_missing_files():
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "earth"
    for name, e in C.DATASETS.items():
        assert e.world in C.WORLDS, name
        extra = {"process": {"kind": "sphere_bm"}, "objective": {"kind": "rdsm"}} \
            if e.world == "sphere" else {}
        cfg = C.from_dict({"data": {"name": name}, **extra})
        if name in ("mnist", "cifar10"):  # file-based: tests/test_image_files.py reads fixtures
            with pytest.raises(sdegen.ConfigError, match="set data.path"):
                C.build_data(cfg)
            continue
        if name in C.EARTH_NAMES and not shared.is_dir():
            with pytest.raises(sdegen.DataError):
                C.build_data(cfg)
            continue
        data = C.build_data(cfg)
        assert data.train_batch(jax.random.key(0), 3).shape == (3, *data.shape), name
        assert C.data_world(cfg) == e.world


@pytest.mark.parametrize("override", [
    "process.kind=vpp", "objective.kind=dsn", "model.kind=mpl", "data.name=8gaussian",
    "sample.method=ddpm"])
def test_a_name_outside_its_table_is_refused(override):
    key, _, value = override.partition("=")
    with pytest.raises(sdegen.ConfigError, match=f"config key '{key}' must be one of") as err:
        C.from_dict({}, [override])
    assert "\n" not in str(err.value)


def test_builders_refuse_unknown_names_instead_of_falling_through():
    cfg = C.from_dict({})
    cfg.process.kind = "bogus"  # past the schema, e.g. a dataclass built by hand
    with pytest.raises(sdegen.ConfigError, match="process.kind' must be one of vp"):
        C.build_process(cfg.process)
    cfg = C.from_dict({})
    cfg.objective.kind = "bogus"
    with pytest.raises(sdegen.ConfigError, match="objective.kind' must be one of dsm"):
        C.build_loss(cfg, None)


def test_schema_cli_and_list_read_the_tables():
    from sdegen.cli import build_parser
    from sdegen.solvers import METHODS

    choices = lambda section, key: section.__dataclass_fields__[key].metadata["choices"]  # noqa
    assert choices(C.ProcessConfig, "kind") == tuple(C.PROCESSES)
    assert choices(C.ObjectiveConfig, "kind") == tuple(C.OBJECTIVES)
    assert choices(C.ModelConfig, "kind") == tuple(C.MODELS)
    assert choices(C.DataConfig, "name") == tuple(C.DATASETS)
    assert choices(C.SampleConfig, "method") == tuple(METHODS)
    sample_cmd = build_parser()._subparsers._group_actions[0].choices["sample"]
    method = next(a for a in sample_cmd._actions if a.dest == "method")
    assert tuple(method.choices) == tuple(METHODS)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["list", "--configs", "configs"]) == 0
    text = out.getvalue()
    for table in (C.PROCESSES, C.OBJECTIVES, C.MODELS, C.DATASETS, METHODS):
        assert all(name in text for name in table), text


def test_every_data_world_has_an_evaluation_adapter():
    from sdegen.runs import WORLDS

    assert set(WORLDS) == {*C.WORLDS, "families"}


def test_every_sampling_method_builds_its_solver_and_unknown_methods_are_refused():
    import diffrax

    from sdegen.solvers import GRIDS, METHODS, Options

    sde, field = sdegen.VPSDE(), lambda x, t: -x
    options = Options(num_steps=4, snr=0.1, n_corrector=1, churn=1.0)
    for name, method in METHODS.items():
        solver = method.solver(sde, field, jax.random.key(0), options)
        assert isinstance(solver, diffrax.AbstractSolver), name
        assert method.grid is None or method.grid in GRIDS, name
    with pytest.raises(ValueError, match="unknown sampling method 'ddpm'"):
        sdegen.sample(sde, field, key=jax.random.key(0), shape=(2, 2), method="ddpm")


@pytest.mark.parametrize("old,new,name", [
    ("sdegen.solve", "sdegen.solvers", "integrate"),
    ("sdegen.samplers", "sdegen.solvers", "DPMSolverPP2M"),
    ("sdegen.objectives_sphere", "sdegen.objectives", "rfm_loss"),
    ("sdegen.annealed", "sdegen.energy.annealed", "annealed_mcmc"),
    ("sdegen.guidance", "sdegen.conditional", "ClassifierFreeGuidance"),
    ("sdegen.inpaint", "sdegen.conditional", "inpaint"),
    ("sdegen.mcmc", "sdegen.energy.mcmc", "MALA"),
])
def test_moved_modules_still_import_with_a_deprecation_warning(old, new, name):
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"import from `{new}`"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
