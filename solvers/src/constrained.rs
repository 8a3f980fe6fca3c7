//! Hard constraints by nonlinear least squares over a basis (the expert layer of PI-HC-MoE, Chalapathi et al. 2024,
//! arXiv:2402.13412), in f64.
//!
//! A network gives `N` basis functions; a candidate solution is `u = Σₙ ωₙ bₙ`. Every residual row `p` (a PDE,
//! initial- or boundary-condition residual at one sampled point) depends on `K` *features* of the solution at its
//! point, `z_p = F_p ω`, where the `K × N` matrix `F_p` holds the basis functions and their derivatives there (the
//! derivative fields are linear in ω, so they are formed once per basis). A [`Closure`] maps the features to the
//! residual, `r_p = ψ_p(z_p)`, with its gradient `a_p` and Hessian `H_p` in `z`. The expert solves
//!
//! ```text
//! ω* = argmin ½ Σ_p ψ_p(F_p ω)² + ½ ρ² |ω|²
//! ```
//!
//! by Levenberg–Marquardt on dense `N × N` normal equations ([`solve_expert`]); the ridge ρ is the reference's
//! `1e-4 ω` rows. A solve that stops without meeting its tolerance is returned with `converged = false` and its
//! residual, for the caller to count and report.
//!
//! **Backward (implicit function theorem).** At the solution `G(ω*, F) = ∇_ω L = Σ_p r_p F_pᵀ a_p + ρ² ω = 0`, so
//! `dω*/dF = −H⁻¹ ∂G/∂F` with the *full* Hessian `H = Σ_p F_pᵀ (a_p a_pᵀ + r_p H_p) F_p + ρ² I` (the second-order
//! terms matter: the residual does not vanish at a least-squares solution). For a cotangent `ω̄`, with `u = H⁻¹ ω̄`
//! ([`expert_vjp`]):
//!
//! ```text
//! F̄_p = −[(a_p a_pᵀ + r_p H_p) F_p u] ω*ᵀ − r_p a_p uᵀ        (K × N per row)
//! ```
//!
//! which is `−∂/∂F_p` of `Σ_p r_p a_pᵀ F_p u`. Experts are independent: each has its own rows, solve and backward.

use crate::implicit::dense_lu_solve;
use crate::krylov::SolveError;
use crate::sorption::SorptionConstants;

/// The residual of each row as a function of its features (see the module documentation).
pub trait Closure: Sync {
    /// Features per row (`K`).
    fn features(&self) -> usize;
    /// Rows.
    fn rows(&self) -> usize;
    /// `r = ψ_row(z)`; writes `∂ψ/∂z` to `grad` (`K`) and, when `hess` is given, `∂²ψ/∂z²` to it (`K × K`,
    /// row-major).
    fn residual(&self, row: usize, z: &[f64], grad: &mut [f64], hess: Option<&mut [f64]>) -> f64;
}

/// Options of [`solve_expert`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpertOptions {
    /// Converged when `|∇L| ≤ gtol · max(1, |∇L₀|)` (`∇L₀` at the initial guess)...
    pub gtol: f64,
    /// ... or when an accepted step lowers the cost by less than `ftol` relative to it.
    pub ftol: f64,
    /// Iterations (accepted or rejected steps) at most.
    pub max_iter: usize,
    /// The ridge ρ (the rows `ρ ω`).
    pub ridge: f64,
}

impl Default for ExpertOptions {
    /// The reference's tolerances (1e-4 relative, 100 steps) and ridge (1e-4).
    fn default() -> Self {
        Self { gtol: 1e-4, ftol: 1e-10, max_iter: 100, ridge: 1e-4 }
    }
}

/// What one expert's solve did.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpertReport {
    pub iterations: usize,
    /// `½ |r|²` (with the ridge rows) at the start and the end.
    pub initial_cost: f64,
    pub cost: f64,
    /// `|∇L|` at the end.
    pub gradient: f64,
    pub converged: bool,
}

