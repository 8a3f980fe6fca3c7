//! Finite-volume Poisson: second-order convergence to manufactured solutions (2D and 3D, variable k, mixed
//! boundaries), matrix-free = assembled, pure Neumann, solid masks; spectral Poisson exact on band-limited data.

use ansatz_solvers::krylov::Tolerance;
use ansatz_solvers::linalg::LinearOperator;
use ansatz_solvers::poisson::{PoissonBc, PoissonError, PoissonFv, SpectralPoisson};
use ansatz_solvers::precond::{Ic0, Jacobi};
use std::f64::consts::PI;

fn order(hs: &[f64], errs: &[f64]) -> f64 {
    let n = hs.len() as f64;
    let (xs, ys): (Vec<f64>, Vec<f64>) = hs.iter().zip(errs).map(|(h, e)| (h.ln(), e.ln())).unzip();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let num: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    num / xs.iter().map(|x| (x - mx) * (x - mx)).sum::<f64>()
}

// u = exp(x/2) sin(πy) + x y (2D), k = 1 + x² + 0.5 sin(πy)
fn u2(x: f64, y: f64) -> f64 {
    (0.5 * x).exp() * (PI * y).sin() + x * y
}
fn grad_u2(x: f64, y: f64) -> [f64; 2] {
    [0.5 * (0.5 * x).exp() * (PI * y).sin() + y, PI * (0.5 * x).exp() * (PI * y).cos() + x]
}
fn k2(x: f64, y: f64) -> f64 {
    1.0 + x * x + 0.5 * (PI * y).sin()
}
fn f2(x: f64, y: f64) -> f64 {
    let [ux, uy] = grad_u2(x, y);
    let lap = (0.25 - PI * PI) * (0.5 * x).exp() * (PI * y).sin();
    let (kx, ky) = (2.0 * x, 0.5 * PI * (PI * y).cos());
    -(kx * ux + ky * uy + k2(x, y) * lap)
}

#[test]
fn second_order_in_2d_with_variable_k_and_mixed_boundaries() {
    let ns = [16, 32, 64];
    let mut errs = vec![];
    for &n in &ns {
        let h = 1.0 / n as f64;
        let cells = n * n;
        let centre = |c: usize| ((c % n) as f64 * h + 0.5 * h, (c / n) as f64 * h + 0.5 * h);
        let k: Vec<f64> = (0..cells)
            .map(|c| {
                let (x, y) = centre(c);
                k2(x, y)
            })
            .collect();
        // the boundary data vary along each side, so the right-hand side is built here from face-centre values
        // (x− and y− Dirichlet, x+ and y+ Neumann fluxes) the way PoissonFv::rhs does for uniform values
        let p = PoissonFv::new_2d(
            n,
            n,
            [1.0, 1.0],
            Some(k.clone()),
            [PoissonBc::Dirichlet(0.0), PoissonBc::Neumann(0.0), PoissonBc::Dirichlet(0.0), PoissonBc::Neumann(0.0)],
            None,
        )
        .unwrap();
        let mut b: Vec<f64> = (0..cells)
            .map(|c| {
                let (x, y) = centre(c);
                f2(x, y)
            })
            .collect();
        for c in 0..cells {
            let (i, j) = (c % n, c / n);
            let (x, y) = centre(c);
            if i == 0 {
                b[c] += 2.0 * k[c] / (h * h) * u2(0.0, y);
            }
            if i == n - 1 {
                b[c] += k2(1.0, y) * grad_u2(1.0, y)[0] / h;
            }
            if j == 0 {
                b[c] += 2.0 * k[c] / (h * h) * u2(x, 0.0);
            }
            if j == n - 1 {
                b[c] += k2(x, 1.0) * grad_u2(x, 1.0)[1] / h;
            }
        }
        let a = p.assemble();
        assert!(a.asymmetry() < 1e-9, "assembled operator must be symmetric");
        let ic = Ic0::new(&a).unwrap();
        let mut x = vec![0.0; cells];
        ansatz_solvers::krylov::pcg(&a, &ic, &b, &mut x, Tolerance::relative(1e-12, 5000)).unwrap();
        let err = (0..cells)
            .map(|c| {
                let (xx, yy) = centre(c);
                (x[c] - u2(xx, yy)).powi(2)
            })
            .sum::<f64>()
            * h
            * h;
        errs.push(err.sqrt());
    }
    let p = order(&ns.map(|n| 1.0 / n as f64), &errs);
    assert!(p >= 1.9, "2D order {p}, errors {errs:?}");
}

