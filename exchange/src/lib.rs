//! `wattle-exchange`: the paper's energy exchange (Oh et al. 2017, §3; DESIGN §7) as one web
//! service per site — admin, producer or consumer — that drives its own node over JSON-RPC,
//! keeps its own records in sled, serves REST JSON endpoints under `/api/` and a browser UI.
//!
//! Contract used by the other modules (`devnet`, `ui`) and by the tests:
//! - [`Role`]: `admin` | `producer` | `consumer` (`FromStr` / `Display` with those words).
//! - [`ServiceConfig`] and [`serve`]: run one service on a listener until `shutdown` resolves.
//! - [`ui::routes`]: the role's browser UI (static HTML + JS), merged into the service's router.

pub mod devnet;
pub mod ui;
