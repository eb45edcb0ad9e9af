#!/usr/bin/env bash
# GPU proof (issue 12): the CUDA tests, the model benchmark (batches 1..64, bf16) with a bf16-vs-fp32
# agreement figure, a timed 1920x1080 encode and a short training run (one process, then the same
# run under torchrun: DDP over NCCL), every figure and log under OUTDIR, the figures in
# OUTDIR/summary.md with the card's name.
#
#   benchmarks/gpu_check.sh OUTDIR
#
# Without a CUDA GPU it prints "no CUDA GPU: skipping" and exits 0. FORCE_CPU=1 runs tiny versions
# of every step on the CPU instead (to check the commands, not to measure anything).
# Each step has its own time limit (together 560 s, so the whole script ends within 10 minutes);
# a failed step is reported and the others still run; the exit status is 1 when any step failed.
# Training data: $SSPNET_DATA, else ../shared/datasets/osie, else synthetic images.
# OUTDIR receives at most 7 files: summary.md, tests_cuda.log, bench_model.txt, agreement.json,
# encode.json, train.log, train_history.json. Run folders and inputs stay in a temporary folder.
# Needs the repo's Python packages importable (installed, or PYTHONPATH=repo root); every entry
# point is run with `python -m`, so no console script is needed. Python: $PYTHON, else python(3) on PATH.
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
PY=${PYTHON:-$(command -v python || command -v python3)}
FORCE_CPU=${FORCE_CPU:-0}

if [ "$FORCE_CPU" != 1 ] && ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "no CUDA GPU: skipping"
    exit 0
fi
OUT=$(mkdir -p "$1" && cd "$1" && pwd) || { echo "cannot create $1" >&2; exit 2; }
cd "$(dirname "$0")/.." || exit 2
if ! "$PY" -c "import sspnet, sspcodec" 2>/dev/null; then
    echo "error: the sspnet/sspcodec packages are not importable (pip install -e . or PYTHONPATH=$PWD)" >&2
    exit 2
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export SSPNET_CACHE="$WORK/cache" PYTHONUNBUFFERED=1
: >"$WORK/steps.tsv"

if [ "$FORCE_CPU" = 1 ]; then
    DEV=cpu
    BENCH=(--no-cuda --repeats 1 --paper-repeats 1 --batch 2 --threads 2)
    AGREE=(--configs default --photos 1 --candidates 4)
    ENCODE=(--repeats 1)
    TRAIN=(--epochs 1 --max-steps 2 --batch-size 2 --workers 0)
    NPROC=1
    SYNTH_N=40
else
    DEV=cuda
    BENCH=(--cuda --repeats 3 --paper-repeats 1 --threads 8 --gpu-repeats 10)
    AGREE=(--photos 8 --candidates 16)
    ENCODE=(--repeats 5)
    TRAIN=(--epochs 2 --max-steps 30 --batch-size 16 --workers 6)
    NPROC=$("$PY" -c "import torch; print(min(torch.cuda.device_count(), 8))")
    SYNTH_N=160
fi

# step NAME SECONDS LOG COMMAND...: run with a time limit, output to LOG (and the terminal), record exit and time
step() {
    local name=$1 limit=$2 log=$3
    shift 3
    echo "== $name (limit ${limit}s)"
    local t0=$SECONDS rc
    timeout --kill-after 10 "$limit" "$@" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >>"$WORK/steps.tsv"
    [ "$rc" = 0 ] || echo "!! $name failed (exit $rc)"
}

{
    "$PY" -c "import platform, torch; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '| python', \
platform.python_version()); print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    if [ "$FORCE_CPU" = 1 ]; then echo "mode: FORCE_CPU=1 (tiny CPU versions; no figure here is a GPU figure)"
    else echo "mode: cuda"; fi
} >"$WORK/env.txt" 2>&1
cat "$WORK/env.txt"

step "CUDA tests (pytest -k 'cuda or gpu')" 90 "$OUT/tests_cuda.log" \
    "$PY" -m pytest -q tests -k "cuda or gpu" -rs -p no:cacheprovider
step "model benchmark (bench_model.py)" 170 "$OUT/bench_model.txt" \
    "$PY" benchmarks/bench_model.py "${BENCH[@]}"
step "bf16 vs fp32 agreement" 60 "$WORK/agreement.log" \
    "$PY" benchmarks/gpu_check.py agreement --out "$OUT/agreement.json" --device "$DEV" "${AGREE[@]}"
step "1920x1080 encode" 60 "$WORK/encode.log" \
    "$PY" benchmarks/gpu_check.py encode --out "$OUT/encode.json" --work "$WORK/encode" --device "$DEV" "${ENCODE[@]}"

DATA=${SSPNET_DATA:-../shared/datasets/osie}
if [ ! -d "$DATA" ]; then
    DATA="$WORK/synthetic"
    "$PY" benchmarks/gpu_check.py synth-data "$DATA" --n "$SYNTH_N" | tee -a "$OUT/train.log"
fi
PRETRAINED=--pretrained
"$PY" benchmarks/gpu_check.py has-imagenet-weights 2>>"$OUT/train.log" || PRETRAINED=--no-pretrained
ARGS=(train -d "$DATA" --config default --device "$DEV" --seed 0 --patience 5 "$PRETRAINED" "${TRAIN[@]}")
echo "data $DATA; sspnet ${ARGS[*]}" | tee -a "$OUT/train.log"
step "training, one process" 90 "$OUT/train.log" \
    "$PY" -m sspnet.cli "${ARGS[@]}" -o "$WORK/train_single"
step "training, torchrun x$NPROC (DDP)" 90 "$OUT/train.log" \
    "$PY" -m torch.distributed.run --standalone --nproc-per-node "$NPROC" -m sspnet.cli "${ARGS[@]}" \
    -o "$WORK/train_ddp"

"$PY" benchmarks/gpu_check.py summary --out "$OUT" --work "$WORK"
awk -F'\t' '$2 != 0 { bad = 1 } END { exit bad }' "$WORK/steps.tsv"
