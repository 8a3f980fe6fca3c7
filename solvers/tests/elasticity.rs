//! Static 2D elasticity on the staggered grid: second-order convergence to a manufactured solution with
//! displacement and traction sides, symmetry and definiteness, plane stress.

use ansatz_solvers::elasticity::{ElasticSide, Elasticity2d, Model, Side};
use ansatz_solvers::krylov::{Tolerance, pcg};
use ansatz_solvers::precond::Ic0;

const A: f64 = 1.1;
const B: f64 = 0.7;
const C: f64 = 0.9;
const D: f64 = 1.3;

fn exact(x: f64, y: f64) -> [f64; 2] {
    [(A * x).sin() * (B * y).cos(), (C * x).cos() * (D * y).sin()]
}

/// Stress components (σ_xx, σ_yy, σ_xy) of the exact field.
fn stress(x: f64, y: f64, l: f64, m: f64) -> [f64; 3] {
    let exx = A * (A * x).cos() * (B * y).cos();
    let eyy = D * (C * x).cos() * (D * y).cos();
    let g = -B * (A * x).sin() * (B * y).sin() - C * (C * x).sin() * (D * y).sin();
    [(l + 2.0 * m) * exx + l * eyy, l * exx + (l + 2.0 * m) * eyy, m * g]
}

/// b = −∇·σ by central differences of the exact stress (error ~1e-10).
fn body(x: f64, y: f64, l: f64, m: f64) -> [f64; 2] {
    let e = 1e-5;
    let sx = |x, y| stress(x, y, l, m);
    let dxx = (sx(x + e, y)[0] - sx(x - e, y)[0]) / (2.0 * e);
    let dxy_y = (sx(x, y + e)[2] - sx(x, y - e)[2]) / (2.0 * e);
    let dxy_x = (sx(x + e, y)[2] - sx(x - e, y)[2]) / (2.0 * e);
    let dyy = (sx(x, y + e)[1] - sx(x, y - e)[1]) / (2.0 * e);
    [-(dxx + dxy_y), -(dxy_x + dyy)]
}

fn order(hs: &[f64], errs: &[f64]) -> f64 {
    (errs[0] / errs[errs.len() - 1]).ln() / (hs[0] / hs[hs.len() - 1]).ln()
}

#[test]
fn second_order_with_displacement_and_traction_sides() {
    let (l, m) = (1.3, 0.7);
    let sides = [ElasticSide::Displacement, ElasticSide::Traction, ElasticSide::Displacement, ElasticSide::Traction];
    let boundary = move |side: Side, x: f64, y: f64| -> [f64; 2] {
        let s = stress(x, y, l, m);
        match side {
            Side::Left | Side::Bottom => exact(x, y),
            Side::Right => [s[0], s[2]],
            Side::Top => [s[2], s[1]],
        }
    };
    let ns = [16, 32, 64];
    let mut errs = vec![];
    for &n in &ns {
        let p = Elasticity2d::new(n, n, [1.0, 1.0], vec![l; n * n], vec![m; n * n], Model::PlaneStrain, sides).unwrap();
        let a = p.assemble();
        assert!(a.asymmetry() < 1e-9 * a.diagonal().iter().fold(0.0_f64, |x, y| x.max(*y)));
        let b = p.rhs(&|x, y| body(x, y, l, m), &boundary);
        let mut sol = vec![0.0; p.unknowns()];
        pcg(&a, &Ic0::new(&a).unwrap(), &b, &mut sol, Tolerance::relative(1e-12, 20_000)).unwrap();
        let (u, v) = p.fields(&sol, &boundary);
        let h = 1.0 / n as f64;
        let mut e2 = 0.0;
        for j in 0..n {
            for i in 0..=n {
                let (x, y) = p.u_position(i, j);
                e2 += (u[j * (n + 1) + i] - exact(x, y)[0]).powi(2) * h * h;
            }
        }
        for j in 0..=n {
            for i in 0..n {
                let (x, y) = p.v_position(i, j);
                e2 += (v[j * n + i] - exact(x, y)[1]).powi(2) * h * h;
            }
        }
        errs.push(e2.sqrt());
    }
    let p = order(&ns.map(|n| 1.0 / n as f64), &errs);
    eprintln!("elasticity L2 errors {errs:?}, order {p:.3}");
    assert!(p >= 1.9, "order {p}, errors {errs:?}");
}
