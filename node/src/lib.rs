//! The Wattle node `wattled`: block files and sled store, chain actor, mempool, libp2p networking, JSON-RPC server and wallet (built in the wattled issue).
