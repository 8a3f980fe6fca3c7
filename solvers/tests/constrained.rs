//! The expert layer of hard-constrained learning: Levenberg–Marquardt recovers known least-squares solutions,
//! the implicit gradient (full Hessian) matches central differences of re-solved problems in f64, unconverged
//! solves are reported, and bad shapes are refused.

mod common;

use ansatz_solvers::constrained::{
    Burgers2dClosure, Burgers2dRow, Closure, ExpertError, ExpertOptions, SorptionClosure, SorptionRow, expert_vjp,
    solve_expert,
};
use ansatz_solvers::sorption::SorptionConstants;
use common::*;

/// `r_p = w_p (z₀ − y_p)` or `r_p = z₀² − y_p` (one feature).
struct Simple {
    y: Vec<f64>,
    squared: bool,
}

impl Closure for Simple {
    fn features(&self) -> usize {
        1
    }
    fn rows(&self) -> usize {
        self.y.len()
    }
    fn residual(&self, row: usize, z: &[f64], grad: &mut [f64], hess: Option<&mut [f64]>) -> f64 {
        if self.squared {
            grad[0] = 2.0 * z[0];
            if let Some(h) = hess {
                h[0] = 2.0;
            }
            z[0] * z[0] - self.y[row]
        } else {
            grad[0] = 1.0;
            if let Some(h) = hess {
                h[0] = 0.0;
            }
            z[0] - self.y[row]
        }
    }
}

fn tight() -> ExpertOptions {
    ExpertOptions { gtol: 1e-13, ftol: 0.0, max_iter: 200, ridge: 0.0 }
}

#[test]
fn lm_recovers_a_consistent_nonlinear_problem() {
    let mut rng = Lcg::new(3);
    let (rows, n) = (30, 4);
    let f = rng.vec(rows * n);
    let truth = [0.8, -0.4, 0.3, 1.1];
    let y: Vec<f64> = (0..rows).map(|p| (0..n).map(|i| f[p * n + i] * truth[i]).sum::<f64>().powi(2)).collect();
    let closure = Simple { y, squared: true };
    let mut omega: Vec<f64> = truth.iter().map(|t| t + 0.3 * rng.next()).collect();
    let report = solve_expert(&closure, &f, n, &mut omega, tight()).unwrap();
    assert!(report.converged, "{report:?}");
    let err = omega.iter().zip(&truth).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-9 && report.cost < 1e-18, "max error {err:.2e}, {report:?}");
}

#[test]
fn lm_with_a_ridge_solves_the_regularised_normal_equations() {
    let mut rng = Lcg::new(4);
    let (rows, n) = (25, 3);
    let f = rng.vec(rows * n);
    let y = rng.vec(rows);
    let ridge = 0.3;
    let closure = Simple { y: y.clone(), squared: false };
    let mut omega = vec![1.0; n];
    let report = solve_expert(&closure, &f, n, &mut omega, ExpertOptions { ridge, ..tight() }).unwrap();
    assert!(report.converged);
    // (FᵀF + ρ² I) ω = Fᵀ y, solved by hand (Gaussian elimination on 3 × 3)
    let mut a = vec![0.0; n * n];
    let mut b = vec![0.0; n];
    for p in 0..rows {
        for i in 0..n {
            b[i] += f[p * n + i] * y[p];
            for j in 0..n {
                a[i * n + j] += f[p * n + i] * f[p * n + j];
            }
        }
    }
    for i in 0..n {
        a[i * n + i] += ridge * ridge;
    }
    let exact = ansatz_solvers::implicit::dense_lu_solve(&mut a, &b, n).unwrap();
    let err = omega.iter().zip(&exact).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-12, "max error {err:.2e}");
}

