//! INSR: a SIREN integrated in time by optimising its weights at every step. Advection of a Gaussian is
//! tracked far better than by leaving the field in place, the solve is a pure function of its setup, and a solve
//! resumed from the weights of its last completed step ends bit for bit where an uninterrupted one does.

use ansatz_datasets::reader::Dataset;
use ansatz_training::insr::{Backtrace, InsrPde, InsrRun, InsrSettings, solve, weights_dir};
use std::path::Path;

fn tiny() -> InsrRun {
    InsrRun {
        pde: InsrPde::Advection1d { speed: 0.25, lower: -2.0, upper: 2.0, center: -1.5, width: 0.1 },
        settings: InsrSettings {
            width: 16,
            hidden: 1,
            samples: 256,
            max_iters: 400,
            patience: 40,
            lr: 1e-3,
            ..Default::default()
        },
        dt: 0.05,
        t_end: 0.2,
        save_every: 0.1,
        grid: 200,
    }
}

fn field(path: &Path) -> Vec<f64> {
    let ds = Dataset::open(path).unwrap();
    ds.read("u", 0..1, 0..ds.times.len()).unwrap().iter().copied().collect()
}

#[test]
fn advection_is_tracked_and_solves_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny();
    let a = dir.path().join("a.nc");
    let s = solve(&run, &a, false, false, &mut |_| {}).unwrap();
    let rel = s.exact_rel_l2.unwrap();
    // leaving the Gaussian where it started is off by 0.05 (half its width) at t = 0.2
    let still: f64 = {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..200 {
            let x = -2.0 + (i as f64 + 0.5) * 0.02;
            for t in [0.0, 0.1, 0.2] {
                let e = run.pde.exact(&[x], t).unwrap()[0];
                num += (run.pde.initial(&[x])[0] - e).powi(2);
                den += e * e;
            }
        }
        (num / den).sqrt()
    };
    eprintln!("INSR relative L2 {rel:.3e}, the field left in place {still:.3e}");
    assert!(rel < 0.1 * still, "INSR relative L2 {rel} against {still} for no motion");
    assert_eq!(s.steps.len(), 5, "the initial fit and 4 steps");
    // every step drives its midpoint residual (mean square) below 1e-3 (about 2e-4 measured); at the warm start
    // the residual is the whole advective term a u_x of the previous field, of order a / width = 2.5
    let losses: Vec<f64> = s.steps[1..].iter().map(|st| st.loss).collect();
    eprintln!("final loss of each step {losses:?}");
    assert!(losses.iter().all(|l| *l < 1e-3), "step losses {losses:?}");

    // the same setup gives the same bits
    let b = dir.path().join("b.nc");
    solve(&run, &b, false, false, &mut |_| {}).unwrap();
    assert_eq!(field(&a), field(&b));

    // interrupted after step 2 (the later steps' weights and the output lost): resumed, the same bits
    for step in 3..=4 {
        std::fs::remove_file(weights_dir(&b).join(format!("step-{step:06}.f32"))).unwrap();
    }
    std::fs::remove_file(&b).unwrap();
    let r = solve(&run, &b, true, false, &mut |_| {}).unwrap();
    assert_eq!((r.resumed, r.steps.len()), (3, 2));
    assert_eq!(field(&a), field(&b), "resumed solve");

    // refusals: an existing output, a resume under another setup, a bad schedule
    let err = solve(&run, &a, false, false, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("exists"), "{err}");
    std::fs::remove_file(&b).unwrap();
    let mut other = run.clone();
    other.settings.width = 8;
    let err = solve(&other, &b, true, false, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("another setup"), "{err}");
    let mut bad = run.clone();
    bad.save_every = 0.07;
    let err = solve(&bad, &dir.path().join("c.nc"), false, false, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("multiple"), "{err}");
}

