#!/usr/bin/env bash
# The GPU check in one command, run from the repo root on a machine with one NVIDIA GPU (about 5 min on
# an H100): the Viterbi benchmark against its peers (jaxalign at the backend default and unroll=1, the
# numba CUDA kernel, a PyTorch loop, torchaudio's forced_align) at B=64 T=400 L=60 and B=256 T=1000
# L=100 and on long sequences (B=16 T=10000 L=500), forward_score's benchmark, the train step
# benchmark, the default training run (wall time), the Pallas/alignment/forward/training tests, the
# default run with align.kernel=pallas, and the end-to-end training tests last, as budget allows.
#
#   bash experiments/gpu_wheels.sh        # here, with network: the wheels the GPU image lacks, into .whl/
#   bash experiments/gpu_check.sh         # there: writes experiments/results/gpu_check.md, *_gpu_*.json,
#                                         # gpu_check_logs/ and gpu_default_run/; copies them to $OUT if set
#   QUICK=1 bash experiments/gpu_check.sh # dry run on a CPU: tiny sizes, results in /tmp/jaxalign_gpu_check_quick
#   ONLY=tests,train_default bash experiments/gpu_check.sh   # just these steps (names as in the summary)
#
# Every step has its own time limit, capped by what is left of GPU_CHECK_BUDGET seconds (default 330);
# a failed or timed-out step is noted in the summary and the script goes on. Steps run in order of
# importance (benchmarks, training run, tests), so a spent budget skips the last ones: rerun them with ONLY=.
set -u
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
PY=${PYTHON:-python3}
START=$(date +%s)
if [ "$QUICK" = 1 ]; then
  BUDGET=${GPU_CHECK_BUDGET:-900}
  RESULTS=${RESULTS:-/tmp/jaxalign_gpu_check_quick}
  SUFFIX=_quick
else
  BUDGET=${GPU_CHECK_BUDGET:-330}
  RESULTS=${RESULTS:-experiments/results}
  SUFFIX=_gpu
fi
LOGS=$RESULTS/gpu_check_logs
RUN_ROOT=${RUN_ROOT:-/tmp/jaxalign_gpu_check_runs}
RUN_COPY=$RESULTS/gpu_default_run
STEPS=$LOGS/steps.tsv
mkdir -p "$LOGS" "$RUN_ROOT"
[ -n "${ONLY:-}" ] || : > "$STEPS"  # with ONLY=, rows are added to the last run's table
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX, PyTorch and numba share the GPU

# Packages the image lacks (hydra-core, omegaconf, antlr4, tensorboardX) travel as wheels in .whl/.
if compgen -G ".whl/*.whl" > /dev/null; then
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
    export PYTHONPATH=/tmp/site:$PWD
  else
    echo "WARNING: installing .whl/ failed; going on without it" >&2
    export PYTHONPATH=$PWD
  fi
else
  export PYTHONPATH=$PWD
fi

# Hydra finds the configs as the package jaxalign.conf, which an install maps to conf/; from a plain
# checkout on PYTHONPATH a link does the same. Removed again at exit if made here.
MADE_LINK=0
if [ ! -e jaxalign/conf ]; then ln -s ../conf jaxalign/conf && MADE_LINK=1; fi
trap '[ "$MADE_LINK" = 1 ] && rm -f jaxalign/conf' EXIT

selected() { [ -z "${ONLY:-}" ] || [[ ",$ONLY," == *",$1,"* ]]; }