/// A diffusion–sorption expert with every kind of row, random features (positive values of u) and a non-zero
/// residual at the solution.
fn sorption_expert(rng: &mut Lcg, rows: usize, n: usize) -> (SorptionClosure, Vec<f64>) {
    let kinds: Vec<SorptionRow> = (0..rows)
        .map(|p| match p % 5 {
            0 => SorptionRow::Initial,
            1 => SorptionRow::Inflow,
            2 => SorptionRow::Outflow,
            _ => SorptionRow::Pde,
        })
        .collect();
    let targets: Vec<f64> = kinds
        .iter()
        .map(|k| match k {
            SorptionRow::Initial => 0.1 + 0.05 * rng.next(),
            SorptionRow::Inflow => 1.0,
            _ => 0.0,
        })
        .collect();
    let weights: Vec<f64> = (0..rows).map(|_| 1.0 + 0.5 * rng.next()).collect();
    let mut f = vec![0.0; rows * 3 * n];
    for p in 0..rows {
        for i in 0..n {
            f[(p * 3) * n + i] = 0.6 + 0.4 * rng.next(); // u: positive basis values
            f[(p * 3 + 1) * n + i] = rng.next(); // u_τ (or u_x)
            f[(p * 3 + 2) * n + i] = 3.0 * rng.next(); // u_xx
        }
    }
    let closure =
        SorptionClosure { constants: SorptionConstants::pdebench(), time_scale: 500.0, kinds, weights, targets };
    (closure, f)
}

#[test]
fn the_implicit_gradient_matches_central_differences() {
    let mut rng = Lcg::new(5);
    let (rows, n) = (40, 5);
    let (closure, f) = sorption_expert(&mut rng, rows, n);
    let opts = ExpertOptions { ridge: 1e-4, ..tight() };
    let solve = |f: &[f64]| {
        let mut omega = vec![0.5 / n as f64; n];
        let report = solve_expert(&closure, f, n, &mut omega, opts).unwrap();
        (omega, report)
    };
    let (omega, report) = solve(&f);
    assert!(report.converged && report.cost > 1e-3, "a solved problem with a non-zero residual: {report:?}");
    // every u at the solution is positive (away from the retardation's kink)
    for p in 0..rows {
        let u: f64 = (0..n).map(|i| f[(p * 3) * n + i] * omega[i]).sum();
        assert!(u > 0.0, "row {p}: u = {u}");
    }
    let omega_bar = rng.vec(n);
    let mut fbar = vec![0.0; f.len()];
    expert_vjp(&closure, &f, n, &omega, opts.ridge, &omega_bar, &mut fbar).unwrap();
    for trial in 0..3 {
        let df = rng.vec(f.len());
        let h = 1e-6;
        let shifted = |s: f64| f.iter().zip(&df).map(|(a, b)| a + s * b).collect::<Vec<_>>();
        let (op, _) = solve(&shifted(h));
        let (om, _) = solve(&shifted(-h));
        let fd: f64 = (0..n).map(|i| omega_bar[i] * (op[i] - om[i]) / (2.0 * h)).sum();
        let ad = dot(&fbar, &df);
        assert!(
            (fd - ad).abs() <= 1e-6 * fd.abs().max(1e-3),
            "trial {trial}: implicit {ad} vs central difference {fd}"
        );
    }
}

#[test]
fn an_unconverged_solve_is_reported_not_hidden() {
    let mut rng = Lcg::new(6);
    let (closure, f) = sorption_expert(&mut rng, 40, 5);
    let mut omega = vec![1.0; 5];
    let short =
        solve_expert(&closure, &f, 5, &mut omega, ExpertOptions { max_iter: 1, ..ExpertOptions::default() }).unwrap();
    assert!(!short.converged && short.iterations == 1, "{short:?}");
    let mut omega = vec![1.0; 5];
    let full = solve_expert(&closure, &f, 5, &mut omega, ExpertOptions::default()).unwrap();
    assert!(full.converged && full.cost < short.cost, "{full:?} vs {short:?}");
}