/// Viscous Burgers on the periodic unit interval from sin 2πx: INSR against the spectral reference solver at the
/// stored levels (the reference started half a cell over, so that its collocation points are INSR's cell
/// centres).
#[test]
fn burgers_follows_the_spectral_reference() {
    use ansatz_datasets::config::load;
    use ansatz_datasets::generate::{Setup, trajectory};
    let dir = tempfile::tempdir().unwrap();
    let n = 64;
    let run = InsrRun {
        pde: InsrPde::Burgers1d { nu: 0.01, length: 1.0, amplitude: 1.0 },
        settings: InsrSettings {
            width: 16,
            hidden: 1,
            samples: 256,
            max_iters: 400,
            patience: 40,
            lr: 1e-3,
            ..Default::default()
        },
        dt: 0.05,
        t_end: 0.1,
        save_every: 0.05,
        grid: n,
    };
    let out = dir.path().join("b.nc");
    solve(&run, &out, false, false, &mut |_| {}).unwrap();
    let insr = field(&out);
    let sets: Vec<String> = [
        format!("grid.n={n}"),
        "scheme.name=\"spectral\"".into(),
        "time.t_end=0.1".into(),
        "time.save_every=0.05".into(),
    ]
    .into_iter()
    .collect();
    let spec = load("burgers1d", None, &sets, Some(1), Some(0)).unwrap();
    let h = 1.0 / n as f64;
    let u0: Vec<f64> = (0..n).map(|i| (2.0 * std::f64::consts::PI * (i as f64 * h + h / 2.0)).sin()).collect();
    let reference = trajectory(&Setup::of(&spec), &u0, 0.01, 0).unwrap().data;
    assert_eq!(reference.len(), insr.len());
    let rel = |a: &[f64], b: &[f64]| {
        let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        (num / b.iter().map(|y| y * y).sum::<f64>()).sqrt()
    };
    let last = 2 * n..3 * n;
    let err = rel(&insr[last.clone()], &reference[last.clone()]);
    let still = rel(&reference[0..n], &reference[last.clone()]);
    eprintln!("Burgers at t = 0.1: INSR relative L2 {err:.3e}, the initial field {still:.3e}");
    assert!(err < 0.2 * still, "INSR {err} against {still} for no motion");
}

/// The Taylor–Green vortex is a steady solution of the inviscid equations: two steps of the three-stage fluid
/// integrator keep it (relative L2 about 3e-2) and its kinetic energy (about 7e-3). Without the pressure
/// projection the semi-Lagrangian step alone moves the field by about Δt |(u·∇)u| / |u| ≈ 5% per step.
#[test]
fn the_taylor_green_vortex_stays_put() {
    let dir = tempfile::tempdir().unwrap();
    let run = InsrRun {
        pde: InsrPde::Euler2d { backtrace: Backtrace::Midpoint },
        settings: InsrSettings {
            width: 24,
            hidden: 2,
            samples: 512,
            max_iters: 1000,
            patience: 80,
            lr: 1e-3,
            ..Default::default()
        },
        dt: 0.05,
        t_end: 0.1,
        save_every: 0.05,
        grid: 16,
    };
    let out = dir.path().join("tg.nc");
    let s = solve(&run, &out, false, false, &mut |_| {}).unwrap();
    let (rel, drift) = (s.exact_rel_l2.unwrap(), s.energy_drift.unwrap());
    eprintln!("Taylor–Green, 2 steps: relative L2 {rel:.3e}, kinetic-energy change {drift:.3e}");
    assert_eq!(s.steps[1].stage_losses.len(), 3, "advection, pressure, projection");
    assert!(rel < 0.06, "relative L2 {rel}");
    assert!(drift < 0.02, "kinetic energy changed by {drift}");
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.fields, ["u", "v", "p"]);
    assert_eq!((ds.x.len(), ds.y.as_ref().map(Vec::len), ds.times.len()), (16, Some(16), 3));
}

/// Quasi-static elasticity (ρ = 0: a step is the static equilibrium): a strip clamped on the left (a penalty of
/// weight 100) and pulled on the right end. The stretch of the INSR field along the last column of cells against
/// our staggered finite-volume solver on the same cells.
#[test]
fn a_quasi_static_stretch_matches_the_finite_volume_solver() {
    let dir = tempfile::tempdir().unwrap();
    let (lx, ly, nx) = (1.0, 0.25, 32);
    let ny = 8;
    let t = [0.05, 0.0];
    let run = InsrRun {
        pde: InsrPde::Elasticity2d {
            lx,
            ly,
            lambda: 1.0,
            mu: 1.0,
            rho: 0.0,
            traction: t,
            body: [0.0, 0.0],
            clamp_weight: 100.0,
        },
        settings: InsrSettings {
            width: 24,
            hidden: 2,
            samples: 512,
            max_iters: 3000,
            patience: 500,
            lr: 1e-4,
            ..Default::default()
        },
        dt: 1.0,
        t_end: 1.0,
        save_every: 1.0,
        grid: nx,
    };
    let out = dir.path().join("e.nc");
    solve(&run, &out, false, false, &mut |_| {}).unwrap();
    let ds = Dataset::open(&out).unwrap();
    assert_eq!((ds.x.len(), ds.y.as_ref().map(Vec::len)), (nx, Some(ny)));
    let u = ds.read("u", 0..1, 1..2).unwrap();
    let insr: f64 = (0..ny).map(|j| u[[0, 0, j, nx - 1]]).sum::<f64>() / ny as f64;

    let fv = static_stretch(lx, ly, nx, ny, t);
    eprintln!("stretch at x = {}: INSR {insr:.4e}, finite volume {fv:.4e}", lx - lx / (2.0 * nx as f64));
    assert!(fv > 0.0 && (insr - fv).abs() <= 0.05 * fv, "INSR {insr} against finite volume {fv}");
}

