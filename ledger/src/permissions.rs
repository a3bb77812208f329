//! Permissions, as MultiChain has them: global ones and per-asset ones, each held for a block
//! range `[start, end)`, and the rule for who may grant what.

use crate::tx::AssetId;
use bincode::{Decode, Encode};
use std::fmt;

/// The end block of a grant with no end (MultiChain's 4294967295).
pub const NO_END: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum GlobalPerm {
    Connect,
    Send,
    Receive,
    Issue,
    Create,
    Mine,
    Activate,
    Admin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum AssetPerm {
    Issue,
    Admin,
}

/// One permission: global, or for one asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum Permission {
    Global(GlobalPerm),
    Asset(AssetId, AssetPerm),
}

impl GlobalPerm {
    pub const ALL: [GlobalPerm; 8] = [
        GlobalPerm::Connect,
        GlobalPerm::Send,
        GlobalPerm::Receive,
        GlobalPerm::Issue,
        GlobalPerm::Create,
        GlobalPerm::Mine,
        GlobalPerm::Activate,
        GlobalPerm::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GlobalPerm::Connect => "connect",
            GlobalPerm::Send => "send",
            GlobalPerm::Receive => "receive",
            GlobalPerm::Issue => "issue",
            GlobalPerm::Create => "create",
            GlobalPerm::Mine => "mine",
            GlobalPerm::Activate => "activate",
            GlobalPerm::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<GlobalPerm> {
        GlobalPerm::ALL.into_iter().find(|p| p.name() == name)
    }

    /// connect, send and receive may be granted by `activate` holders; everything else needs admin.
    pub fn activate_may_grant(self) -> bool {
        matches!(
            self,
            GlobalPerm::Connect | GlobalPerm::Send | GlobalPerm::Receive
        )
    }

    /// Changes to these need admin consensus after the setup phase.
    pub fn needs_consensus(self) -> bool {
        matches!(
            self,
            GlobalPerm::Admin | GlobalPerm::Mine | GlobalPerm::Activate
        )
    }
}

impl AssetPerm {
    pub const ALL: [AssetPerm; 2] = [AssetPerm::Issue, AssetPerm::Admin];

    pub fn name(self) -> &'static str {
        match self {
            AssetPerm::Issue => "issue",
            AssetPerm::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<AssetPerm> {
        AssetPerm::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for GlobalPerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The state of one (address, permission): held for blocks `[start, end)`; `admins` are the
/// addresses whose grants set it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PermRecord {
    pub start: u32,
    pub end: u32,
    pub admins: Vec<crate::address::Address>,
}

impl PermRecord {
    pub fn holds_at(&self, height: u32) -> bool {
        self.start <= height && height < self.end
    }
}

/// Required number of agreeing admins: `ceil(admins × fraction)` computed as MultiChain does,
/// `((n·c − 1) / 10^6) + 1`, at least 1; a fraction of 0 means one admin is enough.
pub fn required_admins(admin_count: u32, fraction_micros: u32) -> u32 {
    if fraction_micros == 0 || admin_count == 0 {
        return 1;
    }
    let scaled = admin_count as u64 * fraction_micros as u64;
    (((scaled - 1) / 1_000_000) + 1).max(1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in GlobalPerm::ALL {
            assert_eq!(GlobalPerm::from_name(p.name()), Some(p));
        }
        assert_eq!(GlobalPerm::from_name("write"), None);
        assert_eq!(AssetPerm::from_name("issue"), Some(AssetPerm::Issue));
    }

    #[test]
    fn required_admins_matches_multichain() {
        assert_eq!(required_admins(1, 500_000), 1);
        assert_eq!(required_admins(2, 500_000), 1);
        assert_eq!(required_admins(3, 500_000), 2);
        assert_eq!(required_admins(4, 500_000), 2);
        assert_eq!(required_admins(5, 500_000), 3);
        assert_eq!(required_admins(4, 0), 1);
        assert_eq!(required_admins(4, 1_000_000), 4);
    }

    #[test]
    fn ranges_are_half_open() {
        let r = PermRecord {
            start: 5,
            end: 10,
            admins: vec![],
        };
        assert!(!r.holds_at(4));
        assert!(r.holds_at(5));
        assert!(r.holds_at(9));
        assert!(!r.holds_at(10));
    }
}
