#!/usr/bin/env bash
# Regenerate the lm-eval fixtures of tests/data (see README.md there). Offline: the tasks
# read local JSONL files, the dummy model needs no weights.
#
#   make_lm_eval_fixtures.sh basic  [LM_EVAL]          -> lm_eval_0413/dummy-{a,b,c,d}
#   make_lm_eval_fixtures.sh groups DIR [LM_EVAL]      -> DIR/EleutherAI__pythia-70m
#
# LM_EVAL is the lm_eval command of the version to record (default: lm_eval on PATH), e.g.
# /tmp/venv-lmeval-049/bin/lm_eval for a venv holding lm-eval 0.4.9.2 (see README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
what="${1:?basic or groups}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1
cd "$here/../../examples/lm_eval/tasks"
if [ "$what" = basic ]; then
  lm_eval="${2:-lm_eval}"
  run() { "$lm_eval" --model dummy --include_path . --log_samples --output_path "$tmp/$1" "${@:2}" >/dev/null; }
  run a --tasks tiny_suite --seed 0
  run b --tasks tiny_suite --seed 1
  run c --tasks tiny_mc --seed 2 --num_fewshot 0
  sleep 1  # the second results file of c needs a later timestamp
  run c --tasks tiny_mc --seed 2 --num_fewshot 5
  run d --tasks tiny_mc --seed 3 --limit 20
  out="$here/lm_eval_0413"
  rm -rf "$out" && mkdir -p "$out"
  for m in a b c d; do cp -r "$tmp/$m"/*/ "$out/dummy-$m"; done
elif [ "$what" = groups ]; then
  # The group tiny_suite (tiny_mc + tiny_math) evaluated twice into one model folder, at
  # 0 and 2 shots. The dummy model ignores --model_args; lm-eval still records it, and names
  # the folder after pretrained= (EleutherAI__pythia-70m).
  out="$here/${2:?the folder to write, e.g. lm_eval_049}"
  lm_eval="${3:-lm_eval}"
  for shots in 0 2; do
    "$lm_eval" --model dummy --model_args pretrained=EleutherAI/pythia-70m --include_path . --log_samples \
      --output_path "$tmp/g" --tasks tiny_suite --seed "$shots" --num_fewshot "$shots" >/dev/null
    sleep 1  # results files are named by the second: the second run needs a later name
  done
  rm -rf "$out" && mkdir -p "$out"
  cp -r "$tmp/g"/*/ "$out/EleutherAI__pythia-70m"
else
  echo "usage: $0 basic [LM_EVAL] | groups DIR [LM_EVAL]" >&2
  exit 2
fi
