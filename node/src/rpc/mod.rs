//! JSON-RPC: the wire-compatible server core (`server`, with `access`: `rpcallowip` and
//! `rpcbind`) and MultiChain's command set
//! (`methods`, with the order book's commands in `orders` and their conversions in `price`), with
//! parameter reading (`args`), conversions to MultiChain's JSON shapes
//! (`convert`) and wallet transaction building (`build`).

pub mod access;
pub mod args;
pub mod build;
pub mod client;
pub mod convert;
pub mod exchange;
pub mod methods;
pub mod orders;
pub mod price;
pub mod server;

pub use methods::Rpc;
pub use server::{Dispatch, Limits, RpcError, ServerConfig};

use std::sync::Arc;

/// The dispatcher the server calls: every method runs through `Rpc::dispatch`.
pub fn dispatcher(rpc: Rpc) -> Dispatch {
    let rpc = Arc::new(rpc);
    Arc::new(move |method, params| {
        let rpc = rpc.clone();
        Box::pin(async move { rpc.dispatch(method, params).await })
    })
}
