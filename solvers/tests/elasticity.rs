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

#[test]
fn symmetric_positive_definite_with_jumps_and_plane_stress() {
    use ansatz_solvers::krylov::lanczos;
    let n = 12;
    // two materials: stiff left half
    let lam: Vec<f64> = (0..n * n).map(|c| if c % n < n / 2 { 10.0 } else { 1.0 }).collect();
    let mu: Vec<f64> = (0..n * n).map(|c| if c % n < n / 2 { 5.0 } else { 0.5 }).collect();
    let sides = [ElasticSide::Displacement, ElasticSide::Traction, ElasticSide::Traction, ElasticSide::Traction];
    for model in [Model::PlaneStrain, Model::PlaneStress] {
        let p = Elasticity2d::new(n, n, [1.0, 1.0], lam.clone(), mu.clone(), model, sides).unwrap();
        let a = p.assemble();
        assert!(a.asymmetry() < 1e-9);
        let start: Vec<f64> = (0..a.nrows()).map(|i| 1.0 + (i % 5) as f64).collect();
        let (al, be) = lanczos(&a, &start, 60).unwrap();
        let ev = ansatz_solvers::krylov::tridiagonal_eigenvalues(&al, &be);
        assert!(ev[0] > 0.0, "{model:?}: smallest Ritz value {}", ev[0]);
        // a uniform pull on the right side gives a positive mean x displacement there
        let b = p.rhs(&|_, _| [0.0; 2], &|side, _, _| if side == Side::Right { [1.0, 0.0] } else { [0.0; 2] });
        let mut x = vec![0.0; p.unknowns()];
        pcg(&a, &Ic0::new(&a).unwrap(), &b, &mut x, Tolerance::relative(1e-10, 10_000)).unwrap();
        let (u, _) = p.fields(&x, &|_, _, _| [0.0; 2]);
        let right: f64 = (0..n).map(|j| u[j * (n + 1) + n]).sum::<f64>() / n as f64;
        assert!(right > 0.0);
    }
    // plane stress is softer than plane strain
    let disp = |model| {
        let p = Elasticity2d::new(n, n, [1.0, 1.0], lam.clone(), mu.clone(), model, sides).unwrap();
        let a = p.assemble();
        let b = p.rhs(&|_, _| [0.0; 2], &|side, _, _| if side == Side::Right { [1.0, 0.0] } else { [0.0; 2] });
        let mut x = vec![0.0; p.unknowns()];
        pcg(&a, &Ic0::new(&a).unwrap(), &b, &mut x, Tolerance::relative(1e-10, 10_000)).unwrap();
        x.iter().map(|v| v * v).sum::<f64>()
    };
    assert!(disp(Model::PlaneStress) > disp(Model::PlaneStrain));
    assert!(
        Elasticity2d::new(n, n, [1.0, 1.0], lam.clone(), mu.clone(), Model::PlaneStrain, [ElasticSide::Traction; 4])
            .is_err()
    );
}

#[test]
fn newmark_conserves_energy_without_forcing() {
    use ansatz_solvers::elasticity::Newmark;
    let (nx, ny) = (14, 10);
    let sides = [ElasticSide::Displacement, ElasticSide::Traction, ElasticSide::Displacement, ElasticSide::Traction];
    let lam: Vec<f64> = (0..nx * ny).map(|c| 1.0 + (c % 3) as f64).collect();
    let p = Elasticity2d::new(nx, ny, [1.4, 1.0], lam, vec![0.8; nx * ny], Model::PlaneStrain, sides).unwrap();
    let k = p.assemble();
    let mut nm = Newmark::new(k, p.lumped_mass(1.2), 0.01).unwrap();
    let n = p.unknowns();
    let mut u: Vec<f64> = (0..n).map(|i| 0.01 * ((i as f64) * 0.37).sin()).collect();
    let mut v = vec![0.0; n];
    let f = vec![0.0; n];
    let mut a = vec![0.0; n];
    nm.initial_acceleration(&u, &f, &mut a);
    let e0 = nm.energy(&u, &v);
    let mut prev = e0;
    for step in 0..300 {
        nm.step(&mut u, &mut v, &mut a, &f);
        let e = nm.energy(&u, &v);
        assert!((e - prev).abs() <= 1e-10 * e0, "step {step}: relative energy change {:e}", (e - prev) / e0);
        prev = e;
    }
    assert!(v.iter().any(|x| x.abs() > 1e-6), "the body moves");
}

