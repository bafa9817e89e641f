"""Experiment configs: the schema (`schema`), reading and overrides (`parse`), the rules between
keys (`rules`) and the one explicit mapping from config names to library objects (`build`: one
table per axis — `PROCESSES`, `OBJECTIVES`, `MODELS`, `DATASETS`/`WORLDS`; sampling methods are
`sdegen.solvers.METHODS`). Everything below this package takes objects, not names."""

from ..checkpoints import write_atomic as write_atomic
from ..errors import ConfigError as ConfigError
from .build import DATASETS as DATASETS
from .build import EARTH_NAMES as EARTH_NAMES
from .build import MODELS as MODELS
from .build import OBJECTIVES as OBJECTIVES
from .build import PROCESSES as PROCESSES
from .build import TOY_NAMES as TOY_NAMES
from .build import WORLDS as WORLDS
from .build import build_data as build_data
from .build import build_field as build_field
from .build import build_loss as build_loss
from .build import build_optimizer as build_optimizer
from .build import build_process as build_process
from .build import data_world as data_world
from .build import names_in as names_in
from .parse import SHIPPED as SHIPPED
from .parse import dump as dump
from .parse import find_config as find_config
from .parse import from_dict as from_dict
from .parse import load as load
from .parse import parse_override as parse_override
from .parse import shipped_configs as shipped_configs
from .parse import to_dict as to_dict
from .rules import check_consistency as check_consistency
from .schema import FAMILY_OBJECTIVES as FAMILY_OBJECTIVES
from .schema import FLOW_KINDS as FLOW_KINDS
from .schema import IMAGE_NAMES as IMAGE_NAMES
from .schema import PATH_OBJECTIVES as PATH_OBJECTIVES
from .schema import SDE_KINDS as SDE_KINDS
from .schema import SPHERE_KINDS as SPHERE_KINDS
from .schema import SPHERE_NAMES as SPHERE_NAMES
from .schema import SPHERE_OBJECTIVES as SPHERE_OBJECTIVES
from .schema import Config as Config
from .schema import DataConfig as DataConfig
from .schema import EvalConfig as EvalConfig
from .schema import ModelConfig as ModelConfig
from .schema import ObjectiveConfig as ObjectiveConfig
from .schema import ProcessConfig as ProcessConfig
from .schema import SampleConfig as SampleConfig
from .schema import TrainConfig as TrainConfig
