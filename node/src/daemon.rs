//! `wattled`: command-line options, first start (create a chain's genesis, or join one through a
//! seed), and the running node (store, engine, network, chain actor, RPC) until it is stopped.

use crate::chain::{ChainActor, NodeInfo, NodeState, now_ms};
use crate::datadir::{DataDir, RpcConf, create_private_dir, write_atomic, write_private};
use crate::network::{self, NetEvent, NetworkConfig, Request, Response};
use crate::rpc::access::{self, AllowList, Subnet};
use crate::rpc::{self, Limits, Rpc, ServerConfig};
use crate::store::Store;
use crate::wallet::Wallet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wattle_consensus::{Config as EngineConfig, Engine};
use wattle_ledger::block::Block;
use wattle_ledger::chain::Chain;
use wattle_ledger::codec;
use wattle_ledger::genesis::{apply_genesis, genesis_block};
use wattle_ledger::params::ChainParams;
use wattle_ledger::permissions::{GlobalPerm, Permission};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub const USAGE: &str = "Usage: wattled CHAIN[@SEED-HOST:PORT] [options]
       wattled devnet [-datadir=DIR] [-exit]

Runs a Wattle node. With CHAIN alone it starts the chain created by `wattle-util create CHAIN`
(the first run makes the genesis block) or restarts a node that joined before. With
CHAIN@HOST:PORT it joins the chain served by that seed node: it fetches the parameters,
prints its address and the grant command for the chain's administrator, and keeps retrying
until it is granted connect, then syncs.

Options:
  -datadir=DIR        data directory (default ~/.wattle); the chain's files are in DIR/CHAIN/
  -port=N             peer-to-peer port (default: default-network-port of the chain)
  -rpcport=N          JSON-RPC port (default: rpcport in wattle.conf, else default-rpc-port)
  -bind=IP            peer-to-peer listening address (default 127.0.0.1)
  -addnode=HOST:PORT  also connect to this peer, and reconnect whenever the connection is lost,
                      as with the seed (repeatable; MultiChain's -addnode with an explicit port).
                      The seed alone makes a star around it; with this the nodes can form any
                      mesh, so that they still reach each other while the seed is down or cut off
  -rpcallowip=IP/NET  also accept JSON-RPC from these addresses: a single IP (1.2.3.4), a
                      network/CIDR (192.168.0.0/16) or a network/netmask
                      (1.2.3.0/255.255.255.0); repeat it or give a comma-separated list. Without
                      it JSON-RPC listens on 127.0.0.1 only; with it, on 0.0.0.0 (or -rpcbind),
                      and other addresses get HTTP 403. Loopback is always allowed. Also read
                      from rpcallowip= lines in wattle.conf.
  -rpcbind=ADDR[:PORT]
                      with -rpcallowip: listen for JSON-RPC on this address instead of 0.0.0.0
                      (repeatable; ignored without -rpcallowip; also rpcbind= in wattle.conf)
  -rpcworkqueue=N     JSON-RPC requests handled at once; more get HTTP 503 (default 64)
  -rpcmaxconnections=N
                      JSON-RPC connections open at once; more wait to be accepted (default 128)
  -rpcservertimeout=S seconds a JSON-RPC client may take to send a request's head or body, to
                      read its reply, or to stay idle between requests (default 30)
  -externalip=IP      address shown in nodeaddress (default 127.0.0.1)
  -bantime=S          seconds a misbehaving peer stays disconnected and refused (default 600)
  -lockadminminerounds=N
                      refuse a reorg whose fork point is N rounds (x the mining spacing) or
                      more below the tip when the blocks it would undo grant or revoke admin
                      or mine (MultiChain's lock-admin-mine-rounds; default 10, 0: off)
  -shortoutput        print only the node's address when joining
  -reindex            rebuild the state database from the block files (done by itself when
                      the database lost the chain the block files hold)
  -debug              verbose logging in debug.log
  -exit               devnet: stop after the trade instead of waiting for Ctrl-C
  -daemon             accepted for MultiChain compatibility (run it in the background yourself)
  -help, -version";

/// Parsed `wattled` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub chain: String,
    pub seed: Option<(String, u16)>,
    pub datadir: Option<PathBuf>,
    pub port: Option<u16>,
    pub rpcport: Option<u16>,
    pub bind: Option<String>,
    /// `-addnode` peers, dialled and re-dialled like the seed.
    pub addnode: Vec<(String, u16)>,
    /// `-rpcallowip` subnets (the ones in wattle.conf are added at start).
    pub rpcallowip: Vec<Subnet>,
    /// `-rpcbind` values (the ones in wattle.conf are added at start).
    pub rpcbind: Vec<String>,
    /// `-rpcworkqueue`, `-rpcmaxconnections`, `-rpcservertimeout` (seconds).
    pub rpcworkqueue: Option<usize>,
    pub rpcmaxconnections: Option<usize>,
    pub rpcservertimeout: Option<u64>,
    pub externalip: Option<String>,
    /// `-bantime` (seconds).
    pub bantime: Option<u64>,
    /// `-lockadminminerounds` (0: off).
    pub lockadminminerounds: Option<u32>,
    /// `-reindex`: rebuild the state database from the block files before starting.
    pub reindex: bool,
    pub shortoutput: bool,
    pub debug: bool,
    /// devnet: stop after the trade instead of waiting for Ctrl-C.
    pub exit: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run(Options),
    Devnet(Options),
    Help,
    Version,
}

/// A port number; 0 means "any free port" (the chosen one is printed at start).
fn port(name: &str, v: &str) -> Result<u16, String> {
    v.parse::<u16>()
        .map_err(|_| format!("invalid -{name}: {v} (expected a port number 0-65535)"))
}

/// `HOST:PORT` (an IPv6 literal in brackets: `[::1]:7447`).
fn host_port(name: &str, v: &str) -> Result<(String, u16), String> {
    let (host, p) = v
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid -{name}: {v} (expected HOST:PORT)"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("invalid -{name}: {v} (expected HOST:PORT)"));
    }
    Ok((host.to_string(), port(name, p)?))
}

