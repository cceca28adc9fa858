#!/usr/bin/env bash
# Improve the shipped encoder (models/arner-electra-ar) on a lent GPU machine, within one session's
# device minutes (15, the machine's start included), then score it here. Steps, each a subcommand:
#
#   here (CPU):   bash scripts/gpu_encoder.sh pack
#                 packs the text into rows of 512 with the shipped tokenizer (runs/encoder-gpu/work/data),
#                 gzips them into parts of at most 20 MiB under .pretrain-rows/, and downloads the wheels the
#                 GPU image lacks into .whl/ (both folders are git-ignored; they travel only when carried).
#                 `pack` prints the bytes each call will send: keep each under 64 MiB (67,108,864).
#   device calls, back to back while the machine is warm (the tree with the shipped encoder is about
#   39 MB of the 64 MiB a call may send, so each call carries one part):
#                 run(command="bash scripts/gpu_encoder.sh receive", carry=[".whl", ".pretrain-rows/part-aa"], timeout_s=120)
#                 run(command="bash scripts/gpu_encoder.sh receive", carry=[".pretrain-rows/part-ab"], timeout_s=60)
#                 ... one call per further part, then
#                 run(command="bash scripts/gpu_encoder.sh train 540", timeout_s=590)
#                 train SECONDS: everything must end within SECONDS of its start. It unpacks the rows, runs a
#                 40-step speed probe, sets max_steps so that pretraining ends in time (held-out scoring,
#                 publishing and shipping reserved), pretrains continuing the shipped folder (seed 43 + the
#                 runs behind it, so each run draws other masks), ships it, and puts the shipped folder
#                 and the run's log in $OUT as parts of at most 15 MB (the log is copied as it grows).
#   here:         bash scripts/gpu_encoder.sh unpack FILES_AT    (the folder the returned files lie in)
#                 replaces models/arner-electra-ar and writes reports/encoder/gpu/pretrain-log.jsonl.
#   here:         bash scripts/gpu_encoder.sh score
#                 the fine-tuned encoder's leave-one-article-out scores beside the CRF (reports/encoder/cv),
#                 and the public-corpora config on ANERcorp and Wojood test (reports/encoder/public.json);
#                 on 2 CPU cores the first takes minutes, the second about an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
ENCODER=${ENCODER:-models/arner-electra-ar}  # both overridable, for a dry run of every step on CPU
CONFIG=${CONFIG:-configs/pretrain-encoder-continue.yaml}
RUN=runs/encoder-gpu
# What `arner pretrain` and `arner ship-encoder` need that the GPU image lacks (its package list: KINDS.md), at the versions used here.
WHEELS="datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5"
log() { echo "[$(date +%T)] $*" >&2; }

install_here() {  # on the GPU machine: the wheels, then arner itself (no build isolation: nothing can be fetched)
  if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
  python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
}

case "${1:-}" in
  pack)
    arner pretrain --config "$CONFIG" --output "$RUN" --prepare-only >/dev/null
    rm -rf .pretrain-rows && mkdir -p .pretrain-rows
    tar -C "$RUN/work" -cf - data | gzip -1 | split -b 20m - .pretrain-rows/part-
    ls -l .pretrain-rows
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
      -d .whl $WHEELS
    tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
    wheels=$(du -cb .whl/*.whl | tail -1 | cut -f1)
    for part in .pretrain-rows/part-*; do
      size=$(stat -c %s "$part")
      echo "a call carrying $part sends $((tree + size)) bytes ($((tree + size + wheels)) with .whl); limit 67108864"
    done
    ;;
  receive)  # the parts stay in the ignored folder of the warm machine; the first call also checks the environment
    ls -l .pretrain-rows
    if [ -d .whl ]; then
      install_here
      python3 -c "import datasets, pyarrow, pydantic, torch, transformers, arner.cli; print('datasets', datasets.__version__, 'pyarrow', pyarrow.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
    fi
    ;;
  train)
    seconds=${2:-540}
    deadline=$(($(date +%s) + seconds))
    out=${OUT:-runs/encoder-gpu-out}
    mkdir -p "$out"
    install_here
    rm -rf "$RUN/work/data" && mkdir -p "$RUN/work"
    cat .pretrain-rows/part-* | gunzip | tar -C "$RUN/work" -xf -
    rows="$RUN/work/data"
    log "probe: 40 steps"
    arner pretrain --config "$CONFIG" --output runs/encoder-probe --set "packed_rows=$rows" --set 'text=[]' \
      --set max_steps=40 --set logging_steps=10 --set heldout_sequences=0 --set progress_bar=false >/dev/null
    runs=$(python3 -c "import json; print(json.load(open('$ENCODER/arner.json'))['pretraining_total']['runs'])")
    steps=$(python3 - "$deadline" <<'EOF'
import json, sys, time
rows = [json.loads(r) for r in open("runs/encoder-probe/log.jsonl")]
speed = [r for r in rows if r["type"] == "step"][-1]["tokens_per_second"]  # the last window: past start-up
left = int(sys.argv[1]) - time.time() - 150  # reserved: loading, held-out scoring, checkpoint, publishing, shipping, archiving
print(max(20, int(left * speed / (64 * 512))))
EOF
)
    log "pretraining $steps steps (seed $((43 + runs)))"
    (while sleep 20; do cp -f "$RUN/log.jsonl" "$out/pretrain-log.jsonl" 2>/dev/null; done) &
    copier=$!
    timeout $((deadline - $(date +%s) - 40)) arner pretrain --config "$CONFIG" --output "$RUN" --set "packed_rows=$rows" \
      --set 'text=[]' --set "max_steps=$steps" --set "seed=$((43 + runs))" --set progress_bar=false > "$out/pretrain.json"
    kill "$copier"
    arner ship-encoder "$RUN" --to "$ENCODER"
    mkdir -p reports/encoder/gpu
    cp "$RUN/log.jsonl" reports/encoder/gpu/pretrain-log.jsonl
    cp "$out/pretrain.json" reports/encoder/gpu/pretrain.json
    tar -cf - "$ENCODER" reports/encoder/gpu | split -b 15m - "$out/encoder-part-"
    ls -l "$out"
    ;;
  score)
    arner cv --config configs/encoder.yaml --systems bert,crf --out reports/encoder/cv
    arner train --config configs/encoder-public.yaml --output runs/encoder-public --set progress_bar=false > reports/encoder/public.json
    ;;
  unpack)
    from=${2:?usage: gpu_encoder.sh unpack FOLDER_WITH_encoder-part-*}
    staging=$(mktemp -d)  # outside models/: that folder must only ever hold the one encoder
    cat "$from"/encoder-part-* | tar -C "$staging" -xf -
    test -f "$staging/$ENCODER/model.safetensors" -a -d "$staging/reports/encoder/gpu"
    mkdir -p reports/encoder
    rm -rf "$ENCODER" reports/encoder/gpu
    mv "$staging/$ENCODER" "$ENCODER"
    mv "$staging/reports/encoder/gpu" reports/encoder/gpu
    rm -rf "$staging"
    head -40 "$ENCODER/README.md"
    ;;
  *)
    echo "usage: bash scripts/gpu_encoder.sh pack | receive | train [SECONDS] | unpack FOLDER | score" >&2
    exit 2
    ;;
esac
