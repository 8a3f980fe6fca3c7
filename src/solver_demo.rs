//! `ansatz solver-demo`: the differentiable solver on its own. Solves 2D coupled viscous Burgers for a small batch of smooth
//! initial conditions, then differentiates the final kinetic energy with respect to ν and the initial state
//! through the whole trajectory, and prints a summary with timings.

use std::f64::consts::PI;
use std::time::Instant;

use ansatz_solvers::fv::{Boundary, FvBurgers2d};
use ansatz_solvers::integrate::{TrajectoryLoss, works};
use ansatz_solvers::prelude::*;
use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;

use crate::schemes::{FluxArg, LimiterArg, Scheme, WenoArg};

/// Options of `ansatz solver-demo`.
#[derive(Debug, Args)]
pub struct SolverDemoArgs {
    /// Spatial discretisation.
    #[arg(long, value_enum, default_value_t = Scheme::Spectral)]
    pub scheme: Scheme,
    /// Grid points per axis (the domain is [0, 2π)², periodic).
    #[arg(long, default_value_t = 256)]
    pub n: usize,
    /// Number of initial conditions, solved in parallel.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Viscosity ν.
    #[arg(long, default_value_t = 0.01)]
    pub nu: f64,
    /// Final time.
    #[arg(long, default_value_t = 2.0)]
    pub t_end: f64,
    /// CFL number for the time step (advective and diffusive limits).
    #[arg(long, default_value_t = 0.4)]
    pub cfl: f64,
    /// MUSCL slope limiter (fv-muscl).
    #[arg(long, value_enum, default_value_t = LimiterArg::VanLeer)]
    pub limiter: LimiterArg,
    /// WENO5 weights (fv-weno5).
    #[arg(long, value_enum, default_value_t = WenoArg::Z)]
    pub weno: WenoArg,
    /// Numerical flux (finite-volume schemes).
    #[arg(long, value_enum, default_value_t = FluxArg::Rusanov)]
    pub flux: FluxArg,
    /// Skip the gradient through the trajectory.
    #[arg(long)]
    pub no_gradient: bool,
}

/// The default initial conditions: smooth, divergent and rotational parts, a phase shift per sample. Layout
/// `(batch, 2·n·n)` with u then v, on cell centres (finite volume) or collocation points (spectral).
fn initial_conditions(batch: usize, n: usize, cell_centred: bool) -> Array2<f64> {
    let m = n * n;
    let off = if cell_centred { 0.5 } else { 0.0 };
    Array2::from_shape_fn((batch, 2 * m), |(b, k)| {
        let (c, j, i) = (k / m, (k % m) / n, k % n);
        let x = 2.0 * PI * (i as f64 + off) / n as f64;
        let y = 2.0 * PI * (j as f64 + off) / n as f64;
        let p = 0.7 * b as f64;
        if c == 0 {
            (x + p).sin() * y.cos() + 0.3 * (2.0 * y).sin()
        } else {
            -(x).cos() * (y + p).sin() + 0.3 * (x + y).cos()
        }
    })
}

/// ½ ∫ |u|² over the cell or point volume, per sample.
struct FinalEnergy {
    steps: usize,
    cell: f64,
}

impl TrajectoryLoss for FinalEnergy {
    fn term(&self, _: usize, step: usize, u: &[f64], grad: &mut [f64]) -> f64 {
        if step != self.steps {
            return 0.0;
        }
        for (g, x) in grad.iter_mut().zip(u) {
            *g += self.cell * x;
        }
        0.5 * self.cell * u.iter().map(|x| x * x).sum::<f64>()
    }
}

pub fn run(a: &SolverDemoArgs) -> Result<()> {
    if a.n < 8 || a.batch == 0 {
        bail!(crate::UsageError("--n must be at least 8 and --batch at least 1".into()));
    }
    if !(a.t_end.is_finite() && a.t_end > 0.0 && a.cfl.is_finite() && a.cfl > 0.0) {
        bail!(crate::UsageError("--t-end and --cfl must be positive".into()));
    }
    let length = [2.0 * PI; 2];
    let u0 = initial_conditions(a.batch, a.n, a.scheme != Scheme::Spectral);
    let umax = u0.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    let h = length[0] / a.n as f64;
    println!("Ansatz {} solver demo: 2D coupled viscous Burgers", env!("CARGO_PKG_VERSION"));
    match a.scheme.reconstruction(a.limiter, a.weno) {
        Some(recon) => {
            let rhs = FvBurgers2d::new(
                a.n,
                a.n,
                length,
                a.nu,
                [Boundary::Periodic; 2],
                [Boundary::Periodic; 2],
                recon,
                a.flux.flux(),
            )
            .map_err(|e| crate::UsageError(e.to_string()))?;
            let dt0 = u0.rows().into_iter().map(|r| rhs.stable_dt(&r.to_vec(), a.cfl)).fold(f64::INFINITY, f64::min);
            let steps = (a.t_end / dt0).ceil() as usize;
            let dt = a.t_end / steps as f64;
            let label = format!("{} ({recon:?}, {:?} flux), SSP-RK3", a.scheme.name(), a.flux.flux());
            let s = ExplicitRk::ssp_rk3(rhs.clone(), dt).map_err(|e| crate::UsageError(e.to_string()))?;
            let rebuild = |nu: f64| -> Result<_> { Ok(ExplicitRk::ssp_rk3(rhs.with_nu(nu)?, dt)?) };
            drive(a, &s, &rebuild, &label, u0, steps, h * h)
        }
        None => {
            // ETDRK4 treats diffusion exactly; only advection limits the step
            let steps = (a.t_end * umax / (a.cfl * h)).ceil().max(1.0) as usize;
            let dt = a.t_end / steps as f64;
            let pde = SpectralBurgers2d::new(a.n, a.n, length).map_err(|e| crate::UsageError(e.to_string()))?;
            let s = Etdrk4::new(pde.clone(), a.nu, dt).map_err(|e| crate::UsageError(e.to_string()))?;
            let rebuild = |nu: f64| -> Result<_> { Ok(Etdrk4::new(pde.clone(), nu, dt)?) };
            drive(a, &s, &rebuild, "spectral (2/3 dealiasing), ETDRK4", u0, steps, h * h)
        }
    }
}