/// A positive count (a limit).
fn count(name: &str, v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid -{name}: {v} (expected a positive number)"))
}

/// Parses `wattled` arguments (without the program name).
pub fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut opts = Options::default();
    let mut positional = Vec::new();
    for arg in args {
        if let Some(flag) = arg.strip_prefix('-') {
            let flag = flag.trim_start_matches('-');
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (flag, None),
            };
            let need = |v: Option<&str>| {
                v.map(str::to_string)
                    .ok_or_else(|| format!("-{name} needs a value (-{name}=...)"))
            };
            match name {
                "help" | "h" | "?" => return Ok(Command::Help),
                "version" => return Ok(Command::Version),
                "datadir" => opts.datadir = Some(PathBuf::from(need(value)?)),
                "port" => opts.port = Some(port(name, &need(value)?)?),
                "rpcport" => opts.rpcport = Some(port(name, &need(value)?)?),
                "bind" => opts.bind = Some(need(value)?),
                "addnode" => opts.addnode.push(host_port(name, &need(value)?)?),
                "rpcallowip" => opts.rpcallowip.extend(Subnet::parse_list(&need(value)?)?),
                "rpcbind" => opts.rpcbind.push(need(value)?),
                "rpcworkqueue" => opts.rpcworkqueue = Some(count(name, &need(value)?)?),
                "rpcmaxconnections" => opts.rpcmaxconnections = Some(count(name, &need(value)?)?),
                "rpcservertimeout" => {
                    opts.rpcservertimeout = Some(count(name, &need(value)?)? as u64)
                }
                "externalip" => opts.externalip = Some(need(value)?),
                "bantime" => opts.bantime = Some(count(name, &need(value)?)? as u64),
                "lockadminminerounds" => {
                    let v = need(value)?;
                    let rounds = v.parse::<u32>().map_err(|_| {
                        format!("invalid -{name}: {v} (expected a number of rounds, 0 for off)")
                    })?;
                    opts.lockadminminerounds = Some(rounds);
                }
                "reindex" => opts.reindex = true,
                "shortoutput" => opts.shortoutput = true,
                "debug" => opts.debug = true,
                "exit" => opts.exit = true,
                "daemon" | "printtoconsole" => {}
                other => return Err(format!("unknown option -{other} (see wattled -help)")),
            }
        } else {
            positional.push(arg.clone());
        }
    }
    match positional.as_slice() {
        [] => Err("missing CHAIN (see wattled -help)".into()),
        [one] if one == "devnet" => Ok(Command::Devnet(opts)),
        [one] => {
            let (chain, seed) = match one.split_once('@') {
                Some((c, s)) => {
                    let (host, p) = s.rsplit_once(':').ok_or_else(|| {
                        format!("seed {s} needs an explicit port number: {c}@HOST:PORT")
                    })?;
                    (
                        c.to_string(),
                        Some((host.to_string(), port("seed port", p)?)),
                    )
                }
                None => (one.clone(), None),
            };
            if chain.is_empty() || chain.len() > 32 {
                return Err("the chain name must be 1 to 32 characters".into());
            }
            opts.chain = chain;
            opts.seed = seed;
            Ok(Command::Run(opts))
        }
        more => Err(format!("unexpected arguments: {}", more[1..].join(" "))),
    }
}

