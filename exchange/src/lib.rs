//! `wattle-exchange`: the paper's energy exchange (Oh et al. 2017, §3; DESIGN §7) as one web
//! service per site — admin, producer or consumer — that drives its own node over JSON-RPC,
//! keeps its own records in sled, serves REST JSON endpoints under `/api/` and a browser UI.
//!
//! Contract used by the other modules (`devnet`, `ui`) and by the tests:
//! - [`Role`]: `admin` | `producer` | `consumer` (`FromStr` / `Display` with those words).
//! - [`ServiceConfig`] and [`serve`]: run one service on a listener until `shutdown` resolves.
//! - [`ui::routes`]: the role's browser UI (static HTML + JS), merged into the service's router.
//!
//! # REST API
//!
//! Bodies are JSON objects (an empty body counts as `{}`); quantities are JSON numbers (or
//! strings holding one) in display units and are passed to the node as written, never through
//! floating point. Every error is `{"error": {"code", "message"}}`: 4xx when the request or the
//! state of a record is at fault, 5xx only when the node, the exchange service or the database
//! failed (codes: `invalid_request`, `invalid_address`, `unknown_type`, `not_found`,
//! `already_issued`, `already_taken`, `already_listed`, `insufficient_funds`, `invalid_offer`,
//! `invalid_bid`, `invalid_exchange`, `not_permitted` (403), `no_exchange`, `no_market`,
//! `order_closed` (409), `node_rejected`, `rejected`; 5xx: `node_unreachable`, `node_error`, `exchange_unreachable`, `timeout`,
//! `storage_error`). Errors the exchange returns to a producer's or consumer's forwarded call
//! keep their status and code.
//!
//! | role | method, path | body | result | errors |
//! |---|---|---|---|---|
//! | all | `GET /api/status` | | `{role, chain, address, height, exchange}` (`exchange`: the registered admin URL or null) | 502 node |
//! | all | `GET /api/balances` | | `[{name, qty, locked, assetref}]`: the service address's coins incl. unconfirmed; `qty` spendable, `locked` in prepared offers | 502 node |
//! | admin | `POST /api/admin/connect_node` | `{address, type: "producer"\|"consumer"}` | `{address, type, txids}` once the grants are mined | 400 `unknown_type`, `invalid_address` |
//! | admin | `POST /api/admin/schedule_ecoin_issue` | `{address, qty}` | `{index}` | 400 `invalid_address`, `invalid_request` (qty not whole) |
//! | admin | `POST /api/admin/issue_ecoin` | `{index}` | `{index, txid}` | 404 `not_found`, 409 `already_issued`, 403 `not_permitted` (no receive) |
//! | admin | `GET /api/admin/ecoin_requests?status=pending\|issued\|all&address=` | | `[{index, address, qty, status, txid, requested_at}]` | 400 bad filter |
//! | admin | `POST /api/admin/register_ask` | `{ask_address, blob}` | `{index}` | 400 `invalid_offer` (tampered, spent, not one asset for another, not ask_address's), 409 `already_listed` |
//! | admin | `POST /api/admin/register_bid` | `{index, bid_address, txid}` | `{index, status, txid}` (`pending` until mined, then `done`) | 404, 400 `invalid_bid` (not this offer completed, not paying bid_address), 409 `already_taken` |
//! | admin | `GET /api/admin/exchange_list?status=open\|pending\|done\|cancelled\|all&ask_address=&bid_address=` | | `[{index, ask_address, bid_address, offer:{asset, qty}, ask:{asset, qty}, price, status, txid, confirmations, blob, listed_at}]` | 400 bad filter |
//! | admin | `GET /api/admin/exchange/{index}` | | one entry as above | 404 |
//! | producer | `POST /api/producer/reg_exchange_ip` | `{exchange}` | `{exchange, address, type, txids}` | 400 bad URL, the admin's errors |
//! | producer | `POST /api/producer/issue_energy` | `{}` or `{qty}` (default [`producer::ENERGY_UNIT`] = 1 kWh) | `{txid, qty}` | 403 `not_permitted` (not yet granted) |
//! | producer | `POST /api/producer/propose_exchange` | `{qty_energy, qty_ecoin}` | `{index, coin:{txid, vout}}` | 400 `insufficient_funds`, `no_exchange`, the admin's errors (coin unlocked again) |
//! | consumer | `POST /api/consumer/reg_exchange_ip` | `{exchange}` | as for the producer | as for the producer |
//! | consumer | `POST /api/consumer/request_ecoin_issue` | `{qty}` | `{index}` | `no_exchange`, the admin's errors |
//! | consumer | `POST /api/consumer/accept_exchange` | `{index}` | `{index, txid, status}` | 404, 409 `already_taken`, 400 `insufficient_funds` (nothing sent, coin unlocked) |
//! | producer, consumer | `GET /api/exchange_list?...` | | the admin's `exchange_list` with the same query | `no_exchange`, the admin's |
//! | producer, consumer | `GET /api/ecoin_requests?status=` | | the admin's `ecoin_requests` for this site's address | `no_exchange`, the admin's |
//! | admin | `GET /api/exchange_list`, `GET /api/ecoin_requests` | | the same as the `/api/admin/` ones | |
//! | all | `GET /api/orderbook?levels=N` (1–100, default 20) | | `{base: "energy", quote: "ecoin", asks: [{price, qty, value, orders}], bids: [..], height}`: depth per price level, best first (asks lowest, bids highest); `qty` kWh, `price` ecoin per kWh, `value` ecoin; empty while the chain has no market | 400 bad `levels` |
//! | all | `GET /api/trades?count=N` (1–500, default 50) | | `[{txid, height, time, side, price, qty, value, buyer, seller, maker, taker}]`, newest first (`side`: the incoming order's, `maker`/`taker`: order ids) | 400 bad `count` |
//! | all | `GET /api/orders?status=open\|filled\|cancelled\|all&count=N` (1–1000, default 100) | | this site's orders, newest first: `[{id, owner, side, base, quote, price, qty, filled, remaining, status, height, time, closedheight, fills}]`; the admin's lists every owner's (or `&address=`'s) | 400 bad filter, `address` at a site |
//! | producer | `POST /api/producer/sell_order` | `{qty, price}` (kWh, ecoin per kWh: lowest price) | `{order, txid}` once mined: the order as matching left it (`filled`, `remaining`, `status`) | 400 `invalid_request` (not whole energy units, `qty × price` not whole ecoin), `insufficient_funds`, `no_market`; 403 `not_permitted` |
//! | consumer | `POST /api/consumer/buy_order` | `{qty, price}` (kWh, ecoin per kWh: highest price; holds `qty × price` ecoin) | as `sell_order` | as `sell_order` |
//! | producer, consumer | `POST /api/{producer,consumer}/cancel_order` | `{order}` (its id: the placing txid) | `{order, txid}` once mined (status `cancelled`; the rest is back in the wallet) | 400 bad id; 404 `not_found`; 403 `not_permitted` (another's order); 409 `order_closed` (filled or cancelled) |
//!
//! Offer states: `open` (listed, can be accepted) → `pending` (a bid's transaction was verified
//! and registered, not yet mined) → `done` (mined). A background task re-checks pending and done
//! offers every second: a transaction that a reorganisation sends back to the mempool makes the
//! offer `pending` again, one that disappears for 3 checks in a row reopens it. It also checks
//! open offers: one whose coin the admin's node no longer finds for 3 checks in a row (spent
//! otherwise, e.g. the producer's `disablerawtransaction`) becomes `cancelled`, and accepting
//! it answers 409 `cancelled`.
//!
//! The order book (issue 8; [`orders`]) is the chain's own: orders are matched inside block
//! application with price-time priority, each fill at the resting order's price, partial fills,
//! the remainder resting. Every service reads it from its own node; a producer sells energy and
//! a consumer buys it, alongside the paper's whole offers (which stay as they were).
//!
//! The admin service issues the paper's two assets (`energy`, `ecoin`; quantity 0, open, with
//! the paper's custom fields) the first time it needs them: at the first `connect_node`,
//! `schedule_ecoin_issue` or `issue_ecoin`, if the chain does not have them yet.

pub mod admin;
pub mod api;
pub mod consumer;
pub mod db;
pub mod devnet;
pub mod error;
pub mod node;
pub mod offers;
pub mod orders;
pub mod producer;
pub mod qty;
pub mod remote;
pub mod site;
pub mod ui;

use std::path::PathBuf;

/// Which site a service serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Producer,
    Consumer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "producer" => Ok(Role::Producer),
            "consumer" => Ok(Role::Consumer),
            other => Err(format!(
                "unknown role {other:?} (expected admin, producer or consumer)"
            )),
        }
    }
}

/// What one service needs.
pub struct ServiceConfig {
    pub role: Role,
    /// The service's own node.
    pub rpc: wattle_node::rpc::client::RpcClient,
    /// The service's own sled database directory.
    pub db_dir: PathBuf,
    /// Producer/consumer: the admin service's base URL (also settable by `reg_exchange_ip`).
    /// When given, it replaces the one stored in the database (no `connect_node` is sent).
    pub exchange_url: Option<String>,
}

/// Serves the role's REST API (+ `ui::routes(role_str)` merged in) on `listener` until
/// `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServiceConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    api::serve(listener, config, shutdown).await
}