#[test]
fn second_order_in_3d_and_uniform_boundary_values() {
    // u = sin(πx) sin(πy) sin(πz) + 1 with Dirichlet 1 on all sides, k = 1 + x + y z
    let u = |x: f64, y: f64, z: f64| (PI * x).sin() * (PI * y).sin() * (PI * z).sin() + 1.0;
    let k = |x: f64, y: f64, z: f64| 1.0 + x + y * z;
    let f = |x: f64, y: f64, z: f64| {
        let (sx, sy, sz, cx, cy, cz) =
            ((PI * x).sin(), (PI * y).sin(), (PI * z).sin(), (PI * x).cos(), (PI * y).cos(), (PI * z).cos());
        let grad = [PI * cx * sy * sz, PI * sx * cy * sz, PI * sx * sy * cz];
        let kg = [1.0, z, y];
        let lap = -3.0 * PI * PI * sx * sy * sz;
        -(kg[0] * grad[0] + kg[1] * grad[1] + kg[2] * grad[2] + k(x, y, z) * lap)
    };
    let ns = [8, 16, 32];
    let mut errs = vec![];
    for &n in &ns {
        let cells = n * n * n;
        let probe = PoissonFv::new_3d([n; 3], [1.0; 3], None, [PoissonBc::Dirichlet(1.0); 6], None).unwrap();
        let c3 = |c: usize| probe.centre(c);
        let kk: Vec<f64> = (0..cells)
            .map(|c| {
                let [x, y, z] = c3(c);
                k(x, y, z)
            })
            .collect();
        let p = PoissonFv::new_3d([n; 3], [1.0; 3], Some(kk), [PoissonBc::Dirichlet(1.0); 6], None).unwrap();
        let src: Vec<f64> = (0..cells)
            .map(|c| {
                let [x, y, z] = c3(c);
                f(x, y, z)
            })
            .collect();
        let a = p.assemble();
        let (sol, info) = p.solve(&src, &Ic0::new(&a).unwrap(), Tolerance::relative(1e-12, 5000)).unwrap();
        assert!(info.iterations > 0);
        let h3 = (1.0 / n as f64).powi(3);
        let err = (0..cells)
            .map(|c| {
                let [x, y, z] = c3(c);
                (sol[c] - u(x, y, z)).powi(2)
            })
            .sum::<f64>()
            * h3;
        errs.push(err.sqrt());
    }
    let p = order(&ns.map(|n| 1.0 / n as f64), &errs);
    assert!(p >= 1.9, "3D order {p}, errors {errs:?}");
}

#[test]
fn matrix_free_equals_assembled() {
    let n = [7, 6, 5];
    let cells = 210;
    let k: Vec<f64> = (0..cells).map(|c| 1.0 + (c % 11) as f64 * 0.3).collect();
    let fluid: Vec<bool> = (0..cells).map(|c| c % 13 != 5).collect();
    for (p, len) in [
        (
            PoissonFv::new_3d(
                n,
                [1.0, 2.0, 0.5],
                Some(k.clone()),
                [
                    PoissonBc::Dirichlet(1.0),
                    PoissonBc::Neumann(2.0),
                    PoissonBc::Dirichlet(0.0),
                    PoissonBc::Neumann(0.0),
                    PoissonBc::Dirichlet(3.0),
                    PoissonBc::Dirichlet(0.0),
                ],
                Some(fluid.clone()),
            )
            .unwrap(),
            cells,
        ),
        (
            PoissonFv::new_2d(
                14,
                15,
                [1.0, 1.0],
                Some(k.clone()),
                [PoissonBc::Neumann(0.0), PoissonBc::Dirichlet(0.0), PoissonBc::Neumann(0.0), PoissonBc::Neumann(1.0)],
                Some(fluid.clone()),
            )
            .unwrap(),
            210,
        ),
    ] {
        assert_eq!(p.grid_cells(), len);
        let a = p.assemble();
        let m = p.unknowns();
        let x: Vec<f64> = (0..m).map(|i| ((i * 29 % 17) as f64) - 8.0).collect();
        let (mut y1, mut y2) = (vec![0.0; m], vec![0.0; m]);
        a.apply(&x, &mut y1);
        p.apply(&x, &mut y2);
        let d = y1.iter().zip(&y2).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(d < 1e-9, "matrix-free differs by {d}");
        assert!(a.asymmetry() < 1e-9);
    }
}

