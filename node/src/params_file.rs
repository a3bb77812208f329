//! `params.toml`: the chain parameters in MultiChain's names (`target-block-time`,
//! `mining-diversity`, `anyone-can-connect`, …) plus Wattle's own (`block-interval`,
//! `fallback-timeout`, `max-future-drift`, all in milliseconds). Fractions are written as decimals
//! (`0.3`) and held as millionths; byte strings as hex.

use wattle_ledger::ChainParams;
use wattle_ledger::amount::{Rounding, parse_quantity};
use wattle_ledger::params::FRACTION_ONE;

/// One parameter: its name, a description, and how to read and write it.
struct Param {
    name: &'static str,
    about: &'static str,
    kind: Kind,
}

enum Kind {
    Text(fn(&mut ChainParams) -> &mut String),
    Bytes4(fn(&mut ChainParams) -> &mut [u8; 4]),
    Bool(fn(&mut ChainParams) -> &mut bool),
    U16(fn(&mut ChainParams) -> &mut u16),
    U32(fn(&mut ChainParams) -> &mut u32),
    U64(fn(&mut ChainParams) -> &mut u64),
    Fraction(fn(&mut ChainParams) -> &mut u32),
    /// Seconds in the file, milliseconds in memory (MultiChain's target-block-time).
    Seconds(fn(&mut ChainParams) -> &mut u64),
}

const PARAMS: &[Param] = &[
    Param {
        name: "chain-name",
        about: "Chain name, used as the first argument of wattled and wattle-cli",
        kind: Kind::Text(|p| &mut p.chain_name),
    },
    Param {
        name: "chain-description",
        about: "Chain description",
        kind: Kind::Text(|p| &mut p.chain_description),
    },
    Param {
        name: "protocol-version",
        about: "Protocol version at genesis",
        kind: Kind::U32(|p| &mut p.protocol_version),
    },
    Param {
        name: "address-pubkeyhash-version",
        about: "Version bytes used for addresses (hex)",
        kind: Kind::Bytes4(|p| &mut p.address_pubkeyhash_version),
    },
    Param {
        name: "address-checksum-value",
        about: "Bytes XORed into address checksums (hex)",
        kind: Kind::Bytes4(|p| &mut p.address_checksum_value),
    },
    Param {
        name: "default-network-port",
        about: "Default TCP/IP port for peer-to-peer connections",
        kind: Kind::U16(|p| &mut p.default_network_port),
    },
    Param {
        name: "default-rpc-port",
        about: "Default TCP/IP port for incoming JSON-RPC API requests",
        kind: Kind::U16(|p| &mut p.default_rpc_port),
    },
    Param {
        name: "anyone-can-connect",
        about: "Anyone can connect, i.e. a publicly readable blockchain",
        kind: Kind::Bool(|p| &mut p.anyone_can_connect),
    },
    Param {
        name: "anyone-can-send",
        about: "Anyone can send, i.e. transaction signing not restricted by address",
        kind: Kind::Bool(|p| &mut p.anyone_can_send),
    },
    Param {
        name: "anyone-can-receive",
        about: "Anyone can receive, i.e. transaction outputs not restricted by address",
        kind: Kind::Bool(|p| &mut p.anyone_can_receive),
    },
    Param {
        name: "anyone-can-receive-empty",
        about: "Anyone can receive empty output, i.e. without permission grants or assets",
        kind: Kind::Bool(|p| &mut p.anyone_can_receive_empty),
    },
    Param {
        name: "anyone-can-issue",
        about: "Anyone can issue new native assets",
        kind: Kind::Bool(|p| &mut p.anyone_can_issue),
    },
    Param {
        name: "anyone-can-create",
        about: "Anyone can create new streams",
        kind: Kind::Bool(|p| &mut p.anyone_can_create),
    },
    Param {
        name: "anyone-can-mine",
        about: "Anyone can mine blocks (confirm transactions)",
        kind: Kind::Bool(|p| &mut p.anyone_can_mine),
    },
    Param {
        name: "anyone-can-activate",
        about: "Anyone can grant or revoke connect, send and receive permissions",
        kind: Kind::Bool(|p| &mut p.anyone_can_activate),
    },
    Param {
        name: "anyone-can-admin",
        about: "Anyone can grant or revoke all permissions",
        kind: Kind::Bool(|p| &mut p.anyone_can_admin),
    },
    Param {
        name: "setup-first-blocks",
        about: "Length of initial setup phase in blocks, in which admin consensus is not applied (1 - 31536000)",
        kind: Kind::U32(|p| &mut p.setup_first_blocks),
    },
    Param {
        name: "mining-diversity",
        about: "Miners must wait <mining-diversity>*<active miners> between blocks (0 - 1)",
        kind: Kind::Fraction(|p| &mut p.mining_diversity),
    },
    Param {
        name: "admin-consensus-admin",
        about: "Proportion of admins required to grant or revoke admin privileges (0 - 1)",
        kind: Kind::Fraction(|p| &mut p.admin_consensus_admin),
    },
    Param {
        name: "admin-consensus-mine",
        about: "Proportion of admins required to grant or revoke mining privileges (0 - 1)",
        kind: Kind::Fraction(|p| &mut p.admin_consensus_mine),
    },
    Param {
        name: "admin-consensus-activate",
        about: "Proportion of admins required to grant or revoke activate privileges (0 - 1)",
        kind: Kind::Fraction(|p| &mut p.admin_consensus_activate),
    },
    Param {
        name: "target-block-time",
        about: "Seconds before an empty block when no transaction waits (MultiChain's block time)",
        kind: Kind::Seconds(|p| &mut p.empty_block_interval_ms),
    },
    Param {
        name: "block-interval",
        about: "Milliseconds between blocks while transactions wait",
        kind: Kind::U64(|p| &mut p.block_interval_ms),
    },
    Param {
        name: "fallback-timeout",
        about: "Milliseconds the next miner waits for the one in turn (>= 5 x block-interval)",
        kind: Kind::U64(|p| &mut p.fallback_timeout_ms),
    },
    Param {
        name: "max-future-drift",
        about: "Milliseconds a block timestamp may be ahead of the local clock",
        kind: Kind::U64(|p| &mut p.max_future_drift_ms),
    },
    Param {
        name: "maximum-block-size",
        about: "Maximum block size in bytes (5000 - 67107840)",
        kind: Kind::U32(|p| &mut p.maximum_block_size),
    },
    Param {
        name: "max-std-tx-size",
        about: "Maximum transaction size in bytes",
        kind: Kind::U32(|p| &mut p.max_std_tx_size),
    },
    Param {
        name: "max-tx-inputs",
        about: "Maximum inputs of one transaction",
        kind: Kind::U32(|p| &mut p.max_tx_inputs),
    },
    Param {
        name: "max-tx-outputs",
        about: "Maximum outputs of one transaction",
        kind: Kind::U32(|p| &mut p.max_tx_outputs),
    },
];

