#!/usr/bin/env bash
# The prepared GPU check: one script, run once on a lent GPU machine from a copy of this tree.
#
#   bash bench/gpu_check.sh          # CUDA: the figures go to $OUT (else bench/results/)
#   bash bench/gpu_check.sh --cpu    # the same steps at their tiny sizes on the CPU, a check of
#                                    # the script itself (tests/test_bench.py runs it)
#
# It runs, in order:
#   1. the training-step overhead on CUDA, (a) plain PyTorch, (b) plain Lightning, (c) the fit
#      job, small and wide CNN (bench/gpu_step_overhead.py);
#   2. the non-finite loss guard with torch.cuda.set_sync_debug_mode("error") around
#      steady-state steps (tests/test_guards.py), and the warm-job suite's cases on the GPU
#      (tests/test_warm_differential.py with DLT_TEST_ACCELERATOR=gpu); not in CPU mode,
#      where the suite runs both;
#   3. several runs per GPU: the digits sweep with 4 runs per GPU against 1 (bench/gpu_share.py).
#
# The GPU machine has torch and Lightning but not Snakemake: `make gpu-wheels` fills
# .gpu_wheels/ here (git-ignored) with the engine's other dependencies, and this script
# installs them into .gpu_site/ beside the machine's own torch. Carry .gpu_wheels to the
# device (its `carry`), then: OUT=$OUT bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
if [ "${1:-}" = "--cpu" ]; then device=cpu; fi
python=${PYTHON:-python}
out=${OUT:-bench/results}
mkdir -p "$out"

if [ -d .gpu_wheels ] && ! "$python" -c "import snakemake" 2>/dev/null; then
    echo "== installing the wheels of .gpu_wheels/ into .gpu_site/"
    "$python" -m pip install --quiet --no-index --find-links .gpu_wheels --target .gpu_site \
        --no-deps .gpu_wheels/*.whl
    export PYTHONPATH="$PWD/.gpu_site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    export PATH="$PWD/.gpu_site/bin:$PATH"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

quick=()
if [ "$device" = cpu ]; then quick=(--quick); fi

echo "== 1. training-step overhead ($device)"
"$python" -m bench.gpu_step_overhead "${quick[@]}" --device "$device" --out "$out"

if [ "$device" = cuda ]; then  # in CPU mode the suite runs these tests itself
    echo "== 2. the non-finite loss guard: no host sync per step"
    "$python" -m pytest -q -p no:cacheprovider -p no:randomly tests/test_guards.py
    echo "== 2. the warm-job suite on the GPU"
    DLT_TEST_ACCELERATOR=gpu "$python" -m pytest -q -p no:cacheprovider \
        tests/test_warm_differential.py
fi

echo "== 3. several runs per GPU: 4 against 1"
"$python" -m bench.gpu_share "${quick[@]}" --device "$device" --out "$out"
echo "== done: results in $out"
