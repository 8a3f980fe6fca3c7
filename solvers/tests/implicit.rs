//! Implicit differentiation against finite differences and closed forms (f64): Poisson with respect to the
//! source and the coefficient field, ridge regression, an implicit-Euler heat step; the gradient error shrinks
//! linearly with the forward tolerance.

use ansatz_solvers::implicit::{LinearSolver, RootProblem, implicit_jvp, implicit_vjp};
use ansatz_solvers::krylov::{Tolerance, pcg};
use ansatz_solvers::poisson::{PoissonBc, PoissonFv, PoissonParameter, PoissonRoot};
use ansatz_solvers::precond::Ic0;

fn lcg(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn problem(k: Vec<f64>) -> PoissonFv {
    let bc = [PoissonBc::Dirichlet(1.0), PoissonBc::Neumann(0.5), PoissonBc::Dirichlet(0.0), PoissonBc::Neumann(0.0)];
    let fluid: Vec<bool> = (0..144).map(|c| c != 50 && c != 51).collect();
    PoissonFv::new_2d(12, 12, [1.0, 1.0], Some(k), bc, Some(fluid)).unwrap()
}

fn solve(p: &PoissonFv, f: &[f64], rtol: f64) -> Vec<f64> {
    let a = p.assemble();
    let b = p.rhs(f).unwrap();
    let mut u = vec![0.0; p.unknowns()];
    pcg(&a, &Ic0::new(&a).unwrap(), &b, &mut u, Tolerance::relative(rtol, 10_000)).unwrap();
    u
}

/// L(u) = ½ Σ (u − target)²
fn loss(u: &[f64], target: &[f64]) -> f64 {
    0.5 * u.iter().zip(target).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
}

#[test]
fn poisson_gradients_match_finite_differences() {
    let k: Vec<f64> = lcg(1, 144).iter().map(|v| 1.5 + v).collect();
    let f: Vec<f64> = lcg(2, 144).iter().map(|v| 5.0 * v).collect();
    let p = problem(k.clone());
    let u = solve(&p, &f, 1e-14);
    let target = lcg(3, p.unknowns());
    let v: Vec<f64> = u.iter().zip(&target).map(|(a, b)| a - b).collect();
    let tol = Tolerance::relative(1e-13, 10_000);
    for wrt in [PoissonParameter::Source, PoissonParameter::Coefficient] {
        let root = PoissonRoot { problem: &p, u: &u, wrt };
        let g = implicit_vjp(&root, &v, LinearSolver::Cg, tol).unwrap();
        assert!(g.info.as_ref().unwrap().reason.is_some(), "the backward solve reports its convergence");
        let dir = lcg(4, 144);
        let eps = 1e-6;
        let shifted = |s: f64| -> f64 {
            match wrt {
                PoissonParameter::Source => {
                    let fs: Vec<f64> = f.iter().zip(&dir).map(|(a, d)| a + s * d).collect();
                    loss(&solve(&p, &fs, 1e-14), &target)
                }
                PoissonParameter::Coefficient => {
                    let ks: Vec<f64> = k.iter().zip(&dir).map(|(a, d)| a + s * d).collect();
                    loss(&solve(&p.with_k(ks).unwrap(), &f, 1e-14), &target)
                }
            }
        };
        let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
        let ad = dot(&g.value, &dir);
        assert!((fd - ad).abs() <= 1e-6 * fd.abs(), "{wrt:?}: implicit {ad} vs FD {fd}");
        // the tangent agrees with the cotangent
        let t = implicit_jvp(&root, &dir, LinearSolver::Cg, tol).unwrap();
        let lhs = dot(&v, &t.value);
        assert!((lhs - ad).abs() <= 1e-9 * ad.abs(), "{wrt:?}: jvp {lhs} vs vjp {ad}");
    }
}

#[test]
fn gradient_error_shrinks_linearly_with_the_forward_tolerance() {
    let k: Vec<f64> = lcg(5, 144).iter().map(|v| 1.5 + v).collect();
    let f: Vec<f64> = lcg(6, 144).iter().map(|v| 5.0 * v).collect();
    let p = problem(k);
    let target = vec![0.0; p.unknowns()];
    let grad = |rtol: f64| {
        let u = solve(&p, &f, rtol);
        let v: Vec<f64> = u.iter().zip(&target).map(|(a, b)| a - b).collect();
        let root = PoissonRoot { problem: &p, u: &u, wrt: PoissonParameter::Coefficient };
        implicit_vjp(&root, &v, LinearSolver::Cg, Tolerance::relative(1e-14, 10_000)).unwrap().value
    };
    let exact = grad(1e-15);
    let errs: Vec<f64> = [1e-4, 1e-6, 1e-8]
        .iter()
        .map(|&t| grad(t).iter().zip(&exact).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt())
        .collect();
    for w in errs.windows(2) {
        let ratio = w[0] / w[1];
        assert!(ratio > 10.0 && ratio < 1e4, "errors {errs:?}: not linear in the forward tolerance");
    }
    let slope = (errs[0] / errs[2]).log10() / 4.0;
    assert!((slope - 1.0).abs() < 0.35, "slope {slope}, errors {errs:?}");
}

/// Ridge regression: x = argmin ½|M x − y|² + ½ λ |x|², i.e. F = (MᵀM + λI) x − Mᵀ y = 0, θ = (λ, y).
struct Ridge {
    m: Vec<f64>, // rows × cols, row-major
    rows: usize,
    cols: usize,
    lambda: f64,
    x: Vec<f64>,
}

impl Ridge {
    fn mv(&self, v: &[f64]) -> Vec<f64> {
        (0..self.rows).map(|r| (0..self.cols).map(|c| self.m[r * self.cols + c] * v[c]).sum()).collect()
    }
    fn mtv(&self, w: &[f64]) -> Vec<f64> {
        (0..self.cols).map(|c| (0..self.rows).map(|r| self.m[r * self.cols + c] * w[r]).sum()).collect()
    }
}

impl RootProblem for Ridge {
    fn n(&self) -> usize {
        self.cols
    }
    fn p(&self) -> usize {
        1 + self.rows
    }
    fn jac_x(&self, v: &[f64], out: &mut [f64]) {
        let a = self.mtv(&self.mv(v));
        for i in 0..self.cols {
            out[i] = a[i] + self.lambda * v[i];
        }
    }
    fn jac_x_t(&self, v: &[f64], out: &mut [f64]) {
        self.jac_x(v, out)
    }
    fn jac_theta(&self, t: &[f64], out: &mut [f64]) {
        let my = self.mtv(&t[1..]);
        for i in 0..self.cols {
            out[i] = t[0] * self.x[i] - my[i];
        }
    }
    fn jac_theta_t(&self, u: &[f64], out: &mut [f64]) {
        out[0] = dot(u, &self.x);
        let mu = self.mv(u);
        for r in 0..self.rows {
            out[1 + r] = -mu[r];
        }
    }
}

#[test]
fn ridge_regression_matches_its_closed_form() {
    let (rows, cols, lambda) = (9, 5, 0.3);
    let m = lcg(7, rows * cols);
    let y = lcg(8, rows);
    let mut r = Ridge { m, rows, cols, lambda, x: vec![] };
    // forward: dense solve of (MᵀM + λI) x = Mᵀ y
    let dense = |r: &Ridge| -> Vec<f64> {
        (0..cols * cols)
            .map(|k| {
                let (i, j) = (k / cols, k % cols);
                (0..rows).map(|q| r.m[q * cols + i] * r.m[q * cols + j]).sum::<f64>()
                    + if i == j { r.lambda } else { 0.0 }
            })
            .collect()
    };
    let mut a = dense(&r);
    r.x = ansatz_solvers::implicit::dense_lu_solve(&mut a, &r.mtv(&y), cols).unwrap();
    // closed form: dx/dλ = −A⁻¹ x, dx/dy = A⁻¹ Mᵀ
    let w = lcg(9, cols);
    let mut a2 = dense(&r);
    let ainv_w = ansatz_solvers::implicit::dense_lu_solve(&mut a2, &w, cols).unwrap();
    let dl = -dot(&ainv_w, &r.x);
    let dy = r.mv(&ainv_w);
    for solver in [LinearSolver::DenseLu, LinearSolver::Cg, LinearSolver::Gmres { restart: 10 }] {
        let g = implicit_vjp(&r, &w, solver, Tolerance::relative(1e-14, 1000)).unwrap();
        assert!((g.value[0] - dl).abs() < 1e-10 * dl.abs().max(1.0), "{solver:?}: dλ {} vs {dl}", g.value[0]);
        for (q, want) in dy.iter().enumerate() {
            assert!((g.value[1 + q] - want).abs() < 1e-10, "{solver:?}: dy[{q}]");
        }
    }
}

/// One implicit-Euler step of the periodic heat equation: (I − dt ν L) u1 = u0, θ = (u0, ν).
struct HeatStep {
    n: usize,
    dt: f64,
    nu: f64,
    h: f64,
    u1: Vec<f64>,
}

impl HeatStep {
    fn lap(&self, v: &[f64]) -> Vec<f64> {
        let n = self.n;
        (0..n).map(|i| (v[(i + 1) % n] - 2.0 * v[i] + v[(i + n - 1) % n]) / (self.h * self.h)).collect()
    }
}

impl RootProblem for HeatStep {
    fn n(&self) -> usize {
        self.n
    }
    fn p(&self) -> usize {
        self.n + 1
    }
    fn jac_x(&self, v: &[f64], out: &mut [f64]) {
        let l = self.lap(v);
        for i in 0..self.n {
            out[i] = v[i] - self.dt * self.nu * l[i];
        }
    }
    fn jac_x_t(&self, v: &[f64], out: &mut [f64]) {
        self.jac_x(v, out)
    }
    fn jac_theta(&self, t: &[f64], out: &mut [f64]) {
        let l = self.lap(&self.u1);
        for i in 0..self.n {
            out[i] = -t[i] - self.dt * t[self.n] * l[i];
        }
    }
    fn jac_theta_t(&self, u: &[f64], out: &mut [f64]) {
        let l = self.lap(&self.u1);
        for i in 0..self.n {
            out[i] = -u[i];
        }
        out[self.n] = -self.dt * dot(&l, u);
    }
}

#[test]
fn implicit_euler_heat_step_matches_finite_differences() {
    let n = 40;
    let u0: Vec<f64> =
        (0..n).map(|i| (2.0 * std::f64::consts::PI * i as f64 / n as f64).sin() + 0.3 * ((i * 7 % 5) as f64)).collect();
    let step = |u0: &[f64], nu: f64| -> Vec<f64> {
        let hs = HeatStep { n, dt: 0.01, nu, h: 1.0 / n as f64, u1: vec![] };
        let op = ansatz_solvers::linalg::FnOperator::new(n, |v: &[f64], o: &mut [f64]| hs.jac_x(v, o));
        let mut u1 = vec![0.0; n];
        ansatz_solvers::krylov::cg(&op, u0, &mut u1, Tolerance::relative(1e-14, 1000)).unwrap();
        u1
    };
    let nu = 0.05;
    let u1 = step(&u0, nu);
    let hs = HeatStep { n, dt: 0.01, nu, h: 1.0 / n as f64, u1: u1.clone() };
    let w = lcg(10, n);
    let g = implicit_vjp(&hs, &w, LinearSolver::Gmres { restart: 20 }, Tolerance::relative(1e-14, 1000)).unwrap();
    let dir = lcg(11, n + 1);
    let eps = 1e-6;
    let f = |s: f64| -> f64 {
        let u: Vec<f64> = u0.iter().zip(&dir).map(|(a, d)| a + s * d).collect();
        dot(&w, &step(&u, nu + s * dir[n]))
    };
    let fd = (f(eps) - f(-eps)) / (2.0 * eps);
    let ad = dot(&g.value, &dir);
    assert!((fd - ad).abs() <= 1e-6 * fd.abs(), "heat step: implicit {ad} vs FD {fd}");
}