/// Errors of the expert layer: bad shapes and non-finite values (non-convergence is reported, not an error).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ExpertError {
    #[error("{what}: expected {expected} values, got {got}")]
    Shape { what: &'static str, expected: usize, got: usize },
    #[error("non-finite residual or features")]
    NonFinite,
    #[error("the Hessian of the least-squares cost is singular: {0}")]
    Singular(#[from] SolveError),
}

/// `Σ_p` pieces at `ω`: residuals, cost, gradient and the Gauss–Newton matrix `JᵀJ` (`n × n`).
struct Linearised {
    cost: f64,
    grad: Vec<f64>,
    jtj: Vec<f64>,
}

fn check(closure: &dyn Closure, f: &[f64], n: usize, omega: &[f64]) -> Result<(), ExpertError> {
    let expected = closure.rows() * closure.features() * n;
    if f.len() != expected {
        return Err(ExpertError::Shape { what: "features (rows × K × N)", expected, got: f.len() });
    }
    if omega.len() != n {
        return Err(ExpertError::Shape { what: "basis weights", expected: n, got: omega.len() });
    }
    Ok(())
}

/// `z = F_p ω` for row `p`.
#[inline]
fn features_at(f: &[f64], p: usize, k: usize, n: usize, omega: &[f64], z: &mut [f64]) {
    let fp = &f[p * k * n..(p + 1) * k * n];
    for (kk, zk) in z.iter_mut().enumerate() {
        *zk = fp[kk * n..(kk + 1) * n].iter().zip(omega).map(|(a, b)| a * b).sum();
    }
}

/// `J_p = F_pᵀ a` (`n` values).
#[inline]
fn row_jacobian(f: &[f64], p: usize, k: usize, n: usize, a: &[f64], j: &mut [f64]) {
    let fp = &f[p * k * n..(p + 1) * k * n];
    j.fill(0.0);
    for (kk, &ak) in a.iter().enumerate() {
        if ak != 0.0 {
            for (jn, fv) in j.iter_mut().zip(&fp[kk * n..(kk + 1) * n]) {
                *jn += ak * fv;
            }
        }
    }
}

fn cost(closure: &dyn Closure, f: &[f64], n: usize, omega: &[f64], ridge: f64) -> f64 {
    let k = closure.features();
    let (mut z, mut a) = (vec![0.0; k], vec![0.0; k]);
    let mut c = 0.5 * ridge * ridge * omega.iter().map(|w| w * w).sum::<f64>();
    for p in 0..closure.rows() {
        features_at(f, p, k, n, omega, &mut z);
        let r = closure.residual(p, &z, &mut a, None);
        c += 0.5 * r * r;
    }
    c
}

fn linearise(closure: &dyn Closure, f: &[f64], n: usize, omega: &[f64], ridge: f64) -> Linearised {
    let k = closure.features();
    let (mut z, mut a, mut j) = (vec![0.0; k], vec![0.0; k], vec![0.0; n]);
    let r2 = ridge * ridge;
    let mut out = Linearised {
        cost: 0.5 * r2 * omega.iter().map(|w| w * w).sum::<f64>(),
        grad: omega.iter().map(|w| r2 * w).collect(),
        jtj: vec![0.0; n * n],
    };
    for i in 0..n {
        out.jtj[i * n + i] = r2;
    }
    for p in 0..closure.rows() {
        features_at(f, p, k, n, omega, &mut z);
        let r = closure.residual(p, &z, &mut a, None);
        out.cost += 0.5 * r * r;
        row_jacobian(f, p, k, n, &a, &mut j);
        for i in 0..n {
            out.grad[i] += r * j[i];
            let ji = j[i];
            if ji != 0.0 {
                for (m, jm) in out.jtj[i * n..(i + 1) * n].iter_mut().zip(&j) {
                    *m += ji * jm;
                }
            }
        }
    }
    out
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Minimises `½ Σ ψ_p(F_p ω)² + ½ ρ²|ω|²` over `ω` from `omega` (updated in place) by Levenberg–Marquardt:
/// `(JᵀJ + λ diag(JᵀJ)) δ = −∇L` solved densely, λ divided by 3 after an accepted step and doubled after a
/// rejected one (Marquardt 1963), then up to three Newton steps with the full Hessian to resolve the stationary
/// point below the cost's round-off. `f` is `rows × K × N`, row-major (module documentation).
pub fn solve_expert(
    closure: &dyn Closure,
    f: &[f64],
    n: usize,
    omega: &mut [f64],
    opts: ExpertOptions,
) -> Result<ExpertReport, ExpertError> {
    check(closure, f, n, omega)?;
    let mut lin = linearise(closure, f, n, omega, opts.ridge);
    if !lin.cost.is_finite() || lin.grad.iter().any(|g| !g.is_finite()) {
        return Err(ExpertError::NonFinite);
    }
    let g0 = norm(&lin.grad).max(1.0);
    let mut report = ExpertReport {
        iterations: 0,
        initial_cost: lin.cost,
        cost: lin.cost,
        gradient: norm(&lin.grad),
        converged: false,
    };
    let mut lambda = 1e-3;
    let mut trial = vec![0.0; n];
    let mut stalled = false;
    while report.iterations < opts.max_iter {
        if report.gradient <= opts.gtol * g0 {
            report.converged = true;
            break;
        }
        report.iterations += 1;
        let dmax = (0..n).map(|i| lin.jtj[i * n + i]).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE);
        let mut a = lin.jtj.clone();
        for i in 0..n {
            a[i * n + i] += lambda * lin.jtj[i * n + i].max(1e-12 * dmax);
        }
        let neg: Vec<f64> = lin.grad.iter().map(|g| -g).collect();
        let delta = match dense_lu_solve(&mut a, &neg, n) {
            Ok(d) => d,
            Err(_) => {
                lambda *= 10.0;
                continue;
            }
        };
        for i in 0..n {
            trial[i] = omega[i] + delta[i];
        }
        let c = cost(closure, f, n, &trial, opts.ridge);
        if c.is_finite() && c < lin.cost {
            let decrease = (lin.cost - c) / lin.cost.max(f64::MIN_POSITIVE);
            omega.copy_from_slice(&trial);
            lin = linearise(closure, f, n, omega, opts.ridge);
            report.cost = lin.cost;
            report.gradient = norm(&lin.grad);
            lambda = (lambda / 3.0).max(1e-12);
            if decrease < opts.ftol {
                report.converged = true;
                break;
            }
        } else {
            lambda *= 2.0;
            if lambda > 1e16 {
                stalled = true;
                break;
            }
        }
    }
    // Polish (after convergence, or when no step lowers the cost any more): the cost cannot resolve the last digits of the stationary point (its decrease falls below round-off
    // long before the gradient does), so finish with Newton steps on ∇L = 0 with the full Hessian, kept while the
    // gradient shrinks and the cost does not rise beyond round-off. The implicit backward assumes ∇L = 0.
    if (report.converged || stalled) && report.gradient <= 1e-2 * g0 {
        for _ in 0..3 {
            let Ok(mut h) = expert_hessian(closure, f, n, omega, opts.ridge) else { break };
            let neg: Vec<f64> = lin.grad.iter().map(|g| -g).collect();
            let Ok(delta) = dense_lu_solve(&mut h, &neg, n) else { break };
            for i in 0..n {
                trial[i] = omega[i] + delta[i];
            }
            let next = linearise(closure, f, n, &trial, opts.ridge);
            let g = norm(&next.grad);
            if !(g < report.gradient && next.cost <= lin.cost * (1.0 + 1e-12)) {
                break;
            }
            omega.copy_from_slice(&trial);
            lin = next;
            report.cost = lin.cost;
            report.gradient = g;
        }
    }
    if !report.converged && report.gradient <= opts.gtol * g0 {
        report.converged = true;
    }
    Ok(report)
}

/// The full Hessian `Σ_p F_pᵀ (a_p a_pᵀ + r_p H_p) F_p + ρ² I` of the cost at `omega` (`n × n`, row-major).
pub fn expert_hessian(
    closure: &dyn Closure,
    f: &[f64],
    n: usize,
    omega: &[f64],
    ridge: f64,
) -> Result<Vec<f64>, ExpertError> {
    check(closure, f, n, omega)?;
    let k = closure.features();
    let (mut z, mut a, mut hz) = (vec![0.0; k], vec![0.0; k], vec![0.0; k * k]);
    let mut m = vec![0.0; k * k];
    let mut tmp = vec![0.0; k * n];
    let mut h = vec![0.0; n * n];
    for i in 0..n {
        h[i * n + i] = ridge * ridge;
    }
    for p in 0..closure.rows() {
        features_at(f, p, k, n, omega, &mut z);
        let r = closure.residual(p, &z, &mut a, Some(&mut hz));
        for i in 0..k {
            for j in 0..k {
                m[i * k + j] = a[i] * a[j] + r * hz[i * k + j];
            }
        }
        // tmp = M F_p (K × N); h += F_pᵀ tmp
        let fp = &f[p * k * n..(p + 1) * k * n];
        tmp.fill(0.0);
        for i in 0..k {
            for j in 0..k {
                let mij = m[i * k + j];
                if mij != 0.0 {
                    for (t, fv) in tmp[i * n..(i + 1) * n].iter_mut().zip(&fp[j * n..(j + 1) * n]) {
                        *t += mij * fv;
                    }
                }
            }
        }
        for i in 0..k {
            for a_ in 0..n {
                let fa = fp[i * n + a_];
                if fa != 0.0 {
                    for (hv, t) in h[a_ * n..(a_ + 1) * n].iter_mut().zip(&tmp[i * n..(i + 1) * n]) {
                        *hv += fa * t;
                    }
                }
            }
        }
    }
    if h.iter().any(|v| !v.is_finite()) {
        return Err(ExpertError::NonFinite);
    }
    Ok(h)
}

/// The cotangent `F̄` (`rows × K × N`) of the features for the cotangent `omega_bar` of the solution `omega` (module
/// documentation): one dense `N × N` solve with the full Hessian.
pub fn expert_vjp(
    closure: &dyn Closure,
    f: &[f64],
    n: usize,
    omega: &[f64],
    ridge: f64,
    omega_bar: &[f64],
    out: &mut [f64],
) -> Result<(), ExpertError> {
    check(closure, f, n, omega)?;
    if omega_bar.len() != n {
        return Err(ExpertError::Shape { what: "cotangent of the basis weights", expected: n, got: omega_bar.len() });
    }
    if out.len() != f.len() {
        return Err(ExpertError::Shape { what: "cotangent of the features", expected: f.len(), got: out.len() });
    }
    let mut h = expert_hessian(closure, f, n, omega, ridge)?;
    let u = dense_lu_solve(&mut h, omega_bar, n)?;
    let k = closure.features();
    let (mut z, mut a, mut hz, mut w, mut c) =
        (vec![0.0; k], vec![0.0; k], vec![0.0; k * k], vec![0.0; k], vec![0.0; k]);
    for p in 0..closure.rows() {
        features_at(f, p, k, n, omega, &mut z);
        let r = closure.residual(p, &z, &mut a, Some(&mut hz));
        features_at(f, p, k, n, &u, &mut w);
        let aw: f64 = a.iter().zip(&w).map(|(x, y)| x * y).sum();
        for i in 0..k {
            c[i] = a[i] * aw + r * (0..k).map(|j| hz[i * k + j] * w[j]).sum::<f64>();
        }
        let op = &mut out[p * k * n..(p + 1) * k * n];
        for i in 0..k {
            let ra = r * a[i];
            for ((o, om), uu) in op[i * n..(i + 1) * n].iter_mut().zip(omega).zip(&u) {
                *o = -(c[i] * om + ra * uu);
            }
        }
    }
    Ok(())
}

/// The kinds of residual row of [`SorptionClosure`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SorptionRow {
    /// The PDE in time scaled by `T`: features `(u, u_τ, u_xx)` with `τ = t/T`,
    /// `r = w (u_τ − T D u_xx / R(u))`.
    Pde,
    /// The initial condition: features `(u, ·, ·)`, `r = w (u − target)`.
    Initial,
    /// The inflow: features `(u, ·, ·)`, `r = w (u − target)`.
    Inflow,
    /// The outflow `u = −D u_x`: features `(u, u_x, ·)`, `r = w (u + D u_x)`.
    Outflow,
}