# step NAME CAP_SECONDS COMMAND...: runs COMMAND with a time limit, logs into $LOGS/NAME.log, appends
# NAME, status, seconds and the command to $STEPS, prints the log's tail. Never stops the script.
step() {
  local name=$1 cap=$2
  shift 2
  local left=$((BUDGET - ($(date +%s) - START)))
  local limit=$((cap < left ? cap : left))
  local log=$LOGS/$name.log
  selected "$name" || return 0
  echo "=== $name (limit ${limit}s): $*"
  if [ "$limit" -lt 10 ]; then
    printf '%s\tskipped: budget spent\t0\t%s\n' "$name" "$*" >> "$STEPS"
    echo "skipped: the ${BUDGET}s budget is spent"
    return 0
  fi
  local t0 rc status seconds
  t0=$(date +%s%N)
  timeout -k 10 "$limit" "$@" > "$log" 2>&1
  rc=$?
  seconds=$(( ($(date +%s%N) - t0) / 1000000 ))
  seconds=$(printf '%d.%03d' $((seconds / 1000)) $((seconds % 1000)))
  case $rc in
    0) status=ok ;;
    124 | 137) status="TIMEOUT after ${limit}s" ;;
    *) status="FAILED (exit $rc)" ;;
  esac
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$seconds" "$*" >> "$STEPS"
  tail -n 20 "$log"
  echo "--- $name: $status, ${seconds}s"
}

if [ "$QUICK" = 1 ]; then
  VIT_SMALL=(--batch 4 --frames 40 --rows 8 --repeats 3)
  VIT_LARGE=(--batch 8 --frames 100 --rows 12 --repeats 3)
  VIT_LONG=(--batch 2 --frames 1000 --rows 50 --repeats 3)
  FWD_SMALL=(--batch 4 --frames 40 --rows 8 --repeats 3 --pallas)  # --pallas: the dry run covers those rows too
  FWD_LARGE=(--batch 8 --frames 100 --rows 12 --repeats 3 --pallas)
  TS_SMALL=(--sizes digits --rounds 1 --steps 1 --pallas)
  TS_LARGE=(--sizes digits --rounds 1 --steps 1 --no-torch)
  TS_SPEECH=(--sizes digits --rounds 1 --steps 1 --compute-dtype bfloat16 --no-torch)
  TRAIN_EXTRA=(+debug=tiny data.num_train=128)
  KERNEL=(env NUMBA_ENABLE_CUDASIM=1 "$PY" experiments/viterbi_cuda_kernel.py --cases 3)
  TESTS=(tests/align/test_pallas.py tests/align/test_cuda_kernel.py)
  TEST_ENV=()
else
  VIT_SMALL=(--batch 64 --frames 400 --rows 60 --repeats 30)
  VIT_LARGE=(--batch 256 --frames 1000 --rows 100 --repeats 30)
  VIT_LONG=(--batch 16 --frames 10000 --rows 500 --repeats 3)
  FWD_SMALL=(--batch 64 --frames 400 --rows 60 --repeats 20)
  FWD_LARGE=(--batch 256 --frames 1000 --rows 100 --repeats 20)
  TS_SMALL=(--sizes digits --rounds 5 --steps 6)
  TS_LARGE=(--sizes large --rounds 3 --steps 4)
  TS_SPEECH=(--sizes speech --rounds 5 --steps 4)
  TRAIN_EXTRA=()
  KERNEL=("$PY" experiments/viterbi_cuda_kernel.py --cases 10 --batch 16 --max-frames 64 --max-rows 24)
  TESTS=(tests/align/test_pallas.py tests/align/test_viterbi.py tests/align/test_forward.py tests/training/test_training.py -k "not end_to_end and not beats_the_flat_start")
  TEST_ENV=(env JAX_PLATFORMS=cuda)  # tests/conftest.py would otherwise pick the CPU
fi
PEERS=jaxalign_pallas,jaxalign_unroll1,jaxalign_packed,numba_cuda,torch_loop,torchaudio,numba_loop

step env 60 bash -c "nvidia-smi || echo 'no nvidia-smi'; $PY -c 'import jax; print(jax.__version__, jax.default_backend(), jax.devices())'"
if [ "$QUICK" != 1 ] && [ "$("$PY" -c 'import jax; print(jax.default_backend())' 2>/dev/null)" != gpu ]; then
  echo "jax sees no GPU (see $LOGS/env.log): nothing to measure; QUICK=1 is the dry run on a CPU" >&2
  exit 1
fi
step kernel_check 90 "${KERNEL[@]}"
step viterbi_small 90 "$PY" experiments/bench_viterbi.py "${VIT_SMALL[@]}" --classes 40 --peers "$PEERS" --no-sweep \
  --out "$RESULTS/bench_viterbi${SUFFIX}_small.json"
