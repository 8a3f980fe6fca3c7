//! The grid side of INSR's elasticity comparison: a strip `[0, lx] × [0, ly]` (plane strain, λ = μ = ρ = 1),
//! clamped on the left, free above and below, suddenly pulled on the right end by the traction `(tx, 0)` from rest,
//! on our staggered finite-volume grid. Implicit Euler (the scheme INSR's incremental potential discretises) and
//! Newmark's average acceleration (energy-conserving), both with the step `dt`; the static equilibrium for
//! reference. Prints the mean x displacement along the last column of cells (centre `lx − hx/2`) at every step.
//!
//! cargo run --release -p ansatz-benches --example insr_elasticity -- [NX] [DT] [STEPS] [TX]

use ansatz_solvers::elasticity::{ElasticSide, Elasticity2d, Model, Newmark, Side};
use ansatz_solvers::linalg::{SparseCholesky, SymbolicCholesky};

fn main() {
    let args: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let get = |i: usize, d: f64| args.get(i).copied().unwrap_or(d);
    let (nx, dt, steps, tx) = (get(0, 32.0) as usize, get(1, 0.1), get(2, 10.0) as usize, get(3, 0.05));
    let (lx, ly) = (1.0, 0.25);
    let ny = ((ly / lx * nx as f64).round() as usize).max(3);
    let sides = [ElasticSide::Displacement, ElasticSide::Traction, ElasticSide::Traction, ElasticSide::Traction];
    let p = Elasticity2d::new(nx, ny, [lx, ly], vec![1.0; nx * ny], vec![1.0; nx * ny], Model::PlaneStrain, sides)
        .expect("a valid strip");
    let boundary = move |side: Side, _: f64, _: f64| if side == Side::Right { [tx, 0.0] } else { [0.0, 0.0] };
    let k = p.assemble();
    let f = p.rhs(&|_, _| [0.0, 0.0], &boundary);
    let m = p.lumped_mass(1.0);
    let n = f.len();
    let end = |x: &[f64]| -> f64 {
        let (uf, _) = p.fields(x, &boundary);
        (0..ny).map(|j| (uf[j * (nx + 1) + nx - 1] + uf[j * (nx + 1) + nx]) / 2.0).sum::<f64>() / ny as f64
    };
    // static equilibrium
    let mut x = f.clone();
    SparseCholesky::new(&SymbolicCholesky::new(&k).expect("pattern"), &k).expect("SPD").solve_in_place(&mut x);
    println!("static {:.6e}", end(&x));
    // implicit Euler: (M/dt² + K) u_{n+1} = f + M (2u_n − u_{n−1})/dt²
    let eff = k.scale_add_diagonal(1.0, &m.iter().map(|v| v / (dt * dt)).collect::<Vec<_>>()).expect("shapes");
    let chol = SparseCholesky::new(&SymbolicCholesky::new(&eff).expect("pattern"), &eff).expect("SPD");
    let (mut u, mut um1) = (vec![0.0; n], vec![0.0; n]);
    let mut line = vec![];
    for _ in 0..steps {
        let mut rhs: Vec<f64> = (0..n).map(|i| f[i] + m[i] * (2.0 * u[i] - um1[i]) / (dt * dt)).collect();
        chol.solve_in_place(&mut rhs);
        um1 = std::mem::replace(&mut u, rhs);
        line.push(format!("{:.4e}", end(&u)));
    }
    println!("implicit-euler {}", line.join(" "));
    // Newmark from rest
    let mut nm = Newmark::new(k.clone(), m.clone(), dt).expect("a valid scheme");
    let (mut u, mut v, mut a) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    nm.initial_acceleration(&u, &f, &mut a);
    let mut line = vec![];
    for _ in 0..steps {
        nm.step(&mut u, &mut v, &mut a, &f);
        line.push(format!("{:.4e}", end(&u)));
    }
    println!("newmark {}", line.join(" "));
}