/// Sets up logging to `debug.log` in the chain directory.
pub fn init_logging(dir: &DataDir, debug: bool) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| {
        if debug {
            "debug,libp2p=info".into()
        } else {
            "info,libp2p=warn".into()
        }
    });
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.log_path());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false);
    let _ = match file {
        Ok(f) => builder.with_writer(std::sync::Mutex::new(f)).try_init(),
        Err(_) => builder.with_writer(std::io::stderr).try_init(),
    };
}

/// A running node's addresses, for callers that start nodes in-process (devnet, tests).
#[derive(Clone, Debug)]
pub struct Started {
    pub p2p_port: u16,
    pub rpc_port: u16,
    pub address: String,
}

/// Fetches the parameters and genesis block from a seed, checks them, and initialises the store.
async fn join_through_seed(
    dir: &DataDir,
    store: &Store,
    wallet: &Wallet,
    seed: &(String, u16),
    shortoutput: bool,
) -> Result<(ChainParams, Block), String> {
    if !shortoutput {
        println!(
            "Retrieving blockchain parameters from the seed node {}:{} ...",
            seed.0, seed.1
        );
    }
    let mut cfg = NetworkConfig::new(wallet.identity().to_bytes(), [0u8; 32]);
    cfg.seeds = vec![seed.clone()];
    cfg.redial_min = Duration::from_millis(500);
    cfg.redial_max = Duration::from_secs(2);
    let (net, mut events, _) = network::spawn(cfg).await.map_err(|e| e.to_string())?;
    let fetch = async {
        loop {
            match events.recv().await {
                Some(NetEvent::PeerConnected { peer, .. }) => {
                    match net.request(peer, Request::GetParams).await {
                        Ok(Response::Params { params, genesis }) => return Ok((params, genesis)),
                        Ok(other) => {
                            return Err(format!("the seed refused to send parameters: {other:?}"));
                        }
                        Err(e) => tracing::warn!("parameter request failed: {e}"),
                    }
                }
                Some(_) => {}
                None => return Err("network stopped".to_string()),
            }
        }
    };
    let result = tokio::time::timeout(Duration::from_secs(30), fetch).await;
    let _ = net.shutdown().await;
    let (params_bytes, genesis_bytes) = result.map_err(|_| {
        format!("Couldn't connect to the seed node {}:{} - please check that wattled is running there and the firewall allows it", seed.0, seed.1)
    })??;
    let text = String::from_utf8(params_bytes)
        .map_err(|_| "the seed sent parameters that are not text".to_string())?;
    let params = crate::params_file::parse(&text)
        .map_err(|e| format!("the seed sent invalid parameters: {e}"))?;
    if params.chain_name != dir.chain {
        return Err(format!(
            "the seed serves chain {}, not {}",
            params.chain_name, dir.chain
        ));
    }
    let genesis: Block = codec::decode(&genesis_bytes)
        .map_err(|e| format!("the seed sent an invalid genesis block: {e}"))?;
    let (_, changes) = apply_genesis(&params, &genesis)
        .map_err(|e| format!("the seed's genesis block is invalid: {e}"))?;
    write_atomic(&dir.params_path(), text.as_bytes()).map_err(|e| e.to_string())?;
    store
        .init_genesis(&genesis, &changes)
        .map_err(|e| e.to_string())?;
    write_atomic(
        &dir.seed_path(),
        format!("{}:{}\n", seed.0, seed.1).as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    Ok((params, genesis))
}

fn read_seed(dir: &DataDir) -> Option<(String, u16)> {
    let text = std::fs::read_to_string(dir.seed_path()).ok()?;
    let (h, p) = text.trim().rsplit_once(':')?;
    Some((h.to_string(), p.parse().ok()?))
}

/// Opens the store, first rebuilding it from the block files when asked (`-reindex`) or when
/// the state database lost the chain the block files hold (or a rebuild was interrupted).
fn open_store(dir: &DataDir, opts: &Options, wallet: &Wallet) -> Result<Arc<Store>, String> {
    let open = || Store::open(&dir.store_path()).map_err(|e| format!("cannot open the store: {e}"));
    let why = if opts.reindex {
        "-reindex"
    } else if crate::reindex::interrupted(&dir.store_path()) {
        "an earlier rebuild was interrupted"
    } else {
        let store = match open() {
            Ok(store) => store,
            Err(e) => {
                return Err(format!(
                    "{e}\n(if the state database is damaged, `wattled {} -reindex` rebuilds it from the block files)",
                    opts.chain
                ));
            }
        };
        if !crate::reindex::needed(&dir.store_path(), &store).map_err(|e| e.to_string())? {
            return Ok(Arc::new(store));
        }
        "the state database holds no chain but the block files do"
    };
    let text = std::fs::read_to_string(dir.params_path()).map_err(|e| {
        format!(
            "cannot rebuild the state database ({why}): cannot read {}: {e}",
            dir.params_path().display()
        )
    })?;
    let params = crate::params_file::parse(&text)?;
    tracing::warn!("rebuilding the state database from the block files: {why}");
    eprintln!("Rebuilding the state database from the block files ({why})...");
    let report = crate::reindex::rebuild(
        &dir.store_path(),
        &params,
        Some(wallet.identity().address()),
    )
    .map_err(|e| format!("cannot rebuild the state database: {e}"))?;
    let stopped = report
        .stopped
        .as_ref()
        .map(|s| format!("; stopped early: {s}"))
        .unwrap_or_default();
    tracing::warn!(
        records = report.records,
        height = report.height,
        "state database rebuilt{stopped}"
    );
    eprintln!(
        "Rebuilt from {} block records: tip height {}{stopped}",
        report.records, report.height
    );
    Ok(Arc::new(open()?))
}

/// Runs a node until it is stopped (`stop`, SIGINT, SIGTERM) or fails. `started` receives the
/// bound ports once the node is up.
pub async fn run(
    opts: Options,
    started: Option<tokio::sync::oneshot::Sender<Started>>,
) -> Result<(), String> {
    let dir = DataDir::new(opts.datadir.clone(), &opts.chain);
    // The chain directory holds the keys and the RPC password: owner only (0700).
    let tightened = match create_private_dir(&dir.chain_dir()) {
        Ok(t) => Ok(t),
        Err(e) if dir.chain_dir().is_dir() => Err(e),
        Err(e) => return Err(format!("cannot create {}: {e}", dir.chain_dir().display())),
    };
    init_logging(&dir, opts.debug);
    match tightened {
        Ok(true) => tracing::info!(
            "{} was readable by other users; its mode is now 0700",
            dir.chain_dir().display()
        ),
        Ok(false) => {}
        Err(e) => tracing::warn!(
            "cannot make {} private (mode 0700): {e}",
            dir.chain_dir().display()
        ),
    }
    let wallet = Wallet::open_or_create(&dir.wallet_path()).map_err(|e| e.to_string())?;
    let store = open_store(&dir, &opts, &wallet)?;
    let mut created = false;
    let seed = opts.seed.clone().or_else(|| read_seed(&dir));
    if !store.is_initialized() {
        if dir.params_path().exists() && opts.seed.is_none() {
            let text = std::fs::read_to_string(dir.params_path()).map_err(|e| e.to_string())?;
            let params = crate::params_file::parse(&text)?;
            let genesis = genesis_block(&params, wallet.identity(), now_ms());
            let (_, changes) = apply_genesis(&params, &genesis).map_err(|e| e.to_string())?;
            store
                .init_genesis(&genesis, &changes)
                .map_err(|e| e.to_string())?;
            created = true;
        } else if let Some(seed) = &opts.seed {
            join_through_seed(&dir, &store, &wallet, seed, opts.shortoutput).await?;
        } else {
            return Err(format!(
                "{} not found: create the chain with `wattle-util create {}` or join one with `wattled {}@HOST:PORT`",
                dir.params_path().display(),
                opts.chain,
                opts.chain
            ));
        }
    }
    let text = std::fs::read_to_string(dir.params_path())
        .map_err(|e| format!("cannot read {}: {e}", dir.params_path().display()))?;
    let params = crate::params_file::parse(&text)?;
    let genesis = store
        .block_at_height(0)
        .map_err(|e| e.to_string())?
        .ok_or("the store has no genesis block")?;
    if genesis.header.prev != params.hash() {
        return Err(format!(
            "{} does not match this chain's genesis block (was it edited after the first run?)",
            dir.params_path().display()
        ));
    }
    let chain_id = genesis.header.id(&wattle_ledger::Hash256::ZERO);
    let chain = Chain {
        params: params.clone(),
        id: chain_id,
    };
    let fmt_ready = params.address_format();
    let rpc_conf = match RpcConf::read(&dir.conf_path()) {
        Ok(c) => c,
        Err(_) if !dir.conf_path().exists() => {
            let c = RpcConf::generate(
                opts.rpcport
                    .filter(|p| *p != 0)
                    .unwrap_or(params.default_rpc_port),
            );
            write_private(&dir.conf_path(), c.render().as_bytes()).map_err(|e| e.to_string())?;
            c
        }
        Err(e) => return Err(e),
    };
    let rpc_port = opts
        .rpcport
        .or(rpc_conf.port)
        .unwrap_or(params.default_rpc_port);
    let mut allow_ip = opts.rpcallowip.clone();
    for v in &rpc_conf.allow_ip {
        allow_ip.extend(
            Subnet::parse_list(v).map_err(|e| format!("{e} (in {})", dir.conf_path().display()))?,
        );
    }
    let rpc_bind: Vec<String> = opts.rpcbind.iter().chain(&rpc_conf.bind).cloned().collect();

    // Consensus engine from the stored chain.
    let recent = store.recent(1001).map_err(|e| e.to_string())?;
    let mut engine_cfg = EngineConfig::new(Some(wallet.identity().address()));
    if let Ok(Some(bytes)) = store.meta_get(crate::store::meta::LAST_SIGNED)
        && let Ok(arr) = <[u8; 4]>::try_from(bytes.as_slice())
    {
        engine_cfg.last_signed = Some(u32::from_le_bytes(arr));
    }
    if let Some(rounds) = opts.lockadminminerounds {
        engine_cfg.lock_admin_mine_rounds = rounds;
    }
    let engine = Engine::new(chain.clone(), engine_cfg, recent, now_ms());

    // Network.
    let mut net_cfg = NetworkConfig::new(wallet.identity().to_bytes(), chain_id.0);
    net_cfg.listen_port = opts.port.unwrap_or(params.default_network_port);
    net_cfg.listen_host = opts.bind.clone().unwrap_or_else(|| "127.0.0.1".into());
    net_cfg.seeds = seed.clone().into_iter().collect();
    for peer in &opts.addnode {
        if !net_cfg.seeds.contains(peer) {
            net_cfg.seeds.push(peer.clone());
        }
    }
    net_cfg.max_transmit_size = params.maximum_block_size as usize + 65_536;
    net_cfg.heartbeat = Duration::from_millis(200);
    if let Some(seconds) = opts.bantime {
        net_cfg.ban_duration = Duration::from_secs(seconds);
    }
    let (net, net_events, p2p_port) = network::spawn(net_cfg).await.map_err(|e| e.to_string())?;

    let external_ip = opts
        .externalip
        .clone()
        .unwrap_or_else(|| "127.0.0.1".into());
    let info = NodeInfo {
        port: p2p_port,
        rpc_port,
        external_ip: external_ip.clone(),
        params_toml: text,
    };
    let state = NodeState::new(chain.clone(), store.clone(), engine, wallet, info, 50_000);
    let identity = state.wallet.identity().address();
    let admitted = state.holds(&identity, Permission::Global(GlobalPerm::Connect));
    let (actor, handle) = ChainActor::new(state, net.clone(), net_events);
    let actor_task = tokio::spawn(actor.run());

    // JSON-RPC: 127.0.0.1 only unless rpcallowip says otherwise.
    let (endpoints, bind_warning) = access::endpoints(&allow_ip, &rpc_bind, rpc_port);
    if let Some(w) = bind_warning {
        eprintln!("WARNING: {w}");
        tracing::warn!("{w}");
    }
    let mut listeners = Vec::new();
    // Port 0 means any free port: the first endpoint picks it, the others use the same one.
    let mut any_port: Option<u16> = None;
    for (host, port) in &endpoints {
        let port = match (*port, any_port) {
            (0, Some(p)) => p,
            (p, _) => p,
        };
        let listener = tokio::net::TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot listen for JSON-RPC on {host} port {port}: {e}"))?;
        if port == 0 {
            any_port = listener.local_addr().ok().map(|a| a.port());
        }
        listeners.push(listener);
    }
    let rpc_port = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .map_or(rpc_port, |a| a.port());
    let defaults = Limits::default();
    let limits = Limits {
        max_connections: opts.rpcmaxconnections.unwrap_or(defaults.max_connections),
        work_queue: opts.rpcworkqueue.unwrap_or(defaults.work_queue),
        timeout: opts
            .rpcservertimeout
            .map_or(defaults.timeout, Duration::from_secs),
    };
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let server_cfg = ServerConfig {
        user: rpc_conf.user.clone(),
        password: rpc_conf.password.clone(),
        chain_name: chain.params.chain_name.clone(),
        max_body_bytes: params.maximum_block_size as usize * 2 + 1_048_576,
        server_name: format!("wattle-json-rpc/{VERSION}"),
        allow: AllowList::new(allow_ip.clone()),
        limits,
    };
    let rpc = Rpc {
        chain: handle.clone(),
        net: net.clone(),
        shutdown: shutdown.clone(),
        version: VERSION,
    };
    let (rpc_stop_tx, rpc_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rpc::server::serve(
        listeners,
        server_cfg,
        rpc::dispatcher(rpc),
        async {
            let _ = rpc_stop_rx.await;
        },
    ));

    let address = fmt_ready.encode(&identity);
    if created {
        println!("Blockchain successfully initialized.\n");
    }
    if admitted {
        println!(
            "Other nodes can connect to this node using:\nwattled {}@{}:{}\n",
            chain.params.chain_name, external_ip, p2p_port
        );
    } else if opts.shortoutput {
        println!("{address}");
    } else {
        println!("Blockchain successfully initialized.\n");
        println!(
            "Please ask blockchain admin or user having activate permission to let you connect and/or transact:"
        );
        println!(
            "wattle-cli {} grant {address} connect",
            chain.params.chain_name
        );
        println!(
            "wattle-cli {} grant {address} connect,send,receive\n",
            chain.params.chain_name
        );
    }
    if allow_ip.is_empty() {
        println!(
            "Listening for API requests on port {rpc_port} (local only - see rpcallowip setting)\n"
        );
    } else {
        let on: Vec<String> = endpoints.iter().map(|(h, _)| h.clone()).collect();
        let allowed: Vec<String> = allow_ip.iter().map(Subnet::to_string).collect();
        println!(
            "Listening for API requests on port {rpc_port} (on {}; allowed: loopback, {})\n",
            on.join(", "),
            allowed.join(", ")
        );
    }
    println!("Node ready.");
    tracing::info!(p2p_port, rpc_port, %address, "node ready");
    if let Some(tx) = started {
        let _ = tx.send(Started {
            p2p_port,
            rpc_port,
            address,
        });
    }

    let mut actor_task = actor_task;
    let outcome = tokio::select! {
        r = &mut actor_task => Some(r),
        _ = shutdown.notified() => None,
        _ = shutdown_signal() => None,
    };
    let result = match outcome {
        Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => Err(format!("chain actor crashed: {e}")),
        None => {
            let _ = handle.call(|s| s.stop_requested = true).await;
            match tokio::time::timeout(Duration::from_secs(10), actor_task).await {
                Ok(Ok(Err(e))) => Err(e),
                _ => Ok(()),
            }
        }
    };
    let _ = rpc_stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let _ = net.shutdown().await;
    tracing::info!("node stopped");
    result
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_multichain_style_options() {
        let Command::Run(o) = parse_args(&args(
            "energybc@127.0.0.1:7447 -datadir=/tmp/x -port=7449 -rpcport=7448 -daemon",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.chain, "energybc");
        assert_eq!(o.seed, Some(("127.0.0.1".into(), 7447)));
        assert_eq!(o.datadir, Some(PathBuf::from("/tmp/x")));
        assert_eq!((o.port, o.rpcport), (Some(7449), Some(7448)));
        assert_eq!(parse_args(&args("-help")).unwrap(), Command::Help);
        assert!(matches!(
            parse_args(&args("devnet")).unwrap(),
            Command::Devnet(_)
        ));
        assert!(parse_args(&args("")).unwrap_err().contains("missing CHAIN"));
        assert!(
            parse_args(&args("energybc@host"))
                .unwrap_err()
                .contains("explicit port")
        );
        let Command::Run(o) = parse_args(&args(
            "energybc -addnode=10.0.0.2:7447 -addnode=[fd00::1]:7448 -addnode=host.example:1",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            o.addnode,
            [
                ("10.0.0.2".to_string(), 7447),
                ("fd00::1".to_string(), 7448),
                ("host.example".to_string(), 1)
            ]
        );
        for bad in [
            "-addnode",
            "-addnode=10.0.0.2",
            "-addnode=:7447",
            "-addnode=h:x",
        ] {
            assert!(
                parse_args(&args(&format!("energybc {bad}"))).is_err(),
                "{bad}"
            );
        }
        assert!(USAGE.contains("-addnode"));
        assert!(
            parse_args(&args("energybc -port=x"))
                .unwrap_err()
                .contains("invalid -port")
        );
        assert!(
            parse_args(&args("energybc -frobnicate"))
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(
            parse_args(&args("energybc extra"))
                .unwrap_err()
                .contains("unexpected")
        );
    }

    #[test]
    fn parses_lock_admin_mine_rounds() {
        let run = |a: &str| match parse_args(&args(a)) {
            Ok(Command::Run(o)) => Ok(o.lockadminminerounds),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(run("energybc"), Ok(None));
        assert_eq!(run("energybc -lockadminminerounds=3"), Ok(Some(3)));
        assert_eq!(run("energybc -lockadminminerounds=0"), Ok(Some(0)));
        for bad in ["-1", "x", "", "4294967296"] {
            let e = run(&format!("energybc -lockadminminerounds={bad}")).unwrap_err();
            assert!(e.contains("invalid -lockadminminerounds"), "{bad}: {e}");
        }
        assert!(
            run("energybc -lockadminminerounds")
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(USAGE.contains("-lockadminminerounds=N"));
    }

    #[test]
    fn parses_rpc_access_and_limit_options() {
        let Command::Run(o) = parse_args(&args("energybc")).unwrap() else {
            panic!()
        };
        assert!(o.rpcallowip.is_empty() && o.rpcbind.is_empty());
        let Command::Run(o) = parse_args(&args(
            "energybc -rpcallowip=192.168.0.0/16 -rpcallowip=10.0.0.1,fd00::/8 -rpcbind=0.0.0.0 \
             -rpcbind=[::1]:9000 -rpcworkqueue=4 -rpcmaxconnections=9 -rpcservertimeout=2 \
             -bantime=3 -reindex",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            o.rpcallowip,
            Subnet::parse_list("192.168.0.0/16,10.0.0.1,fd00::/8").unwrap()
        );
        assert_eq!(o.rpcbind, ["0.0.0.0", "[::1]:9000"]);
        assert_eq!(
            (o.rpcworkqueue, o.rpcmaxconnections, o.rpcservertimeout),
            (Some(4), Some(9), Some(2))
        );
        assert_eq!(o.bantime, Some(3));
        assert!(o.reindex);
        for bad in [
            "energybc -rpcallowip=*",
            "energybc -rpcallowip=1.2.3.4/40",
            "energybc -rpcallowip",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad}");
        }
        assert!(
            parse_args(&args("energybc -rpcallowip=192.168.*.*"))
                .unwrap_err()
                .contains("Invalid -rpcallowip subnet specification")
        );
        for bad in [
            "-rpcworkqueue=0",
            "-rpcmaxconnections=x",
            "-rpcservertimeout=-1",
            "-bantime=0",
        ] {
            assert!(
                parse_args(&args(&format!("energybc {bad}")))
                    .unwrap_err()
                    .contains("expected a positive number"),
                "{bad}"
            );
        }
        for documented in [
            "-rpcallowip",
            "-rpcbind",
            "-rpcworkqueue",
            "-rpcmaxconnections",
            "-rpcservertimeout",
            "-bantime",
        ] {
            assert!(USAGE.contains(documented), "{documented} is not in --help");
        }
    }
}
