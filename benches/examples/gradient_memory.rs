//! Gradient of a loss on the final state through 1000 ETDRK4 steps of 2D Burgers on 128², with √T
//! checkpointing: prints the states held, the steps taken, the wall time and the peak resident memory.
//!
//! `cargo run --release -p ansatz-benches --example gradient_memory`

use ansatz_benches::*;
use ansatz_solvers::integrate::TrajectoryLoss;
use ansatz_solvers::prelude::*;
use std::time::Instant;

struct FinalEnergy(usize);

impl TrajectoryLoss for FinalEnergy {
    fn term(&self, _: usize, step: usize, u: &[f64], grad: &mut [f64]) -> f64 {
        if step != self.0 {
            return 0.0;
        }
        for (g, x) in grad.iter_mut().zip(u) {
            *g += x;
        }
        0.5 * u.iter().map(|x| x * x).sum::<f64>()
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let steps = 1000;
    let s = etdrk4_2d(128);
    let u0 = states_2d(1, 128);
    let state_mib = (u0.len() * 8) as f64 / (1024.0 * 1024.0);
    let t = Instant::now();
    let g = gradient(&s, u0.view(), steps, &FinalEnergy(steps), &Checkpointed::sqrt()).unwrap();
    let el = t.elapsed().as_secs_f64();
    println!(
        "2D Burgers 128², {steps} ETDRK4 steps, checkpointed √T: {} states held ({:.1} MiB of {:.2} MiB each), {} forward steps, {:.1} s, peak RSS {:.0} MiB, loss {:.6e}",
        g.peak_states,
        g.peak_states as f64 * state_mib,
        state_mib,
        g.forward_steps,
        el,
        peak_rss_mib(),
        g.loss[0]
    );
}
