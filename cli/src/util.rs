//! `wattle-util create CHAIN [-name=value ...]`: writes a new chain's `params.toml` and
//! `wattle.conf`, drawing the address version bytes, checksum value and ports at random as
//! multichain-util does.

use std::path::PathBuf;
use wattle_ledger::ChainParams;
use wattle_node::datadir::{DataDir, RpcConf, create_private_dir, write_atomic, write_private};
use wattle_node::params_file;

pub const USAGE: &str = "Usage: wattle-util create CHAIN [-datadir=DIR] [-parameter=value ...]

Creates the parameter set of a new chain in DIR/CHAIN/params.toml (DIR defaults to ~/.wattle)
and the RPC credentials in DIR/CHAIN/wattle.conf. Edit params.toml before the first run of
`wattled CHAIN`; the genesis block then commits to it. Parameters (MultiChain's names where
MultiChain has them):";

const PORT_BASES: [u16; 20] = [
    2644, 2744, 2870, 4244, 4324, 4374, 4754, 5744, 6264, 6446, 6716, 6790, 7172, 7314, 7404, 7718,
    8338, 9218, 9538, 9696,
];

/// A random odd network port as multichain-util picks it (base + 1 + 2k).
pub fn random_port() -> u16 {
    let mut b = [0u8; 2];
    rand::fill(&mut b);
    PORT_BASES[b[0] as usize % PORT_BASES.len()] + 1 + 2 * (b[1] as u16 % 25)
}

/// Fresh parameters for `chain` with random address bytes and ports.
pub fn fresh_params(chain: &str) -> ChainParams {
    let mut p = ChainParams::new(chain);
    let mut bytes = [0u8; 7];
    rand::fill(&mut bytes);
    p.address_pubkeyhash_version = [0x00, bytes[0], bytes[1], bytes[2]];
    p.address_checksum_value = [bytes[3], bytes[4], bytes[5], bytes[6]];
    p.default_network_port = random_port();
    p.default_rpc_port = p.default_network_port - 1;
    p
}

/// Runs `wattle-util` with its arguments; returns what to print.
pub fn run(args: &[String]) -> Result<String, String> {
    let mut datadir: Option<PathBuf> = None;
    let mut settings = Vec::new();
    let mut positional = Vec::new();
    for a in args {
        if let Some(flag) = a.strip_prefix('-') {
            let flag = flag.trim_start_matches('-');
            match flag.split_once('=') {
                Some(("datadir", v)) => datadir = Some(PathBuf::from(v)),
                Some((name, value)) => settings.push((name.to_string(), value.to_string())),
                None if flag == "help" || flag == "h" => return Ok(help()),
                None => return Err(format!("parameter -{flag} needs a value (-{flag}=...)")),
            }
        } else {
            positional.push(a.clone());
        }
    }
    match positional.as_slice() {
        [cmd, chain] if cmd == "create" => create(chain, datadir, &settings),
        [cmd, chain, _protocol] if cmd == "create" => create(chain, datadir, &settings),
        [] => Ok(help()),
        [cmd, ..] if cmd != "create" => Err(format!(
            "unknown command: {cmd} (only `create` is supported)"
        )),
        _ => Err("usage: wattle-util create CHAIN [-parameter=value ...]".into()),
    }
}

fn help() -> String {
    format!("{USAGE}\n  {}", params_file::param_names().join("\n  "))
}

fn create(
    chain: &str,
    datadir: Option<PathBuf>,
    settings: &[(String, String)],
) -> Result<String, String> {
    let mut params = fresh_params(chain);
    for (name, value) in settings {
        params_file::set(&mut params, name, value)?;
    }
    if !settings.iter().any(|(n, _)| n == "default-rpc-port") {
        params.default_rpc_port = params.default_network_port.saturating_sub(1).max(1024);
    }
    params.validate().map_err(|e| e.to_string())?;
    let dir = DataDir::new(datadir, chain);
    if dir.params_path().exists() {
        return Err(format!(
            "Blockchain parameter set for {chain} already exists in {}",
            dir.chain_dir().display()
        ));
    }
    // The chain directory will hold the wallet keys and holds the RPC password: 0700.
    create_private_dir(&dir.chain_dir())
        .map_err(|e| format!("cannot create {}: {e}", dir.chain_dir().display()))?;
    write_atomic(&dir.params_path(), params_file::render(&params).as_bytes())
        .map_err(|e| e.to_string())?;
    if !dir.conf_path().exists() {
        let conf = RpcConf::generate(params.default_rpc_port);
        write_private(&dir.conf_path(), conf.render().as_bytes()).map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "Wattle utilities {}\n\nBlockchain parameter set was successfully generated.\nYou can edit it in {} before running wattled for the first time.\n\nTo generate blockchain please run \"wattled {chain} -daemon\".",
        env!("CARGO_PKG_VERSION"),
        dir.params_path().display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_writes_params_and_conf_and_refuses_twice() {
        let dir = tempfile::tempdir().unwrap();
        let d = format!("-datadir={}", dir.path().display());
        let out = run(&[
            "create".into(),
            "energybc".into(),
            d.clone(),
            "-target-block-time=2".into(),
        ])
        .unwrap();
        assert!(out.contains("successfully generated"));
        let text = std::fs::read_to_string(dir.path().join("energybc/params.toml")).unwrap();
        let p = params_file::parse(&text).unwrap();
        assert_eq!(p.empty_block_interval_ms, 2000);
        assert_eq!(p.default_rpc_port, p.default_network_port - 1);
        assert_eq!(p.default_network_port % 2, 1);
        let conf = RpcConf::read(&dir.path().join("energybc/wattle.conf")).unwrap();
        assert_eq!(conf.user, "multichainrpc");
        #[cfg(unix)]
        {
            // The RPC password is readable by its owner only, in a private chain directory.
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| {
                std::fs::metadata(dir.path().join(p))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode("energybc/wattle.conf"), 0o600);
            assert_eq!(mode("energybc"), 0o700);
        }
        assert!(
            run(&["create".into(), "energybc".into(), d.clone()])
                .unwrap_err()
                .contains("already exists")
        );
        assert!(
            run(&[
                "create".into(),
                "other".into(),
                d.clone(),
                "-mining-diversity=2".into()
            ])
            .unwrap_err()
            .contains("mining-diversity")
        );
        assert!(
            run(&["create".into(), "other".into(), d, "-nonsense=1".into()])
                .unwrap_err()
                .contains("unknown parameter")
        );
    }
}
