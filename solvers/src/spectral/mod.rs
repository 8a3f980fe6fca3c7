//! Pseudo-spectral schemes on periodic boxes: a PDE is `v_t = ν S ⊙ v + N(v)` in Fourier space, with a diagonal
//! symbol `S` per unit viscosity and a nonlinear term `N` ([`SpectralPde`]); the integrators own the numerics:
//! [`Etdrk4`] (exponential time differencing) and, through [`SpectralRhs`], any explicit Runge–Kutta method.
//! Products are dealiased with the 2/3 rule.

mod burgers;
mod etdrk4;
pub mod fft;
mod navier_stokes;

pub use burgers::{SpectralBurgers1d, SpectralBurgers2d};
pub use etdrk4::Etdrk4;
pub use fft::RealFft2;
pub use navier_stokes::{SpectralNavierStokes2d, kolmogorov_forcing};

use num_complex::Complex64 as C;

use crate::scheme::SemiDiscrete;

/// The FFT of a periodic `ny × nx` box of size `length = [lx, ly]`, once the box is checked: at least 4 points per
/// axis and positive lengths.
pub(crate) fn periodic_box(nx: usize, ny: usize, length: [f64; 2]) -> Result<RealFft2, crate::ConfigError> {
    for (axis, n) in [("x", nx), ("y", ny)] {
        if n < 4 {
            return Err(crate::ConfigError::GridTooSmall { axis, n, min: 4 });
        }
    }
    crate::check_positive("length x", length[0])?;
    crate::check_positive("length y", length[1])?;
    Ok(RealFft2::new(nx, ny))
}

/// A PDE `v_t = ν S ⊙ v + N(v)` on a periodic grid, in Fourier space. The state of a sample is real and physical
/// (`n_phys` values); its spectrum has `n_spec` complex values. Adjoints are with respect to `Σ x y` on physical
/// arrays and `Σ Re(conj(a) b)` on spectra.
pub trait SpectralPde: Sync {
    /// Per-sample scratch space.
    type Work: Send;
    /// Values of a physical state.
    fn n_phys(&self) -> usize;
    /// Complex values of a spectrum.
    fn n_spec(&self) -> usize;
    /// The linear symbol per unit viscosity, one real value per spectral entry (e.g. `−|k|²`).
    fn symbol(&self) -> &[f64];
    /// Allocates scratch space.
    fn work(&self) -> Self::Work;
    /// Physical to spectral (unnormalised forward FFT).
    fn to_spec(&self, u: &[f64], v: &mut [C], w: &mut Self::Work);
    /// Spectral to physical (normalised inverse FFT).
    fn to_phys(&self, v: &[C], u: &mut [f64], w: &mut Self::Work);
    /// Adjoint of [`to_spec`](Self::to_spec).
    fn to_spec_adjoint(&self, g: &[C], out: &mut [f64], w: &mut Self::Work);
    /// Adjoint of [`to_phys`](Self::to_phys).
    fn to_phys_adjoint(&self, g: &[f64], out: &mut [C], w: &mut Self::Work);
    /// What the tangent and adjoint of `N` need from the point of linearisation (grid fields).
    type Lin: Send;
    /// Allocates storage for one linearisation point.
    fn lin(&self) -> Self::Lin;
    /// `out = N(v)` (dealiased).
    fn nonlinear(&self, v: &[C], out: &mut [C], w: &mut Self::Work);
    /// `out = N(v)`, keeping in `lin` what [`nonlinear_jvp`](Self::nonlinear_jvp) and
    /// [`nonlinear_vjp`](Self::nonlinear_vjp) need at `v`.
    fn linearise(&self, v: &[C], out: &mut [C], lin: &mut Self::Lin, w: &mut Self::Work);
    /// `out = N'(v) dv` at the point kept by [`linearise`](Self::linearise).
    fn nonlinear_jvp(&self, lin: &Self::Lin, dv: &[C], out: &mut [C], w: &mut Self::Work);
    /// `out = N'(v)ᵀ g` at the point kept by [`linearise`](Self::linearise).
    fn nonlinear_vjp(&self, lin: &Self::Lin, g: &[C], out: &mut [C], w: &mut Self::Work);
}

