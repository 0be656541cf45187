#!/usr/bin/env bash
# Regenerate tests/data/lm_eval_0413 with lm-eval 0.4.13 (pip install "lm-eval==0.4.13").
# Offline: the tasks read local JSONL files, the dummy model needs no weights.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/lm_eval_0413"
tmp="$(mktemp -d)"
export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1
cd "$here/../../examples/lm_eval/tasks"
run() { lm_eval --model dummy --include_path . --log_samples --output_path "$tmp/$1" "${@:2}" >/dev/null; }
run a --tasks tiny_suite --seed 0
run b --tasks tiny_suite --seed 1
run c --tasks tiny_mc --seed 2 --num_fewshot 0
sleep 1  # the second results file of c needs a later timestamp
run c --tasks tiny_mc --seed 2 --num_fewshot 5
run d --tasks tiny_mc --seed 3 --limit 20
rm -rf "$out" && mkdir -p "$out"
for m in a b c d; do cp -r "$tmp/$m"/*/ "$out/dummy-$m"; done
rm -rf "$tmp"
