//! Krylov methods and preconditioners against a dense oracle, on SPD and nonsymmetric model matrices.

use ansatz_solvers::krylov::{SolveError, Tolerance, cg, fcg, gmres, lanczos, pcg, tridiagonal_eigenvalues};
use ansatz_solvers::linalg::{CsrMatrix, FnOperator, LinearOperator, dense_matrix};
use ansatz_solvers::precond::{Ic0, Identity, Jacobi, Preconditioner, Shell, Ssor};

/// 5-point −Δ on an n × n grid with Dirichlet walls, h = 1/(n+1), optionally with convection (nonsymmetric).
fn laplacian(n: usize, convection: f64, jitter: bool) -> CsrMatrix {
    let mut t = vec![];
    let id = |i: usize, j: usize| j * n + i;
    for j in 0..n {
        for i in 0..n {
            let c = 4.0 + if jitter { 0.5 * ((i * 7 + j * 3) % 5) as f64 / 5.0 } else { 0.0 };
            t.push((id(i, j), id(i, j), c));
            if i > 0 {
                t.push((id(i, j), id(i - 1, j), -1.0 - convection));
            }
            if i + 1 < n {
                t.push((id(i, j), id(i + 1, j), -1.0 + convection));
            }
            if j > 0 {
                t.push((id(i, j), id(i, j - 1), -1.0));
            }
            if j + 1 < n {
                t.push((id(i, j), id(i, j + 1), -1.0));
            }
        }
    }
    CsrMatrix::from_triplets(n * n, n * n, &t).unwrap()
}

/// Dense Gaussian elimination with partial pivoting (the oracle).
fn dense_solve(a: &CsrMatrix, b: &[f64]) -> Vec<f64> {
    let n = a.nrows();
    let mut m = a.to_dense();
    let mut x = b.to_vec();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| m[i * n + c].abs().total_cmp(&m[j * n + c].abs())).unwrap();
        for k in 0..n {
            m.swap(c * n + k, p * n + k);
        }
        x.swap(c, p);
        for r in c + 1..n {
            let f = m[r * n + c] / m[c * n + c];
            for k in c..n {
                m[r * n + k] -= f * m[c * n + k];
            }
            x[r] -= f * x[c];
        }
    }
    for r in (0..n).rev() {
        let mut s = x[r];
        for k in r + 1..n {
            s -= m[r * n + k] * x[k];
        }
        x[r] = s / m[r * n + r];
    }
    x
}

fn rhs(n: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 37 % 101) as f64 / 50.0 - 1.0) + 0.3).collect()
}

fn true_residual(a: &CsrMatrix, b: &[f64], x: &[f64]) -> f64 {
    let mut r = vec![0.0; b.len()];
    a.apply(x, &mut r);
    r.iter().zip(b).map(|(r, b)| (b - r) * (b - r)).sum::<f64>().sqrt()
}

fn bnorm(b: &[f64]) -> f64 {
    b.iter().map(|v| v * v).sum::<f64>().sqrt()
}

#[test]
fn every_preconditioner_converges_to_the_dense_solution() {
    let a = laplacian(20, 0.0, true);
    let b = rhs(a.nrows());
    let exact = dense_solve(&a, &b);
    let tol = Tolerance::relative(1e-10, 1000);
    let jac = Jacobi::new(&a).unwrap();
    let ic = Ic0::new(&a).unwrap();
    let ssor = Ssor::new(&a, 1.5).unwrap();
    let precs: [(&str, &dyn Preconditioner); 4] =
        [("none", &Identity), ("jacobi", &jac), ("ic0", &ic), ("ssor", &ssor)];
    let mut iters = vec![];
    for (name, m) in precs {
        let mut x = vec![0.0; a.nrows()];
        let info = pcg(&a, m, &b, &mut x, tol).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(true_residual(&a, &b, &x) <= 1.01e-10 * bnorm(&b), "{name}");
        let err = x.iter().zip(&exact).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
        assert!(err < 1e-8, "{name}: error {err}");
        assert_eq!(info.residuals.len(), info.iterations + 1);
        iters.push((name, info.iterations));
    }
    // IC(0) and SSOR need clearly fewer iterations than plain CG
    assert!(iters[2].1 * 2 < iters[0].1 && iters[3].1 * 2 < iters[0].1, "{iters:?}");
    let mut x = vec![0.0; a.nrows()];
    assert_eq!(cg(&a, &b, &mut x, tol).unwrap().iterations, iters[0].1);
}

