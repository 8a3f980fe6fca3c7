//! Random linear problems for export and benchmarks: Poisson with a log-normal coefficient field and a smooth
//! random source, reproducible from a seed.

use std::f64::consts::PI;

use ansatz_solvers::elasticity::{ElasticSide, Elasticity2d, Model, Side};
use ansatz_solvers::poisson::{PoissonBc, PoissonFv};

use crate::rng::SampleRng;

/// A smooth random field on the unit box: a sum of random Fourier modes with integer wavenumbers up to 4 per
/// axis and amplitudes decaying like 1/|m|², normalised to unit maximum amplitude on the points it was drawn for.
#[derive(Clone, Debug)]
pub struct SmoothField {
    terms: Vec<([f64; 3], f64, f64)>,
    scale: f64,
}

impl SmoothField {
    /// Draws `modes` modes in `dims` dimensions and normalises on `points`.
    pub fn draw(rng: &mut SampleRng, points: &[[f64; 3]], dims: usize, modes: usize) -> Self {
        let mut terms = vec![];
        for _ in 0..modes {
            let m: [f64; 3] = std::array::from_fn(|d| if d < dims { rng.int(0, 4) as f64 } else { 0.0 });
            let m2 = (m[0] * m[0] + m[1] * m[1] + m[2] * m[2]).max(1.0);
            terms.push((m, rng.normal() / m2, rng.range(0.0, 2.0 * PI)));
        }
        let mut f = Self { terms, scale: 1.0 };
        f.scale = points.iter().fold(0.0_f64, |a, x| a.max(f.eval(*x).abs())).max(f64::MIN_POSITIVE);
        f
    }

    /// The value at `x`.
    pub fn eval(&self, x: [f64; 3]) -> f64 {
        self.terms
            .iter()
            .map(|(m, a, p)| a * (2.0 * PI * (m[0] * x[0] + m[1] * x[1] + m[2] * x[2]) + p).cos())
            .sum::<f64>()
            / self.scale
    }

    /// Values at `points`.
    pub fn sample(&self, points: &[[f64; 3]]) -> Vec<f64> {
        points.iter().map(|x| self.eval(*x)).collect()
    }
}

fn smooth_field(rng: &mut SampleRng, points: &[[f64; 3]], dims: usize, modes: usize) -> Vec<f64> {
    SmoothField::draw(rng, points, dims, modes).sample(points)
}

/// `−∇·(k∇u) = f` on the unit square (`dims = 2`, n × n cells) or cube (`dims = 3`, n³ cells), Dirichlet
/// `u = 0` on every side, `k = exp(1.5 g)` with g a smooth random field (contrast up to e³ ≈ 20), and f a smooth
/// random source; both from `seed`. Returns the problem and f (one value per cell, x fastest).
pub fn random_poisson(dims: usize, n: usize, seed: u64) -> Result<(PoissonFv, Vec<f64>), ansatz_solvers::ConfigError> {
    let zero = PoissonBc::Dirichlet(0.0);
    let probe = if dims == 3 {
        PoissonFv::new_3d([n; 3], [1.0; 3], None, [zero; 6], None)?
    } else {
        PoissonFv::new_2d(n, n, [1.0, 1.0], None, [zero; 4], None)?
    };
    let centres: Vec<[f64; 3]> = (0..probe.grid_cells()).map(|c| probe.centre(c)).collect();
    let mut rng = SampleRng::new(seed, 0);
    let k: Vec<f64> = smooth_field(&mut rng, &centres, dims, 12).iter().map(|g| (1.5 * g).exp()).collect();
    let f: Vec<f64> = smooth_field(&mut rng, &centres, dims, 12).iter().map(|g| 10.0 * g).collect();
    Ok((probe.with_k(k)?, f))
}

/// Plane-strain elasticity on the unit square with `n × n` cells: clamped left side, traction-free other sides,
/// log-normal Lamé fields (`μ = 0.5 exp(g₁)`, `λ = exp(g₂)`, g smooth random) and a smooth random body force; from
/// `seed`. Returns the problem and the right-hand side.
pub fn random_elasticity(n: usize, seed: u64) -> Result<(Elasticity2d, Vec<f64>), ansatz_solvers::ConfigError> {
    let h = 1.0 / n as f64;
    let centres: Vec<[f64; 3]> =
        (0..n * n).map(|c| [((c % n) as f64 + 0.5) * h, ((c / n) as f64 + 0.5) * h, 0.0]).collect();
    let mut rng = SampleRng::new(seed, 0);
    let mu: Vec<f64> = smooth_field(&mut rng, &centres, 2, 12).iter().map(|g| 0.5 * g.exp()).collect();
    let lambda: Vec<f64> = smooth_field(&mut rng, &centres, 2, 12).iter().map(|g| g.exp()).collect();
    let modes: Vec<(f64, f64, f64, f64)> =
        (0..4).map(|_| (rng.normal(), rng.normal(), rng.int(1, 3) as f64, rng.int(1, 3) as f64)).collect();
    let sides = [ElasticSide::Displacement, ElasticSide::Traction, ElasticSide::Traction, ElasticSide::Traction];
    let p = Elasticity2d::new(n, n, [1.0, 1.0], lambda, mu, Model::PlaneStrain, sides)?;
    let body = |x: f64, y: f64| -> [f64; 2] {
        let mut b = [0.0; 2];
        for (k, (a, c, mx, my)) in modes.iter().enumerate() {
            let s = (PI * (mx * x + my * y) + k as f64).sin();
            b[0] += a * s;
            b[1] += c * s;
        }
        b
    };
    let rhs = p.rhs(&body, &|_: Side, _, _| [0.0; 2]);
    Ok((p, rhs))
}
