//! Orders for a forward triangular sweep `L w = r` (unit lower `L`), timed on the strictly lower patterns of the
//! 5-point 512² and 7-point 64³ Laplacians in natural order: the evidence behind keeping the IC(0) and SSOR
//! sweeps of `ansatz_solvers::precond` sequential.
//!
//! - `sequential`: rows in order, each row's terms loaded from `w`;
//! - `carried`: the same with the term of row i − 1 taken from a register (what the preconditioners do);
//! - `levels, natural layout`: rows grouped by their depth in the dependency graph (all rows of a level are
//!   independent), each level split evenly between T threads, a spinning barrier after each level;
//! - `levels, level layout`: the same with the factor and the vectors permuted into level order (the permutation
//!   of `r` in and of `w` out included), so that a level's rows are contiguous.
//!
//! Every variant computes each row with the same operations in the same order, so all give identical bits;
//! the example checks that. Times are the best of `--reps` sweeps.
//!
//! `cargo run --release -p ansatz-benches --example sweep_schedules -- [--reps 30] [--threads 2]`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// A strictly lower triangular matrix by rows (32-bit pointers and indices, as the preconditioners store it).
struct Lower {
    ptr: Vec<u32>,
    idx: Vec<u32>,
    val: Vec<f64>,
}

impl Lower {
    fn row(&self, i: usize) -> (&[f64], &[u32]) {
        let (s, e) = (self.ptr[i] as usize, self.ptr[i + 1] as usize);
        (&self.val[s..e], &self.idx[s..e])
    }
}

/// The strictly lower part of a natural-order Laplacian on a `dims` grid, with deterministic values in
/// (−0.3, −0.1) (the magnitudes of an IC(0) factor of a Poisson matrix).
fn laplacian_lower(dims: &[usize]) -> Lower {
    let n: usize = dims.iter().product();
    let mut strides = vec![1; dims.len()];
    for d in (0..dims.len() - 1).rev() {
        strides[d] = strides[d + 1] * dims[d + 1];
    }
    let mut l = Lower { ptr: vec![0], idx: vec![], val: vec![] };
    for i in 0..n {
        // neighbours below i, farthest first (increasing column)
        for (d, &s) in strides.iter().enumerate() {
            if (i / s) % dims[d] > 0 {
                l.idx.push((i - s) as u32);
                l.val.push(-0.1 - 0.2 * (((i * 7 + d * 13) % 17) as f64 / 17.0));
            }
        }
        l.ptr.push(l.idx.len() as u32);
    }
    l
}

/// Rows by level (`order`, increasing row within a level) and the level boundaries in `order`.
struct Levels {
    order: Vec<u32>,
    ptr: Vec<usize>,
}

fn levels(l: &Lower) -> Levels {
    let n = l.ptr.len() - 1;
    let mut level = vec![0usize; n];
    for i in 0..n {
        level[i] = l.row(i).1.iter().map(|&j| level[j as usize] + 1).max().unwrap_or(0);
    }
    let count = level.iter().max().map_or(0, |m| m + 1);
    let mut ptr = vec![0usize; count + 1];
    for &k in &level {
        ptr[k + 1] += 1;
    }
    for k in 0..count {
        ptr[k + 1] += ptr[k];
    }
    let mut fill = ptr.clone();
    let mut order = vec![0u32; n];
    for (i, &k) in level.iter().enumerate() {
        order[fill[k]] = i as u32;
        fill[k] += 1;
    }
    Levels { order, ptr }
}

/// The factor with its rows and columns renumbered into level order.
fn permuted(l: &Lower, lv: &Levels) -> Lower {
    let mut pos = vec![0u32; lv.order.len()];
    for (p, &i) in lv.order.iter().enumerate() {
        pos[i as usize] = p as u32;
    }
    let mut out = Lower { ptr: vec![0], idx: vec![], val: vec![] };
    for &i in &lv.order {
        let (vals, cols) = l.row(i as usize);
        out.idx.extend(cols.iter().map(|&j| pos[j as usize]));
        out.val.extend_from_slice(vals);
        out.ptr.push(out.idx.len() as u32);
    }
    out
}

fn sequential(l: &Lower, r: &[f64], w: &mut [f64]) {
    for i in 0..r.len() {
        let (vals, cols) = l.row(i);
        let mut v = r[i];
        for (c, &j) in vals.iter().zip(cols) {
            v -= c * w[j as usize];
        }
        w[i] = v;
    }
}

fn carried(l: &Lower, r: &[f64], w: &mut [f64]) {
    let mut prev = 0.0;
    for i in 0..r.len() {
        let (vals, cols) = l.row(i);
        let mut v = r[i];
        match cols.split_last() {
            Some((&last, rest)) if last as usize + 1 == i => {
                for (c, &j) in vals.iter().zip(rest) {
                    v -= c * w[j as usize];
                }
                v -= vals[rest.len()] * prev;
            }
            _ => {
                for (c, &j) in vals.iter().zip(cols) {
                    v -= c * w[j as usize];
                }
            }
        }
        w[i] = v;
        prev = v;
    }
}

