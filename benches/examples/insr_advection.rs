//! Check C4's grid side: linear advection `u_t + a u_x = 0` on `[lower, upper]` with zero inflow, from the Gaussian
//! `exp(−(x − c)² / (2 w²))`, by first-order upwind (forward Euler) and WENO5-JS (SSP-RK3), both at CFL 0.5 on
//! `N` cells, scored like `ansatz solve advection1d --method insr` scores itself: mean absolute and relative L2
//! error against the exact translate at the cell centres over the stored levels `0, save_every, …, t_end`.
//!
//! cargo run --release -p ansatz-benches --example insr_advection -- N T_END SAVE_EVERY
//!
//! Prints one line per scheme: `scheme N mae rel_l2 seconds`.

use std::time::Instant;

const A: f64 = 0.25;
const LOWER: f64 = -2.0;
const UPPER: f64 = 2.0;
const CENTER: f64 = -1.5;
const WIDTH: f64 = 0.1;

fn initial(x: f64) -> f64 {
    (-(x - CENTER).powi(2) / (2.0 * WIDTH * WIDTH)).exp()
}

/// `−a ∂ₓu` by first-order upwind (a > 0), zero inflow.
fn upwind(u: &[f64], h: f64, out: &mut [f64]) {
    for i in 0..u.len() {
        let left = if i == 0 { 0.0 } else { u[i - 1] };
        out[i] = -A * (u[i] - left) / h;
    }
}

/// WENO5-JS reconstruction at the right face of cell 2 from the five cells `v[0..5]` (upwind for a > 0).
fn weno5(v: [f64; 5]) -> f64 {
    let eps = 1e-6;
    let p0 = (2.0 * v[0] - 7.0 * v[1] + 11.0 * v[2]) / 6.0;
    let p1 = (-v[1] + 5.0 * v[2] + 2.0 * v[3]) / 6.0;
    let p2 = (2.0 * v[2] + 5.0 * v[3] - v[4]) / 6.0;
    let b0 = 13.0 / 12.0 * (v[0] - 2.0 * v[1] + v[2]).powi(2) + 0.25 * (v[0] - 4.0 * v[1] + 3.0 * v[2]).powi(2);
    let b1 = 13.0 / 12.0 * (v[1] - 2.0 * v[2] + v[3]).powi(2) + 0.25 * (v[1] - v[3]).powi(2);
    let b2 = 13.0 / 12.0 * (v[2] - 2.0 * v[3] + v[4]).powi(2) + 0.25 * (3.0 * v[2] - 4.0 * v[3] + v[4]).powi(2);
    let (a0, a1, a2) = (0.1 / (eps + b0).powi(2), 0.6 / (eps + b1).powi(2), 0.3 / (eps + b2).powi(2));
    (a0 * p0 + a1 * p1 + a2 * p2) / (a0 + a1 + a2)
}

/// `−a ∂ₓu` by WENO5 face values (zero ghost cells on both sides).
fn weno(u: &[f64], h: f64, out: &mut [f64]) {
    let n = u.len();
    let at = |i: isize| if i < 0 || i >= n as isize { 0.0 } else { u[i as usize] };
    // face f between cells f − 1 and f, f = 0..=n
    let face = |f: usize| {
        let c = f as isize - 1;
        weno5([at(c - 2), at(c - 1), at(c), at(c + 1), at(c + 2)])
    };
    let mut left = face(0);
    for (i, o) in out.iter_mut().enumerate() {
        let right = face(i + 1);
        *o = -A * (right - left) / h;
        left = right;
    }
}

/// Integrates to each stored level and scores it.
fn run(name: &str, n: usize, t_end: f64, save_every: f64, rhs: fn(&[f64], f64, &mut [f64]), rk3: bool) {
    let started = Instant::now();
    let h = (UPPER - LOWER) / n as f64;
    let x: Vec<f64> = (0..n).map(|i| LOWER + (i as f64 + 0.5) * h).collect();
    let mut u: Vec<f64> = x.iter().map(|&x| initial(x)).collect();
    let (mut k, mut s1, mut s2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let levels = (t_end / save_every).round() as usize;
    let per_level = ((save_every / (0.5 * h / A)).ceil() as usize).max(1);
    let dt = save_every / per_level as f64;
    let (mut abs, mut num, mut den, mut count) = (0.0, 0.0, 0.0, 0usize);
    for level in 0..=levels {
        if level > 0 {
            for _ in 0..per_level {
                if rk3 {
                    rhs(&u, h, &mut k);
                    for i in 0..n {
                        s1[i] = u[i] + dt * k[i];
                    }
                    rhs(&s1, h, &mut k);
                    for i in 0..n {
                        s2[i] = 0.75 * u[i] + 0.25 * (s1[i] + dt * k[i]);
                    }
                    rhs(&s2, h, &mut k);
                    for i in 0..n {
                        u[i] = u[i] / 3.0 + 2.0 / 3.0 * (s2[i] + dt * k[i]);
                    }
                } else {
                    rhs(&u, h, &mut k);
                    for i in 0..n {
                        u[i] += dt * k[i];
                    }
                }
            }
        }
        let t = level as f64 * save_every;
        for (v, &x) in u.iter().zip(&x) {
            let e = initial(x - A * t);
            abs += (v - e).abs();
            num += (v - e).powi(2);
            den += e * e;
            count += 1;
        }
    }
    println!("{name} {n} {:.4e} {:.4e} {:.4}", abs / count as f64, (num / den).sqrt(), started.elapsed().as_secs_f64());
}

fn main() {
    let args: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (n, t_end, save_every) = match args.as_slice() {
        [n, t, s] => (*n as usize, *t, *s),
        _ => (901, 12.0, 0.5),
    };
    run("upwind", n, t_end, save_every, upwind, false);
    run("weno5", n, t_end, save_every, weno, true);
}
