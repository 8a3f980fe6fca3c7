//! 2D incompressible Navier–Stokes in vorticity form (pseudo-spectral, ETDRK4): the Taylor–Green vortex decays
//! exactly (with and without drag), laminar Kolmogorov flow settles on its exact steady state, the velocity is
//! divergence-free and has the vorticity it came from, and ETDRK4 converges at fourth order on a nonlinear flow.

use ansatz_solvers::prelude::*;
use ansatz_solvers::spectral::kolmogorov_forcing;

const TAU: f64 = 2.0 * std::f64::consts::PI;

fn grid(n: usize) -> Vec<(f64, f64)> {
    (0..n * n).map(|p| (TAU * (p % n) as f64 / n as f64, TAU * (p / n) as f64 / n as f64)).collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn the_taylor_green_vortex_decays_exactly() {
    let n = 16;
    let (nu, t_end, dt) = (0.1, 1.0, 0.05);
    // without drag the nonlinear term vanishes and ETDRK4 is exact; the drag is part of N, integrated to fourth
    // order in time
    for (alpha, tol) in [(0.0, 1e-12), (0.25, 1e-9)] {
        let pde = SpectralNavierStokes2d::new(n, n, [TAU, TAU]).and_then(|p| p.with_drag(alpha)).unwrap();
        let stepper = Etdrk4::new(pde, nu, dt).unwrap();
        let mut w = grid(n).iter().map(|(x, y)| 2.0 * x.sin() * y.sin()).collect::<Vec<_>>();
        let mut work = stepper.work();
        stepper.advance(&mut w, (t_end / dt) as usize, &mut work);
        let decay = (-(2.0 * nu + alpha) * t_end).exp();
        let exact: Vec<f64> = grid(n).iter().map(|(x, y)| 2.0 * x.sin() * y.sin() * decay).collect();
        let err = max_diff(&w, &exact);
        assert!(err < tol, "drag {alpha}: Taylor–Green error {err:e}");
    }
}

#[test]
fn the_velocity_is_divergence_free_and_has_the_vorticity() {
    // ψ = sin x sin 2y + 0.3 cos 3x: u = ψ_y, v = −ψ_x, ω = −Δψ
    let n = 16;
    let pde = SpectralNavierStokes2d::new(n, n, [TAU, TAU]).unwrap();
    let pts = grid(n);
    let omega: Vec<f64> = pts.iter().map(|(x, y)| 5.0 * x.sin() * (2.0 * y).sin() + 2.7 * (3.0 * x).cos()).collect();
    let uv = pde.velocity(&omega);
    let u: Vec<f64> = pts.iter().map(|(x, y)| 2.0 * x.sin() * (2.0 * y).cos()).collect();
    let v: Vec<f64> = pts.iter().map(|(x, y)| -(x.cos() * (2.0 * y).sin() - 0.9 * (3.0 * x).sin())).collect();
    assert!(max_diff(&uv[..n * n], &u) < 1e-12, "u");
    assert!(max_diff(&uv[n * n..], &v) < 1e-12, "v");
}

#[test]
fn laminar_kolmogorov_flow_settles_on_its_steady_state() {
    // ν Δω + f = 0 with f = −A k cos(k y): ω = f / (ν k²), and u·∇ω = 0 for this shear flow
    let (n, nu, amplitude, k) = (16, 0.5, 0.8, 2);
    let f = kolmogorov_forcing(n, n, TAU, amplitude, k);
    let pde = SpectralNavierStokes2d::new(n, n, [TAU, TAU]).and_then(|p| p.with_forcing(&f)).unwrap();
    let stepper = Etdrk4::new(pde, nu, 0.1).unwrap();
    let mut w = vec![0.0; n * n];
    let mut work = stepper.work();
    stepper.advance(&mut w, 200, &mut work);
    let exact: Vec<f64> = f.iter().map(|v| v / (nu * (k * k) as f64)).collect();
    let err = max_diff(&w, &exact) / exact.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(err < 1e-8, "relative error {err:e} against the laminar state");
}

#[test]
fn etdrk4_converges_at_fourth_order_on_a_nonlinear_flow() {
    let n = 32;
    let pts = grid(n);
    let w0: Vec<f64> = pts
        .iter()
        .map(|(x, y)| {
            // modes of three |k| shells (a single shell would be a steady solution of the inviscid equations)
            3.0 * (x + 0.4).sin() * (2.0 * y).cos() + 2.0 * (3.0 * x - 1.0).cos() * (y + 0.3).sin() + x.cos() * y.cos()
        })
        .collect();
    let solve = |steps: usize| {
        let pde = SpectralNavierStokes2d::new(n, n, [TAU, TAU]).unwrap();
        let stepper = Etdrk4::new(pde, 0.02, 1.0 / steps as f64).unwrap();
        let mut w = w0.clone();
        let mut work = stepper.work();
        stepper.advance(&mut w, steps, &mut work);
        w
    };
    let reference = solve(640);
    let errs: Vec<f64> = [20, 40, 80].iter().map(|&s| max_diff(&solve(s), &reference)).collect();
    let orders: Vec<f64> = errs.windows(2).map(|e| (e[0] / e[1]).log2()).collect();
    eprintln!("ETDRK4 on Navier–Stokes: errors {errs:?}, observed orders {orders:.2?}");
    assert!(errs[0] > 1e-12, "the flow must be nonlinear enough to measure: {errs:?}");
    for o in orders {
        assert!((3.5..4.8).contains(&o), "observed order {o}");
    }
}
