//! MultiChain compatibility suite over real HTTP against a real `wattled` process (issue 4, "A
//! compatibility test suite over real HTTP"; MULTICHAIN.md §1.5, §1.7, §2–§5 and the Appendix).
//!
//! - `wire`: authentication (401 + `WWW-Authenticate`), HTTP statuses (200/400/404/405/413/500),
//!   the reply envelope, ids, batches, a 20 MB body, 50 concurrent clients, `stop`.
//! - `commands`: every command's parameters, defaults and result fields (and their order where
//!   MultiChain's appendix shows it).
//! - `errors`: every documented error (code and message) for bad input, including the ones of a
//!   wallet without permissions (a second node that joined).
//! - `unchanged`: failed commands leave balances, locks, assets and permissions as they were.
//! - `clients`: hostile clients (issue 7): `rpcallowip`/`rpcbind` and 403, failed-login delays
//!   that block no one, the work queue (503), the connection limit and the server timeout against
//!   slow clients, and owner-only modes of the files that hold secrets.
//! - `python`: `tests/python/multichain_client.py` talks to the node as MultiChain's Python
//!   libraries do.
//!
//! Each test starts its own node in a temporary directory; nodes are killed on drop and every
//! wait is bounded.

mod clients;
mod commands;
mod errors;
mod harness;
mod python;
mod unchanged;
mod wire;
