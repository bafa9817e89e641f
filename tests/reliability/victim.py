"""`sdegen train ARGS...` in this process, with a fault planted for the kill/resume suite.

    python tests/reliability/victim.py [--kill-in-ckpt STEP] [--step-delay S] -- ARGS...

`--kill-in-ckpt STEP` SIGKILLs this process while checkpoint STEP is being written: its arrays
and metadata are on disk in orbax's tmp dir, the commit rename has not happened.
`--step-delay S` sleeps S seconds per training step, so that a parent that SIGKILLs at a
random moment lands at a random step (and sometimes inside a checkpoint write)."""

import argparse
import os
import signal
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--kill-in-ckpt", type=int, default=None)
    p.add_argument("--step-delay", type=float, default=0.0)
    p.add_argument("args", nargs=argparse.REMAINDER)
    ns = p.parse_args()
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args

    if ns.kill_in_ckpt is not None:
        from orbax.checkpoint._src.path import atomicity

        original = atomicity.AtomicRenameTemporaryPath.finalize

        async def finalize(self):
            if self._final_path.name == str(ns.kill_in_ckpt):
                os.kill(os.getpid(), signal.SIGKILL)
            return await original(self)

        atomicity.AtomicRenameTemporaryPath.finalize = finalize

    if ns.step_delay > 0:
        import sdegen  # noqa: F401

        F = sys.modules["sdegen.fit"]  # the module (`sdegen.fit` the attribute is the function)

        class SlowBar(F.tqdm):
            def update(self, n=1):
                time.sleep(ns.step_delay)
                return super().update(n)

        F.tqdm = SlowBar

    from sdegen.cli import main as cli_main

    return cli_main(["train", *args, "--no-progress"])


if __name__ == "__main__":
    sys.exit(main())
