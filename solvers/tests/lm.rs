//! Levenberg–Marquardt and its implicit adjoint.

use ansatz_solvers::krylov::Tolerance;
use ansatz_solvers::lm::{LeastSquares, LmError, LmOptions, least_squares_vjp, levenberg_marquardt};

/// Fit `x0 exp(x1 t) + x2` to data `θ0 exp(θ1 t) + θ2 sin(t)·0` sampled at 20 points: zero residual at x = θ.
struct ExpFit {
    t: Vec<f64>,
}

impl ExpFit {
    fn model(p: &[f64], t: f64) -> f64 {
        p[0] * (p[1] * t).exp() + p[2]
    }
}

impl LeastSquares for ExpFit {
    fn m(&self) -> usize {
        self.t.len()
    }
    fn n(&self) -> usize {
        3
    }
    fn p(&self) -> usize {
        3
    }
    fn residual(&self, x: &[f64], th: &[f64], r: &mut [f64]) {
        for (ri, &t) in r.iter_mut().zip(&self.t) {
            *ri = Self::model(x, t) - Self::model(th, t);
        }
    }
    fn jx(&self, x: &[f64], _: &[f64], v: &[f64], out: &mut [f64]) {
        for (o, &t) in out.iter_mut().zip(&self.t) {
            let e = (x[1] * t).exp();
            *o = e * v[0] + x[0] * t * e * v[1] + v[2];
        }
    }
    fn jx_t(&self, x: &[f64], _: &[f64], w: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for (wi, &t) in w.iter().zip(&self.t) {
            let e = (x[1] * t).exp();
            out[0] += e * wi;
            out[1] += x[0] * t * e * wi;
            out[2] += wi;
        }
    }
    fn jtheta(&self, _: &[f64], th: &[f64], v: &[f64], out: &mut [f64]) {
        for (o, &t) in out.iter_mut().zip(&self.t) {
            let e = (th[1] * t).exp();
            *o = -(e * v[0] + th[0] * t * e * v[1] + v[2]);
        }
    }
    fn jtheta_t(&self, _: &[f64], th: &[f64], w: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for (wi, &t) in w.iter().zip(&self.t) {
            let e = (th[1] * t).exp();
            out[0] -= e * wi;
            out[1] -= th[0] * t * e * wi;
            out[2] -= wi;
        }
    }
}

#[test]
fn fits_and_differentiates_through_the_fit() {
    let p = ExpFit { t: (0..20).map(|i| i as f64 * 0.1).collect() };
    let theta = [1.5, -0.7, 0.3];
    let opts = LmOptions { gtol: 1e-12, ftol: 1e-15, max_iter: 200, lambda0: 1e-2 };
    let mut x = [1.0, 0.0, 0.0];
    let rep = levenberg_marquardt(&p, &mut x, &theta, opts).unwrap();
    for (xk, tk) in x.iter().zip(theta) {
        assert!((xk - tk).abs() < 1e-7, "x = {x:?}");
    }
    assert!(rep.costs.windows(2).all(|w| w[1] < w[0]), "accepted steps decrease the cost");
    // L = x0 + 2 x1 − x2; at zero residual x(θ) = θ, so dL/dθ = (1, 2, −1)
    let v = [1.0, 2.0, -1.0];
    let g = least_squares_vjp(&p, &x, &theta, &v, Tolerance::relative(1e-13, 100)).unwrap();
    for (gk, vk) in g.value.iter().zip(v) {
        assert!((gk - vk).abs() < 1e-6, "gradient {:?}", g.value);
    }
    // and against finite differences of the whole fit
    let eps = 1e-6;
    let solve = |th: [f64; 3]| {
        let mut x = [1.0, 0.0, 0.0];
        levenberg_marquardt(&p, &mut x, &th, opts).unwrap();
        x[0] + 2.0 * x[1] - x[2]
    };
    let fd = (solve([theta[0], theta[1] + eps, theta[2]]) - solve([theta[0], theta[1] - eps, theta[2]])) / (2.0 * eps);
    assert!((fd - g.value[1]).abs() < 1e-6 * fd.abs(), "FD {fd} vs implicit {}", g.value[1]);
}

#[test]
fn reports_failure() {
    let p = ExpFit { t: (0..20).map(|i| i as f64 * 0.1).collect() };
    let mut x = [1.0, 0.0, 0.0];
    let r = levenberg_marquardt(
        &p,
        &mut x,
        &[1.5, -0.7, 0.3],
        LmOptions { gtol: 0.0, ftol: 0.0, max_iter: 2, lambda0: 1.0 },
    );
    assert!(matches!(r, Err(LmError::NotConverged(rep)) if rep.iterations == 2));
}
