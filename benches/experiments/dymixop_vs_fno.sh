#!/usr/bin/env bash
# DyMixOp vs FNO on 2D Burgers (ν = 0.005, 32², periodic): 10 frames in, 10 frames out, 200 training and 50 test
# trajectories (plus 5 for validation), equal parameter counts (DyMixOp width 32: 1.12 M; FNO width 32: 1.06 M), 3 seeds.
# Reports the relative MSE over the 10-step rollout and the long-rollout metrics (200 steps) per model: median
# and inter-quartile range over seeds. Results go to $OUT/results.md (docs/results.md records a run).
#
#   benches/experiments/dymixop_vs_fno.sh                 # STEPS=1000 per run (about 1 h 45 min on 2 cores)
#   STEPS=300 SEEDS="0 1 2" OUT=/tmp/exp benches/experiments/dymixop_vs_fno.sh
#
# Re-running continues: the dataset is reused, finished runs are skipped, interrupted ones resume.
set -euo pipefail
cd "$(dirname "$0")/../.."
ANSATZ=${ANSATZ:-target/release/ansatz}
OUT=${OUT:-experiments/dymixop-vs-fno}
STEPS=${STEPS:-1000}
SEEDS=${SEEDS:-0 1 2}
ROLLOUT=${ROLLOUT:-200}
[ -x "$ANSATZ" ] || cargo build --release --bin ansatz
mkdir -p "$OUT"

DATA="$OUT/burgers2d.nc"
if [ ! -f "$DATA" ]; then
  cat > "$OUT/burgers2d.toml" <<TOML
pde = "burgers2d"
samples = 255
seed = 0
[grid]
n = 32
length = 1.0
[time]
t_end = $(python3 -c "print(0.025 * (10 + $ROLLOUT))")
save_every = 0.025
cfl = 0.4
[scheme]
name = "spectral"
[boundary]
x = "periodic"
y = "periodic"
[initial_condition]
kind = "fourier"
max_mode = 4
amplitude = 1.0
[parameters]
nu = 0.005
[output]
precision = "f32"
compression = 4
TOML
  resume=""; [ -f "$DATA.partial" ] && resume="--resume"
  "$ANSATZ" generate burgers2d --config "$OUT/burgers2d.toml" --out "$DATA" $resume
fi

# 255 samples: the last 50 (round(0.196 × 255)) are the test split, 5 (2%) validate, 200 train
for model in dymixop fno; do
  for seed in $SEEDS; do
    run="$OUT/runs/$model-seed$seed"
    if [ ! -f "$run/summary.json" ]; then
      resume=""; [ -f "$run/checkpoint.ckpt" ] && resume="--resume"
      "$ANSATZ" train "$model-burgers2d" --data "$DATA" --out "$run" $resume \
        --set seed=$seed --set training.steps=$STEPS --set data.validation=0.02 --set data.test=0.196 \
        --set training.validate_every=$STEPS --set model.residual=true
    fi
    report="$OUT/reports/$model-seed$seed"
    [ -f "$report/summary.json" ] || "$ANSATZ" rollout --run "$run" --data "$DATA" --steps "$ROLLOUT" --out "$report" --force
    short="$OUT/reports10/$model-seed$seed"
    [ -f "$short/summary.json" ] || "$ANSATZ" rollout --run "$run" --data "$DATA" --steps 10 --out "$short" --force --no-baseline --no-plots
  done
done

PYTHON=${PYTHON:-$( [ -x target/pyenv/bin/python ] && echo target/pyenv/bin/python || echo python3 )}
"$PYTHON" - "$OUT" "$STEPS" "$SEEDS" <<'PY'
import json, sys, statistics, pathlib
out, steps, seeds = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3].split()
try:
    import netCDF4, numpy as np
except ImportError:
    netCDF4 = None

def rel_mse(report):
    # relative MSE over the 10-step rollout: mean over samples of Σ(p-u)² / Σu² over the 10 steps (all fields)
    if netCDF4 is None:
        return float("nan")
    m = netCDF4.Dataset(report / "metrics.nc")
    n = np.asarray(m["nrmse"][:])  # (sample, step) = ||p-u|| / ||u|| per step
    r = np.asarray(m["rmse"][:])
    u2 = (r / np.where(n > 0, n, np.nan)) ** 2  # mean u² per step
    return float(np.nanmean(np.nansum((r ** 2), axis=1) / np.nansum(u2, axis=1)))

def q(values):
    v = sorted(values)
    if len(v) == 1:
        return v[0], v[0], v[0]
    qs = statistics.quantiles(v, n=4, method="inclusive")
    return statistics.median(v), qs[0], qs[2]

rows = []
for model in ["dymixop", "fno"]:
    s200 = [json.load(open(out / f"reports/{model}-seed{s}/summary.json")) for s in seeds]
    s10 = [out / f"reports10/{model}-seed{s}" for s in seeds]
    metrics = {
        "relative MSE, 10-step rollout": [rel_mse(p) for p in s10],
        "nRMSE step 10 (median over samples)": [[v for k, v in x["nrmse_at"] if k == 10][0]["median"] for x in s200],
        "nRMSE step 200 (median over samples)": [x["nrmse_at"][-1][1]["median"] for x in s200],
        "geometric-mean nRMSE, steps 1-100": [x["gmean_nrmse_100"]["median"] for x in s200],
        "correlation time ρ<0.8 (steps)": [x["correlation_time_08"]["median"] for x in s200],
        "valid-prediction time (steps)": [x["valid_prediction_steps"]["median"] for x in s200],
        "blow-up rate": [x["blow_up_rate"] for x in s200],
        "H1 nRMSE, step 200": [x["h1_nrmse_last"]["median"] for x in s200],
        "parameters": [x["parameters"] for x in s200],
    }
    rows.append((model, metrics))
lines = [f"# DyMixOp vs FNO, 2D Burgers ν = 0.005, 32²: {steps} training steps, seeds {' '.join(seeds)}", "",
         "Median over seeds [inter-quartile range]; each seed's value is itself a median (or mean, for the relative MSE) over the 50 test trajectories.", "",
         "| metric | " + " | ".join(m for m, _ in rows) + " |", "|---|" + "---|" * len(rows)]
for key in rows[0][1]:
    cells = []
    for _, metrics in rows:
        med, lo, hi = q(metrics[key])
        cells.append(f"{med:.4g} [{lo:.4g}, {hi:.4g}]")
    lines.append(f"| {key} | " + " | ".join(cells) + " |")
(out / "results.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
