#!/usr/bin/env bash
# JAWS study (docs/methods/jaws.md): 1D viscous Burgers with shocks (the `burgers1d-shocks` preset: periodic,
# 256 points, ν log-uniform in [0.001, 0.003], Δt = 0.01 between frames). One-step FNO (`jaws-fno-burgers1d`,
# residual, variance head, heteroscedastic likelihood) trained with (a) no Jacobian penalty, (b) the global
# penalty, (c) the JAWS penalty, each with unroll horizon K ∈ {1, 2, 4, 16}, 3 seeds, the same number of
# optimiser steps. Rollouts of 500 steps from the unseen initial conditions of the test split and from a second
# dataset at ν = 0.0005 (out of distribution). Reports every rollout metric, the high-wavenumber energy ratio,
# peak training memory (RSS) and training time, with medians and [min, max] ranges over the 3 seeds, in
# $OUT/results.md (docs/results.md records a run).
#
#   benches/experiments/jaws.sh                                  # defaults below
#   STEPS=300 KS="1 4" SEEDS="0" OUT=/tmp/jaws benches/experiments/jaws.sh
#   TRAIN=0 ... benches/experiments/jaws.sh                     # only report the runs that exist
#
# Re-running continues: datasets are reused, finished runs and reports are skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
ANSATZ=${ANSATZ:-target/release/ansatz}
OUT=${OUT:-experiments/jaws}
STEPS=${STEPS:-500}
SEEDS=${SEEDS:-0 1 2}
KS=${KS:-1 2 4 16}
KINDS=${KINDS:-none global jaws}
SAMPLES=${SAMPLES:-48}
ROLLOUT=${ROLLOUT:-500}
WIDTH=${WIDTH:-24}
BATCH=${BATCH:-8}
BETA=${BETA:-1.0}
[ -x "$ANSATZ" ] || cargo build --release --bin ansatz
[ -x /usr/bin/time ] || { echo "GNU time is needed for peak memory: apt-get install time" >&2; exit 1; }
mkdir -p "$OUT"

DATA="$OUT/burgers1d-shocks.nc"
OOD="$OUT/burgers1d-shocks-nu0.0005.nc"
[ -f "$DATA" ] || "$ANSATZ" generate burgers1d-shocks --samples "$SAMPLES" --seed 0 --out "$DATA"
[ -f "$OOD" ] || "$ANSATZ" generate burgers1d-shocks --samples 8 --seed 1000 --set nu=0.0005 --out "$OOD"

for kind in $KINDS; do
  for k in $KS; do
    for seed in $SEEDS; do
      name="$kind-k$k-seed$seed"
      run="$OUT/runs/$name"
      if [ ! -f "$run/summary.json" ]; then
        [ "${TRAIN:-1}" = 1 ] || continue
        resume=""; [ -f "$run/checkpoint.ckpt" ] && resume="--resume"
        force=""; [ -z "$resume" ] && [ -d "$run" ] && force="--force"
        mkdir -p "$OUT/time"
        /usr/bin/time -f "%M %e" -o "$OUT/time/$name.$(date +%s)" \
          "$ANSATZ" train jaws-fno-burgers1d --data "$DATA" --out "$run" $resume $force \
            --set seed=$seed --set data.horizon=$k --set regularisation.kind=$kind \
            --set regularisation.beta=$BETA --set model.width=$WIDTH --set training.batch=$BATCH \
            --set training.steps=$STEPS --set training.validate_every=$STEPS --set schedule.warmup_steps=$((STEPS / 20))
      fi
      for set in test ood; do
        report="$OUT/reports-$set/$name"
        data=$DATA; [ $set = ood ] && data=$OOD
        [ -f "$report/summary.json" ] || "$ANSATZ" rollout --run "$run" --data "$data" --steps "$ROLLOUT" \
          --out "$report" --force --no-baseline
      done
    done
  done
done

PYTHON=${PYTHON:-$( [ -x target/pyenv/bin/python ] && echo target/pyenv/bin/python || echo python3 )}
"$PYTHON" - "$OUT" "$STEPS" "$SEEDS" "$KS" "$KINDS" "$ROLLOUT" <<'PY'
import json, sys, math, pathlib, statistics
out, steps, seeds, ks, kinds, horizon = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), sys.argv[5].split(), int(sys.argv[6])

def interval(v):
    # median over seeds [min, max]: with 3 seeds and rollouts that may blow up, a t-interval of the mean says
    # little; the range over seeds is the honest interval
    v = [x for x in v if x is not None and math.isfinite(x)]
    if not v:
        return "n/a"
    m = statistics.median(v)
    if len(v) == 1:
        return f"{m:.3g}"
    return f"{m:.3g} [{min(v):.3g}, {max(v):.3g}]"

def resources(name):
    # peak RSS (MiB) over the invocations of the run, their wall seconds summed
    files = sorted((out / "time").glob(f"{name}.*"))
    rss, sec = [], 0.0
    for f in files:
        parts = f.read_text().split()
        if len(parts) >= 2:
            rss.append(int(parts[-2]) / 1024)
            sec += float(parts[-1])
    return (max(rss) if rss else None), (sec if files else None)

