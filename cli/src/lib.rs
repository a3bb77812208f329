//! `wattle-cli` (a JSON-RPC client following multichain-cli conventions) and `wattle-util` (chain creation) (built in the CLI issue).