/// Builds the same stepper with another viscosity (for the finite-difference check of dE/dν).
type Rebuild<'a, S> = &'a dyn Fn(f64) -> Result<S>;

fn drive<S: Stepper>(
    a: &SolverDemoArgs,
    s: &S,
    rebuild: Rebuild<S>,
    label: &str,
    u0: Array2<f64>,
    steps: usize,
    cell: f64,
) -> Result<()> {
    let energy = |u: &Array2<f64>| -> Vec<f64> {
        u.rows().into_iter().map(|r| 0.5 * cell * r.iter().map(|x| x * x).sum::<f64>()).collect()
    };
    println!("  grid {n} × {n} on [0, 2π)², periodic; ν = {}; batch {}", a.nu, a.batch, n = a.n);
    println!("  scheme {label}; dt = {:.3e}, {steps} steps to t = {}", s.dt(), a.t_end);
    let e0 = energy(&u0);
    let mut u = u0.clone();
    let mut ws = works(s, a.batch);
    let chunk = (steps / 50).max(1);
    let bar = ProgressBar::new(steps as u64).with_style(
        ProgressStyle::with_template("  solving  [{bar:40}] {pos}/{len} steps, {per_sec}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let t = Instant::now();
    let mut done = 0;
    while done < steps {
        let k = chunk.min(steps - done);
        advance(s, u.view_mut(), k, &mut ws)?;
        done += k;
        bar.set_position(done as u64);
        if let Some((b, _)) = u.rows().into_iter().enumerate().find(|(_, r)| r.iter().any(|x| !x.is_finite())) {
            bar.abandon();
            bail!(
                "the solution of sample {b} became non-finite by step {done} (t = {:.4}); reduce --cfl or raise --n",
                done as f64 * s.dt()
            );
        }
    }
    bar.finish_and_clear();
    let wall = t.elapsed().as_secs_f64();
    let e1 = energy(&u);
    let umax = u.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    println!(
        "  solved in {wall:.2} s: {:.0} steps/s for the batch, {:.0} sample-steps/s",
        steps as f64 / wall,
        (steps * a.batch) as f64 / wall
    );
    for b in 0..a.batch {
        println!(
            "    sample {b}: kinetic energy {:.5} -> {:.5} ({:+.2}%)",
            e0[b],
            e1[b],
            100.0 * (e1[b] / e0[b] - 1.0)
        );
    }
    println!("  max |u| at t = {}: {umax:.4}", a.t_end);
    if a.no_gradient {
        return Ok(());
    }
    let t = Instant::now();
    let g = gradient(s, u0.view(), steps, &FinalEnergy { steps, cell }, &Checkpointed::sqrt())?;
    let wall_g = t.elapsed().as_secs_f64();
    println!(
        "  gradient of the final energy through all {steps} steps (discrete adjoint, √T checkpointing): {wall_g:.2} s, {} states held per sample",
        g.peak_states
    );
    for b in 0..a.batch {
        let norm = g.du0.row(b).iter().map(|x| x * x).sum::<f64>().sqrt();
        println!("    sample {b}: dE/dν = {:+.5e}, ‖dE/du0‖ = {norm:.5e}", g.dnu[b]);
    }
    // the adjoint against a central difference in ν (two more solves)
    let eps = 1e-4 * a.nu.max(1e-3);
    let mut e = [vec![], vec![]];
    for (k, sign) in [1.0, -1.0].into_iter().enumerate() {
        let sk = rebuild(a.nu + sign * eps)?;
        let mut u = u0.clone();
        advance(&sk, u.view_mut(), steps, &mut ws)?;
        e[k] = energy(&u);
    }
    let worst = (0..a.batch)
        .map(|b| ((e[0][b] - e[1][b]) / (2.0 * eps) - g.dnu[b]).abs() / g.dnu[b].abs().max(1e-300))
        .fold(0.0, f64::max);
    println!("  check: dE/dν by the adjoint agrees with a central difference to {worst:.1e} (relative, worst sample)");
    Ok(())
}