step viterbi_large 120 "$PY" experiments/bench_viterbi.py "${VIT_LARGE[@]}" --classes 40 --peers "$PEERS" --no-sweep \
  --out "$RESULTS/bench_viterbi${SUFFIX}_large.json"
step viterbi_long 120 "$PY" experiments/bench_viterbi.py "${VIT_LONG[@]}" --classes 40 --peers "$PEERS" --no-sweep \
  --out "$RESULTS/bench_viterbi${SUFFIX}_long.json"
step forward_small 60 "$PY" experiments/bench_forward.py "${FWD_SMALL[@]}" --out "$RESULTS/bench_forward${SUFFIX}_small.json"
step forward_large 60 "$PY" experiments/bench_forward.py "${FWD_LARGE[@]}" --out "$RESULTS/bench_forward${SUFFIX}_large.json"
step train_step_small 60 "$PY" experiments/bench_train_step.py "${TS_SMALL[@]}" --out "$RESULTS/bench_train_step${SUFFIX}_small.json"
step train_step_large 90 "$PY" experiments/bench_train_step.py "${TS_LARGE[@]}" --out "$RESULTS/bench_train_step${SUFFIX}_large.json"
step train_step_speech 60 "$PY" experiments/bench_train_step.py "${TS_SPEECH[@]}" --out "$RESULTS/bench_train_step${SUFFIX}_speech.json"
if selected train_default; then
  rm -rf "$RUN_ROOT/default_run" "$RUN_COPY"
  step train_default 200 "$PY" -m jaxalign.train "hydra.run.dir=$RUN_ROOT/default_run" ${TRAIN_EXTRA[@]+"${TRAIN_EXTRA[@]}"}
  mkdir -p "$RUN_COPY"
  for f in metrics.jsonl environment.json DONE FAILED .hydra/config.yaml .hydra/overrides.yaml figures; do
    [ -e "$RUN_ROOT/default_run/$f" ] && cp -r "$RUN_ROOT/default_run/$f" "$RUN_COPY/"
  done
fi
step tests 150 ${TEST_ENV[@]+"${TEST_ENV[@]}"} "$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
# The default run again with the Viterbi as one Pallas kernel (align.kernel=pallas): its wall time beside train_default's.
selected train_default_pallas && rm -rf "$RUN_ROOT/default_run_pallas"
step train_default_pallas 120 "$PY" -m jaxalign.train "hydra.run.dir=$RUN_ROOT/default_run_pallas" align.kernel=pallas ${TRAIN_EXTRA[@]+"${TRAIN_EXTRA[@]}"}
[ "$QUICK" = 1 ] || step tests_end_to_end 150 "${TEST_ENV[@]}" "$PY" -m pytest -q -p no:cacheprovider tests/training/test_training.py \
  -k "end_to_end or beats_the_flat_start"

GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
HEADER="$(date -u '+%Y-%m-%d %H:%M UTC'), $(hostname), GPU: ${GPU:-none}, QUICK=$QUICK, total $(( $(date +%s) - START )) s of a ${BUDGET} s budget.
Command: \`$([ "$QUICK" = 1 ] && echo 'QUICK=1 ')bash experiments/gpu_check.sh\` from the repo root; logs in gpu_check_logs/, the default run's small files in gpu_default_run/."
"$PY" experiments/gpu_summary.py --results "$RESULTS" --suffix "$SUFFIX" --steps "$STEPS" --logs "$LOGS" \
  --run-dir "$RUN_COPY" --header "$HEADER" --out "$RESULTS/gpu_check.md" $([ "$QUICK" = 1 ] && echo --not-judged) || echo "WARNING: the summary failed" >&2
cat "$RESULTS/gpu_check.md" 2>/dev/null

if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
  cp -r "$RESULTS/gpu_check.md" "$LOGS" "$RUN_COPY" "$OUT"/ 2>/dev/null
  cp "$RESULTS"/*"${SUFFIX}"_*.json "$OUT"/ 2>/dev/null
  echo "copied the results to $OUT"
fi
exit 0
