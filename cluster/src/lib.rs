//! Ansatz cluster: the [`Communicator`] abstraction over a single process ([`SingleProcess`]) or MPI ranks
//! (`Mpi`, behind the `mpi` feature; Open MPI and MPICH both work), and the partitioning of work across ranks.
//!
//! A program calls [`init`] once: it returns an MPI communicator when the process was started by `mpirun` (or
//! `srun`) with more than one rank, and [`SingleProcess`] otherwise, so the same binary runs both ways.

use std::ops::Range;

#[cfg(feature = "mpi")]
mod mpi_comm;
#[cfg(feature = "mpi")]
pub use mpi_comm::Mpi;

/// Collective operations over the ranks of a job. Every rank must call a collective in the same order.
pub trait Communicator {
    /// This process's rank, 0-based.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// Waits for every rank.
    fn barrier(&self);
    /// Replaces `buf` on every rank by its value on `root` (any length).
    fn broadcast_bytes(&self, root: usize, buf: &mut Vec<u8>);
    /// In-place sum over ranks.
    fn all_reduce_sum_f64(&self, buf: &mut [f64]);
    /// In-place sum over ranks.
    fn all_reduce_sum_f32(&self, buf: &mut [f32]);
    /// Ends the whole job immediately with `code` (after the caller has printed why). Never returns.
    fn abort(&self, code: i32) -> !;
    /// This process's rank among the ranks on the same node (shared-memory domain), for choosing a local device.
    fn local_rank(&self) -> usize {
        0
    }
}

/// Values per all-reduce message: gradients are reduced in buckets of at most this many values, which keeps
/// messages large (bandwidth-bound) but below MPI's 2³¹ element count and bounds the temporary copy.
pub const BUCKET: usize = 1 << 22;

/// In-place sum over ranks of `buf`, in buckets of [`BUCKET`] values.
pub fn all_reduce_sum_f32_bucketed(comm: &dyn Communicator, buf: &mut [f32]) {
    if comm.size() > 1 {
        for chunk in buf.chunks_mut(BUCKET) {
            comm.all_reduce_sum_f32(chunk);
        }
    }
}

/// The device index for this rank: its local rank modulo the devices on the node.
pub fn device_index(comm: &dyn Communicator, devices: usize) -> usize {
    comm.local_rank() % devices.max(1)
}

/// One process, no communication.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Communicator for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn barrier(&self) {}
    fn broadcast_bytes(&self, _root: usize, _buf: &mut Vec<u8>) {}
    fn all_reduce_sum_f64(&self, _buf: &mut [f64]) {}
    fn all_reduce_sum_f32(&self, _buf: &mut [f32]) {}
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// The contiguous share of `items` for `rank` of `size`: sizes differ by at most one, lower ranks get the
/// larger shares, and the shares cover `0..items` in rank order.
pub fn partition(items: usize, size: usize, rank: usize) -> Range<usize> {
    let size = size.max(1);
    let (q, r) = (items / size, items % size);
    let start = rank * q + rank.min(r);
    let len = q + usize::from(rank < r);
    start..(start + len).min(items)
}

/// Whether this process was started by an MPI launcher with more than one rank (Open MPI, MPICH/Hydra, Slurm).
pub fn launched_with_ranks() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS", "MPI_LOCALNRANKS"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .filter_map(|s| s.parse::<usize>().ok())
        .any(|n| n > 1)
}

/// The communicator of this process: MPI when launched with several ranks (and built with the `mpi` feature),
/// a single process otherwise. Fails if the job has several ranks but MPI support was not built in.
pub fn init() -> Result<Box<dyn Communicator>, String> {
    if !launched_with_ranks() {
        return Ok(Box::new(SingleProcess));
    }
    #[cfg(feature = "mpi")]
    {
        Mpi::init().map(|m| Box::new(m) as Box<dyn Communicator>)
    }
    #[cfg(not(feature = "mpi"))]
    {
        Err("started by an MPI launcher with several ranks, but this build has no MPI support (feature `mpi`)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_follow_the_local_rank() {
        struct Local(usize);
        impl Communicator for Local {
            fn rank(&self) -> usize {
                10 + self.0
            }
            fn size(&self) -> usize {
                16
            }
            fn barrier(&self) {}
            fn broadcast_bytes(&self, _: usize, _: &mut Vec<u8>) {}
            fn all_reduce_sum_f64(&self, _: &mut [f64]) {}
            fn all_reduce_sum_f32(&self, _: &mut [f32]) {}
            fn abort(&self, code: i32) -> ! {
                std::process::exit(code)
            }
            fn local_rank(&self) -> usize {
                self.0
            }
        }
        assert_eq!(device_index(&SingleProcess, 4), 0);
        assert_eq!((0..6).map(|r| device_index(&Local(r), 4)).collect::<Vec<_>>(), vec![0, 1, 2, 3, 0, 1]);
        assert_eq!(device_index(&Local(3), 0), 0);
    }

    #[test]
    fn partition_covers_everything_once() {
        for items in [0, 1, 7, 10, 100] {
            for size in 1..6 {
                let parts: Vec<Range<usize>> = (0..size).map(|r| partition(items, size, r)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[size - 1].end, items);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
                assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
            }
        }
    }
}
