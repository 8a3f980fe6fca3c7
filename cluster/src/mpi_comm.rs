//! MPI through rsmpi.

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::traits::*;

use crate::Communicator;

/// The MPI world communicator.
pub struct Mpi {
    _universe: Universe,
    world: SimpleCommunicator,
    local_rank: usize,
}

impl Mpi {
    /// Initialises MPI (once per process).
    pub fn init() -> Result<Self, String> {
        let universe = mpi::initialize().ok_or("MPI was already initialised")?;
        let world = universe.world();
        // ranks sharing memory with this one (MPI_COMM_TYPE_SHARED), ordered by world rank
        let local_rank = world.split_shared(world.rank()).rank() as usize;
        Ok(Self { _universe: universe, world, local_rank })
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn size(&self) -> usize {
        self.world.size() as usize
    }
    fn barrier(&self) {
        self.world.barrier();
    }
    fn broadcast_bytes(&self, root: usize, buf: &mut Vec<u8>) {
        let r = self.world.process_at_rank(root as i32);
        let mut len = buf.len() as u64;
        r.broadcast_into(&mut len);
        buf.resize(len as usize, 0);
        r.broadcast_into(&mut buf[..]);
    }
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) {
        let send = buf.to_vec();
        self.world.all_reduce_into(&send[..], buf, SystemOperation::sum());
    }
    fn all_reduce_sum_f32(&self, buf: &mut [f32]) {
        let send = buf.to_vec();
        self.world.all_reduce_into(&send[..], buf, SystemOperation::sum());
    }
    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
    fn local_rank(&self) -> usize {
        self.local_rank
    }
}
