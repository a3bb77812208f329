//! The service's own records, in sled under its `db_dir`:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `exchange_url` | the admin service's base URL (producer, consumer) |
//! | `meta` | `next/requests`, `next/offers` | the next index (u64 big-endian) |
//! | `requests` | index (u64 BE) | [`EcoinRequest`] as JSON (admin) |
//! | `offers` | index (u64 BE) | [`Offer`] as JSON (admin) |
//!
//! A new record and its counter move in one sled transaction over both trees; every change to a
//! record is one insert; each write is flushed before the service answers, so an answer the
//! client saw survives a crash, and a failure leaves either the old or the new record.

use crate::error::ApiError;
use crate::qty::Qty;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::Path;

/// The request queue's states (paper §3.2 `schedule_ecoin_issue` / `issue_ecoin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    Issued,
}

/// A consumer's request for ecoin, waiting for the admin's approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcoinRequest {
    pub index: u64,
    pub address: String,
    pub qty: Qty,
    pub status: RequestStatus,
    /// The issuemore transaction once issued.
    pub txid: Option<String>,
    /// Unix seconds.
    pub requested_at: u64,
}

/// The offer board's states: `open` (can be accepted), `pending` (a completing transaction was
/// registered and is waiting to be mined), `done` (that transaction is in a block), `cancelled`
/// (the offered coin was spent otherwise, e.g. by `disablerawtransaction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfferStatus {
    Open,
    Pending,
    Done,
    Cancelled,
}

impl OfferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OfferStatus::Open => "open",
            OfferStatus::Pending => "pending",
            OfferStatus::Done => "done",
            OfferStatus::Cancelled => "cancelled",
        }
    }
}

/// One side of an offer: an asset and its quantity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    pub asset: String,
    pub qty: Qty,
}

/// A listed exchange offer (the blob a producer made with createrawexchange) and its bid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub index: u64,
    pub ask_address: String,
    pub blob: String,
    /// What the producer gives.
    pub offer: Side,
    /// What the producer wants in return.
    pub ask: Side,
    /// The offered (prepared) coin: input 0 of the blob.
    pub coin_txid: String,
    pub coin_vout: u64,
    /// Where the asked asset must be paid (output 0 of the blob).
    pub pay_address: String,
    pub status: OfferStatus,
    pub bid_address: Option<String>,
    /// The completed exchange transaction.
    pub txid: Option<String>,
    /// Unix seconds.
    pub listed_at: u64,
}

/// The database of one service.
#[derive(Clone)]
pub struct Db {
    db: sled::Db,
    meta: sled::Tree,
    requests: sled::Tree,
    offers: sled::Tree,
}

const EXCHANGE_URL: &[u8] = b"exchange_url";