#[test]
fn pure_neumann_checks_compatibility_and_fixes_the_mean() {
    let n = 32;
    let h = 1.0 / n as f64;
    let bc = [PoissonBc::Neumann(0.0); 4];
    let p = PoissonFv::new_2d(n, n, [1.0, 1.0], None, bc, None).unwrap();
    assert!(p.is_singular());
    // u = cos(πx) cos(πy): zero normal derivative, f = 2π² u (zero mean)
    let centre = |c: usize| ((c % n) as f64 * h + 0.5 * h, (c / n) as f64 * h + 0.5 * h);
    let f: Vec<f64> = (0..n * n)
        .map(|c| {
            let (x, y) = centre(c);
            2.0 * PI * PI * (PI * x).cos() * (PI * y).cos()
        })
        .collect();
    let a = p.assemble();
    let (u, _) = p.solve(&f, &Jacobi::new(&a).unwrap(), Tolerance::relative(1e-10, 5000)).unwrap();
    let mean = u.iter().sum::<f64>() / u.len() as f64;
    assert!(mean.abs() < 1e-12);
    let err = (0..n * n)
        .map(|c| {
            let (x, y) = centre(c);
            (u[c] - (PI * x).cos() * (PI * y).cos()).abs()
        })
        .fold(0.0, f64::max);
    assert!(err < 5e-3, "error {err}");
    // an incompatible source is refused with its imbalance
    let bad: Vec<f64> = f.iter().map(|v| v + 1.0).collect();
    assert!(matches!(p.rhs(&bad), Err(PoissonError::Incompatible { .. })));
}

#[test]
fn solid_cells_are_walls() {
    // masking the right half of a box with a Neumann-0 right side equals the left half alone
    let (nx, ny) = (16, 8);
    let fluid: Vec<bool> = (0..nx * ny).map(|c| c % nx < nx / 2).collect();
    let bc = [PoissonBc::Dirichlet(1.0), PoissonBc::Neumann(0.0), PoissonBc::Dirichlet(0.0), PoissonBc::Neumann(0.0)];
    let masked = PoissonFv::new_2d(nx, ny, [2.0, 1.0], None, bc, Some(fluid)).unwrap();
    let half = PoissonFv::new_2d(nx / 2, ny, [1.0, 1.0], None, bc, None).unwrap();
    assert_eq!(masked.unknowns(), half.unknowns());
    assert_eq!(masked.assemble(), half.assemble());
    // an isolated solid-enclosed pocket without Dirichlet faces is a floating region
    let pocket: Vec<bool> = (0..64)
        .map(|c| {
            let (i, j) = (c % 8, c / 8);
            !(i == 4 || j == 4) || (i == 4 && j == 4)
        })
        .collect();
    let p = PoissonFv::new_2d(8, 8, [1.0, 1.0], None, [PoissonBc::Dirichlet(0.0); 4], Some(pocket)).unwrap();
    assert!(p.is_singular());
}

