#!/usr/bin/env bash
# Install sdegen the way users do and use it from outside the checkout: build the wheel, install
# it into a fresh venv (dependencies from requirements.lock, sdegen itself with --no-deps so the
# lock's versions stay), then run the README's library example, `sdegen --version`, a 50-step
# `sdegen train toy2d/demo` (a shipped config, by name) and `sdegen sample` on that run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "wheel check in $work"
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$work/dist" "$root"
"$python" -m venv "$work/venv"
bin="$work/venv/bin"
"$bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements.lock"
"$bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$work"/dist/sdegen-*.whl
cd "$work"  # outside the checkout: only the installed package is importable
"$bin/python" - "$root/README.md" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
section = text[text.index("## Library: plug in your own score"):]
code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
import sdegen
assert "site-packages" in sdegen.__file__, sdegen.__file__
exec(compile(code, "README.md[library example]", "exec"), {})
print("README library example ran against", sdegen.__file__)
PY
"$bin/sdegen" --version
"$bin/sdegen" train toy2d/demo train.steps=50 out_dir=runs/demo --no-progress
"$bin/sdegen" sample runs/demo --n 200
test -f runs/demo/samples.npz && test -f runs/demo/samples.png
echo "wheel check passed"
