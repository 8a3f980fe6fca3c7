#!/usr/bin/env bash
# Where surrogates pay (docs/methods/hybrid.md, docs/results.md): Kolmogorov flow at Re = 1000 (kolmogorov-re1000,
# a 256² pseudo-spectral reference spun up for 40 time units), restricted to the GRIDS by Fourier truncation; or,
# with PROBLEM=burgers, periodic 2D Burgers at ν = 10⁻³ on 256² finite-volume cells, restricted by cell averages
# (the hybrids then take HYBRID_SUBSTEPS solver steps per frame).
#
# Per coarse grid:
#  - models: solver-in-the-loop hybrids (the coarse solver + an FNO or DyMixOp correction) and pure surrogates
#    (the same networks, `hybrid.solver = "none"`), SEEDS each, STEPS optimiser steps;
#  - rollouts: on the test trajectories over ROLL_STEPS frames from the first test frame;
#  - the ladder: the plain solver from 256² down to 1/4 of the grid (the first rollout of each grid runs it with
#    `--reference`), every rung scored on the coarse grid against the same truth.
#
# Reported per model: mean nRMSE, correlation time (ρ < 0.9 and 0.8, time units), wall seconds per simulated time
# unit, the error-matched speed-up against the cheapest rung at least as accurate, the breakeven count.
#
#   benches/experiments/hybrid.sh                          # defaults below (hours on 2 cores)
#   STEPS=200 SEEDS=0 GRIDS=32 OUT=/tmp/hybrid benches/experiments/hybrid.sh
#
# Needs Python 3 (ANSATZ_PYTHON, default python3); results in $OUT/results.md; finished runs are skipped on a re-run.
# SUMMARY_ONLY=1 only tabulates the MODELS × GRIDS × SEEDS rollouts already in $OUT (any run named
# MODEL-GRID-SEED with a MODEL-GRID-SEED-rollout report).
set -euo pipefail
cd "$(dirname "$0")/../.."
ANSATZ=${ANSATZ:-target/release/ansatz}
PY=${ANSATZ_PYTHON:-python3}
OUT=${OUT:-experiments/hybrid}
SEEDS=${SEEDS:-0 1 2}
GRIDS=${GRIDS:-64 32}
MODELS=${MODELS:-hybrid-fno hybrid-dymixop fno dymixop}
STEPS=${STEPS:-1000}
HORIZON=${HORIZON:-4}
ROLL_STEPS=${ROLL_STEPS:-150}
SAMPLES=${SAMPLES:-24}
PROBLEM=${PROBLEM:-kolmogorov}
[ -x "$ANSATZ" ] || cargo build --release --bin ansatz
mkdir -p "$OUT"

ref="$OUT/ref256.nc"
case $PROBLEM in
  kolmogorov) [ -f "$ref" ] || "$ANSATZ" generate kolmogorov-re1000 --samples "$SAMPLES" --out "$ref"
    LEVELS=150 SPIN_FRAMES=400 ;;
  burgers)
    # periodic 2D Burgers at ν = 10⁻³ (MUSCL finite volumes, SSP-RK3 at a fixed step), 256² cells, 50 frames to t = 1
    [ -f "$ref" ] || "$ANSATZ" generate burgers2d --samples "$SAMPLES" --set grid.n=256 --set nu=0.001 \
      --set time.dt=0.001 --out "$ref"
    LEVELS=50 SPIN_FRAMES=0 ;;
  *) echo "PROBLEM is kolmogorov or burgers"; exit 2 ;;
esac
export LEVELS SPIN_FRAMES
for n in $GRIDS; do
  [ -f "$OUT/ref$n.nc" ] || "$ANSATZ" coarsen "$ref" --factor $((256 / n)) --out "$OUT/ref$n.nc"
done

