//! Tests with real `wattled` processes on 127.0.0.1: joining through the seed and the connect
//! permission, transfers confirmed on every node, SIGKILL in the middle of a stream of
//! transactions, revoking connect, a graceful restart, and the crash torture (random SIGKILLs
//! of three miners under a load of transfers and exchanges), and the order book's partial fills
//! through JSON-RPC. Every wait is bounded.

mod crash;
mod damage;
mod harness;
mod joining;
mod orderbook;
mod reannounce;
mod restart;
mod revoke;
mod torture;
