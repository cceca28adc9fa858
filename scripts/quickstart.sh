#!/usr/bin/env bash
# The main job on the offline default: validate the dataset and print its statistics.
. "$(dirname "$0")/env.sh"
arner annotations check
arner annotations stats