#[test]
fn bad_shapes_and_values_are_refused() {
    let closure = Simple { y: vec![1.0; 4], squared: false };
    let mut omega = vec![0.0; 2];
    let e = solve_expert(&closure, &[0.0; 7], 2, &mut omega, ExpertOptions::default()).unwrap_err();
    assert!(matches!(e, ExpertError::Shape { expected: 8, got: 7, .. }), "{e}");
    let mut f = vec![1.0; 8];
    f[3] = f64::NAN;
    assert_eq!(
        solve_expert(&closure, &f, 2, &mut omega, ExpertOptions::default()).unwrap_err(),
        ExpertError::NonFinite
    );
    let mut out = vec![0.0; 8];
    let e = expert_vjp(&closure, &[1.0; 8], 2, &[0.0; 2], 0.0, &[1.0; 3], &mut out).unwrap_err();
    assert!(e.to_string().contains("cotangent"), "{e}");
}

/// The 2D Burgers rows: the closure's gradient and Hessian against central differences of its residual, and the
/// implicit gradient of an expert with momentum and initial rows against re-solved problems.
#[test]
fn burgers2d_rows_have_exact_derivatives_and_implicit_gradient() {
    let mut rng = Lcg::new(8);
    let rows = 36;
    let kinds: Vec<Burgers2dRow> = (0..rows)
        .map(|p| match p % 3 {
            0 => Burgers2dRow::MomentumX,
            1 => Burgers2dRow::MomentumY,
            _ => Burgers2dRow::Initial,
        })
        .collect();
    let closure = Burgers2dClosure {
        nu: 0.01,
        time_scale: 0.5,
        targets: (0..rows).map(|_| 0.3 * rng.next()).collect(),
        weights: (0..rows).map(|_| 1.0 + 0.3 * rng.next()).collect(),
        kinds,
    };
    // the closure's derivatives in z
    let z = rng.vec(6);
    let (mut g, mut h) = (vec![0.0; 6], vec![0.0; 36]);
    for row in 0..2 {
        closure.residual(row, &z, &mut g, Some(&mut h));
        let eps = 1e-6;
        for i in 0..6 {
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[i] += eps;
            zm[i] -= eps;
            let (mut gp, mut gm) = (vec![0.0; 6], vec![0.0; 6]);
            let fd =
                (closure.residual(row, &zp, &mut gp, None) - closure.residual(row, &zm, &mut gm, None)) / (2.0 * eps);
            assert!((fd - g[i]).abs() < 1e-8, "row {row}, ∂r/∂z{i}: {} vs {fd}", g[i]);
            for j in 0..6 {
                let fd2 = (gp[j] - gm[j]) / (2.0 * eps);
                assert!((fd2 - h[i * 6 + j]).abs() < 1e-6, "row {row}, ∂²r/∂z{i}∂z{j}: {} vs {fd2}", h[i * 6 + j]);
            }
        }
    }
    // the implicit gradient of an expert
    let n = 4;
    let f: Vec<f64> = (0..rows * 6 * n).map(|_| rng.next()).collect();
    let opts = ExpertOptions { ridge: 1e-3, ..tight() };
    let solve = |f: &[f64]| {
        let mut omega = vec![0.1; n];
        let report = solve_expert(&closure, f, n, &mut omega, opts).unwrap();
        (omega, report)
    };
    let (omega, report) = solve(&f);
    assert!(report.converged && report.cost > 1e-4, "{report:?}");
    let omega_bar = rng.vec(n);
    let mut fbar = vec![0.0; f.len()];
    expert_vjp(&closure, &f, n, &omega, opts.ridge, &omega_bar, &mut fbar).unwrap();
    let df = rng.vec(f.len());
    let h = 1e-6;
    let shifted = |s: f64| f.iter().zip(&df).map(|(a, b)| a + s * b).collect::<Vec<_>>();
    let (op, om) = (solve(&shifted(h)).0, solve(&shifted(-h)).0);
    let fd: f64 = (0..n).map(|i| omega_bar[i] * (op[i] - om[i]) / (2.0 * h)).sum();
    let ad = dot(&fbar, &df);
    assert!((fd - ad).abs() <= 1e-6 * fd.abs().max(1e-3), "implicit {ad} vs central difference {fd}");
}
