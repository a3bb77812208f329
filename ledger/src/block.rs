//! Blocks: a signed header and the transactions it orders.

use crate::codec;
use crate::hash::{Hash256, merkle_root, tag};
use crate::keys::{PublicKey, SecretKey, Signature};
use crate::sighash::ChainId;
use crate::tx::{Transaction, Txid};
use bincode::{Decode, Encode};

pub type BlockId = Hash256;

/// The only block version there is.
pub const BLOCK_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BlockHeader {
    pub version: u32,
    pub height: u32,
    /// The parent's id; for the genesis block, the hash of the chain parameters.
    pub prev: BlockId,
    /// Merkle root of the txids.
    pub merkle_root: Hash256,
    /// Milliseconds since the Unix epoch; strictly increasing along a chain.
    pub timestamp_ms: u64,
    /// The miner that signed the block.
    pub miner: PublicKey,
    pub signature: Signature,
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<Transaction>,
}

impl BlockHeader {
    /// `H("WATTLE/BLOCK/1" ‖ chain id ‖ encode(header without signature))`. The genesis block's
    /// own id is computed with the zero chain id (it *is* the chain id).
    pub fn id(&self, chain: &ChainId) -> BlockId {
        // The genesis block (height 0) is always hashed with the zero chain id: its id *is* the
        // chain id, so it cannot depend on it.
        let chain = if self.height == 0 {
            &Hash256::ZERO
        } else {
            chain
        };
        let unsigned = (
            self.version,
            self.height,
            self.prev,
            self.merkle_root,
            self.timestamp_ms,
            self.miner,
        );
        Hash256::tagged(tag::BLOCK, &[&chain.0, &codec::encode(&unsigned)])
    }

    /// The message a miner signs: the domain-tagged block id.
    pub fn signing_message(id: &BlockId) -> Vec<u8> {
        [tag::BLOCK_SIG, &id.0].concat()
    }

    pub fn sign(&mut self, key: &SecretKey, chain: &ChainId) {
        self.miner = key.public();
        let id = self.id(chain);
        self.signature = key.sign(&Self::signing_message(&id));
    }

    pub fn signature_is_valid(&self, chain: &ChainId) -> bool {
        let id = self.id(chain);
        self.miner
            .verify(&Self::signing_message(&id), &self.signature)
    }
}

impl Block {
    pub fn txids(&self) -> Vec<Txid> {
        self.txs.iter().map(Transaction::txid).collect()
    }

    pub fn compute_merkle_root(&self) -> Hash256 {
        merkle_root(&self.txids())
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Builds and signs a block on top of a parent.
    pub fn build(
        parent_id: BlockId,
        height: u32,
        timestamp_ms: u64,
        txs: Vec<Transaction>,
        miner: &SecretKey,
        chain: &ChainId,
    ) -> Block {
        let merkle = merkle_root(&txs.iter().map(Transaction::txid).collect::<Vec<_>>());
        let mut header = BlockHeader {
            version: BLOCK_VERSION,
            height,
            prev: parent_id,
            merkle_root: merkle,
            timestamp_ms,
            miner: miner.public(),
            signature: Signature::default(),
        };
        header.sign(miner, chain);
        Block { header, txs }
    }

    /// Byte offset of each transaction inside the encoded block (for asset references): the
    /// header, then the transaction count, then the transactions in order.
    pub fn tx_offsets(&self) -> Vec<u32> {
        let mut offset =
            codec::encoded_len(&self.header) + codec::encoded_len(&(self.txs.len() as u64));
        let mut out = Vec::with_capacity(self.txs.len());
        for tx in &self.txs {
            out.push(offset as u32);
            offset += codec::encoded_len(tx);
        }
        out
    }
}
