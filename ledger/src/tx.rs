//! Transactions: inputs spend earlier outputs, outputs carry assets to addresses, ops issue assets,
//! grant or revoke permissions, and place or cancel orders in the order book (`orderbook`).

use crate::address::Address;
use crate::amount::Amount;
use crate::codec;
use crate::hash::{Hash256, tag};
use crate::keys::{PublicKey, Signature};
use crate::orderbook::{OrderId, PlaceOrder};
use crate::permissions::Permission;
use bincode::{Decode, Encode};
use std::collections::BTreeMap;

/// A transaction id: H("WATTLE/TX/1" ‖ encode(tx)).
pub type Txid = Hash256;
/// An asset id: the txid of the transaction that issued it.
pub type AssetId = Hash256;

/// In the outputs of an issue transaction, the id that stands for the asset being issued; `apply`
/// replaces it with the transaction's own txid.
pub const NEW_ASSET: AssetId = Hash256::ZERO;

/// The only transaction version there is.
pub const TX_VERSION: u32 = 1;

/// A reference to one output of an earlier transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct OutPoint {
    pub txid: Txid,
    pub vout: u32,
}

/// An input: the coin it spends, the key that owns it, and the signature over the sighash mode
/// named by `sighash` (kept as a raw byte so that unknown modes decode and are rejected by a rule).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Input {
    pub prev: OutPoint,
    pub pubkey: PublicKey,
    pub signature: Signature,
    pub sighash: u8,
}

impl Input {
    /// An input spending `prev`, to be signed later (`sighash::sign_all` / `sign_input` fill in
    /// the key, mode and signature).
    pub fn unsigned(prev: OutPoint) -> Input {
        Input {
            prev,
            pubkey: PublicKey::default(),
            signature: Signature::default(),
            sighash: 0x01,
        }
    }
}

/// An output: the address that may spend it and the assets it carries, sorted by asset id, with no
/// zero and no duplicate entries. An output with no assets is a zero-value output.
#[derive(Clone, Debug, PartialEq, Eq, Default, Encode, Decode)]
pub struct Output {
    pub address: Address,
    pub assets: Vec<(AssetId, Amount)>,
}

impl Output {
    pub fn new(address: Address, assets: impl IntoIterator<Item = (AssetId, Amount)>) -> Output {
        let mut map: BTreeMap<AssetId, Amount> = BTreeMap::new();
        for (id, qty) in assets {
            if qty.is_zero() {
                continue;
            }
            let slot = map.entry(id).or_insert(Amount::ZERO);
            *slot = slot.checked_add(qty).unwrap_or(Amount::MAX);
        }
        Output {
            address,
            assets: map.into_iter().collect(),
        }
    }

    pub fn is_zero_value(&self) -> bool {
        self.assets.is_empty()
    }

    pub fn amount_of(&self, asset: &AssetId) -> Amount {
        self.assets
            .iter()
            .find(|(id, _)| id == asset)
            .map(|(_, q)| *q)
            .unwrap_or(Amount::ZERO)
    }
}

/// Creation of a new asset.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct IssueAsset {
    pub name: String,
    pub open: bool,
    /// 1 / smallest unit; must divide 10^8.
    pub multiple: u32,
    /// Raw units created, written to outputs under `NEW_ASSET`.
    pub quantity: Amount,
    pub fields: BTreeMap<String, String>,
}

/// An operation carried by a transaction besides moving assets.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Op {
    IssueAsset(IssueAsset),
    IssueMore {
        asset: AssetId,
        quantity: Amount,
        fields: BTreeMap<String, String>,
    },
    /// Grants `permissions` for blocks `[start, end)` to the address of output `vout`.
    Grant {
        vout: u32,
        permissions: Vec<Permission>,
        start: u32,
        end: u32,
    },
    /// Revokes `permissions` from the address of output `vout`.
    Revoke {
        vout: u32,
        permissions: Vec<Permission>,
    },
    // New variants go last: a variant's index is its encoding, which the golden vectors pin.
    /// Places an order in the book (see `orderbook`); its id is this transaction's txid. The
    /// sell quantity is escrowed out of the inputs (S4).
    PlaceOrder(PlaceOrder),
    /// Cancels an open order of an ALL signer of this transaction; what is left in escrow is
    /// returned to the order's owner.
    CancelOrder {
        order: OrderId,
    },
}

impl Op {
    pub fn is_issue(&self) -> bool {
        matches!(self, Op::IssueAsset(_) | Op::IssueMore { .. })
    }

    /// Whether the op places or cancels an order.
    pub fn is_order(&self) -> bool {
        matches!(self, Op::PlaceOrder(_) | Op::CancelOrder { .. })
    }

    /// The grantee output and the range a grant or revoke sets (a revoke is the range [0, 0)).
    pub fn permission_change(&self) -> Option<(u32, &[Permission], u32, u32)> {
        match self {
            Op::Grant {
                vout,
                permissions,
                start,
                end,
            } => Some((*vout, permissions, *start, *end)),
            Op::Revoke { vout, permissions } => Some((*vout, permissions, 0, 0)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Transaction {
    pub version: u32,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
    pub ops: Vec<Op>,
}

impl Transaction {
    pub fn txid(&self) -> Txid {
        Hash256::tagged(tag::TX, &[&codec::encode(self)])
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.encode())
    }

    pub fn issue_op(&self) -> Option<&Op> {
        self.ops.iter().find(|op| op.is_issue())
    }

    /// The order this transaction places, if any (at most one, T6).
    pub fn place_order(&self) -> Option<&PlaceOrder> {
        self.ops.iter().find_map(|op| match op {
            Op::PlaceOrder(p) => Some(p),
            _ => None,
        })
    }

    pub fn outpoint(&self, vout: u32) -> OutPoint {
        OutPoint {
            txid: self.txid(),
            vout,
        }
    }
}
