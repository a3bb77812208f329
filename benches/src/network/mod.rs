//! The phases of the network benchmark `netbench` (`src/bin/netbench.rs`): the money it moves
//! (`coins`), confirmation latency (`latency`), throughput for a fixed time (`load`), latency
//! under a load of order-book orders (`orders`) and a fresh node catching up with a long chain
//! (`sync`). The nodes come from `crate::cluster`.

pub mod coins;
pub mod latency;
pub mod load;
pub mod orders;
pub mod sync;
