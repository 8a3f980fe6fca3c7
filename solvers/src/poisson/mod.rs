//! Poisson problems `−∇·(k ∇u) = f`: finite volume on 2D and 3D boxes ([`PoissonFv`]) and spectral on periodic
//! boxes ([`SpectralPoisson`]).

mod fv;
mod spectral;

pub use fv::{PoissonBc, PoissonError, PoissonFv, PoissonParameter, PoissonRoot};
pub use spectral::SpectralPoisson;