/// The semi-discrete right-hand side `F(u) = I(ν S ⊙ R u + N(R u))` of a [`SpectralPde`], in physical space; wrap
/// it in [`ExplicitRk`](crate::rk::ExplicitRk) for Runge–Kutta time stepping.
#[derive(Clone, Debug)]
pub struct SpectralRhs<P> {
    pde: P,
    nu: f64,
}

/// Scratch space of [`SpectralRhs`].
pub struct SpectralRhsWork<W, L> {
    pde: W,
    lin: L,
    v: Vec<C>,
    t: Vec<C>,
    n: Vec<C>,
}

impl<P: SpectralPde> SpectralRhs<P> {
    /// The right-hand side with viscosity `nu ≥ 0`.
    pub fn new(pde: P, nu: f64) -> Result<Self, crate::ConfigError> {
        crate::check_non_negative("nu", nu)?;
        Ok(Self { pde, nu })
    }

    /// The PDE.
    pub fn pde(&self) -> &P {
        &self.pde
    }
}

impl<P: SpectralPde> SemiDiscrete for SpectralRhs<P> {
    type Work = SpectralRhsWork<P::Work, P::Lin>;

    fn state_len(&self) -> usize {
        self.pde.n_phys()
    }

    fn nu(&self) -> f64 {
        self.nu
    }

    fn work(&self) -> Self::Work {
        let z = vec![C::new(0.0, 0.0); self.pde.n_spec()];
        SpectralRhsWork { pde: self.pde.work(), lin: self.pde.lin(), v: z.clone(), t: z.clone(), n: z }
    }

    fn rhs(&self, u: &[f64], out: &mut [f64], w: &mut Self::Work) {
        self.pde.to_spec(u, &mut w.v, &mut w.pde);
        self.pde.nonlinear(&w.v, &mut w.n, &mut w.pde);
        for ((t, (v, n)), s) in w.t.iter_mut().zip(w.v.iter().zip(&w.n)).zip(self.pde.symbol()) {
            *t = v * (self.nu * s) + n;
        }
        self.pde.to_phys(&w.t, out, &mut w.pde);
    }

    fn rhs_jvp(&self, u: &[f64], du: &[f64], dnu: f64, out: &mut [f64], w: &mut Self::Work) {
        self.pde.to_spec(u, &mut w.v, &mut w.pde);
        self.pde.to_spec(du, &mut w.t, &mut w.pde);
        self.pde.linearise(&w.v, &mut w.n, &mut w.lin, &mut w.pde);
        self.pde.nonlinear_jvp(&w.lin, &w.t, &mut w.n, &mut w.pde);
        for (((n, dv), v), s) in w.n.iter_mut().zip(&w.t).zip(&w.v).zip(self.pde.symbol()) {
            *n += dv * (self.nu * s) + v * (dnu * s);
        }
        self.pde.to_phys(&w.n, out, &mut w.pde);
    }

    fn rhs_vjp(&self, u: &[f64], g: &[f64], out: &mut [f64], w: &mut Self::Work) -> f64 {
        self.pde.to_spec(u, &mut w.v, &mut w.pde);
        self.pde.to_phys_adjoint(g, &mut w.t, &mut w.pde);
        self.pde.linearise(&w.v, &mut w.n, &mut w.lin, &mut w.pde);
        self.pde.nonlinear_vjp(&w.lin, &w.t, &mut w.n, &mut w.pde);
        let mut dnu = 0.0;
        for (((n, gt), v), s) in w.n.iter_mut().zip(&w.t).zip(&w.v).zip(self.pde.symbol()) {
            *n += gt * (self.nu * s);
            dnu += s * (gt.re * v.re + gt.im * v.im);
        }
        self.pde.to_spec_adjoint(&w.n, out, &mut w.pde);
        dnu
    }
}