#[test]
fn failures_are_typed_and_carry_the_report() {
    let a = laplacian(10, 0.0, false);
    let b = rhs(100);
    let mut x = vec![0.0; 100];
    match cg(&a, &b, &mut x, Tolerance::relative(1e-12, 3)) {
        Err(SolveError::NotConverged(info)) => assert_eq!((info.iterations, info.residuals.len()), (3, 4)),
        other => panic!("{other:?}"),
    }
    // −A is negative definite
    let neg = ansatz_solvers::linalg::FnOperator::new(100, |x: &[f64], y: &mut [f64]| {
        a.apply(x, y);
        y.iter_mut().for_each(|v| *v = -*v);
    });
    let mut x = vec![0.0; 100];
    assert!(matches!(cg(&neg, &b, &mut x, Tolerance::relative(1e-8, 100)), Err(SolveError::IndefiniteOperator(_))));
    // a nonlinear preconditioner is refused by PCG, accepted by FCG
    let nonlinear = Shell::new(|r: &[f64], z: &mut [f64]| z.copy_from_slice(r), false);
    assert!(matches!(
        pcg(&a, &nonlinear, &b, &mut x, Tolerance::relative(1e-8, 100)),
        Err(SolveError::NonlinearPreconditioner)
    ));
    // an indefinite preconditioner is detected
    let negm = Shell::new(|r: &[f64], z: &mut [f64]| z.iter_mut().zip(r).for_each(|(z, r)| *z = -r), true);
    let mut x = vec![0.0; 100];
    assert!(matches!(
        pcg(&a, &negm, &b, &mut x, Tolerance::relative(1e-8, 100)),
        Err(SolveError::IndefinitePreconditioner(_))
    ));
    // sizes and non-finite input
    assert!(matches!(
        cg(&a, &b[..50], &mut vec![0.0; 100], Tolerance::relative(1e-8, 10)),
        Err(SolveError::Size { .. })
    ));
    let mut bad = b.clone();
    bad[3] = f64::NAN;
    assert!(matches!(cg(&a, &bad, &mut vec![0.0; 100], Tolerance::relative(1e-8, 10)), Err(SolveError::NonFinite)));
    // zero right-hand side
    let info = cg(&a, &vec![0.0; 100], &mut vec![1.0; 100], Tolerance::relative(1e-8, 10)).unwrap();
    assert_eq!(info.reason, Some(ansatz_solvers::krylov::Reason::ZeroRhs));
}

#[test]
fn flexible_cg_accepts_a_nonlinear_preconditioner() {
    let a = laplacian(24, 0.0, true);
    let b = rhs(a.nrows());
    let tol = Tolerance::relative(1e-9, 2000);
    // inner CG with a loose tolerance: a nonlinear, varying approximation of A⁻¹
    let inner = Shell::new(
        |r: &[f64], z: &mut [f64]| {
            z.fill(0.0);
            let _ = cg(&a, r, z, Tolerance::relative(1e-2, 30));
        },
        false,
    );
    let mut x = vec![0.0; a.nrows()];
    let info = fcg(&a, &inner, &b, &mut x, tol, 4).unwrap();
    assert!(true_residual(&a, &b, &x) <= 1.01e-9 * bnorm(&b));
    let mut y = vec![0.0; a.nrows()];
    let plain = cg(&a, &b, &mut y, tol).unwrap();
    assert!(info.iterations * 3 < plain.iterations, "fcg {} vs cg {}", info.iterations, plain.iterations);
    // with a fixed linear SPD preconditioner FCG(1) tracks PCG
    let ic = Ic0::new(&a).unwrap();
    let mut x1 = vec![0.0; a.nrows()];
    let mut x2 = vec![0.0; a.nrows()];
    let i1 = fcg(&a, &ic, &b, &mut x1, tol, 1).unwrap().iterations;
    let i2 = pcg(&a, &ic, &b, &mut x2, tol).unwrap().iterations;
    assert!((i1 as i64 - i2 as i64).abs() <= 2, "fcg {i1} vs pcg {i2}");
}

#[test]
fn gmres_solves_a_nonsymmetric_system() {
    let a = laplacian(16, 0.4, true);
    assert!(a.asymmetry() > 0.5);
    let b = rhs(a.nrows());
    let exact = dense_solve(&a, &b);
    for (name, m, restart) in [
        ("none", &Identity as &dyn Preconditioner, 30),
        ("jacobi", &Jacobi::new(&a).unwrap() as &dyn Preconditioner, 10),
    ] {
        let mut x = vec![0.0; a.nrows()];
        let info = gmres(&a, m, &b, &mut x, Tolerance::relative(1e-10, 2000), restart)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(true_residual(&a, &b, &x) <= 1.01e-10 * bnorm(&b), "{name}: {:?}", info.reason);
        let err = x.iter().zip(&exact).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
        assert!(err < 1e-8, "{name}: error {err}");
    }
}