#[test]
fn spectral_poisson_is_exact_on_band_limited_data() {
    let (nx, ny, lx, ly) = (32, 16, 2.0 * PI, PI);
    let sp = SpectralPoisson::new(nx, ny, [lx, ly]).unwrap();
    let u = |x: f64, y: f64| (3.0 * x).sin() * (2.0 * y).cos() + 0.5 * (x + 4.0 * y).cos();
    let f = |x: f64, y: f64| 13.0 * (3.0 * x).sin() * (2.0 * y).cos() + 0.5 * 17.0 * (x + 4.0 * y).cos();
    let pts = |c: usize| ((c % nx) as f64 * lx / nx as f64, (c / nx) as f64 * ly / ny as f64);
    let fv: Vec<f64> = (0..nx * ny)
        .map(|c| {
            let (x, y) = pts(c);
            f(x, y)
        })
        .collect();
    let mut sol = vec![0.0; nx * ny];
    sp.solve(&fv, &mut sol).unwrap();
    let err = (0..nx * ny)
        .map(|c| {
            let (x, y) = pts(c);
            (sol[c] - u(x, y)).abs()
        })
        .fold(0.0, f64::max);
    assert!(err < 1e-13, "spectral error {err}");
    let shifted: Vec<f64> = fv.iter().map(|v| v + 1.0).collect();
    assert!(sp.solve(&shifted, &mut sol).is_err());
}

#[test]
fn multigrid_pcg_iterations_stay_flat_under_refinement() {
    use ansatz_solvers::krylov::pcg;
    use ansatz_solvers::precond::Multigrid;
    let mut counts = vec![];
    for n in [32, 64, 128] {
        let cells = n * n;
        let probe = PoissonFv::new_2d(n, n, [1.0, 1.0], None, [PoissonBc::Dirichlet(0.0); 4], None).unwrap();
        let k: Vec<f64> = (0..cells)
            .map(|c| {
                let [x, y, _] = probe.centre(c);
                1.0 + 0.5 * (2.0 * PI * x).sin() * (PI * y).cos()
            })
            .collect();
        let bc =
            [PoissonBc::Dirichlet(0.0), PoissonBc::Dirichlet(1.0), PoissonBc::Neumann(0.0), PoissonBc::Dirichlet(0.0)];
        let p = PoissonFv::new_2d(n, n, [1.0, 1.0], Some(k), bc, None).unwrap();
        let a = p.assemble();
        let mg = Multigrid::new(&a, &p.box_grid(), 2, 64).unwrap();
        assert!(mg.level_sizes().len() >= 3);
        let f: Vec<f64> = (0..cells)
            .map(|c| {
                let [x, y, _] = p.centre(c);
                (3.0 * x).sin() + y
            })
            .collect();
        let b = p.rhs(&f).unwrap();
        let mut x = vec![0.0; p.unknowns()];
        let info = pcg(&a, &mg, &b, &mut x, Tolerance::relative(1e-8, 200)).unwrap();
        counts.push(info.iterations);
    }
    eprintln!("multigrid-PCG iterations at 32², 64², 128²: {counts:?}");
    let (lo, hi) = (*counts.iter().min().unwrap() as f64, *counts.iter().max().unwrap() as f64);
    assert!(hi <= 1.2 * lo + 1.0 && hi <= 15.0, "multigrid-PCG iterations {counts:?}");
    // 3D and with solid cells
    for (n, masked) in [(16, false), (32, false), (32, true)] {
        let cells = n * n * n;
        let fluid = masked.then(|| {
            (0..cells)
                .map(|c| {
                    let (i, j) = (c % n, (c / n) % n);
                    !(i > n / 4 && i < n / 2 && j > n / 4 && j < n / 2)
                })
                .collect()
        });
        let p = PoissonFv::new_3d([n; 3], [1.0; 3], None, [PoissonBc::Dirichlet(0.0); 6], fluid).unwrap();
        let a = p.assemble();
        let mg = Multigrid::new(&a, &p.box_grid(), 2, 64).unwrap();
        let b = vec![1.0; p.unknowns()];
        let mut x = vec![0.0; p.unknowns()];
        let info = pcg(&a, &mg, &b, &mut x, Tolerance::relative(1e-8, 200)).unwrap();
        eprintln!("3D n = {n}, masked = {masked}: {} iterations", info.iterations);
        assert!(info.iterations <= 20, "3D n = {n}, masked = {masked}: {} iterations", info.iterations);
    }
}
