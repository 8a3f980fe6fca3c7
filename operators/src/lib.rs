//! Ansatz operators: burn modules for neural surrogates (FNO, DyMixOp, Φ-ROM, INSR, mixture-of-experts
//! hard-constraint layers, deep-conjugate-direction networks) and the bridge that makes native solver operations
//! differentiable inside burn.
//!
//! Available now: the 1D Fourier neural operator ([`fno::Fno1d`]) and its spectral convolution
//! ([`spectral::SpectralConv1d`]), a truncated DFT by matrix products (exact in f64, any grid size, every
//! backend).

pub mod fno;
pub mod spectral;
