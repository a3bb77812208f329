//! The Wattle node `wattled`: block files and sled store, chain actor, mempool, libp2p networking,
//! JSON-RPC server and wallet.

pub mod chain;
pub mod daemon;
pub mod datadir;
pub mod devnet;
#[doc(hidden)]
pub mod fuzzing;
pub mod mempool;
pub mod network;
pub mod params_file;
pub mod reindex;
pub mod rpc;
pub mod store;
pub mod wallet;
