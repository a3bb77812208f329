//! Rebuilding the derived state from the block files (DESIGN §5): `wattled -reindex`, and at
//! start-up when the state database holds no chain while the block files do (sled lost or
//! damaged beyond its own recovery). Without this, such a node would write a new genesis block
//! and start a different chain over the old one.
//!
//! The old block files are moved to `blocks.reindex/`, the state database and `blocks/` are
//! removed, and every record is replayed in file order through the consensus engine — judged as
//! if it came from a peer (signatures checked again, fork choice as usual), each adopted branch
//! written to a fresh store. The old files are removed only when the replay is complete, so an
//! interrupted rebuild starts over at the next start. A damaged record ends the replay: the
//! blocks before it are kept and the rest can come from peers.

use crate::mempool::verify_in_parallel;
use crate::store::{Records, Store, StoreError, meta};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wattle_consensus::{Config as EngineConfig, Engine, Input, Output};
use wattle_ledger::block::Block;
use wattle_ledger::chain::Chain;
use wattle_ledger::codec;
use wattle_ledger::genesis::apply_genesis;
use wattle_ledger::params::ChainParams;
use wattle_ledger::{Address, Hash256};

/// Where the block files wait while they are replayed.
const OLD_BLOCKS: &str = "blocks.reindex";

/// What a rebuild did.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    /// Records read from the old block files (genesis included).
    pub records: u64,
    /// The main chain's tip height afterwards.
    pub height: u32,
    /// Why the replay stopped early (a damaged or undecodable record), if it did.
    pub stopped: Option<String>,
}

/// Whether a rebuild was interrupted in `store_dir` (it must start over before the store opens:
/// the block files are not where the state database expects them).
pub fn interrupted(store_dir: &Path) -> bool {
    store_dir.join(OLD_BLOCKS).is_dir()
}

/// Whether the opened store needs a rebuild: the block files hold blocks while the state
/// database holds no chain.
pub fn needed(store_dir: &Path, store: &Store) -> Result<bool, StoreError> {
    if store.is_initialized() {
        return Ok(false);
    }
    Ok(Records::open(&store_dir.join("blocks"))?.next().is_some())
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> String {
    let at = format!("cannot {what} {}", path.display());
    move |e| format!("{at}: {e}")
}

/// Rebuilds the store in `store_dir` from its block files for the chain of `params`;
/// `miner` is this node's mining address (its blocks set `last_signed`, so that it never signs
/// again at a height it signed before). The store must not be open.
pub fn rebuild(
    store_dir: &Path,
    params: &ChainParams,
    miner: Option<Address>,
) -> Result<Report, String> {
    let blocks = store_dir.join("blocks");
    let old: PathBuf = store_dir.join(OLD_BLOCKS);
    if !old.is_dir() {
        std::fs::rename(&blocks, &old).map_err(io("move aside", &blocks))?;
    }
    for dir in [&blocks, &store_dir.join("sled")] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io("remove", dir))?;
        }
    }
    let store = Arc::new(Store::open(store_dir).map_err(|e| e.to_string())?);
    let mut records = Records::open(&old).map_err(|e| e.to_string())?;
    let mut report = Report {
        records: 0,
        height: 0,
        stopped: None,
    };
    let limit = params.maximum_block_size as usize;
    let mut next = |report: &mut Report| -> Option<Block> {
        match records.next()? {
            Ok(bytes) => match codec::decode_with_limit::<Block>(&bytes, limit.max(1 << 20)) {
                Ok(block) => {
                    report.records += 1;
                    Some(block)
                }
                Err(e) => {
                    report.stopped = Some(format!("undecodable block record: {e}"));
                    None
                }
            },
            Err(e) => {
                report.stopped = Some(e.to_string());
                None
            }
        }
    };
    let genesis = next(&mut report).ok_or_else(|| {
        format!(
            "{} holds no readable genesis block{}",
            old.display(),
            report
                .stopped
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        )
    })?;
    if genesis.header.height != 0 || genesis.header.prev != params.hash() {
        return Err(format!(
            "the first block in {} is not this chain's genesis block (params.toml does not match \
             the block files)",
            old.display()
        ));
    }
    let (_, changes) =
        apply_genesis(params, &genesis).map_err(|e| format!("invalid genesis block: {e}"))?;
    store
        .init_genesis(&genesis, &changes)
        .map_err(|e| e.to_string())?;
    let chain = Chain {
        params: params.clone(),
        id: genesis.header.id(&Hash256::ZERO),
    };
    let now = crate::chain::now_ms();
    // Not a miner while replaying: it only judges.
    let mut engine = Engine::new(
        chain.clone(),
        EngineConfig::new(None),
        store.recent(1001).map_err(|e| e.to_string())?,
        now,
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut last_signed: Option<u32> = None;
    while let Some(block) = next(&mut report) {
        let txs: Vec<_> = block.txs.iter().map(|t| (t.txid(), t)).collect();
        let verified: HashSet<_> = verify_in_parallel(&txs, &chain, threads)
            .into_iter()
            .collect();
        let outputs = engine.step(
            &*store,
            &verified,
            Input::Block {
                block: Arc::new(block),
                // The block files are a peer like any other: judged, never trusted.
                from: Some(u64::MAX),
                now,
            },
        );
        for output in outputs {
            if let Output::Adopt { rollback, apply } = output {
                let signed = apply
                    .iter()
                    .filter(|b| miner.is_some_and(|m| b.block.header.miner.address() == m))
                    .map(|b| b.block.header.height)
                    .max();
                last_signed = last_signed.max(signed);
                let value = last_signed.map(u32::to_le_bytes);
                let meta: Vec<(&str, &[u8])> = value
                    .as_ref()
                    .map(|h| (meta::LAST_SIGNED, h.as_slice()))
                    .into_iter()
                    .collect();
                store
                    .adopt_with_meta(&rollback, &apply, &meta)
                    .map_err(|e| format!("store write failed: {e}"))?;
            }
        }
    }
    report.height = engine.tip().0;
    drop(engine);
    drop(store);
    std::fs::remove_dir_all(&old).map_err(io("remove", &old))?;
    Ok(report)
}