#[test]
fn spectral_elasticity_is_exact_on_band_limited_data() {
    use ansatz_solvers::elasticity::SpectralElasticity2d;
    use std::f64::consts::PI;
    let (nx, ny, lx, ly, l, m) = (32, 24, 2.0 * PI, PI, 1.7, 0.6);
    let sp = SpectralElasticity2d::new(nx, ny, [lx, ly], l, m).unwrap();
    // u = A cos(k1·x) + B sin(k2·x), b = M(k1) A cos(k1·x) + M(k2) B sin(k2·x), M(k) = μ|k|² I + (λ+μ) k kᵀ
    let (k1, a1, k2, b2) = ([2.0, 2.0], [0.3, -0.5], [3.0, -4.0], [0.2, 0.7]);
    let mk = |k: [f64; 2], v: [f64; 2]| -> [f64; 2] {
        let k2n = k[0] * k[0] + k[1] * k[1];
        let kv = k[0] * v[0] + k[1] * v[1];
        [m * k2n * v[0] + (l + m) * k[0] * kv, m * k2n * v[1] + (l + m) * k[1] * kv]
    };
    let (m1, m2) = (mk(k1, a1), mk(k2, b2));
    let pts = |c: usize| ((c % nx) as f64 * lx / nx as f64, (c / nx) as f64 * ly / ny as f64);
    let (mut bx, mut by, mut ux, mut uy) =
        (vec![0.0; nx * ny], vec![0.0; nx * ny], vec![0.0; nx * ny], vec![0.0; nx * ny]);
    for c in 0..nx * ny {
        let (x, y) = pts(c);
        let (c1, s2) = ((k1[0] * x + k1[1] * y).cos(), (k2[0] * x + k2[1] * y).sin());
        bx[c] = m1[0] * c1 + m2[0] * s2;
        by[c] = m1[1] * c1 + m2[1] * s2;
        ux[c] = a1[0] * c1 + b2[0] * s2;
        uy[c] = a1[1] * c1 + b2[1] * s2;
    }
    let (mut u, mut v) = (vec![0.0; nx * ny], vec![0.0; nx * ny]);
    sp.solve(&bx, &by, &mut u, &mut v).unwrap();
    let err = (0..nx * ny).map(|c| (u[c] - ux[c]).abs().max((v[c] - uy[c]).abs())).fold(0.0, f64::max);
    assert!(err < 1e-13, "spectral elasticity error {err}");
}

#[test]
fn gradients_with_respect_to_body_force_and_lame_fields() {
    use ansatz_solvers::elasticity::{ElasticParameter, ElasticityRoot};
    use ansatz_solvers::implicit::{LinearSolver, implicit_jvp, implicit_vjp};
    let n = 8;
    let lam0: Vec<f64> = (0..n * n).map(|c| 1.0 + 0.5 * ((c * 7 % 11) as f64 / 11.0)).collect();
    let mu0: Vec<f64> = (0..n * n).map(|c| 0.6 + 0.3 * ((c * 5 % 13) as f64 / 13.0)).collect();
    let sides = [ElasticSide::Displacement, ElasticSide::Traction, ElasticSide::Displacement, ElasticSide::Traction];
    let boundary = |side: Side, x: f64, y: f64| -> [f64; 2] {
        match side {
            Side::Left => [0.01 * y, 0.0],
            Side::Bottom => [0.0, 0.02 * x],
            Side::Right => [0.3, 0.1 * y],
            Side::Top => [0.05, -0.2],
        }
    };
    let body = |x: f64, y: f64| [0.5 * y, -1.0 + x];
    for model in [Model::PlaneStrain, Model::PlaneStress] {
        let solve = |lam: &[f64], mu: &[f64]| -> (Elasticity2d, Vec<f64>) {
            let p = Elasticity2d::new(n, n, [1.0, 1.0], lam.to_vec(), mu.to_vec(), model, sides).unwrap();
            let a = p.assemble();
            let b = p.rhs(&body, &boundary);
            let mut x = vec![0.0; p.unknowns()];
            pcg(&a, &Ic0::new(&a).unwrap(), &b, &mut x, Tolerance::relative(1e-14, 20_000)).unwrap();
            (p, x)
        };
        let (p, u) = solve(&lam0, &mu0);
        let k = p.assemble();
        let weights: Vec<f64> = (0..u.len()).map(|i| ((i * 3 % 7) as f64) - 3.0).collect();
        let loss = |x: &[f64]| x.iter().zip(&weights).map(|(a, w)| a * w).sum::<f64>();
        let tol = Tolerance::relative(1e-13, 20_000);
        for wrt in [ElasticParameter::Lambda, ElasticParameter::Mu] {
            let root = ElasticityRoot { problem: &p, k: &k, u: &u, boundary: &boundary, wrt };
            let g = implicit_vjp(&root, &weights, LinearSolver::Cg, tol).unwrap();
            let dir: Vec<f64> = (0..n * n).map(|c| ((c * 13 % 17) as f64 / 17.0) - 0.5).collect();
            let eps = 1e-6;
            let shifted = |s: f64| {
                let (mut l, mut m) = (lam0.clone(), mu0.clone());
                let target = if wrt == ElasticParameter::Lambda { &mut l } else { &mut m };
                for (t, d) in target.iter_mut().zip(&dir) {
                    *t += s * d;
                }
                loss(&solve(&l, &m).1)
            };
            let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
            let ad: f64 = g.value.iter().zip(&dir).map(|(a, b)| a * b).sum();
            assert!((fd - ad).abs() <= 1e-6 * fd.abs(), "{model:?} {wrt:?}: implicit {ad} vs FD {fd}");
            let t = implicit_jvp(&root, &dir, LinearSolver::Cg, tol).unwrap();
            assert!((loss(&t.value) - ad).abs() <= 1e-9 * ad.abs(), "{model:?} {wrt:?}: jvp and vjp disagree");
        }
        // body force: dL/db = vol ⊙ K⁻¹ w
        let root = ElasticityRoot { problem: &p, k: &k, u: &u, boundary: &boundary, wrt: ElasticParameter::Body };
        let g = implicit_vjp(&root, &weights, LinearSolver::Cg, tol).unwrap();
        let mut kinv_w = vec![0.0; u.len()];
        pcg(&k, &Ic0::new(&k).unwrap(), &weights, &mut kinv_w, tol).unwrap();
        for ((gi, ki), vol) in g.value.iter().zip(&kinv_w).zip(p.lumped_mass(1.0)) {
            assert!((gi - vol * ki).abs() < 1e-9 * (vol * ki).abs().max(1e-6));
        }
    }
}
