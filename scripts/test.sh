#!/usr/bin/env bash
# The whole test suite (slow tests included) plus lint; pass pytest options through, e.g. -m "not slow".
. "$(dirname "$0")/env.sh"
ruff check .
ruff format --check .
python -m pytest "$@"
