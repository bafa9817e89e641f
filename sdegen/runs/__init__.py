"""What the CLI does with a trained run directory: `sample_run` (`sdegen sample RUN`) and
`evaluate_run` (`sdegen evaluate RUN`), one evaluation core (`runs.core`) with a small adapter
per data world (`runs.toy`, `runs.sphere`, `runs.images`, `runs.families`)."""

from .core import WORLDS as WORLDS
from .core import Run as Run
from .core import World as World
from .core import data_world as data_world
from .core import draw as draw
from .core import evaluate_run as evaluate_run
from .core import model_log_prob as model_log_prob
from .core import open_run as open_run
from .core import sample_run as sample_run
from .guided import guided_field as guided_field