#[test]
fn lanczos_finds_the_extreme_eigenvalues() {
    let n = 30;
    let a = laplacian(n, 0.0, false);
    let start: Vec<f64> = (0..n * n).map(|i| 1.0 + (i % 7) as f64 * 0.1).collect();
    let (al, be) = lanczos(&a, &start, 120).unwrap();
    let ritz = tridiagonal_eigenvalues(&al, &be);
    let h = std::f64::consts::PI / (n + 1) as f64;
    let lmin = 2.0 * (2.0 - 2.0 * h.cos());
    let lmax = 2.0 * (2.0 - 2.0 * (n as f64 * h).cos());
    assert!((ritz[0] - lmin).abs() < 1e-8 * lmax, "{} vs {lmin}", ritz[0]);
    assert!((ritz.last().unwrap() - lmax).abs() < 1e-8 * lmax);
}

#[test]
fn cg_without_a_preconditioner_skips_it_and_changes_nothing() {
    // the identity declared as such (no copy, r · z taken as r · r) against the same map undeclared
    struct Copy;
    impl Preconditioner for Copy {
        fn apply(&self, r: &[f64], z: &mut [f64]) {
            z.copy_from_slice(r);
        }
    }
    for (n, jitter) in [(12, false), (30, true)] {
        let a = laplacian(n, 0.0, jitter);
        let b = rhs(a.nrows());
        let tol = Tolerance::relative(1e-10, 10_000);
        let (mut x1, mut x2) = (vec![0.0; b.len()], vec![0.0; b.len()]);
        let i1 = pcg(&a, &Identity, &b, &mut x1, tol).unwrap();
        let i2 = pcg(&a, &Copy, &b, &mut x2, tol).unwrap();
        assert_eq!(x1, x2, "n = {n}");
        assert_eq!(i1.residuals, i2.residuals, "n = {n}");
        assert!(true_residual(&a, &b, &x1) <= 1e-9 * bnorm(&b), "n = {n}");
    }
}

#[test]
fn cg_on_a_large_system_is_the_same_on_any_thread_count() {
    // 100² unknowns: above the size where the fused passes run in parallel blocks
    let a = laplacian(100, 0.0, true);
    let b = rhs(a.nrows());
    let solve = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut x = vec![0.0; b.len()];
            let info = pcg(&a, &Identity, &b, &mut x, Tolerance::relative(1e-8, 10_000)).unwrap();
            (x, info.residuals)
        })
    };
    let one = solve(1);
    assert!(true_residual(&a, &b, &one.0) <= 1e-7 * bnorm(&b));
    for threads in [2, 3] {
        assert!(solve(threads) == one, "{threads} threads differ from one");
    }
}

/// The dense matrix of a linear preconditioner, row-major.
fn dense_of(m: &dyn Preconditioner, n: usize) -> Vec<f64> {
    dense_matrix(&FnOperator::new(n, |r: &[f64], z: &mut [f64]| m.apply(r, z)))
}

/// `M` from `M⁻¹` (dense, small): column c of `M` solves `M⁻¹ m_c = e_c`.
fn dense_inverse(minv: &[f64], n: usize) -> Vec<f64> {
    let trip: Vec<(usize, usize, f64)> = (0..n * n).map(|k| (k / n, k % n, minv[k])).collect();
    let a = CsrMatrix::from_triplets(n, n, &trip).unwrap();
    let mut m = vec![0.0; n * n];
    for c in 0..n {
        let mut e = vec![0.0; n];
        e[c] = 1.0;
        for (r, v) in dense_solve(&a, &e).into_iter().enumerate() {
            m[r * n + c] = v;
        }
    }
    m
}

#[test]
fn ic0_reproduces_the_matrix_on_its_pattern_and_is_exact_on_a_tridiagonal_matrix() {
    // IC(0)'s defining property: (L̂ L̂ᵀ)_ij = a_ij wherever a_ij is stored
    let a = laplacian(5, 0.0, true);
    let n = a.nrows();
    let m = dense_inverse(&dense_of(&Ic0::new(&a).unwrap(), n), n);
    let (ip, ix, vx) = a.parts();
    for r in 0..n {
        for k in ip[r]..ip[r + 1] {
            let c = ix[k] as usize;
            assert!((m[r * n + c] - vx[k]).abs() < 1e-11, "({r}, {c}): {} vs {}", m[r * n + c], vx[k]);
        }
    }
    // M is symmetric and differs from A off the pattern (fill was dropped)
    assert!((0..n * n).all(|k| (m[k] - m[(k % n) * n + k / n]).abs() < 1e-11));
    let dense = a.to_dense();
    assert!((0..n * n).any(|k| (m[k] - dense[k]).abs() > 1e-3), "IC(0) of a 2D Laplacian is not exact");
    // no fill on a tridiagonal matrix: IC(0) is the Cholesky factorisation, apply solves exactly
    let mut trip = vec![];
    for i in 0..40 {
        trip.push((i, i, 2.0 + 0.1 * (i % 3) as f64));
        if i > 0 {
            trip.push((i, i - 1, -1.0));
            trip.push((i - 1, i, -1.0));
        }
    }
    let tri = CsrMatrix::from_triplets(40, 40, &trip).unwrap();
    let b = rhs(40);
    let mut z = vec![0.0; 40];
    Ic0::new(&tri).unwrap().apply(&b, &mut z);
    let exact = dense_solve(&tri, &b);
    assert!(z.iter().zip(&exact).all(|(p, q)| (p - q).abs() < 1e-12 * (1.0 + q.abs())));
}

