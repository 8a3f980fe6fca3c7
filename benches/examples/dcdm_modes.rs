//! How an exported DCDM network treats single Laplacian modes: for the unit mode `v_k = sin(kπx) sin(kπy)` on an
//! `N²` grid with unit coefficient (u = 0 on every side), `‖f(v)‖`, the cosine of `f(v)` with `A⁻¹v` (= the cosine with `v`)
//! and the line-search loss. A usable preconditioner points along `A⁻¹v` (cosine near +1) for every k; a cosine
//! of −1 for some modes and +1 for others stalls DCDM and flexible CG.
//!
//! `cargo run --release -p ansatz-benches --example dcdm_modes -- net.apc 32`

use ansatz_operators::dcdm::NetworkPreconditioner;
use ansatz_operators::precond_file::PrecondFile;
use ansatz_solvers::krylov::{Tolerance, cg};
use ansatz_solvers::linalg::LinearOperator;
use ansatz_solvers::poisson::{PoissonBc, PoissonFv};
use ansatz_solvers::precond::Preconditioner;

fn main() -> Result<(), String> {
    let model = std::env::args().nth(1).ok_or("usage: dcdm_modes MODEL.apc [N]")?;
    let n: usize = match std::env::args().nth(2) {
        Some(s) => s.parse().map_err(|_| format!("grid size: '{s}' is not a number"))?,
        None => 32,
    };
    if n < 4 {
        return Err(format!("grid size {n}: at least 4"));
    }
    let file = PrecondFile::load(std::path::Path::new(&model)).map_err(|e| e.to_string())?;
    let p =
        PoissonFv::new_2d(n, n, [1.0, 1.0], None, [PoissonBc::Dirichlet(0.0); 4], None).map_err(|e| e.to_string())?;
    let a = p.assemble();
    let dev = burn::prelude::Device::flex();
    let net = file.network(&dev)?;
    let m = NetworkPreconditioner::new(net, [1, n, n], p.cells().to_vec(), dev, burn::tensor::DType::F32)?;
    for k in [1usize, 2, 4, 8, 16, n - 1] {
        let v: Vec<f64> = (0..n * n)
            .map(|c| {
                let (i, j) = ((c % n) as f64 + 0.5, (c / n) as f64 + 0.5);
                (k as f64 * std::f64::consts::PI * i / n as f64).sin()
                    * (k as f64 * std::f64::consts::PI * j / n as f64).sin()
            })
            .collect();
        let nv = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let v: Vec<f64> = v.iter().map(|x| x / nv).collect();
        let mut q = vec![0.0; v.len()];
        m.apply(&v, &mut q);
        let mut x = vec![0.0; v.len()];
        cg(&a, &v, &mut x, Tolerance::relative(1e-10, 5000)).map_err(|e| e.to_string())?;
        let nrm = |a: &[f64]| a.iter().map(|x| x * x).sum::<f64>().sqrt();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let mut aq = vec![0.0; v.len()];
        a.apply(&q, &mut aq);
        let c = dot(&q, &v) / dot(&q, &aq);
        let res: f64 = v.iter().zip(&aq).map(|(b, y)| (b - c * y).powi(2)).sum::<f64>();
        println!(
            "mode {k:2}: |f(v)| {:.3e}, |A^-1 v| {:.3e}, cos(f(v), A^-1 v) {:.3}, cos(f(v), v) {:.3}, line-search loss {:.3}",
            nrm(&q),
            nrm(&x),
            dot(&q, &x) / (nrm(&q) * nrm(&x)),
            dot(&q, &v) / nrm(&q),
            res
        );
    }
    Ok(())
}