/// The residual rows of the diffusion–sorption equation ([`crate::sorption`]) for an expert: per row its kind,
/// weight and target (the initial or inflow value). Three features per row.
#[derive(Clone, Debug)]
pub struct SorptionClosure {
    pub constants: SorptionConstants,
    /// The time scale `T` of the PDE rows' `u_τ`.
    pub time_scale: f64,
    pub kinds: Vec<SorptionRow>,
    pub weights: Vec<f64>,
    pub targets: Vec<f64>,
}

impl Closure for SorptionClosure {
    fn features(&self) -> usize {
        3
    }
    fn rows(&self) -> usize {
        self.kinds.len()
    }
    fn residual(&self, row: usize, z: &[f64], grad: &mut [f64], hess: Option<&mut [f64]>) -> f64 {
        let w = self.weights[row];
        grad.fill(0.0);
        let mut second = hess;
        if let Some(h) = second.as_deref_mut() {
            h.fill(0.0);
        }
        match self.kinds[row] {
            SorptionRow::Pde => {
                let c = self.time_scale * self.constants.diffusivity;
                let (u, ut, uxx) = (z[0], z[1], z[2]);
                // g(u) = 1/R(u): g' = −R'/R², g'' = 2R'²/R³ − R''/R²
                let (r, dr, d2r) = retardation2(&self.constants, u);
                let g = 1.0 / r;
                let g1 = -dr / (r * r);
                let g2 = 2.0 * dr * dr / (r * r * r) - d2r / (r * r);
                grad[0] = -w * c * uxx * g1;
                grad[1] = w;
                grad[2] = -w * c * g;
                if let Some(h) = second {
                    h[0] = -w * c * uxx * g2; // ∂²/∂u²
                    h[2] = -w * c * g1; // ∂²/∂u∂u_xx
                    h[6] = h[2];
                }
                w * (ut - c * uxx * g)
            }
            SorptionRow::Initial | SorptionRow::Inflow => {
                grad[0] = w;
                w * (z[0] - self.targets[row])
            }
            SorptionRow::Outflow => {
                grad[0] = w;
                grad[1] = w * self.constants.diffusivity;
                w * (z[0] + self.constants.diffusivity * z[1])
            }
        }
    }
}

