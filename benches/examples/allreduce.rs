//! All-reduce bandwidth against message size, under MPI.
//!
//! `mpirun -np 2 target/release/examples/allreduce` (as root add `--allow-run-as-root --oversubscribe`).
//! Reports, per message size, the mean time of an in-place f32 sum over 20 repetitions (after 3 warm-ups) and
//! the algorithm bandwidth (message bytes / time) and bus bandwidth (2 (p − 1)/p × message bytes / time, the
//! ring all-reduce traffic per rank).

use std::time::Instant;

fn main() {
    let comm = ansatz_cluster::init().expect("MPI");
    let (rank, p) = (comm.rank(), comm.size());
    if rank == 0 {
        println!("| message | time | algorithm bandwidth | bus bandwidth |");
        println!("|---|---|---|---|");
    }
    for exp in [10, 12, 14, 16, 18, 20, 22, 24] {
        let n = 1usize << exp; // f32 values
        let mut buf = vec![1.0f32; n];
        for _ in 0..3 {
            comm.all_reduce_sum_f32(&mut buf);
        }
        comm.barrier();
        let reps = 20;
        let t = Instant::now();
        for _ in 0..reps {
            comm.all_reduce_sum_f32(&mut buf);
        }
        comm.barrier();
        let dt = t.elapsed().as_secs_f64() / reps as f64;
        let bytes = (4 * n) as f64;
        if rank == 0 {
            println!(
                "| {:.0} KiB | {:.3} ms | {:.2} GB/s | {:.2} GB/s |",
                bytes / 1024.0,
                dt * 1e3,
                bytes / dt / 1e9,
                2.0 * (p as f64 - 1.0) / p as f64 * bytes / dt / 1e9
            );
        }
    }
}