/// A free elastic vibration: the strip at rest, suddenly pulled by a constant traction on its right end, oscillates
/// about its static stretch. Over 20 implicit-Euler steps (which dissipate) the motion stays bounded: the stretch
/// never exceeds 2.2 times the static one (an undamped oscillation reaches 2), and the kinetic energy of the last
/// ten steps stays below the largest of the first ten.
#[test]
fn a_free_elastic_vibration_stays_bounded_over_20_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (lx, ly, nx, ny) = (1.0, 0.25, 16, 4);
    let run = InsrRun {
        pde: InsrPde::Elasticity2d {
            lx,
            ly,
            lambda: 1.0,
            mu: 1.0,
            rho: 1.0,
            traction: [0.05, 0.0],
            body: [0.0, 0.0],
            clamp_weight: 100.0,
        },
        settings: InsrSettings {
            width: 16,
            hidden: 1,
            samples: 256,
            max_iters: 500,
            patience: 100,
            lr: 1e-3,
            ..Default::default()
        },
        dt: 0.1,
        t_end: 2.0,
        save_every: 0.1,
        grid: nx,
    };
    let out = dir.path().join("v.nc");
    solve(&run, &out, false, false, &mut |_| {}).unwrap();
    let ds = Dataset::open(&out).unwrap();
    let (u, v) = (ds.read("u", 0..1, 0..21).unwrap(), ds.read("v", 0..1, 0..21).unwrap());
    let stretch: Vec<f64> = (0..21).map(|n| (0..ny).map(|j| u[[0, n, j, nx - 1]]).sum::<f64>() / ny as f64).collect();
    let cell = (lx / nx as f64) * (ly / ny as f64);
    let kinetic: Vec<f64> = (1..21)
        .map(|n| {
            let mut k = 0.0;
            for j in 0..ny {
                for i in 0..nx {
                    let (du, dv) = (u[[0, n, j, i]] - u[[0, n - 1, j, i]], v[[0, n, j, i]] - v[[0, n - 1, j, i]]);
                    k += 0.5 * (du * du + dv * dv) / (0.1 * 0.1) * cell;
                }
            }
            k
        })
        .collect();
    let fv = static_stretch(lx, ly, nx, ny, [0.05, 0.0]);
    let peak = stretch.iter().fold(0.0_f64, |m, s| m.max(s.abs()));
    let (early, late) =
        (kinetic[..10].iter().fold(0.0_f64, |m, k| m.max(*k)), kinetic[10..].iter().fold(0.0_f64, |m, k| m.max(*k)));
    let ke: Vec<String> = kinetic.iter().map(|k| format!("{k:.2e}")).collect();
    eprintln!("stretch {stretch:.5?} (static {fv:.3e}); kinetic energy {}", ke.join(" "));
    assert!(stretch.iter().all(|s| s.is_finite()) && peak <= 2.2 * fv, "peak stretch {peak} against static {fv}");
    assert!(peak >= 0.5 * fv, "the strip barely moved: {peak} against static {fv}");
    assert!(late <= early, "kinetic energy grew: largest {early:e} in steps 1–10, {late:e} in 11–20");
}

/// The mean x displacement along the last column of cells of the `lx × ly` strip (λ = μ = 1, plane strain) clamped
/// on the left and pulled by the traction `t` on the right, at static equilibrium, from our staggered
/// finite-volume solver on `nx × ny` cells.
fn static_stretch(lx: f64, ly: f64, nx: usize, ny: usize, t: [f64; 2]) -> f64 {
    use ansatz_solvers::elasticity::{ElasticSide, Elasticity2d, Model, Side};
    use ansatz_solvers::linalg::{SparseCholesky, SymbolicCholesky};
    let sides = [ElasticSide::Displacement, ElasticSide::Traction, ElasticSide::Traction, ElasticSide::Traction];
    let p =
        Elasticity2d::new(nx, ny, [lx, ly], vec![1.0; nx * ny], vec![1.0; nx * ny], Model::PlaneStrain, sides).unwrap();
    let boundary = |side: Side, _: f64, _: f64| if side == Side::Right { t } else { [0.0, 0.0] };
    let k = p.assemble();
    let mut x = p.rhs(&|_, _| [0.0, 0.0], &boundary);
    SparseCholesky::new(&SymbolicCholesky::new(&k).unwrap(), &k).unwrap().solve_in_place(&mut x);
    let (uf, _) = p.fields(&x, &boundary);
    // U on the vertical faces x = i hx, rows j: the last column of cells' centres lies between faces nx − 1 and nx
    (0..ny).map(|j| (uf[j * (nx + 1) + nx - 1] + uf[j * (nx + 1) + nx]) / 2.0).sum::<f64>() / ny as f64
}
