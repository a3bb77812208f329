//! Chain parameters: the consensus-relevant settings fixed when a chain is created. They are
//! hashed into the genesis block, so two chains that differ in any of them have different ids.

use crate::address::AddressFormat;
use crate::codec;
use crate::hash::{Hash256, tag};
use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

/// Fractions (mining-diversity, admin-consensus-*) are stored as millionths, as MultiChain does.
pub const FRACTION_ONE: u32 = 1_000_000;

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ChainParams {
    pub chain_name: String,
    pub chain_description: String,
    pub protocol_version: u32,
    /// MultiChain's address-pubkeyhash-version (4 bytes).
    pub address_pubkeyhash_version: [u8; 4],
    /// MultiChain's address-checksum-value (4 bytes).
    pub address_checksum_value: [u8; 4],
    pub default_network_port: u16,
    pub default_rpc_port: u16,
    pub anyone_can_connect: bool,
    pub anyone_can_send: bool,
    pub anyone_can_receive: bool,
    pub anyone_can_receive_empty: bool,
    pub anyone_can_issue: bool,
    pub anyone_can_create: bool,
    pub anyone_can_mine: bool,
    pub anyone_can_activate: bool,
    pub anyone_can_admin: bool,
    /// Blocks during which one admin is always enough.
    pub setup_first_blocks: u32,
    /// In millionths.
    pub mining_diversity: u32,
    pub admin_consensus_admin: u32,
    pub admin_consensus_mine: u32,
    pub admin_consensus_activate: u32,
    /// Pause between blocks while transactions wait (ms).
    pub block_interval_ms: u64,
    /// Pause before an empty block (MultiChain's target-block-time), in ms.
    pub empty_block_interval_ms: u64,
    /// How long the next miner in line waits for the one in turn (ms).
    pub fallback_timeout_ms: u64,
    /// How far ahead of the local clock a block timestamp may be (ms).
    pub max_future_drift_ms: u64,
    pub maximum_block_size: u32,
    pub max_std_tx_size: u32,
    pub max_tx_inputs: u32,
    pub max_tx_outputs: u32,
}

/// A parameter set that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chain parameter {name}: {reason}")]
pub struct ParamsError {
    pub name: &'static str,
    pub reason: String,
}

impl ChainParams {
    /// The defaults for a new chain; `version`/`checksum` bytes and ports normally come from
    /// `wattle-util create`, which draws them at random as multichain-util does.
    pub fn new(chain_name: &str) -> ChainParams {
        ChainParams {
            chain_name: chain_name.to_string(),
            chain_description: format!("MultiChain {chain_name}"),
            protocol_version: 20013,
            address_pubkeyhash_version: [0x00, 0x2f, 0x8e, 0x5a],
            address_checksum_value: [0x53, 0x74, 0x1c, 0x8e],
            default_network_port: 8571,
            default_rpc_port: 8570,
            anyone_can_connect: false,
            anyone_can_send: false,
            anyone_can_receive: false,
            anyone_can_receive_empty: true,
            anyone_can_issue: false,
            anyone_can_create: false,
            anyone_can_mine: false,
            anyone_can_activate: false,
            anyone_can_admin: false,
            setup_first_blocks: 60,
            mining_diversity: 300_000,
            admin_consensus_admin: 500_000,
            admin_consensus_mine: 500_000,
            admin_consensus_activate: 500_000,
            block_interval_ms: 100,
            empty_block_interval_ms: 10_000,
            fallback_timeout_ms: 1_000,
            max_future_drift_ms: 10_000,
            maximum_block_size: 8_388_608,
            max_std_tx_size: 4_194_304,
            max_tx_inputs: 10_000,
            max_tx_outputs: 10_000,
        }
    }

    /// Checks that the parameters are consistent, naming the first one that is not.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let err = |name, reason: &str| {
            Err(ParamsError {
                name,
                reason: reason.to_string(),
            })
        };
        if self.chain_name.is_empty() || self.chain_name.len() > 32 {
            return err("chain-name", "must be 1 to 32 characters");
        }
        if !self
            .chain_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return err(
                "chain-name",
                "may contain only letters, digits, '-', '_' and '.'",
            );
        }
        for (name, v) in [
            ("mining-diversity", self.mining_diversity),
            ("admin-consensus-admin", self.admin_consensus_admin),
            ("admin-consensus-mine", self.admin_consensus_mine),
            ("admin-consensus-activate", self.admin_consensus_activate),
        ] {
            if v > FRACTION_ONE {
                return err(name, "must be between 0 and 1");
            }
        }
        if self.setup_first_blocks < 1 {
            return err("setup-first-blocks", "must be at least 1");
        }
        if self.block_interval_ms == 0 {
            return err("block-interval", "must be positive");
        }
        if self.empty_block_interval_ms < self.block_interval_ms {
            return err("empty-block-interval", "must be at least block-interval");
        }
        if self.fallback_timeout_ms < 5 * self.block_interval_ms {
            return err("fallback-timeout", "must be at least 5 x block-interval");
        }
        if self.maximum_block_size < 5000 || self.maximum_block_size > 64 * 1024 * 1024 - 1024 {
            return err("maximum-block-size", "must be between 5000 and 67107840");
        }
        if self.max_std_tx_size < 1000 || self.max_std_tx_size > self.maximum_block_size {
            return err(
                "max-std-tx-size",
                "must be between 1000 and maximum-block-size",
            );
        }
        if self.max_tx_inputs == 0 || self.max_tx_outputs == 0 {
            return err("max-tx-inputs", "input and output limits must be positive");
        }
        if self.default_network_port < 1024 || self.default_rpc_port < 1024 {
            return err("default-network-port", "ports must be 1024 to 65535");
        }
        Ok(())
    }

    pub fn address_format(&self) -> AddressFormat {
        AddressFormat {
            version: self.address_pubkeyhash_version,
            checksum_value: self.address_checksum_value,
        }
    }

    /// H("WATTLE/PARAMS/1" ‖ encode(params)); the genesis block commits to it.
    pub fn hash(&self) -> Hash256 {
        Hash256::tagged(tag::PARAMS, &[&codec::encode(self)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_inconsistent_values_are_refused() {
        assert_eq!(ChainParams::new("energybc").validate(), Ok(()));
        let mut p = ChainParams::new("energybc");
        p.mining_diversity = 1_000_001;
        assert_eq!(p.validate().unwrap_err().name, "mining-diversity");
        let mut p = ChainParams::new("energybc");
        p.fallback_timeout_ms = 5 * p.block_interval_ms - 1;
        assert_eq!(p.validate().unwrap_err().name, "fallback-timeout");
        let p = ChainParams::new("bad name");
        assert_eq!(p.validate().unwrap_err().name, "chain-name");
    }

    #[test]
    fn hash_changes_with_any_parameter() {
        let a = ChainParams::new("energybc");
        let mut b = a.clone();
        b.setup_first_blocks = 61;
        assert_ne!(a.hash(), b.hash());
    }
}
