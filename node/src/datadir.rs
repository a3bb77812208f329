//! The data directory: `~/.wattle/CHAIN/` (or `-datadir=DIR` → `DIR/CHAIN/`) and the files in it:
//! `params.toml`, `wattle.conf` (RPC credentials, mode 0600), `wallet.keys` (0600), `seed.txt`,
//! `blocks/`, `state/` (sled) and `debug.log`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a chain's files live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    /// `~/.wattle` or the `-datadir=` value.
    pub root: PathBuf,
    pub chain: String,
}

/// `~/.wattle` (falls back to `./.wattle` when HOME is not set).
pub fn default_root() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".wattle")
}

impl DataDir {
    pub fn new(root: Option<PathBuf>, chain: &str) -> DataDir {
        DataDir {
            root: root.unwrap_or_else(default_root),
            chain: chain.to_string(),
        }
    }

    pub fn chain_dir(&self) -> PathBuf {
        self.root.join(&self.chain)
    }

    pub fn params_path(&self) -> PathBuf {
        self.chain_dir().join("params.toml")
    }

    pub fn conf_path(&self) -> PathBuf {
        self.chain_dir().join("wattle.conf")
    }

    pub fn wallet_path(&self) -> PathBuf {
        self.chain_dir().join("wallet.keys")
    }

    pub fn seed_path(&self) -> PathBuf {
        self.chain_dir().join("seed.txt")
    }

    pub fn store_path(&self) -> PathBuf {
        self.chain_dir()
    }

    pub fn log_path(&self) -> PathBuf {
        self.chain_dir().join("debug.log")
    }
}

/// Writes a file readable by its owner only (credentials, keys), atomically (temp + rename).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    }
    fs::rename(&tmp, path)
}

/// Writes a file atomically (temp + rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// The `key=value` lines of a conf file (`#` comments and blank lines skipped; later keys win).
pub fn parse_conf(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The node's RPC settings from `wattle.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcConf {
    pub user: String,
    pub password: String,
    pub port: Option<u16>,
}

impl RpcConf {
    pub fn read(path: &Path) -> Result<RpcConf, String> {
        let text =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut conf = RpcConf {
            user: String::new(),
            password: String::new(),
            port: None,
        };
        for (k, v) in parse_conf(&text) {
            match k.as_str() {
                "rpcuser" => conf.user = v,
                "rpcpassword" => conf.password = v,
                "rpcport" => {
                    conf.port = Some(
                        v.parse()
                            .map_err(|_| format!("invalid rpcport in {}: {v}", path.display()))?,
                    )
                }
                _ => {}
            }
        }
        if conf.password.is_empty() {
            return Err(format!("rpcpassword= must be set in {}", path.display()));
        }
        if conf.user.is_empty() {
            conf.user = "multichainrpc".into();
        }
        Ok(conf)
    }

    /// A new conf with MultiChain's user name and a random password (Base58 of 32 random bytes).
    pub fn generate(port: u16) -> RpcConf {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        RpcConf {
            user: "multichainrpc".into(),
            password: bs58::encode(bytes).into_string(),
            port: Some(port),
        }
    }

    pub fn render(&self) -> String {
        let mut s = format!("rpcuser={}\nrpcpassword={}\n", self.user, self.password);
        if let Some(p) = self.port {
            s.push_str(&format!("rpcport={p}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_round_trip_and_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wattle.conf");
        let conf = RpcConf::generate(8570);
        write_private(&path, conf.render().as_bytes()).unwrap();
        assert_eq!(RpcConf::read(&path).unwrap(), conf);
        assert_eq!(conf.user, "multichainrpc");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        fs::write(&path, "rpcuser=x\n").unwrap();
        assert!(RpcConf::read(&path).unwrap_err().contains("rpcpassword="));
        fs::write(&path, "rpcpassword=a\nrpcport=notaport\n").unwrap();
        assert!(
            RpcConf::read(&path)
                .unwrap_err()
                .contains("invalid rpcport")
        );
    }
}
