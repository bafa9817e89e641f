#!/usr/bin/env bash
# Create benchmarks/peers/.venv with the PyTorch peers (torchdiffeq, torchsde, diffusers) used by
# benchmarks/samplers.py. A separate environment: none of these is a dependency of sdegen.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m venv "$here/.venv"
"$here/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "peers venv ready: $here/.venv"