#[test]
fn ssor_is_its_defining_product_and_the_fused_dot_is_r_dot_z() {
    // M = ω/(2−ω) (D/ω + E) (D/ω)⁻¹ (D/ω + Eᵀ) for A = E + D + Eᵀ
    let a = laplacian(4, 0.0, true);
    let n = a.nrows();
    let w = 1.3;
    let ssor = Ssor::new(&a, w).unwrap();
    let m = dense_inverse(&dense_of(&ssor, n), n);
    let d = a.to_dense();
    let lower = |r: usize, c: usize| {
        if c < r {
            d[r * n + c]
        } else if c == r {
            d[r * n + r] / w
        } else {
            0.0
        }
    };
    for r in 0..n {
        for c in 0..n {
            let v: f64 = (0..n).map(|k| lower(r, k) * w / d[k * n + k] * lower(c, k)).sum::<f64>() * w / (2.0 - w);
            assert!((m[r * n + c] - v).abs() < 1e-11, "({r}, {c}): {} vs {v}", m[r * n + c]);
        }
    }
    // the fused r · z of IC(0) and SSOR equals the separate dot product
    let b = rhs(n);
    for p in [&ssor as &dyn Preconditioner, &Ic0::new(&a).unwrap()] {
        let mut z = vec![0.0; n];
        let rz = p.apply_dot(&b, &mut z).expect("fused");
        let direct: f64 = b.iter().zip(&z).map(|(x, y)| x * y).sum();
        assert!((rz - direct).abs() < 1e-13 * direct.abs());
    }
}

#[test]
fn shifted_ic0_survives_a_breakdown_of_plain_ic0() {
    // SPD (smallest eigenvalue > 0.05) on a 3 × 3 five-point pattern, yet IC(0) meets a negative pivot
    let rows: [[f64; 9]; 9] = [
        [1.9, 1.1, 0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 0.0],
        [1.1, 2.9, 0.7, 0.0, -1.8, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.7, 2.1, 0.0, 0.0, -0.6, 0.0, 0.0, 0.0],
        [1.6, 0.0, 0.0, 2.6, 1.4, 0.0, -0.3, 0.0, 0.0],
        [0.0, -1.8, 0.0, 1.4, 3.0, -0.8, 0.0, 0.7, 0.0],
        [0.0, 0.0, -0.6, 0.0, -0.8, 2.2, 0.0, 0.0, -0.3],
        [0.0, 0.0, 0.0, -0.3, 0.0, 0.0, 2.7, -1.5, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.7, 0.0, -1.5, 2.6, 0.5],
        [0.0, 0.0, 0.0, 0.0, 0.0, -0.3, 0.0, 0.5, 2.5],
    ];
    let trip: Vec<(usize, usize, f64)> =
        (0..81).filter(|k| rows[k / 9][k % 9] != 0.0).map(|k| (k / 9, k % 9, rows[k / 9][k % 9])).collect();
    let a = CsrMatrix::from_triplets(9, 9, &trip).unwrap();
    assert!(matches!(Ic0::new(&a), Err(ansatz_solvers::ConfigError::NotPositive { name: "IC(0) pivot", .. })));
    let m = Ic0::shifted(&a).unwrap();
    assert!(m.shift() > 0.0 && m.shift() <= 3.0, "shift {}", m.shift());
    // still an SPD preconditioner: PCG converges to the dense solution
    let b = rhs(9);
    let mut x = vec![0.0; 9];
    pcg(&a, &m, &b, &mut x, Tolerance::relative(1e-12, 100)).unwrap();
    let exact = dense_solve(&a, &b);
    assert!(x.iter().zip(&exact).all(|(p, q)| (p - q).abs() < 1e-9 * (1.0 + q.abs())));
    // on an M-matrix no shift is needed
    assert_eq!(Ic0::shifted(&laplacian(6, 0.0, true)).unwrap().shift(), 0.0);
}