impl Db {
    pub fn open(dir: &Path) -> Result<Db, String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the database directory {}: {e}",
                dir.display()
            )
        })?;
        let db = wattle_node::store::open_sled(dir, wattle_node::store::LOCK_WAIT)
            .map_err(|e| format!("cannot open the database in {}: {e}", dir.display()))?;
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| format!("cannot open the {name} table in {}: {e}", dir.display()))
        };
        Ok(Db {
            meta: tree("meta")?,
            requests: tree("requests")?,
            offers: tree("offers")?,
            db,
        })
    }

    pub async fn flush(&self) -> Result<(), ApiError> {
        self.db.flush_async().await?;
        Ok(())
    }

    pub fn exchange_url(&self) -> Result<Option<String>, ApiError> {
        Ok(self
            .meta
            .get(EXCHANGE_URL)?
            .map(|v| String::from_utf8_lossy(&v).to_string()))
    }

    pub async fn set_exchange_url(&self, url: &str) -> Result<(), ApiError> {
        self.meta.insert(EXCHANGE_URL, url.as_bytes())?;
        self.flush().await
    }

    /// The same, for start-up (before the runtime serves anything).
    pub fn set_exchange_url_now(&self, url: &str) -> Result<(), ApiError> {
        self.meta.insert(EXCHANGE_URL, url.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Stores a new request under the next index; returns it.
    pub async fn add_request(&self, make: impl Fn(u64) -> EcoinRequest) -> Result<u64, ApiError> {
        let i = self.insert_next(&self.requests, b"next/requests", |i| encode(&make(i)))?;
        self.flush().await?;
        Ok(i)
    }

    /// Stores a new offer under the next index; returns it.
    pub async fn add_offer(&self, make: impl Fn(u64) -> Offer) -> Result<u64, ApiError> {
        let i = self.insert_next(&self.offers, b"next/offers", |i| encode(&make(i)))?;
        self.flush().await?;
        Ok(i)
    }

    pub fn request(&self, index: u64) -> Result<Option<EcoinRequest>, ApiError> {
        get(&self.requests, index)
    }

    pub fn offer(&self, index: u64) -> Result<Option<Offer>, ApiError> {
        get(&self.offers, index)
    }

    pub fn requests(&self) -> Result<Vec<EcoinRequest>, ApiError> {
        all(&self.requests)
    }

    pub fn offers(&self) -> Result<Vec<Offer>, ApiError> {
        all(&self.offers)
    }

    pub async fn put_request(&self, r: &EcoinRequest) -> Result<(), ApiError> {
        self.requests.insert(r.index.to_be_bytes(), encode(r))?;
        self.flush().await
    }

    pub async fn put_offer(&self, o: &Offer) -> Result<(), ApiError> {
        self.offers.insert(o.index.to_be_bytes(), encode(o))?;
        self.flush().await
    }

    /// Takes the counter at `key` (starting at 1) and stores `value(index)` under it, in one
    /// transaction over `meta` and `tree`.
    fn insert_next(
        &self,
        tree: &sled::Tree,
        key: &'static [u8],
        value: impl Fn(u64) -> Vec<u8>,
    ) -> Result<u64, ApiError> {
        (&self.meta, tree)
            .transaction(|(meta, t)| {
                let next = match meta.get(key)? {
                    Some(v) => <[u8; 8]>::try_from(v.as_ref())
                        .map(u64::from_be_bytes)
                        .map_err(|_| ConflictableTransactionError::Abort("corrupt counter"))?,
                    None => 1,
                };
                meta.insert(key, &(next + 1).to_be_bytes())?;
                t.insert(&next.to_be_bytes(), value(next))?;
                Ok(next)
            })
            .map_err(|e: TransactionError<&str>| ApiError::storage(format!("{e:?}")))
    }
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Our record types always serialize (no maps with non-string keys, no failing Serialize).
    serde_json::to_vec(v).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::storage(format!("unreadable record: {e}")))
}

fn get<T: DeserializeOwned>(tree: &sled::Tree, index: u64) -> Result<Option<T>, ApiError> {
    tree.get(index.to_be_bytes())?
        .map(|v| decode(&v))
        .transpose()
}

fn all<T: DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<T>, ApiError> {
    tree.iter()
        .map(|kv| kv.map_err(ApiError::from).and_then(|(_, v)| decode(&v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(i: u64) -> EcoinRequest {
        EcoinRequest {
            index: i,
            address: "addr".into(),
            qty: Qty::parse("5").unwrap(),
            status: RequestStatus::Pending,
            txid: None,
            requested_at: 1,
        }
    }

    #[tokio::test]
    async fn records_and_counters_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path()).unwrap();
            assert_eq!(db.add_request(request).await.unwrap(), 1);
            assert_eq!(db.add_request(request).await.unwrap(), 2);
            let mut r = db.request(2).unwrap().unwrap();
            r.status = RequestStatus::Issued;
            db.put_request(&r).await.unwrap();
            db.set_exchange_url("http://127.0.0.1:1").await.unwrap();
        }
        let db = Db::open(dir.path()).unwrap();
        let all = db.requests().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].status, RequestStatus::Issued);
        assert_eq!(all[0].index, 1);
        assert_eq!(db.add_request(request).await.unwrap(), 3);
        assert!(db.request(9).unwrap().is_none());
        assert_eq!(
            db.exchange_url().unwrap().as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert!(db.offers().unwrap().is_empty());
    }
}
