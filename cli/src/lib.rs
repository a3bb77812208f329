//! `wattle-cli` (a JSON-RPC client following multichain-cli conventions) and `wattle-util`
//! (chain creation).

pub mod convert;
pub mod util;