/// The names `wattle-util create` accepts as `-name=value`.
pub fn param_names() -> Vec<&'static str> {
    PARAMS.iter().map(|p| p.name).collect()
}

fn fraction_text(micros: u32) -> String {
    wattle_ledger::amount::format_quantity(
        wattle_ledger::Amount::new(micros as u64).unwrap_or_default(),
        FRACTION_ONE,
    )
}

fn value_text(params: &ChainParams, kind: &Kind) -> String {
    let mut p = params.clone();
    match kind {
        Kind::Text(f) => toml::Value::String(f(&mut p).clone()).to_string(),
        Kind::Bytes4(f) => format!("\"{}\"", hex::encode(f(&mut p))),
        Kind::Bool(f) => f(&mut p).to_string(),
        Kind::U16(f) => f(&mut p).to_string(),
        Kind::U32(f) => f(&mut p).to_string(),
        Kind::U64(f) => f(&mut p).to_string(),
        Kind::Fraction(f) => fraction_text(*f(&mut p)),
        Kind::Seconds(f) => {
            let ms = *f(&mut p);
            if ms % 1000 == 0 {
                (ms / 1000).to_string()
            } else {
                format!("{}", ms as f64 / 1000.0)
            }
        }
    }
}

/// Renders parameters as `params.toml`.
pub fn render(params: &ChainParams) -> String {
    let mut out = String::from(
        "# ==== Wattle chain parameters ====\n# MultiChain's names where MultiChain has the parameter. Edit before the first run of wattled;\n# the genesis block then commits to these values.\n\n",
    );
    for p in PARAMS {
        let line = format!("{} = {}", p.name, value_text(params, &p.kind));
        out.push_str(&format!("{line:<48} # {}\n", p.about));
    }
    out
}

/// `getblockchainparams`: every parameter by its display name, as typed JSON values, plus the
/// chain protocol and the genesis (chain) id.
pub fn to_json(params: &ChainParams, chain_id: &wattle_ledger::Hash256) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert(
        "chain-protocol".into(),
        serde_json::Value::String("multichain".into()),
    );
    for p in PARAMS {
        let text = value_text(params, &p.kind);
        let value = match &p.kind {
            Kind::Text(_) | Kind::Bytes4(_) => {
                serde_json::Value::String(text.trim_matches('"').to_string())
            }
            _ => serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        };
        map.insert(p.name.into(), value);
    }
    map.insert(
        "genesis-hash".into(),
        serde_json::Value::String(chain_id.to_hex()),
    );
    serde_json::Value::Object(map)
}

