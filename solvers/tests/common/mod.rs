#![allow(dead_code)]
//! Helpers shared by the integration tests.

use ansatz_solvers::prelude::*;

/// Deterministic uniform numbers in [-1, 1).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// A smooth random state plus a little noise: a few Fourier modes per component block.
pub fn smooth_state(n: usize, blocks: usize, rng: &mut Lcg) -> Vec<f64> {
    let m = n / blocks;
    let mut u = vec![0.0; n];
    for b in 0..blocks {
        let (a1, a2, p1, p2) = (rng.next(), 0.5 * rng.next(), 3.0 * rng.next(), 3.0 * rng.next());
        for i in 0..m {
            let x = 2.0 * std::f64::consts::PI * i as f64 / m as f64;
            u[b * m + i] = 0.8 + a1 * (x + p1).sin() + a2 * (2.0 * x + p2).cos() + 0.05 * rng.next();
        }
    }
    u
}

/// Dot-product and central-difference checks of a right-hand side at `nu`; `make(nu)` rebuilds the scheme.
pub fn check_rhs<S: SemiDiscrete>(name: &str, make: impl Fn(f64) -> S, nu: f64, u: &[f64], rng: &mut Lcg) {
    let s = make(nu);
    let n = s.state_len();
    let mut w = s.work();
    let v = rng.vec(n);
    let g = rng.vec(n);
    let dnu = 0.7;
    let mut jv = vec![0.0; n];
    s.rhs_jvp(u, &v, dnu, &mut jv, &mut w);
    let mut jtg = vec![0.0; n];
    let gnu = s.rhs_vjp(u, &g, &mut jtg, &mut w);
    let lhs = dot(&g, &jv);
    let rhs = dot(&jtg, &v) + gnu * dnu;
    assert!(
        (lhs - rhs).abs() <= 1e-10 * norm(&g) * norm(&jv),
        "{name}: dot-product test failed: <g, J v> = {lhs}, <Jᵀ g, v> = {rhs}"
    );
    let eps = 1e-6;
    let (mut up, mut um) = (u.to_vec(), u.to_vec());
    for i in 0..n {
        up[i] += eps * v[i];
        um[i] -= eps * v[i];
    }
    let (sp, sm) = (make(nu + eps * dnu), make(nu - eps * dnu));
    let (mut fp, mut fm) = (vec![0.0; n], vec![0.0; n]);
    sp.rhs(&up, &mut fp, &mut w);
    sm.rhs(&um, &mut fm, &mut w);
    let fd: Vec<f64> = fp.iter().zip(&fm).map(|(a, b)| (a - b) / (2.0 * eps)).collect();
    let err: Vec<f64> = fd.iter().zip(&jv).map(|(a, b)| a - b).collect();
    assert!(norm(&err) <= 1e-6 * norm(&jv), "{name}: jvp vs central differences: rel err {}", norm(&err) / norm(&jv));
}

/// Dot-product and central-difference checks of one time step.
pub fn check_step<S: Stepper>(name: &str, make: impl Fn(f64) -> S, nu: f64, u: &[f64], rng: &mut Lcg) {
    let s = make(nu);
    let n = s.state_len();
    let mut w = s.work();
    let v = rng.vec(n);
    let g = rng.vec(n);
    let dnu = 0.7;
    let mut jv = v.clone();
    s.step_jvp(u, &mut jv, dnu, &mut w);
    let mut jtg = g.clone();
    let gnu = s.step_vjp(u, &mut jtg, &mut w);
    let lhs = dot(&g, &jv);
    let rhs = dot(&jtg, &v) + gnu * dnu;
    assert!((lhs - rhs).abs() <= 1e-10 * norm(&g) * norm(&jv), "{name}: step dot-product test failed: {lhs} vs {rhs}");
    let eps = 1e-6;
    let mut up: Vec<f64> = u.iter().zip(&v).map(|(a, b)| a + eps * b).collect();
    let mut um: Vec<f64> = u.iter().zip(&v).map(|(a, b)| a - eps * b).collect();
    make(nu + eps * dnu).step(&mut up, &mut w);
    make(nu - eps * dnu).step(&mut um, &mut w);
    let err: Vec<f64> = up.iter().zip(&um).zip(&jv).map(|((a, b), j)| (a - b) / (2.0 * eps) - j).collect();
    assert!(
        norm(&err) <= 1e-6 * norm(&jv),
        "{name}: step jvp vs central differences: rel err {}",
        norm(&err) / norm(&jv)
    );
}
