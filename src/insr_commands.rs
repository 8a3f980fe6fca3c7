//! `ansatz solve PDE --method insr`: the INSR integrator on the command line, with a progress bar per time step.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::data_commands::SolveArgs;
use crate::train_commands::{train_error, usage};
use ansatz_training::insr::{Backtrace, InsrPde, InsrRun, InsrSettings, Progress, solve, weights_dir};

const KEYS: &str = "width, hidden, omega, lr, samples, max_iters, patience, lr_factor, lr_floor, boundary_weight, \
                    seed, dt, n; advection1d: a, lower, upper, center, ic_width; burgers1d: nu, length, amplitude; elasticity2d: lx, \
                    ly, lambda, mu, rho, tx, ty, bx, by, clamp_weight; euler2d: backtrace (midpoint or euler)";

/// The run of `a`: defaults of the reference setups, then `--set`.
fn run_of(a: &SolveArgs) -> Result<InsrRun> {
    let mut settings = InsrSettings::default();
    let mut pde = match a.pde.as_str() {
        // the reference's 1D advection: [−2, 2], a = 0.25, a Gaussian of width 0.1 at −1.5
        "advection1d" => InsrPde::Advection1d { speed: 0.25, lower: -2.0, upper: 2.0, center: -1.5, width: 0.1 },
        "burgers1d" => InsrPde::Burgers1d { nu: 0.01, length: 1.0, amplitude: 1.0 },
        // the reference's Taylor–Green vortex in [−1, 1]²
        "euler2d" => InsrPde::Euler2d { backtrace: Backtrace::Midpoint },
        // a strip 1 × 0.25, clamped on the left (penalty weight 100), pulled on the right end
        "elasticity2d" => InsrPde::Elasticity2d {
            lx: 1.0,
            ly: 0.25,
            lambda: 1.0,
            mu: 1.0,
            rho: 1.0,
            traction: [0.05, 0.0],
            body: [0.0, 0.0],
            clamp_weight: 100.0,
        },
        other => {
            return Err(usage(format!(
                "--method insr: unknown PDE '{other}' (advection1d, burgers1d, euler2d, elasticity2d)"
            )));
        }
    };
    if matches!(pde, InsrPde::Euler2d { .. } | InsrPde::Elasticity2d { .. }) {
        // 3 × 32 networks as the reference; 32² points per iteration on a CPU (the reference draws 128²)
        settings.width = 32;
        settings.hidden = 2;
        settings.samples = 1024;
    }
    let (mut dt, mut n) = (0.05, if matches!(pde, InsrPde::Euler2d { .. }) { 64 } else { 256 });
    for item in &a.sets {
        let (k, v) = item.split_once('=').ok_or_else(|| usage(format!("--set '{item}' is not key=value")))?;
        let (k, v) = (k.trim(), v.trim());
        let num = || -> Result<f64> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| usage(format!("--set {k}: '{v}' is not a number")))
        };
        let int =
            || -> Result<usize> { v.parse::<usize>().map_err(|_| usage(format!("--set {k}: '{v}' is not a count"))) };
        match (k, &mut pde) {
            ("width", _) => settings.width = int()?,
            ("hidden", _) => settings.hidden = int()?,
            ("omega", _) => settings.omega = num()?,
            ("lr", _) => settings.lr = num()?,
            ("samples", _) => settings.samples = int()?,
            ("max_iters", _) => settings.max_iters = int()?,
            ("patience", _) => settings.patience = int()?,
            ("lr_factor", _) => settings.lr_factor = num()?,
            ("lr_floor", _) => settings.lr_floor = num()?,
            ("boundary_weight", _) => settings.boundary_weight = num()?,
            ("seed", _) => settings.seed = v.parse().map_err(|_| usage(format!("--set seed: '{v}' is not a seed")))?,
            ("dt", _) => dt = num()?,
            ("n", _) => n = int()?,
            ("a", InsrPde::Advection1d { speed, .. }) => *speed = num()?,
            ("lower", InsrPde::Advection1d { lower, .. }) => *lower = num()?,
            ("upper", InsrPde::Advection1d { upper, .. }) => *upper = num()?,
            ("center", InsrPde::Advection1d { center, .. }) => *center = num()?,
            ("ic_width", InsrPde::Advection1d { width, .. }) => *width = num()?,
            ("nu", InsrPde::Burgers1d { nu, .. }) => *nu = num()?,
            ("length", InsrPde::Burgers1d { length, .. }) => *length = num()?,
            ("amplitude", InsrPde::Burgers1d { amplitude, .. }) => *amplitude = num()?,
            ("lx", InsrPde::Elasticity2d { lx, .. }) => *lx = num()?,
            ("ly", InsrPde::Elasticity2d { ly, .. }) => *ly = num()?,
            ("lambda", InsrPde::Elasticity2d { lambda, .. }) => *lambda = num()?,
            ("mu", InsrPde::Elasticity2d { mu, .. }) => *mu = num()?,
            ("rho", InsrPde::Elasticity2d { rho, .. }) => *rho = num()?,
            ("tx", InsrPde::Elasticity2d { traction, .. }) => traction[0] = num()?,
            ("ty", InsrPde::Elasticity2d { traction, .. }) => traction[1] = num()?,
            ("bx", InsrPde::Elasticity2d { body, .. }) => body[0] = num()?,
            ("by", InsrPde::Elasticity2d { body, .. }) => body[1] = num()?,
            ("backtrace", InsrPde::Euler2d { backtrace }) => {
                *backtrace = match v {
                    "midpoint" => Backtrace::Midpoint,
                    "euler" => Backtrace::Euler,
                    _ => return Err(usage(format!("--set backtrace: '{v}' is not midpoint or euler"))),
                }
            }
            ("clamp_weight", InsrPde::Elasticity2d { clamp_weight, .. }) => *clamp_weight = num()?,
            _ => {
                return Err(usage(format!(
                    "--set: unknown key '{k}' for {} with --method insr (known: {KEYS})",
                    a.pde
                )));
            }
        }
    }
    Ok(InsrRun { pde, settings, dt, t_end: a.t_end, save_every: a.save_every, grid: n })
}

