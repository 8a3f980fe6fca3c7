//! Explicit Runge–Kutta time steppers over any [`SemiDiscrete`] right-hand side, with exact discrete tangents
//! and adjoints of the whole step.

use crate::scheme::{SemiDiscrete, Stepper, axpy};

/// The Butcher tableau of an explicit Runge–Kutta method for an autonomous system.
#[derive(Clone, Debug, PartialEq)]
pub struct Tableau {
    /// Strictly lower-triangular stage coefficients `a[i][j]`, `j < i`.
    pub a: Vec<Vec<f64>>,
    /// Weights of the stage derivatives.
    pub b: Vec<f64>,
    /// Order of accuracy.
    pub order: usize,
}

impl Tableau {
    /// Three-stage, third-order strong-stability-preserving method (Shu & Osher 1988,
    /// doi:10.1016/0021-9991(88)90177-5); TVD under CFL ≤ 1 when forward Euler is.
    pub fn ssp_rk3() -> Self {
        Self { a: vec![vec![], vec![1.0], vec![0.25, 0.25]], b: vec![1.0 / 6.0, 1.0 / 6.0, 2.0 / 3.0], order: 3 }
    }

    /// Forward Euler, first order.
    pub fn euler() -> Self {
        Self { a: vec![vec![]], b: vec![1.0], order: 1 }
    }

    /// The classical fourth-order method.
    pub fn rk4() -> Self {
        Self {
            a: vec![vec![], vec![0.5], vec![0.0, 0.5], vec![0.0, 0.0, 1.0]],
            b: vec![1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
            order: 4,
        }
    }

    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.b.len()
    }
}

/// An explicit Runge–Kutta stepper: `Y_i = u + dt Σ_{j<i} a_ij K_j`, `K_i = F(Y_i)`, `S(u) = u + dt Σ b_i K_i`.
#[derive(Clone, Debug)]
pub struct ExplicitRk<R> {
    rhs: R,
    tableau: Tableau,
    dt: f64,
}

/// Scratch space of [`ExplicitRk`] for one sample.
pub struct RkWork<W> {
    rhs: W,
    /// Stage derivatives `K_i` (forward) or their cotangent accumulators (reverse).
    k: Vec<Vec<f64>>,
    /// Stage states `Y_i`.
    y: Vec<Vec<f64>>,
    /// Tangent stage derivatives (jvp) or stage cotangents (vjp).
    dk: Vec<Vec<f64>>,
    tmp: Vec<f64>,
}

impl<R: SemiDiscrete> ExplicitRk<R> {
    /// A stepper with time step `dt` (positive and finite).
    pub fn new(rhs: R, tableau: Tableau, dt: f64) -> Result<Self, crate::ConfigError> {
        crate::check_positive("dt", dt)?;
        Ok(Self { rhs, tableau, dt })
    }

    /// SSP-RK3 over `rhs`.
    pub fn ssp_rk3(rhs: R, dt: f64) -> Result<Self, crate::ConfigError> {
        Self::new(rhs, Tableau::ssp_rk3(), dt)
    }

    /// Classical RK4 over `rhs`.
    pub fn rk4(rhs: R, dt: f64) -> Result<Self, crate::ConfigError> {
        Self::new(rhs, Tableau::rk4(), dt)
    }

    /// The right-hand side.
    pub fn rhs(&self) -> &R {
        &self.rhs
    }

    /// The tableau.
    pub fn tableau(&self) -> &Tableau {
        &self.tableau
    }

    /// Computes the stage states `Y_0..Y_{s-1}` into `w.y` (and the stage derivatives of all but the last stage
    /// into `w.k`).
    fn stage_states(&self, u: &[f64], w: &mut RkWork<R::Work>) {
        let s = self.tableau.stages();
        for i in 0..s {
            w.y[i].copy_from_slice(u);
            for (j, &aij) in self.tableau.a[i].iter().enumerate() {
                if aij != 0.0 {
                    axpy(&mut w.y[i], self.dt * aij, &w.k[j]);
                }
            }
            if i + 1 < s {
                self.rhs.rhs(&w.y[i], &mut w.k[i], &mut w.rhs);
            }
        }
    }
}

impl<R: SemiDiscrete> Stepper for ExplicitRk<R> {
    type Work = RkWork<R::Work>;

    fn state_len(&self) -> usize {
        self.rhs.state_len()
    }

    fn dt(&self) -> f64 {
        self.dt
    }

    fn order(&self) -> usize {
        self.tableau.order
    }

    fn work(&self) -> Self::Work {
        let (n, s) = (self.rhs.state_len(), self.tableau.stages());
        RkWork {
            rhs: self.rhs.work(),
            k: vec![vec![0.0; n]; s],
            y: vec![vec![0.0; n]; s],
            dk: vec![vec![0.0; n]; s],
            tmp: vec![0.0; n],
        }
    }

    fn step(&self, u: &mut [f64], w: &mut Self::Work) {
        let s = self.tableau.stages();
        for i in 0..s {
            w.tmp.copy_from_slice(u);
            for (j, &aij) in self.tableau.a[i].iter().enumerate() {
                if aij != 0.0 {
                    axpy(&mut w.tmp, self.dt * aij, &w.k[j]);
                }
            }
            self.rhs.rhs(&w.tmp, &mut w.k[i], &mut w.rhs);
        }
        for (i, &bi) in self.tableau.b.iter().enumerate() {
            axpy(u, self.dt * bi, &w.k[i]);
        }
    }

    fn step_jvp(&self, u: &[f64], du: &mut [f64], dnu: f64, w: &mut Self::Work) {
        let s = self.tableau.stages();
        for i in 0..s {
            // primal stage state and tangent stage state
            w.y[i].copy_from_slice(u);
            w.tmp.copy_from_slice(du);
            for (j, &aij) in self.tableau.a[i].iter().enumerate() {
                if aij != 0.0 {
                    axpy(&mut w.y[i], self.dt * aij, &w.k[j]);
                    axpy(&mut w.tmp, self.dt * aij, &w.dk[j]);
                }
            }
            if i + 1 < s {
                self.rhs.rhs(&w.y[i], &mut w.k[i], &mut w.rhs);
            }
            self.rhs.rhs_jvp(&w.y[i], &w.tmp, dnu, &mut w.dk[i], &mut w.rhs);
        }
        for (i, &bi) in self.tableau.b.iter().enumerate() {
            axpy(du, self.dt * bi, &w.dk[i]);
        }
    }

    fn step_vjp(&self, u: &[f64], g: &mut [f64], w: &mut Self::Work) -> f64 {
        let s = self.tableau.stages();
        self.stage_states(u, w);
        // w.k[i] now becomes the accumulator of dt * (b_i g + Σ_{j>i} a_ji Ȳ_j) = K̄_i.
        for i in 0..s {
            let bi = self.tableau.b[i] * self.dt;
            for (kk, gi) in w.k[i].iter_mut().zip(g.iter()) {
                *kk = bi * gi;
            }
        }
        let mut dnu = 0.0;
        for i in (0..s).rev() {
            // Ȳ_i = (∂F/∂u)ᵀ(Y_i) K̄_i
            dnu += self.rhs.rhs_vjp(&w.y[i], &w.k[i], &mut w.dk[i], &mut w.rhs);
            for j in 0..i {
                let aij = self.tableau.a[i][j];
                if aij != 0.0 {
                    axpy(&mut w.k[j], self.dt * aij, &w.dk[i]);
                }
            }
            axpy(g, 1.0, &w.dk[i]);
        }
        dnu
    }
}