def at(summary, step):
    return next((s["median"] for t, s in summary["nrmse_at"] if t == step), None)

metrics = [
    ("nRMSE at step 1", lambda s: at(s, 1)),
    ("nRMSE at step 100", lambda s: at(s, 100)),
    (f"nRMSE at step {horizon}", lambda s: at(s, horizon)),
    ("nRMSE, mean over steps", lambda s: s["nrmse_mean"]["median"]),
    ("geometric-mean nRMSE, steps 1–100", lambda s: s["gmean_nrmse_100"]["median"]),
    ("correlation time ρ<0.9 (steps)", lambda s: s["correlation_time_09"]["median"]),
    ("correlation time ρ<0.8 (steps)", lambda s: s["correlation_time_08"]["median"]),
    ("correlation time ρ<0.5 (steps)", lambda s: s["correlation_time_05"]["median"]),
    ("valid-prediction time (steps)", lambda s: s["valid_prediction_steps"]["median"]),
    ("blow-up rate (fraction of rollouts)", lambda s: s["blow_up_rate"]),
    ("max drift of ∫u", lambda s: s["mass_drift_max"][0][1]["median"]),
    ("max drift of ∫u²", lambda s: s["energy_drift_max"]["median"]),
    ("H1 nRMSE, last step", lambda s: s["h1_nrmse_last"]["median"]),
    ("band error k<4, last step", lambda s: s["band_errors_last"][0]["median"]),
    ("band error 4≤k<12, last step", lambda s: s["band_errors_last"][1]["median"]),
    ("band error k≥12, last step", lambda s: s["band_errors_last"][2]["median"]),
    ("high-k energy ratio (k≥12), last step", lambda s: s["high_k_energy_ratio_last"]["median"]),
    ("log-spectrum error, last step", lambda s: s["log_spectrum_error_last"]["median"]),
    ("coverage |err|≤2σ, step 1", lambda s: s.get("uncertainty", {}).get("coverage_2sigma", [None])[0]),
    ("ρ(σ, |err|), step 1", lambda s: s.get("uncertainty", {}).get("correlation", [{"mean": None}])[0]["mean"]),
]
configs = [(kind, k) for kind in kinds for k in ks]
lines = [f"# JAWS study: 1D viscous Burgers with shocks, FNO, {steps} training steps, seeds {' '.join(seeds)}", "",
         f"Median over seeds [min, max over seeds]; each seed's value is the median over the held-out trajectories of a {horizon}-step rollout (the blow-up rate and the σ rows: over all values). Rollouts that never cross a correlation or error threshold count as {horizon} steps.", ""]
for set_name, title in [("test", "unseen initial conditions (ν in the training range)"), ("ood", "out of distribution, ν = 0.0005")]:
    lines += [f"## {title}", "", "| metric | " + " | ".join(f"{kind} K={k}" for kind, k in configs) + " |",
              "|---|" + "---|" * len(configs)]
    table = {}
    for kind, k in configs:
        table[(kind, k)] = []
        for seed in seeds:
            p = out / f"reports-{set_name}/{kind}-k{k}-seed{seed}/summary.json"
            if p.exists():
                table[(kind, k)].append(json.load(open(p)))
    for label, f in metrics:
        lines.append(f"| {label} | " + " | ".join(interval([f(s) for s in table[c]]) for c in configs) + " |")
    lines.append("")
lines += ["## Training cost", "", "| metric | " + " | ".join(f"{kind} K={k}" for kind, k in configs) + " |", "|---|" + "---|" * len(configs)]
res = {c: [resources(f"{c[0]}-k{c[1]}-seed{s}") for s in seeds] for c in configs}

def loop(name):
    # the training loop's own numbers: resident memory when it started and at its peak, seconds of its steps
    p = out / f"runs/{name}/summary.json"
    if not p.exists():
        return None, None, None
    s = json.load(open(p))
    rows = (out / f"runs/{name}/metrics.csv").read_text().splitlines()[1:]
    seconds = sum(float(r.split(",")[7]) for r in rows)
    start, peak = s.get("rss_start_mib"), s.get("peak_rss_mib")
    return peak, (peak - start if peak is not None and start is not None else None), seconds

lp = {c: [loop(f"{c[0]}-k{c[1]}-seed{s}") for s in seeds] for c in configs}
lines.append("| process peak RSS (MiB, GNU time) | " + " | ".join(interval([r[0] for r in res[c]]) for c in configs) + " |")
lines.append("| training-loop peak RSS (MiB) | " + " | ".join(interval([r[0] for r in lp[c]]) for c in configs) + " |")
lines.append("| loop peak above its start (MiB) | " + " | ".join(interval([r[1] for r in lp[c]]) for c in configs) + " |")
lines.append("| process wall time (s) | " + " | ".join(interval([r[1] for r in res[c]]) for c in configs) + " |")
lines.append("| training-step time (s) | " + " | ".join(interval([r[2] for r in lp[c]]) for c in configs) + " |")
lines += ["", "Process peak: the whole `ansatz train` (data loading included). Loop peak: from the start of the training loop, after the data-loading buffers are returned to the kernel (`TrainSummary::peak_rss_mib`)."]
(out / "results.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