/// Runs the INSR solve of `a`.
pub fn run(a: &SolveArgs) -> Result<()> {
    if a.init.is_some() {
        return Err(usage(
            "--init: INSR starts from the PDE's initial condition (set by --set); --init is for grid solves",
        ));
    }
    let run = run_of(a)?;
    let bar = ProgressBar::new(1).with_style(
        ProgressStyle::with_template("  step {pos}/{len} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut steps_total = 0;
    let summary = solve(&run, &a.out, a.resume, a.force, &mut |p| match p {
        Progress::Step { step, steps } => {
            steps_total = steps;
            bar.set_length(steps as u64);
            bar.set_position(step as u64);
            bar.set_message(if step == 0 { "fitting the initial condition".to_string() } else { String::new() });
        }
        Progress::Iteration { iteration, cap, loss } => {
            bar.set_message(format!("iteration {iteration}/{cap}, loss {loss:.3e}"))
        }
        Progress::Done(r) => bar.suspend(|| {
            println!(
                "  step {:>4}: {:>6} iterations, loss {:.3e}, lr {:.1e}, {:.1} s",
                r.step, r.iterations, r.loss, r.lr, r.seconds
            )
        }),
        Progress::Message(m) => bar.suspend(|| println!("  {m}")),
    })
    .map_err(train_error)?;
    bar.finish_and_clear();
    println!(
        "{}: {} {} steps by INSR ({} parameters), {} resumed; weights of every step in {}",
        summary.output.display(),
        run.pde.name(),
        steps_total,
        summary.parameters,
        summary.resumed,
        weights_dir(&a.out).display()
    );
    if let (Some(mae), Some(rel)) = (summary.exact_mae, summary.exact_rel_l2) {
        println!("  against the exact solution at the stored levels: mean |error| {mae:.3e}, relative L2 {rel:.3e}");
    }
    if let Some(drift) = summary.energy_drift {
        println!("  kinetic energy on the grid: largest relative change {drift:.3e}");
    }
    Ok(())
}
