//! `wattled devnet`: a local network for trying Wattle (built in the exchange issue).

use crate::daemon::Options;

/// Not yet available: says so clearly.
pub async fn run(_opts: Options) -> Result<(), String> {
    Err("wattled devnet is not available yet; see the README for running nodes by hand".into())
}
