#!/usr/bin/env bash
# Makes, once, the Python virtual environment with PyTorch (from PyPI) that the mlenv
# end-to-end test runs torch.distributed in; prints its python. The venv lives under .venvs/
# (ignored by git), one per Python version, and is reused while `import torch` works.
# PyPI's Linux wheel is the CUDA build (about 5 GB installed); the test runs it on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3
[ -x "$py" ] || { echo "error: no $py: run ./scripts/install-deps.sh" >&2; exit 1; }
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=$PWD/.venvs/torch-py$ver
mkdir -p .venvs
exec 9>".venvs/.lock-py$ver"
flock 9   # two test processes never build it at once (the release roots share .venvs/)
if ! "$venv/bin/python" -c 'import torch.distributed' >/dev/null 2>&1; then
  echo "installing PyTorch into $venv (once)" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check torch numpy >&2
  "$venv/bin/python" -c 'import torch.distributed' >&2
fi
echo "$venv/bin/python"
