#!/usr/bin/env bash
# DCDM study (docs/methods/dcdm.md): the deep conjugate direction method's network trained on Ritz right-hand
# sides of 2D (DIMS=2, the default) or 3D Poisson matrices at one size (N = 64 by default), 3 training seeds,
# then applied at larger sizes to systems with solid masks and coefficient fields not seen in training (the Ritz
# generator's systems under seed 1000). For each size, system and tolerance (1e-6, 1e-8): iterations and setup/solve wall time of CG,
# Jacobi-PCG, IC(0)-PCG, multigrid-PCG, DCDM and flexible CG with the network (benches/examples/dcdm_study.rs).
# Writes $OUT/seed<k>/{ritz.nc, run/, net.apc, study.md, study.jsonl} and $OUT/summary.md; docs/results.md
# records a run.
#
#   benches/experiments/dcdm.sh                                   # defaults below
#   N=32 STEPS=300 SEEDS="0" SIZES=32,64 OUT=/tmp/dcdm benches/experiments/dcdm.sh
#   TRAIN_SET="model.levels=0 training.batch=20" benches/experiments/dcdm.sh   # more `--set`s for training
#   GEN_SET="rhs.low_fraction=0.04" benches/experiments/dcdm.sh                  # more `--set`s for the data
#   DIMS=3 N=16 SIZES=32,64 benches/experiments/dcdm.sh                            # 3D
#   TRAIN_SET="model.kind=residual" benches/experiments/dcdm.sh                    # the reference's network
#
# Re-running continues: datasets, finished runs, exports and studies are reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
ANSATZ=${ANSATZ:-target/release/ansatz}
OUT=${OUT:-experiments/dcdm}
DIMS=${DIMS:-2}
N=${N:-64}
SAMPLES=${SAMPLES:-2000}
SYSTEMS=${SYSTEMS:-8}
LANCZOS=${LANCZOS:-500}
STEPS=${STEPS:-3000}
CHANNELS=${CHANNELS:-8}
MAX_ITER=${MAX_ITER:-20000}
SEEDS=${SEEDS:-0 1 2}
if [ "$DIMS" = 3 ]; then SIZES=${SIZES:-32,64}; else SIZES=${SIZES:-64,128,256}; fi
TEST_SYSTEMS=${TEST_SYSTEMS:-2}
TRAIN_SET=${TRAIN_SET:-}
GEN_SET=${GEN_SET:-}
extra=()
for kv in $TRAIN_SET; do extra+=(--set "$kv"); done
gen=()
for kv in $GEN_SET; do gen+=(--set "$kv"); done
[ -x "$ANSATZ" ] || cargo build --release --bin ansatz
cargo build --release -p ansatz-benches --example dcdm_study
STUDY=target/release/examples/dcdm_study
mkdir -p "$OUT"

for seed in $SEEDS; do
  dir="$OUT/seed$seed"
  mkdir -p "$dir"
  [ -f "$dir/ritz.nc" ] || "$ANSATZ" generate "ritz-poisson${DIMS}d" --seed "$seed" --samples "$SAMPLES" \
    --set grid.n="$N" --set systems.count="$SYSTEMS" --set lanczos.steps="$LANCZOS" "${gen[@]}" --out "$dir/ritz.nc"
  if [ ! -f "$dir/run/summary.json" ]; then
    resume=()
    [ -f "$dir/run/checkpoint.ckpt" ] && resume=(--resume)
    "$ANSATZ" precond train "dcdm-poisson${DIMS}d" --data "$dir/ritz.nc" --out "$dir/run" "${resume[@]}" \
      --set seed="$seed" --set training.steps="$STEPS" --set model.channels="$CHANNELS" "${extra[@]}"
  fi
  [ -f "$dir/net.apc" ] || "$ANSATZ" precond export --run "$dir/run" --out "$dir/net.apc"
  [ -f "$dir/study.md" ] || "$STUDY" --model "$dir/net.apc" --sizes "$SIZES" --systems "$TEST_SYSTEMS" \
    --max-iter "$MAX_ITER" --seed 1000 > "$dir/study.md.partial" 2> "$dir/study.jsonl"
  [ -f "$dir/study.md.partial" ] && mv "$dir/study.md.partial" "$dir/study.md"
  echo "seed $seed: $dir/study.md"
done
# the table over the seeds (iterations mean ± sd, ratios to CG, times)
python3 benches/experiments/dcdm_summary.py "$OUT" | tee "$OUT/summary.md"