one() { # model grid seed
  local m=$1 n=$2 s=$3 run="$OUT/$1-$2-$3" config extra=()
  case $m in
    hybrid-fno | fno) config=hybrid-fno-kolmogorov ;;
    hybrid-dymixop | dymixop) config=hybrid-dymixop-kolmogorov ;;
    *) echo "unknown model $m"; return 1 ;;
  esac
  case $m in hybrid-*) ;; *) extra=(--set hybrid.solver=none) ;; esac
  [ -n "${HYBRID_SUBSTEPS:-}" ] && extra+=(--set "hybrid.substeps=$HYBRID_SUBSTEPS")
  # the grid's Fourier modes: at most a third of the points per axis
  local modes=$((n / 3 < 12 ? n / 3 : 12))
  if [ ! -f "$run/summary.json" ]; then
    "$ANSATZ" train "$config" --data "$OUT/ref$n.nc" "${extra[@]}" --set "seed=$s" --set "training.steps=$STEPS" \
      --set "data.horizon=$HORIZON" --set "model.modes=$modes" --out "$run" --force > "$run.log" 2>&1 ||
      { echo "failed: training $m on $n² seed $s (see $run.log)"; return 1; }
  fi
  local report="$run-rollout" ladder=(--no-baseline)
  # the solver ladder once per grid (it does not depend on the model)
  [ -f "$OUT/ladder-$n" ] || [ -f "$report/summary.json" ] || { ladder=(--reference "$ref"); touch "$OUT/ladder-$n"; }
  if [ ! -f "$report/summary.json" ]; then
    "$ANSATZ" rollout --run "$run" --data "$OUT/ref$n.nc" --steps "$ROLL_STEPS" "${ladder[@]}" --out "$report" \
      --force > "$report.log" 2>&1 || { rm -f "$OUT/ladder-$n"; echo "failed: rollout $m $n² seed $s (see $report.log)"; return 1; }
    [ "${ladder[0]}" = --reference ] && cp "$report/summary.json" "$OUT/ladder-$n.json"
  fi
  echo "done $m on $n² seed $s"
}

if [ "${SUMMARY_ONLY:-0}" != 1 ]; then
  for n in $GRIDS; do
    for s in $SEEDS; do
      for m in $MODELS; do one "$m" "$n" "$s"; done
    done
  done
fi

PROBLEM=$PROBLEM "$PY" - "$OUT" "$GRIDS" "$MODELS" "$SEEDS" <<'EOF'
import json, math, os, statistics, sys
out, grids, models, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
# frames per training trajectory and the spin-up in frames, charged to the data at the finest rung
LEVELS, SPIN_FRAMES = int(os.environ["LEVELS"]), int(os.environ["SPIN_FRAMES"])
title = {"kolmogorov": "Kolmogorov flow, Re = 1000", "burgers": "periodic 2D Burgers, ν = 10⁻³"}
lines = [f"# {title.get(os.environ.get('PROBLEM', ''), '')}: hybrids, surrogates and the plain solver", ""]
def ms(v):
    v = [x for x in v if x is not None]
    if not v:
        return "n/a"
    m = statistics.mean(v)
    return f"{m:.3g} ± {statistics.stdev(v):.2g}" if len(v) > 1 else f"{m:.3g}"
