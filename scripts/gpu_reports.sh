#!/usr/bin/env bash
# The GPU reports of the README, one part at a time or all of them:
#   bash scripts/gpu_reports.sh [train-report] [bench-train] [bench-infer] [bench-infer-host]
# reports/train/<gpu>/ (scripts/train_report.py) and reports/bench/<gpu>/ (arner bench). Each part is
# independent: a failing one is reported and the others still run; the exit status counts failures.
set -u
cd "$(dirname "$0")/.."
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(train-report bench-train bench-infer)
failed=0
step() {
  echo "[$(date +%T)] $*" >&2
  "$@" || { echo "[$(date +%T)] FAILED ($?): $*" >&2; failed=$((failed + 1)); }
}
for part in "${parts[@]}"; do
  case "$part" in
    train-report) step python scripts/train_report.py ;;
    bench-train)
      step arner bench train --model bert-base --tokens 500000 --epochs 3 --out reports/bench
      step arner bench train --model tiny --tokens 1000000 --epochs 3 --out reports/bench
      ;;
    bench-infer)
      step arner bench infer --model bert-base --tokens 200000 --batch-sizes 1,8,32,128 --lengths 128,512,2048,8192 --out reports/bench
      step arner bench infer --model tiny --tokens 60000 --batch-sizes 1,8,32,128 --lengths 128,512,2048 --out reports/bench
      ;;
    bench-infer-host)  # the code around the model on the GPU machine (issue 17: >= 1M tokens/s host-only)
      step arner bench infer --model bert-base --tokens 500000 --batch-sizes 16,64,256 --lengths 512 --host-only --out reports/bench
      ;;
    *) echo "unknown part: $part (train-report, bench-train, bench-infer, bench-infer-host)" >&2; exit 2 ;;
  esac
done
exit "$failed"
