# Sourced by quickstart.sh and test.sh: make .venv with the project installed (CPU torch), offline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# MKL's results may otherwise depend on how a buffer happens to be aligned in memory: the resume tests compare
# a resumed run with an uninterrupted one bit for bit (conditional numerical reproducibility, AUTO,STRICT)
export MKL_CBWR="${MKL_CBWR:-AUTO,STRICT}"
if [ ! -x .venv/bin/arner ] || [ pyproject.toml -nt .venv/.installed ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned to the version the project is tested with. Which build pip takes depends on the machine's
  # package index: on the project's machines (no GPU) it is the CPU build, from local disk; elsewhere PyPI's default.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch .venv/.installed
fi
# shellcheck disable=SC1091
. .venv/bin/activate
