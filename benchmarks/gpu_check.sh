#!/usr/bin/env bash
# One prepared check for one GPU, at most 8 minutes (each section has its own timeout inside a
# 470 s total budget): install sdegen with --no-deps into the machine's own JAX (Python 3.12,
# jax 0.11.x with its CUDA plugin, no network), run the core tests there, measure UNet
# (CIFAR-10 shape) training throughput (images/s, TFLOP/s from XLA's cost analysis), sampling
# throughput, the OT coupling and the fit-vs-bare training step, and one earth RFM run.
#
#   bash benchmarks/gpu_check.sh [--dry-run]
#
# Writes $OUT/gpu_check.json (or benchmarks/results/gpu_check.json when $OUT is unset), plus
# one log per section next to it. --dry-run: toy sizes on whatever backend is there (a CPU check
# of the script itself). Env: PYTHON (default python3), EARTH_DATA (default ../shared/data/earth
# or shared/data/earth), BUDGET_S (default 470; x6 for --dry-run).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS=${OUT:-$ROOT/benchmarks/results}
LOGS=$RESULTS/gpu_check
mkdir -p "$LOGS"
PY=${PYTHON:-python3}
DRY=""; SCALE=1
if [ "${1:-}" = "--dry-run" ]; then DRY="--dry-run"; SCALE=6; fi  # CPU compiles are slow
BUDGET=${BUDGET_S:-$((470 * SCALE))}
START=$(date +%s)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CLI='import sys; from sdegen.cli import main; sys.exit(main(sys.argv[1:]))'
declare -A RC WALL

# run NAME LIMIT_S CMD...: in $WORK (outside the checkout), bounded by LIMIT_S and what is left
run() {
  local name=$1 limit=$(($2 * SCALE)); shift 2
  local left=$((BUDGET - ($(date +%s) - START)))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt 10 ]; then RC[$name]=skipped; echo "$name: skipped (budget spent)"; return; fi
  local t0=$(date +%s)
  (cd "$WORK" && timeout -k 5 "$limit" "$@") > "$LOGS/$name.log" 2>&1
  RC[$name]=$?; WALL[$name]=$(($(date +%s) - t0))
  echo "$name: rc=${RC[$name]} in ${WALL[$name]} s (limit $limit s)"
}

# 1. install: --no-deps into a target dir on PYTHONPATH, so the machine's jax/diffrax/equinox/
# optax/orbax are the ones used; --no-build-isolation (no network), --ignore-requires-python.
run install 120 "$PY" -m pip install --no-deps --no-build-isolation --ignore-requires-python \
  --no-index --target "$WORK/site" "$ROOT"
if [ "${RC[install]}" = 0 ]; then export PYTHONPATH=$WORK/site; INSTALL=pip
else export PYTHONPATH=$ROOT; INSTALL="pip failed (see install.log): checkout on PYTHONPATH"; fi
export SDEGEN_ROOT=$ROOT

run env 60 "$PY" "$ROOT/benchmarks/gpu_check.py" env "$LOGS/env.json"

# 2. the core tests, on this JAX (no jaxtyping/beartype plugin options: they may be absent)
TESTS="test_train.py test_fit_outside.py test_sample.py test_processes.py test_likelihood.py
       test_objectives.py test_flows.py test_distributed.py"
[ -n "$DRY" ] && TESTS="test_processes.py"
run tests 120 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -m "not slow" \
  --rootdir "$ROOT" $(for t in $TESTS; do echo "$ROOT/tests/$t"; done)

# 3. UNet throughput, sampling throughput
run unet 140 "$PY" "$ROOT/benchmarks/gpu_check.py" unet "$LOGS/unet.json" $DRY
run sample 90 "$PY" "$ROOT/benchmarks/gpu_check.py" sample "$LOGS/sample.json" $DRY

# 4. one earth RFM run (Volcano), then its test NLL
EARTH=${EARTH_DATA:-}
for d in "$ROOT/../shared/data/earth" "$ROOT/shared/data/earth"; do
  [ -z "$EARTH" ] && [ -f "$d/volerup.csv" ] && EARTH=$(cd "$d" && pwd)
done
if [ -n "$EARTH" ]; then
  if [ -n "$DRY" ]; then E_ARGS="train.steps=20 train.batch_size=256 model.width=32 model.depth=2
                                 eval.n_test=50"
  else E_ARGS="train.steps=1000 train.log_every=250 train.ckpt_every=1000"; fi
  run earth_train 75 "$PY" -c "$CLI" train "$ROOT/configs/sphere/rfm_volcano.yaml" \
    "data.path=$EARTH" "out_dir=$WORK/earth" $E_ARGS --no-progress
  run earth_eval 45 "$PY" -c "$CLI" evaluate "$WORK/earth" --grid 8
  cp "$WORK/earth/eval.json" "$LOGS/earth_eval.json" 2>/dev/null
  tail -n 1 "$WORK/earth/metrics.jsonl" > "$LOGS/earth_last_metrics.json" 2>/dev/null
else
  RC[earth_train]="skipped: no earth data (set EARTH_DATA)"
fi

# 5. OT coupling (scipy on the host vs optax on the device) and fit's step vs a bare loop
if [ -n "$DRY" ]; then OT_SIZES="64"; STEP_ARGS="--configs configs/toy2d/demo.yaml --steps 20"
else OT_SIZES="128 512 2048"; STEP_ARGS="--steps 200 --big-steps 50"; fi
run ot 45 "$PY" "$ROOT/benchmarks/ot_coupling.py" --sizes $OT_SIZES --out "$LOGS/ot.json"
run train_step 90 bash -c "cd '$ROOT' && '$PY' benchmarks/train_step.py $STEP_ARGS \
  --label '$(hostname)' --out '$LOGS/train_step.json'"

# 6. one JSON
for k in "${!RC[@]}"; do echo "$k=${RC[$k]}"; done > "$LOGS/rc.txt"
for k in "${!WALL[@]}"; do echo "$k=${WALL[$k]}"; done > "$LOGS/wall.txt"
"$PY" - "$LOGS" "$RESULTS/gpu_check.json" "$INSTALL" "$(($(date +%s) - START))" "$DRY" <<'EOF'
import json, sys
from pathlib import Path
logs, out, install, wall, dry = Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:]
def load(name):
    p = logs / name
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None
kv = lambda f: dict(ln.split("=", 1) for ln in (logs / f).read_text().splitlines() if "=" in ln)
tests = (logs / "tests.log").read_text().splitlines() if (logs / "tests.log").exists() else []
summary = [ln for ln in tests if " passed" in ln or " failed" in ln or " error" in ln]
report = {"dry_run": bool(dry), "wall_s": int(wall), "install": install,
          "env": load("env.json"), "tests": summary[-1] if summary else (tests[-5:] or None),
          "unet_train": load("unet.json"), "unet_sample": load("sample.json"),
          "ot_coupling": load("ot.json"), "train_step": load("train_step.json"),
          "earth_rfm_volcano": {"eval": load("earth_eval.json"),
                                "last_metrics": load("earth_last_metrics.json")},
          "rc": kv("rc.txt"), "section_wall_s": kv("wall.txt")}
out.write_text(json.dumps(report, indent=2))
print(json.dumps(report, indent=2))
EOF
