#!/usr/bin/env bash
# Hard constraints with a mixture of experts (docs/methods/moe.md, docs/results.md "PI-HC-MoE"): the soft
# constraint (PI-SC), one hard constraint (PI-HC) and the mixture with 2 and 4 experts along x (PI-HC-MoE) on
# diffusion–sorption (128 cells × 51 levels, 56 training and 8 held-out samples), SEEDS seeds, STEPS steps each:
# relative L2 against the finite-volume reference over the space–time grid, the physics residual (and the
# reference solution's own), unconverged expert solves, training seconds per step and inference seconds per
# sample. Then the time per training step against the number of sampled points per expert (POINTS) for PI-HC and
# the mixture of 4 (the sub-linear scaling claim), SCALE_STEPS steps each, for each count of ranks in RANKS (under
# `mpirun -np N` when N > 1; SHARD=experts deals the batch's experts out to the ranks, SHARD=samples its samples).
# With TWO_D=1, the same four models on the periodic 2D Burgers preset (`burgers2d-moe`, `moe-burgers2d`; the
# mixture with 1 × 2 and 2 × 2 experts in space) for STEPS_2D steps each.
#
#   benches/experiments/moe.sh                                 # defaults below (about 2 hours on 2 cores)
#   STEPS=200 SEEDS=0 OUT=/tmp/moe benches/experiments/moe.sh
#
# EXTRA adds `--set` options to every training run (e.g. EXTRA="constraint.pde_from_level=3"). JOBS trainings run
# at once. Needs Python with xarray (ANSATZ_PYTHON, default python3). Results in $OUT/results.md; finished runs are
# skipped on a re-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ANSATZ=${ANSATZ:-target/release/ansatz}
PY=${ANSATZ_PYTHON:-python3}
OUT=${OUT:-experiments/moe}
SEEDS=${SEEDS:-0 1 2}
STEPS=${STEPS:-1000}
JOBS=${JOBS:-1}
POINTS=${POINTS:-250 500 1000 2000 4000 8000}
SCALE_STEPS=${SCALE_STEPS:-20}
RANKS=${RANKS:-1 2}
SHARD=${SHARD:-experts}
TWO_D=${TWO_D:-0}
STEPS_2D=${STEPS_2D:-300}
EXTRA=${EXTRA:-}
[ -x "$ANSATZ" ] || cargo build --release --bin ansatz
mkdir -p "$OUT"
export ANSATZ OUT STEPS EXTRA
[ -f "$OUT/ds.nc" ] || "$ANSATZ" generate diffusion-sorption --out "$OUT/ds.nc"

one() { # problem (1d: diffusion–sorption, 2d: periodic Burgers) model seed
  local d=$1 m=$2 s=$3 run config data steps moe2 moe4 sets=()
  if [ "$d" = 2d ]; then
    run="$OUT/2d-$m-$s" config=moe-burgers2d data="$OUT/bg.nc" steps=$STEPS_2D moe2="[1, 1, 2]" moe4="[1, 2, 2]"
  else
    run="$OUT/$m-$s" config=moe-diffusion-sorption data="$OUT/ds.nc" steps=$STEPS moe2="[1, 2]" moe4="[1, 4]"
  fi
  case $m in
    soft) sets=(--set constraint.variant=soft) ;;
    hard) sets=(--set constraint.variant=hard) ;;
    moe2) sets=(--set constraint.variant=moe --set "constraint.experts=$moe2") ;;
    moe4) sets=(--set constraint.variant=moe --set "constraint.experts=$moe4") ;;
    *) echo "unknown model $m"; return 1 ;;
  esac
  for e in $EXTRA; do sets+=(--set "$e"); done
  [ -f "$run/summary.json" ] ||
    "$ANSATZ" train "$config" --data "$data" "${sets[@]}" --set "seed=$s" \
      --set "training.steps=$steps" --set "training.validate_every=$(( steps / 5 ))" --out "$run" --force \
      > "$run.log" 2>&1 || { echo "failed: $d $m seed $s (see $run.log)"; return 1; }
  echo "done $d $m seed $s"
}
export -f one
export STEPS_2D
models() { for s in $SEEDS; do for m in soft hard moe2 moe4; do echo "$1 $m $s"; done; done; }
models 1d | xargs -r -P "$JOBS" -L 1 bash -c 'one $0 $1 $2'