/// `R(u)`, `R'(u)` and `R''(u)` of the Freundlich retardation (zero derivatives for `u ≤ 0`).
fn retardation2(c: &SorptionConstants, u: f64) -> (f64, f64, f64) {
    let k = c.sorption_factor();
    let e = c.freundlich_n - 1.0;
    let v = u.max(0.0) + crate::sorption::SORPTION_EPSILON;
    let p = v.powf(e);
    if u > 0.0 { (1.0 + k * p, k * e * p / v, k * e * (e - 1.0) * p / (v * v)) } else { (1.0 + k * p, 0.0, 0.0) }
}

/// The kinds of residual row of [`Burgers2dClosure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Burgers2dRow {
    /// The x-momentum equation: features `(u, v, u_τ, u_x, u_y, Δu)`, `r = w (u_τ + T (u u_x + v u_y − ν Δu))`.
    MomentumX,
    /// The y-momentum equation: features `(u, v, v_τ, v_x, v_y, Δv)`, `r = w (v_τ + T (u v_x + v v_y − ν Δv))`.
    MomentumY,
    /// An initial value of either component: features `(f, ·, ·, ·, ·, ·)`, `r = w (f − target)`.
    Initial,
}

/// The residual rows of the 2D viscous Burgers equations `u_t + u u_x + v u_y = ν Δu`, `v_t + u v_x + v v_y = ν Δv`
/// (time scaled by `T`, `τ = t/T`) for an expert: per row its kind, weight and target. Six features per row.
#[derive(Clone, Debug)]
pub struct Burgers2dClosure {
    pub nu: f64,
    pub time_scale: f64,
    pub kinds: Vec<Burgers2dRow>,
    pub weights: Vec<f64>,
    pub targets: Vec<f64>,
}