for n in grids:
    path = os.path.join(out, f"ladder-{n}.json")
    if not os.path.exists(path):
        continue
    ladder = json.load(open(path))
    dt = ladder["frame_interval"]
    rungs = ladder["cost"]["solver"]
    lines += [f"## {n}² (frames every {dt:g}; {ladder['samples']['end'] - ladder['samples']['start']} test trajectories, "
              f"{ladder['steps']} frames)", "",
              "| solver | nRMSE on the coarse grid | corr. time ρ<0.9 | s per time unit |", "|---|---|---|---|"]
    for r in rungs:
        corr = f"{r['correlation_time_09'] * dt:.2f}" if "correlation_time_09" in r else "n/a"
        lines.append(f"| {r['n']}² | {r['nrmse']:.4f} | {corr} | {r['seconds_per_frame'] / dt:.3g} |")
    lines += ["", "| model | nRMSE | corr. time ρ<0.9 | corr. time ρ<0.8 | s per time unit | matched solver | "
              "error-matched speed-up (rung) | interpolated | breakeven rollouts |", "|---|---|---|---|---|---|---|---|---|"]
    for m in models:
        rows = []
        for s in seeds:
            p = os.path.join(out, f"{m}-{n}-{s}-rollout", "summary.json")
            if os.path.exists(p):
                rows.append(json.load(open(p)))
        if not rows:
            continue
        err = [r["nrmse_mean"]["mean"] for r in rows]
        c9 = [r["correlation_time_09"]["mean"] * dt for r in rows]
        c8 = [r["correlation_time_08"]["mean"] * dt for r in rows]
        cost = [r["cost"]["model_seconds_per_step"] / dt for r in rows]
        matched, speed, interp, breakeven = [], [], [], []
        for r, e in zip(rows, err):
            ok = [g for g in rungs if g["nrmse"] <= e]
            best = min(ok, key=lambda g: g["seconds_per_frame"]) if ok else None
            matched.append(f"{best['n']}²" if best else "none")
            speed.append(best["seconds_per_frame"] / r["cost"]["model_seconds_per_step"] if best else None)
            worse = [g for g in rungs if g["nrmse"] > e]
            if best and worse:
                w = min(worse, key=lambda g: g["nrmse"])
                ca, cb = math.log(w["seconds_per_frame"]), math.log(best["seconds_per_frame"])
                t = ((math.log(w["nrmse"]) - math.log(e)) / (math.log(w["nrmse"]) - math.log(best["nrmse"]))
                     if best["nrmse"] > 0 else (w["nrmse"] - e) / w["nrmse"])
                c = math.exp(ca + min(max(t, 0.0), 1.0) * (cb - ca)) if cb > ca else best["seconds_per_frame"]
                interp.append(c / r["cost"]["model_seconds_per_step"])
            else:
                interp.append(None)
            # the data (every training trajectory at the finest rung, its spin-up included) and the training, repaid
            # per rollout by the time saved against the matched rung
            finest = max(rungs, key=lambda g: g["n"])
            run = os.path.join(out, f"{m}-{n}-{seeds[rows.index(r)]}")
            split = json.load(open(os.path.join(run, "run.json")))["split"]["train"]
            upfront = json.load(open(os.path.join(run, "summary.json")))["seconds"] + \
                finest["seconds_per_frame"] * (split["end"] - split["start"]) * (LEVELS + SPIN_FRAMES)
            # against a solver of the model's error: interpolated where two rungs bracket it, else the matched rung
            target = interp[-1] * r["cost"]["model_seconds_per_step"] if interp[-1] is not None else \
                (best["seconds_per_frame"] if best else None)
            saving = (target - r["cost"]["model_seconds_per_step"]) * r["steps"] if target is not None else None
            breakeven.append(upfront / saving if saving and saving > 0 else None)
        lines.append(f"| {m} | {ms(err)} | {ms(c9)} | {ms(c8)} | {ms(cost)} | {', '.join(matched)} | {ms(speed)} | {ms(interp)} | "
                     f"{ms(breakeven) if any(b is not None for b in breakeven) else 'never'} |")
    # nRMSE against the step (medians over the test trajectories; models: mean ± sd over seeds) and the energy
    # above k = 12 at the last step relative to the reference's
    last = ladder["steps"]
    picks = [k for k in (1, 10, last) if 1 <= k <= last]
    picks = sorted(set(picks))
    lines += ["", "| | " + " | ".join(f"nRMSE at t = {k * dt:g}" for k in picks) + " | energy k ≥ 12, last step |",
              "|---|" + "---|" * (len(picks) + 1)]
    for r in rungs:
        by = r.get("nrmse_by_step") or []
        vals = [f"{by[k - 1]:.3g}" if len(by) >= k else "n/a" for k in picks]
        lines.append(f"| solver {r['n']}² | " + " | ".join(vals) + " | |")
    for m in models:
        rows = [json.load(open(p)) for p in (os.path.join(out, f"{m}-{n}-{s}-rollout", "summary.json") for s in seeds)
                if os.path.exists(p)]
        if not rows:
            continue
        at = [dict((int(k), v["median"]) for k, v in r["nrmse_at"]) for r in rows]
        vals = [ms([a.get(k) for a in at]) for k in picks]
        high = ms([r["high_k_energy_ratio_last"]["median"] for r in rows if r.get("high_k_energy_ratio_last")])
        lines.append(f"| {m} | " + " | ".join(vals) + f" | {high} |")
    lines.append("")
open(os.path.join(out, "results.md"), "w").write("\n".join(lines))
print("\n".join(lines))
EOF
