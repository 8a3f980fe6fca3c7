#!/usr/bin/env bash
# Φ-ROM study (docs/methods/phirom.md, docs/results.md), checks C1 and C2 of the method notes:
#  C1  the parametric Burgers equation with a source: Φ-ROM, DINo and CROM trained on the 8 training μ (first 100
#      levels), forecast from the initial field over 199 steps on the 7 interpolation μ and the 2 extrapolation μ;
#      relative L2 per frame averaged over steps 1–99 and 100–199 (`nrmse_u` of `ansatz rollout`), per seed;
#      wall time per rollout of each model and of the solver (`summary.json`);
#  C2  2D diffusion (DIFFUSION=1): Φ-ROM, DINo and CROM (Gauss–Newton projection; DIFF_METHODS) trained on
#      trajectories 0–99 (first 25 levels) for DIFF_STEPS steps of DIFF_BATCH snapshots each (Φ-ROM's warm-up 1/12
#      of the epochs), rolled out on 16 held-out initial fields (another seed of the generator) over 50 levels: the
#      mean relative L2 over levels 1–24 (within the training horizon) and 25–50 (beyond it).
#
#   benches/experiments/phirom.sh                               # defaults below (hours on 2 cores)
#   STEPS=300 SEEDS=0 OUT=/tmp/phirom benches/experiments/phirom.sh
#
# METHODS may also name crom-gn: CROM with the Gauss–Newton projection (5 iterations) instead of the reference's
# 20 gradient steps. Every model trains for STEPS optimiser steps (equal budget: one step sees every training snapshot for all three
# at the embedded batch sizes). Φ-ROM's warm-up is WARMUP epochs. JOBS trainings run at once. Needs Python with
# xarray (ANSATZ_PYTHON, default python3). Results in $OUT/results.md; finished runs are skipped on a re-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ANSATZ=${ANSATZ:-target/release/ansatz}
PY=${ANSATZ_PYTHON:-python3}
OUT=${OUT:-experiments/phirom}
SEEDS=${SEEDS:-0 1 2}
METHODS=${METHODS:-phirom dino crom}
STEPS=${STEPS:-2000}
WARMUP=${WARMUP:-170}
JOBS=${JOBS:-1}
DIFFUSION=${DIFFUSION:-0}
DIFF_STEPS=${DIFF_STEPS:-300}
DIFF_BATCH=${DIFF_BATCH:-125}
DIFF_METHODS=${DIFF_METHODS:-phirom dino crom-gn}
[ -x "$ANSATZ" ] || cargo build --release --bin ansatz
mkdir -p "$OUT"
export ANSATZ OUT STEPS WARMUP

for set in train interpolation extrapolation; do
  [ -f "$OUT/burgers-$set.nc" ] || "$ANSATZ" generate burgers1d-source --set "parameter.set=$set" --out "$OUT/burgers-$set.nc"
done

one() { # method seed (crom-gn: CROM with the Gauss–Newton projection)
  local m=$1 s=$2 run="$OUT/$1-$2" config="$1-burgers1d" extra=()
  if [ "$m" = crom-gn ]; then
    config=crom-burgers1d
    extra=(--set inference.project=gauss-newton --set inference.project_steps=5)
  fi
  if [ ! -f "$run/summary.json" ]; then
    "$ANSATZ" train "$config" --data "$OUT/burgers-train.nc" "${extra[@]}" \
      --set "data.validation=$(realpath "$OUT")/burgers-interpolation.nc" \
      --set "seed=$s" --set "training.steps=$STEPS" --set "training.validate_every=0" \
      --set "phirom.warmup_epochs=$WARMUP" --out "$run" --force > "$run.log" 2>&1 ||
      { echo "failed: training $m seed $s (see $run.log)"; return 1; }
  fi
  for set in interpolation extrapolation; do
    [ -f "$run-$set/summary.json" ] ||
      "$ANSATZ" rollout --run "$run" --data "$OUT/burgers-$set.nc" --out "$run-$set" --no-plots --force > "$run-$set.log" 2>&1 ||
      { echo "failed: rollout $m seed $s on $set (see $run-$set.log)"; return 1; }
  done
  echo "done $m seed $s"
}
export -f one
for s in $SEEDS; do for m in $METHODS; do echo "$m $s"; done; done | xargs -r -P "$JOBS" -L 1 bash -c 'one $0 $1'