/// A reusable spinning barrier for `n` threads (yields after a while, so an oversubscribed machine still
/// progresses).
struct SpinBarrier {
    arrived: AtomicUsize,
    generation: AtomicUsize,
    n: usize,
}

impl SpinBarrier {
    fn new(n: usize) -> Self {
        Self { arrived: AtomicUsize::new(0), generation: AtomicUsize::new(0), n }
    }

    fn wait(&self) {
        let g = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.store(g + 1, Ordering::Release);
        } else {
            let mut spins = 0u32;
            while self.generation.load(Ordering::Acquire) == g {
                spins += 1;
                if spins < 1 << 12 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// `w`, written by several threads at disjoint rows, each row read only after the barrier that follows its level.
#[derive(Clone, Copy)]
struct Shared(*mut f64);
// SAFETY: the pointer is only dereferenced inside `by_levels`, where every row is written by exactly one thread
// and read by others only after a barrier (acquire/release) that follows the write.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

/// The level-scheduled sweep: `rows(level)` gives each level's rows in `w`'s numbering.
fn by_levels(l: &Lower, lv: &Levels, permuted: bool, r: &[f64], w: &mut [f64], threads: usize) {
    assert_eq!(r.len(), w.len());
    let n = w.len();
    let shared = Shared(w.as_mut_ptr());
    let barrier = SpinBarrier::new(threads);
    let work = |me: usize| {
        let w = shared;
        for k in 0..lv.ptr.len() - 1 {
            let (a, b) = (lv.ptr[k], lv.ptr[k + 1]);
            let (lo, hi) = (a + (b - a) * me / threads, a + (b - a) * (me + 1) / threads);
            for p in lo..hi {
                let i = if permuted { p } else { lv.order[p] as usize };
                let (vals, cols) = l.row(i);
                let mut v = r[i];
                for (c, &j) in vals.iter().zip(cols) {
                    debug_assert!((j as usize) < n);
                    // SAFETY: j < n, and row j belongs to an earlier level, completed before the last barrier
                    v -= c * unsafe { *w.0.add(j as usize) };
                }
                // SAFETY: i < n, and this thread is the only writer of row i
                unsafe { *w.0.add(i) = v };
            }
            barrier.wait();
        }
    };
    std::thread::scope(|s| {
        for me in 1..threads {
            let work = &work;
            s.spawn(move || work(me));
        }
        work(0);
    });
}

/// Best time (ms) of `reps` runs of `f`, and the result of the last.
fn best(reps: usize, n: usize, mut f: impl FnMut(&mut [f64])) -> (f64, Vec<f64>) {
    let mut w = vec![0.0; n];
    let mut t = f64::INFINITY;
    for _ in 0..reps {
        w.fill(0.0);
        let start = Instant::now();
        f(&mut w);
        t = t.min(start.elapsed().as_secs_f64() * 1e3);
    }
    (t, w)
}

fn main() -> Result<(), String> {
    let mut reps = 30;
    let mut threads = 2;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|_| format!("{name}: not a positive integer: {v}"))
        };
        match a.as_str() {
            "--reps" => reps = value("--reps")?.max(1),
            "--threads" => threads = value("--threads")?.max(1),
            other => return Err(format!("unknown option {other} (options: --reps N, --threads T)")),
        }
    }
    println!(
        "| grid | levels | sequential | carried | levels, natural layout, {threads} threads | levels, level layout, {threads} threads |"
    );
    println!("|---|---|---|---|---|---|");
    for dims in [vec![512, 512], vec![64, 64, 64]] {
        let l = laplacian_lower(&dims);
        let n = l.ptr.len() - 1;
        let lv = levels(&l);
        let pl = permuted(&l, &lv);
        let r: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let (t_seq, w_seq) = best(reps, n, |w| sequential(&l, &r, w));
        let (t_car, w_car) = best(reps, n, |w| carried(&l, &r, w));
        let (t_nat, w_nat) = best(reps, n, |w| by_levels(&l, &lv, false, &r, w, threads));
        let mut rp = vec![0.0; n];
        let mut wp = vec![0.0; n];
        let (t_lev, w_lev) = best(reps, n, |w| {
            for (p, &i) in lv.order.iter().enumerate() {
                rp[p] = r[i as usize];
            }
            by_levels(&pl, &lv, true, &rp, &mut wp, threads);
            for (p, &i) in lv.order.iter().enumerate() {
                w[i as usize] = wp[p];
            }
        });
        for (name, w) in [("carried", &w_car), ("natural layout", &w_nat), ("level layout", &w_lev)] {
            if w.iter().zip(&w_seq).any(|(a, b)| a.to_bits() != b.to_bits()) {
                return Err(format!("{dims:?}: the {name} sweep differs from the sequential one"));
            }
        }
        let grid = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×");
        println!("| {grid} | {} | {t_seq:.3} ms | {t_car:.3} ms | {t_nat:.3} ms | {t_lev:.3} ms |", lv.ptr.len() - 1);
    }
    Ok(())
}