for r in $RANKS; do
  launch=("$ANSATZ")
  [ "$r" = 1 ] || launch=(mpirun --oversubscribe -np "$r" -x OMPI_ALLOW_RUN_AS_ROOT=1 -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$ANSATZ")
  for m in hard moe4; do
    for p in $POINTS; do
      run="$OUT/scale-$m-$p"
      [ "$r" = 1 ] || run="$run-np$r"
      variant=$([ $m = hard ] && echo hard || echo moe)
      [ -f "$run/summary.json" ] ||
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "${launch[@]}" train moe-diffusion-sorption \
          --data "$OUT/ds.nc" --set "constraint.variant=$variant" --set "constraint.points=$p" \
          --set "constraint.shard=$SHARD" \
          --set "training.steps=$SCALE_STEPS" --set training.validate_every=0 --out "$run" --force > "$run.log" 2>&1
    done
  done
done

if [ "$TWO_D" = 1 ]; then
  [ -f "$OUT/bg.nc" ] || "$ANSATZ" generate burgers2d-moe --out "$OUT/bg.nc"
  models 2d | xargs -r -P "$JOBS" -L 1 bash -c 'one $0 $1 $2'
fi

"$PY" - "$OUT" "$SEEDS" "$POINTS" "$RANKS" "$TWO_D" <<'PYEOF'
import csv, json, os, sys
import numpy as np
out, seeds, points, ranks, two_d = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5] == "1"
models = [("soft", "PI-SC"), ("hard", "PI-HC (1 expert)"), ("moe2", "PI-HC-MoE, 2 experts"), ("moe4", "PI-HC-MoE, 4 experts")]
def steps(run):
    return list(csv.DictReader(open(f"{run}/metrics.csv")))
def table(prefix, title):
    lines = [title, "", "| model | seed | rel. L2 | residual | reference's residual | unconverged solves (training) | "
             "s per step | inference s per sample |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    table = {}
    for m, label in models:
        for s in seeds:
            run = f"{out}/{prefix}{m}-{s}"
            summ = json.load(open(f"{run}/summary.json"))
            vm = summ["validation_metrics"]
            rows = steps(run)
            per_step = float(np.median([float(r["seconds"]) for r in rows]))
            unconv = float(rows[-1].get("unconverged") or 0)
            row = [summ["validation"], vm["val_residual"], vm["val_reference_residual"], unconv, per_step,
                   vm["val_seconds_per_sample"]]
            table.setdefault(label, []).append(row)
            lines.append(f"| {label} | {s} | {row[0]:.4f} | {row[1]:.3e} | {row[2]:.3e} | {row[3]:.0f} | "
                         f"{row[4]:.3f} | {row[5]:.4f} |")
    lines += ["", "| model | rel. L2 (mean ± sd) | residual | s per step | inference s per sample |",
              "|---|---:|---:|---:|---:|"]
    for label, rows in table.items():
        a = np.array(rows)
        sd = lambda j: a[:, j].std(ddof=1) if len(rows) > 1 else 0.0
        lines.append(f"| {label} | {a[:, 0].mean():.4f} ± {sd(0):.4f} | {a[:, 1].mean():.3e} ± {sd(1):.1e} | "
                     f"{a[:, 4].mean():.3f} | {a[:, 5].mean():.4f} |")
    return lines
lines = table("", "Diffusion–sorption")
head = "| points per expert | " + " | ".join(f"PI-HC s per step ({r} rank{'s' if r != '1' else ''}) | "
                                          f"PI-HC-MoE (4) s per step ({r} rank{'s' if r != '1' else ''})" for r in ranks)
lines += ["", head + " |", "|---:|" + "---:|" * (2 * len(ranks))]
for p in points:
    med = lambda run: float(np.median([float(r["seconds"]) for r in steps(run)][2:]))
    cells = []
    for r in ranks:
        suffix = "" if r == "1" else f"-np{r}"
        cells += [f"{med(f'{out}/scale-{m}-{p}{suffix}'):.3f}" for m in ("hard", "moe4")]
    lines.append(f"| {p} | " + " | ".join(cells) + " |")
if two_d:
    models[2] = ("moe2", "PI-HC-MoE, 1 × 2 experts")
    models[3] = ("moe4", "PI-HC-MoE, 2 × 2 experts")
    lines += [""] + table("2d-", "Periodic 2D Burgers")
    # persistence on the held-out samples (the last 8): the initial velocity held at every level
    import xarray as xr
    d = xr.open_dataset(f"{out}/bg.nc")
    u, v = d["u"].values[-8:], d["v"].values[-8:]  # (sample, level, y, x)
    e = [np.linalg.norm(np.stack([a - a[:1], b - b[:1]])) / np.linalg.norm(np.stack([a, b])) for a, b in zip(u, v)]
    lines += ["", f"Persistence (the initial field at every level): rel. L2 {np.mean(e):.4f}"]
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