if [ "$DIFFUSION" = 1 ]; then
  [ -f "$OUT/diffusion.nc" ] || "$ANSATZ" generate diffusion2d --out "$OUT/diffusion.nc"
  # held-out initial fields: another seed of the same distribution, 50 levels
  [ -f "$OUT/diffusion-heldout.nc" ] ||
    "$ANSATZ" generate diffusion2d --set seed=1 --set samples=16 --set time.levels=50 --out "$OUT/diffusion-heldout.nc"
  export DIFF_STEPS DIFF_BATCH
  diffusion() { # method seed: every model sees DIFF_BATCH snapshots per step (DINo batches whole 25-level trajectories)
    local m=$1 s=$2 run="$OUT/diffusion-$1-$2" extra=()
    case $m in
      phirom) extra=(--set training.batch="$DIFF_BATCH"
                     --set "phirom.warmup_epochs=$(( (DIFF_STEPS * DIFF_BATCH / 2500 + 11) / 12 ))") ;;
      dino) extra=(--set method=dino --set training.batch=$(( DIFF_BATCH / 25 ))) ;;
      crom-gn) extra=(--set method=crom --set training.batch="$DIFF_BATCH"
                      --set inference.project=gauss-newton --set inference.project_steps=5) ;;
      *) echo "unknown diffusion model $m"; return 1 ;;
    esac
    if [ ! -f "$run/summary.json" ]; then
      "$ANSATZ" train phirom-diffusion2d --data "$OUT/diffusion.nc" --set "seed=$s" --set "training.steps=$DIFF_STEPS" \
        --set "training.validate_every=0" "${extra[@]}" --out "$run" --force > "$run.log" 2>&1 ||
        { echo "failed: training $m seed $s on diffusion (see $run.log)"; return 1; }
    fi
    [ -f "$run-heldout/summary.json" ] ||
      "$ANSATZ" rollout --run "$run" --data "$OUT/diffusion-heldout.nc" --out "$run-heldout" --no-plots --force \
        > "$run-heldout.log" 2>&1 || { echo "failed: rollout $m seed $s on diffusion (see $run-heldout.log)"; return 1; }
    echo "done diffusion $m seed $s"
  }
  export -f diffusion
  for s in $SEEDS; do for m in $DIFF_METHODS; do echo "$m $s"; done; done | xargs -r -P "$JOBS" -L 1 bash -c 'diffusion $0 $1'
fi

"$PY" - "$OUT" "$SEEDS" "$METHODS" "$DIFFUSION" "$DIFF_METHODS" <<'EOF'
import json, sys
import numpy as np
import xarray as xr
out, seeds, methods, diffusion = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4] == "1"
diff_methods = sys.argv[5].split()
lines = ["| model | seed | interp. μ, steps 1–99 | interp. μ, 100–199 | extrap. μ, 1–99 | extrap. μ, 100–199 | "
         "training s | s per rollout (model) | s per rollout (solver) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
table = {}
for m in methods:
    for s in seeds:
        row = []
        for part in ["interpolation", "extrapolation"]:
            e = xr.open_dataset(f"{out}/{m}-{s}-{part}/metrics.nc")["nrmse_u"].values  # (sample, step)
            row += [float(np.mean(e[:, :99])), float(np.mean(e[:, 99:]))]
        summ = json.load(open(f"{out}/{m}-{s}-interpolation/summary.json"))
        train = json.load(open(f"{out}/{m}-{s}/summary.json"))
        c = summ["cost"]
        steps = summ["steps"]
        model_s = c["model_seconds_per_step"] * steps
        solver_s = c["solver"][0]["seconds_per_frame"] * steps if c["solver"] else float("nan")
        table.setdefault(m, []).append(row)
        lines.append(f"| {m} | {s} | " + " | ".join(f"{v:.4f}" for v in row)
                     + f" | {train['seconds']:.0f} | {model_s:.3g} | {solver_s:.3g} |")
lines.append("")
lines.append("| model | interp. 1–99 | interp. 100–199 | extrap. 1–99 | extrap. 100–199 |")
lines.append("|---|---:|---:|---:|---:|")
for m, rows in table.items():
    a = np.array(rows)
    lines.append(f"| {m} (mean ± sd over {len(rows)} seeds) | " + " | ".join(
        f"{a[:, j].mean():.4f} ± {a[:, j].std(ddof=1) if len(rows) > 1 else 0:.4f}" for j in range(4)) + " |")
if diffusion:
    lines += ["", "| diffusion model | seed | held-out levels 1–24 | levels 25–50 | training s | s per rollout (model) |"
              " s per rollout (solver) |", "|---|---:|---:|---:|---:|---:|---:|"]
    dtable = {}
    for m in diff_methods:
        for s in seeds:
            e = xr.open_dataset(f"{out}/diffusion-{m}-{s}-heldout/metrics.nc")["nrmse_u"].values
            row = [float(np.mean(e[:, :24])), float(np.mean(e[:, 24:]))]
            dtable.setdefault(m, []).append(row)
            summ = json.load(open(f"{out}/diffusion-{m}-{s}-heldout/summary.json"))
            train = json.load(open(f"{out}/diffusion-{m}-{s}/summary.json"))
            c, steps = summ["cost"], summ["steps"]
            solver_s = c["solver"][0]["seconds_per_frame"] * steps if c["solver"] else float("nan")
            lines.append(f"| {m} | {s} | {row[0]:.4f} | {row[1]:.4f} | {train['seconds']:.0f} | "
                         f"{c['model_seconds_per_step'] * steps:.3g} | {solver_s:.3g} |")
    lines += ["", "| diffusion model | levels 1–24 | levels 25–50 |", "|---|---:|---:|"]
    for m, rows in dtable.items():
        a = np.array(rows)
        lines.append(f"| {m} (mean ± sd over {len(rows)} seeds) | " + " | ".join(
            f"{a[:, j].mean():.4f} ± {a[:, j].std(ddof=1) if len(rows) > 1 else 0:.4f}" for j in range(2)) + " |")
    # persistence: every level forecast as the initial field, relative L2 per frame
    held = xr.open_dataset(f"{out}/diffusion-heldout.nc")["u"].values  # (sample, level, y, x)
    e = np.array([[np.linalg.norm(f[t] - f[0]) / np.linalg.norm(f[t]) for t in range(1, f.shape[0])] for f in held])
    lines.append(f"| persistence | {e[:, :24].mean():.4f} | {e[:, 24:].mean():.4f} |")
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