/// Sets one parameter from its text form (a TOML value or a bare word, as given on a command
/// line). Unknown names and bad values are refused with a message that names them.
pub fn set(params: &mut ChainParams, name: &str, text: &str) -> Result<(), String> {
    let param = PARAMS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("unknown parameter: {name}"))?;
    let bad = |what: &str| format!("invalid value for {name}: {text} ({what})");
    let unquoted = text.trim().trim_matches('"');
    match &param.kind {
        Kind::Text(f) => *f(params) = unquoted.to_string(),
        Kind::Bytes4(f) => {
            let bytes = hex::decode(unquoted).map_err(|_| bad("expected 8 hex digits"))?;
            *f(params) = bytes.try_into().map_err(|_| bad("expected 8 hex digits"))?;
        }
        Kind::Bool(f) => {
            *f(params) = unquoted
                .parse()
                .map_err(|_| bad("expected true or false"))?
        }
        Kind::U16(f) => {
            *f(params) = unquoted
                .parse()
                .map_err(|_| bad("expected a port number"))?
        }
        Kind::U32(f) => {
            *f(params) = unquoted
                .parse()
                .map_err(|_| bad("expected a whole number"))?
        }
        Kind::U64(f) => {
            *f(params) = unquoted
                .parse()
                .map_err(|_| bad("expected a whole number"))?
        }
        Kind::Fraction(f) => {
            let v = parse_quantity(unquoted, FRACTION_ONE, Rounding::Exact)
                .map_err(|_| bad("expected a decimal between 0 and 1 with at most 6 places"))?;
            if v.raw() > FRACTION_ONE as u64 {
                return Err(bad("must be between 0 and 1"));
            }
            *f(params) = v.raw() as u32;
        }
        Kind::Seconds(f) => {
            let ms = parse_quantity(unquoted, 1000, Rounding::Exact)
                .map_err(|_| bad("expected seconds, at most 3 decimals"))?;
            if ms.is_zero() {
                return Err(bad("must be positive"));
            }
            *f(params) = ms.raw();
        }
    }
    Ok(())
}

/// Sets one parameter from a TOML string value: text parameters exactly, others as `set` does.
fn set_string(params: &mut ChainParams, name: &str, value: &str) -> Result<(), String> {
    match PARAMS.iter().find(|p| p.name == name).map(|p| &p.kind) {
        Some(Kind::Text(f)) => {
            *f(params) = value.to_string();
            Ok(())
        }
        _ => set(params, name, value),
    }
}

/// Parses `params.toml`; every parameter must be present, known and valid.
pub fn parse(text: &str) -> Result<ChainParams, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("params.toml is not valid TOML: {e}"))?;
    let mut params = ChainParams::new("x");
    for (key, value) in &table {
        match value {
            // A TOML string is already unquoted: a text parameter takes it as written (`set`
            // would trim spaces and quotes, so `render` would not parse back).
            toml::Value::String(s) => set_string(&mut params, key, s)?,
            toml::Value::Float(f) => set(&mut params, key, &format!("{f}"))?,
            other => set(&mut params, key, &other.to_string())?,
        }
    }
    for p in PARAMS {
        if !table.contains_key(p.name) {
            return Err(format!("params.toml lacks {}", p.name));
        }
    }
    params.validate().map_err(|e| e.to_string())?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips() {
        let mut p = ChainParams::new("energybc");
        p.mining_diversity = 750_000;
        p.empty_block_interval_ms = 2_500;
        p.address_checksum_value = [1, 2, 0xab, 0xff];
        let text = render(&p);
        assert!(text.contains("mining-diversity = 0.75"), "{text}");
        assert!(text.contains("target-block-time = 2.5"), "{text}");
        assert_eq!(parse(&text).unwrap(), p);
    }

    #[test]
    fn text_values_round_trip_as_written() {
        // Found by fuzzing (params_toml): `wattle-util create -chain-description='"   Mult'`
        // kept the spaces, but reading the rendered file trimmed them, so the file did not
        // parse back to the parameters it was written from.
        let mut p = ChainParams::new("energybc");
        set(&mut p, "chain-description", "\"   Mult").unwrap();
        assert_eq!(p.chain_description, "   Mult");
        assert_eq!(parse(&render(&p)).unwrap(), p);
        for text in [
            " padded ",
            "\"quoted\"",
            "tab\tand\nnewline",
            "'single'",
            "",
        ] {
            p.chain_description = text.to_string();
            assert_eq!(parse(&render(&p)).unwrap(), p, "{text:?}");
        }
        // Other kinds still accept a quoted value.
        let text = render(&p).replace("protocol-version = 20013", "protocol-version = \"20014\"");
        assert_eq!(parse(&text).unwrap().protocol_version, 20014);
    }

    #[test]
    fn bad_values_are_named() {
        let mut p = ChainParams::new("energybc");
        assert!(
            set(&mut p, "mining-diversity", "1.5")
                .unwrap_err()
                .contains("mining-diversity")
        );
        assert!(
            set(&mut p, "no-such-thing", "1")
                .unwrap_err()
                .contains("unknown parameter")
        );
        assert!(
            set(&mut p, "anyone-can-send", "yes")
                .unwrap_err()
                .contains("true or false")
        );
        assert!(set(&mut p, "target-block-time", "0").is_err());
        let text = render(&p).replace("fallback-timeout = 1000", "fallback-timeout = 10");
        assert!(parse(&text).unwrap_err().contains("fallback-timeout"));
        let text = render(&p).replace("chain-name", "#chain-name");
        assert!(parse(&text).unwrap_err().contains("lacks chain-name"));
        assert!(parse("not = [toml").is_err());
    }
}
