//! Ansatz cluster: the `Communicator` abstraction (single process, or MPI behind the `mpi` feature), work
//! partitioning across ranks, gradient all-reduce for data-parallel training, and the mapping of ranks to
//! devices.
//!
//! This crate is filled by the distributed-computing work; it stays independent of the solvers.
