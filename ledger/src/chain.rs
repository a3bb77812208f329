//! A chain: its parameters and its id (the genesis block id), which every signature binds to.

use crate::params::ChainParams;
use crate::permissions::GlobalPerm;
use crate::sighash::ChainId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub params: ChainParams,
    pub id: ChainId,
}

impl Chain {
    /// Whether an `anyone-can-*` parameter switches off the check for `perm`.
    pub fn anyone_can(&self, perm: GlobalPerm) -> bool {
        let p = &self.params;
        match perm {
            GlobalPerm::Connect => p.anyone_can_connect,
            GlobalPerm::Send => p.anyone_can_send,
            GlobalPerm::Receive => p.anyone_can_receive,
            GlobalPerm::Issue => p.anyone_can_issue,
            GlobalPerm::Create => p.anyone_can_create,
            GlobalPerm::Mine => p.anyone_can_mine,
            GlobalPerm::Activate => p.anyone_can_activate,
            GlobalPerm::Admin => p.anyone_can_admin,
        }
    }

    /// The admin-consensus fraction for a permission (millionths); 0 for those without consensus.
    pub fn consensus_fraction(&self, perm: GlobalPerm) -> u32 {
        match perm {
            GlobalPerm::Admin => self.params.admin_consensus_admin,
            GlobalPerm::Mine => self.params.admin_consensus_mine,
            GlobalPerm::Activate => self.params.admin_consensus_activate,
            _ => 0,
        }
    }
}
