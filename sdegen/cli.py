"""`sdegen train | sample | evaluate | list | reproduce | completion` — every error is one line
on stderr, exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .errors import EXIT_DATA_MISSING, ConfigError, DataMissingError, SdegenError


def _cmd_train(args) -> None:
    from . import config as C
    from .train import train

    if args.distributed:
        _init_distributed()
    target = Path(args.config)
    if target.is_dir():  # resume a run directory with its own config
        cfg = C.load(target / "config.yaml", [f"out_dir={target}", *args.overrides])
    else:
        cfg = C.load(target, args.overrides)
    train(cfg, progress=not args.no_progress)


def _init_distributed() -> None:
    """`sdegen.distributed.initialize()` for multi-process data-parallel training: the
    coordinator comes from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID (passed
    explicitly), or is detected on SLURM, Open MPI and Cloud TPU pods (see the README); CPU
    processes use gloo collectives."""
    from .distributed import initialize

    initialize()
    import jax

    print(f"process {jax.process_index()} of {jax.process_count()}: "
          f"{jax.device_count()} devices in all")


def _cmd_sample(args) -> None:
    from .runs import sample_run

    sample_run(args.run_dir, n=args.n, method=args.method, seed=args.seed,
               overrides=args.overrides, batch_size=args.batch_size, out=args.out,
               step=args.step, ema=args.ema, label=args.label, guidance=args.guidance,
               png_dir=args.png_dir, progress=not args.no_progress)


def _cmd_evaluate(args) -> None:
    from .runs import evaluate_run

    evaluate_run(args.run_dir, grid=args.grid, overrides=args.overrides, n_test=args.n_test,
                 step=args.step, progress=not args.no_progress)


def _cmd_list(args) -> None:
    from . import config as C
    from .solvers import METHODS

    if args.configs:
        root = Path(args.configs)
        found = sorted(root.rglob("*.yaml")) if root.is_dir() else []
        print(f"configs in {root}/:" if found else f"no configs under {root}/")
        for path in found:
            print(f"  {path}")
    else:
        print(f"shipped configs (sdegen train NAME; in {C.SHIPPED}):")
        for name in C.shipped_configs():
            print(f"  {name:<28} configs/{name}.yaml")
    for world in C.WORLDS:
        print(f"datasets ({world}): " + ", ".join(C.names_in(world)))
    print("processes: " + ", ".join(C.PROCESSES))
    print("objectives: " + ", ".join(C.OBJECTIVES))
    print("models:    " + ", ".join(C.MODELS))
    print("samplers:  " + ", ".join(METHODS))
    from .loggers import LOGGERS

    print("loggers:   " + ", ".join(LOGGERS) + "  (train.loggers; pip install sdegen[NAME])")


def _cmd_reproduce(args) -> int:
    from . import reproduce as R

    if args.list:
        return int(R.list_experiments(args.experiments_dir) > 0)
    if args.index:
        from .reproduce_index import write_index

        write_index(args.experiments_dir, args.results)
        return 0
    if args.all:
        return int(R.run_all(small=args.small, out=args.out, root=args.experiments_dir) > 0)
    if not args.name:
        raise ConfigError("name an experiment, or use --list, --all or --index")
    R.run_one(args.name, small=args.small, out=args.out, root=args.experiments_dir)
    return 0


def _cmd_completion(args) -> None:
    from .completion import shell_code

    sys.stdout.write(shell_code(args.shell))
def _cmd_plot(args) -> None:
    from .curves import overlay

    out = args.out or f"{args.key}_curves.png"
    print(f"wrote {overlay(args.runs, out, key=args.key, smooth=args.smooth)}")


def _methods() -> tuple[str, ...]:
    from .solvers import METHODS

    return tuple(METHODS)


class _Parser(argparse.ArgumentParser):
    """argparse, with usage mistakes on one line like every other error."""

    def error(self, message: str):
        self.exit(2, f"sdegen: error: {message}; see `{self.prog} -h`\n")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    p = _Parser(prog="sdegen", description=__doc__)
    p.add_argument("--version", action="version", version=f"sdegen {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model from a YAML config (or resume a run dir)")
    t.add_argument("config", help="a shipped config by name (toy2d/demo; `sdegen list`), a YAML "
                   "file, or an existing run directory to resume")
    t.add_argument("overrides", nargs="*", default=[],
                   help="dotted key=value, e.g. train.steps=2000")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.add_argument("--distributed", action="store_true",
                   help="multi-host: call jax.distributed.initialize() first (see README)")
    t.set_defaults(func=_cmd_train)
    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run_dir")
    s.add_argument("overrides", nargs="*", default=[],
                   help="for this call, e.g. sample.max_steps=50000")
    s.add_argument("--n", type=int, default=None, help="number of samples (config: sample.n)")
    s.add_argument("--method", choices=_methods(), default=None,
                   help="sampling method (config: sample.method)")
    s.add_argument("--seed", type=int, default=0, help="samples use fold_in(sample key, seed)")
    s.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="draw in chunks of B samples, one compilation (default: one batch)")
    s.add_argument("--out", default=None, metavar="FILE",
                   help="the .npz file (default: RUN/samples.npz the first time, then a new "
                        "samples-step{K}-{method}-seed{S}-n{N}.npz: never overwrites)")
    s.add_argument("--step", type=int, default=None, metavar="K",
                   help="the checkpoint at step K (default: the newest)")
    s.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="EMA weights (default, unless the run sets eval.use_ema=false) or raw")
    s.add_argument("--label", type=int, default=None, metavar="Y",
                   help="class-conditional runs: samples of class Y")
    s.add_argument("--guidance", type=float, default=None, metavar="W",
                   help="classifier-free guidance weight w >= 0 for --label (default 0)")
    s.add_argument("--png-dir", default=None, metavar="DIR",
                   help="image runs: also one PNG per sample in DIR (for clean-fid, "
                        "torch-fidelity)")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    s.set_defaults(func=_cmd_sample)
    e = sub.add_parser("evaluate", help="test NLL (nats), sliced Wasserstein, density figure")
    e.add_argument("run_dir")
    e.add_argument("overrides", nargs="*", default=[], help="for this call, e.g. eval.rtol=1e-4")
    e.add_argument("--grid", type=int, default=48,
                   help="density figure resolution (2D: grid × grid; sphere: grid+1 latitudes)")
    e.add_argument("--n-test", type=int, default=None, metavar="N",
                   help="evaluate on the first N test examples (default: eval.n_test)")
    e.add_argument("--step", type=int, default=None, metavar="K",
                   help="the checkpoint at step K (default: the newest)")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    e.set_defaults(func=_cmd_evaluate)
    ls = sub.add_parser("list", help="list shipped configs, datasets, processes and samplers")
    ls.add_argument("--configs", default=None,
                    help="list the YAML files of this folder instead of the shipped configs")
    ls.set_defaults(func=_cmd_list)
    r = sub.add_parser("reproduce", help="run a paper experiment from experiments/ "
                                         "(--list to see them)")
    r.add_argument("name", nargs="?", help="experiment name (file stem in experiments/)")
    r.add_argument("--small", action="store_true", help="the CI setting: minutes on 2 CPU cores")
    r.add_argument("--out", default="results", help="results root (default: results)")
    r.add_argument("--list", action="store_true", help="list the experiments")
    r.add_argument("--all", action="store_true",
                   help="run every experiment, each in a fresh process; exit 1 if any fails")
    r.add_argument("--index", action="store_true",
                   help="regenerate experiments/README.md from the runs under --results")
    r.add_argument("--results", default="results", help="where --index looks for runs")
    r.add_argument("--experiments-dir", default=None,
                   help="experiments folder (default: the one beside the sdegen package)")
    r.set_defaults(func=_cmd_reproduce)
    c = sub.add_parser("completion", help="print the shell code for TAB completion (needs "
                                          "argcomplete: pip install 'sdegen[completion]')")
    c.add_argument("shell", choices=("bash", "zsh", "fish"))
    c.set_defaults(func=_cmd_completion)
    from .curves import KEYS

    pl = sub.add_parser("plot", help="overlay the training curves (metrics.jsonl) of runs")
    pl.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    pl.add_argument("--out", default=None, help="PNG to write (default: KEY_curves.png)")
    pl.add_argument("--key", choices=KEYS, default="loss", help="what to draw (default: loss)")
    pl.add_argument("--smooth", type=float, default=None, metavar="A",
                    help="EMA coefficient in [0, 1), 0: raw only (default: 1 - 20/rows; 0 for lr)")
    pl.set_defaults(func=_cmd_plot)
    return p


def enable_compile_cache(env: Mapping[str, str] = os.environ) -> str | None:
    """Keep compiled XLA programs on disk (JAX's persistent compilation cache), so the second
    `sdegen train` / `sample` / `evaluate` of a model skips most of its compile time, which is
    most of the wall time of a short CPU run. Returns the directory, or None when disabled.

    Directory: `$SDEGEN_COMPILE_CACHE`, else `$XDG_CACHE_HOME/sdegen/jax` (`~/.cache/sdegen/jax`);
    `SDEGEN_COMPILE_CACHE=off` turns it off. A directory set through JAX itself
    (`JAX_COMPILATION_CACHE_DIR` or `jax.config`) is left as it is. Programs that compile in
    under 0.2 s are not stored (JAX's default threshold, 1 s, skips the many per-shape
    initialiser programs that dominate the start-up of a network on CPU). The CLI calls this;
    importing `sdegen` as a library changes no JAX setting.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    choice = env.get("SDEGEN_COMPILE_CACHE", "").strip()
    if choice.lower() in ("off", "0", "false", "none"):
        return None
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = str(Path(choice or Path(base) / "sdegen" / "jax").expanduser())
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    return path


def main(argv: list[str] | None = None) -> int:
    from .completion import autocomplete

    parser = build_parser()
    autocomplete(parser)  # a shell's TAB request (argcomplete installed): answer it and exit
    try:
        args, extra = parser.parse_known_args(argv)
        # key=value overrides may follow options (`sample RUN --n 8 sample.max_steps=1`)
        if extra and hasattr(args, "overrides") and all(
                "=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as stop:  # usage errors (one line, see _Parser) and --help
        return stop.code if isinstance(stop.code, int) else 2
    enable_compile_cache()
    try:
        code = args.func(args)
    except SdegenError as err:
        print(f"sdegen: error: {err}", file=sys.stderr)
        return EXIT_DATA_MISSING if isinstance(err, DataMissingError) else 2
    except (ValueError, OSError) as err:
        lines = str(err).strip().splitlines()
        print(f"sdegen: error: {lines[0] if lines else type(err).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sdegen: interrupted; the last complete checkpoint is kept", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
