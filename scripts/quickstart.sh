#!/usr/bin/env bash
# The main job on the offline default: check the dataset, then train the tiny config on all articles.
. "$(dirname "$0")/env.sh"
arner annotations check
arner annotations stats
arner train --config configs/tiny.yaml --output runs/tiny
