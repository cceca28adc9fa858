#!/usr/bin/env bash
# The main job on the offline default: check the dataset, then fine-tune on all five articles
#  - the project's own pretrained encoder (models/arner-electra-ar) into runs/encoder, and
#  - the tiny BERT built offline into runs/tiny: until a GPU run improves the shipped encoder, the
#    better of the two (README, "Which model to use when"), and the model the README's examples use.
. "$(dirname "$0")/env.sh"
arner annotations check
arner annotations stats
arner train --config configs/encoder.yaml --output runs/encoder
arner train --config configs/tiny.yaml --output runs/tiny
