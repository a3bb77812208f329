//! The data directory: `~/.wattle/CHAIN/` (or `-datadir=DIR` → `DIR/CHAIN/`) and the files in it:
//! `params.toml`, `wattle.conf` (RPC credentials, mode 0600), `wallet.keys` (0600), `seed.txt`,
//! `blocks/`, `state/` (sled) and `debug.log`. The chain directory is 0700 (it holds the keys
//! and the RPC password); `params.toml`, `seed.txt`, the blocks and the state hold no secret.

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

/// The temporary file `path` is written to before the rename: `NAME.tmp` next to it (one per
/// file, so `wallet.keys` and `wallet.locks` never share one).
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes a file readable by its owner only (credentials, keys), atomically (temp + rename).
/// The temporary file is created new with mode 0600 before any byte is written (a leftover one
/// is removed first, so its mode cannot leak the contents).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        // The mode given to open is masked by the umask; this one is not.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Creates `dir` (and its parents) if needed and makes it private to its owner (mode 0700): the
/// chain directory holds `wallet.keys` and `wattle.conf`. A data root created on the way is
/// 0700 too; an existing parent is left as it is. Returns whether an existing `dir` had to be
/// tightened.
pub fn create_private_dir(dir: &Path) -> std::io::Result<bool> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    let existed = dir.is_dir();
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            return Ok(existed && mode & 0o077 != 0);
        }
    }
    Ok(false)
}

/// Writes a file atomically (temp + rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
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
    /// `rpcallowip=` lines (each may be a comma-separated list), added to the command line's.
    pub allow_ip: Vec<String>,
    /// `rpcbind=` lines, added to the command line's.
    pub bind: Vec<String>,
}

impl RpcConf {
    pub fn read(path: &Path) -> Result<RpcConf, String> {
        let text =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut conf = RpcConf {
            user: String::new(),
            password: String::new(),
            port: None,
            allow_ip: Vec::new(),
            bind: Vec::new(),
        };
        for (k, v) in parse_conf(&text) {
            match k.as_str() {
                "rpcuser" => conf.user = v,
                "rpcallowip" => conf.allow_ip.push(v),
                "rpcbind" => conf.bind.push(v),
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
            allow_ip: Vec::new(),
            bind: Vec::new(),
        }
    }

    pub fn render(&self) -> String {
        let mut s = format!("rpcuser={}\nrpcpassword={}\n", self.user, self.password);
        if let Some(p) = self.port {
            s.push_str(&format!("rpcport={p}\n"));
        }
        for a in &self.allow_ip {
            s.push_str(&format!("rpcallowip={a}\n"));
        }
        for b in &self.bind {
            s.push_str(&format!("rpcbind={b}\n"));
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
        // rpcallowip and rpcbind lines, repeated, survive a round trip.
        let mut with_access = conf.clone();
        with_access.allow_ip = vec!["192.168.0.0/16".into(), "10.0.0.1,10.0.0.2".into()];
        with_access.bind = vec!["0.0.0.0".into()];
        write_private(&path, with_access.render().as_bytes()).unwrap();
        assert_eq!(RpcConf::read(&path).unwrap(), with_access);
        fs::write(&path, "rpcuser=x\n").unwrap();
        assert!(RpcConf::read(&path).unwrap_err().contains("rpcpassword="));
        fs::write(&path, "rpcpassword=a\nrpcport=notaport\n").unwrap();
        assert!(
            RpcConf::read(&path)
                .unwrap_err()
                .contains("invalid rpcport")
        );
    }

    /// A leftover temporary file readable by others is never where the secret is written, and
    /// two private files in one directory do not share a temporary file.
    #[cfg(unix)]
    #[test]
    fn private_files_never_pass_through_a_readable_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("wallet.keys");
        let locks = dir.path().join("wallet.locks");
        assert_ne!(tmp_path(&keys), tmp_path(&locks));
        fs::write(tmp_path(&keys), "old").unwrap();
        fs::set_permissions(tmp_path(&keys), fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&keys, b"secret").unwrap();
        assert_eq!(fs::read(&keys).unwrap(), b"secret");
        assert_eq!(
            fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!tmp_path(&keys).exists());
        // Rewriting an existing file keeps it private.
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&keys, b"secret2").unwrap();
        assert_eq!(
            fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[cfg(unix)]
    #[test]
    fn chain_directories_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        // A new data root and chain directory: both 0700.
        let chain = dir.path().join("root").join("energybc");
        assert!(!create_private_dir(&chain).unwrap());
        assert_eq!(mode(&chain), 0o700);
        assert_eq!(mode(&dir.path().join("root")), 0o700);
        // An existing chain directory readable by others is tightened (and says so).
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(create_private_dir(&open).unwrap());
        assert_eq!(mode(&open), 0o700);
        assert!(!create_private_dir(&open).unwrap());
    }
}