impl Closure for Burgers2dClosure {
    fn features(&self) -> usize {
        6
    }
    fn rows(&self) -> usize {
        self.kinds.len()
    }
    fn residual(&self, row: usize, z: &[f64], grad: &mut [f64], hess: Option<&mut [f64]>) -> f64 {
        let w = self.weights[row];
        grad.fill(0.0);
        let mut second = hess;
        if let Some(h) = second.as_deref_mut() {
            h.fill(0.0);
        }
        match self.kinds[row] {
            Burgers2dRow::MomentumX | Burgers2dRow::MomentumY => {
                let t = self.time_scale;
                let (u, v, ft, fx, fy, lap) = (z[0], z[1], z[2], z[3], z[4], z[5]);
                grad[0] = w * t * fx;
                grad[1] = w * t * fy;
                grad[2] = w;
                grad[3] = w * t * u;
                grad[4] = w * t * v;
                grad[5] = -w * t * self.nu;
                if let Some(h) = second {
                    // ∂²/∂u∂f_x = ∂²/∂v∂f_y = w T
                    h[3] = w * t;
                    h[3 * 6] = w * t;
                    h[6 + 4] = w * t;
                    h[4 * 6 + 1] = w * t;
                }
                w * (ft + t * (u * fx + v * fy - self.nu * lap))
            }
            Burgers2dRow::Initial => {
                grad[0] = w;
                w * (z[0] - self.targets[row])
            }
        }
    }
}
