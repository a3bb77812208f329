//! Hostile peers against a real `wattled` process (issue 3, "Hostile-peer tests"; DESIGN §5,
//! "Gossip validation", and §9).
//!
//! Each test starts one `wattled` (its admin key is `testkit::key(0)`, written to `wallet.keys`
//! before the first start) and several in-process libp2p peers built with
//! `wattle_node::network::spawn`, all granted `connect` by the admin:
//! - attackers, which publish hostile gossip to the node (each attacker only knows the node);
//! - an observer, also connected only to the node, which shows whether the node forwarded
//!   something: whatever the node accepts reaches it (mesh or gossip), whatever it drops never
//!   does.
//!
//! For every hostile message the tests check that the node judged it (its debug log names the
//! block and the rule that failed, or the peer and the decoding error), that the observer never
//! received it, and that the node is still running with the same state (height, tip, mempool,
//! balances). A valid control message sent the same way, before and after, *is* forwarded, so
//! the "not forwarded" checks can fail. Stateless faults (`Reject`) must penalise the sender: after
//! three of them its next valid transaction is dropped unseen (gossipsub graylist), while the
//! same transaction from a clean peer is relayed and confirmed. State-dependent faults (`Ignore`)
//! must not: the peer that sent them is still heard afterwards.
//!
//! Issue 7 (point 4, hostile peers) adds, against a real node: a peer flooding invalid
//! transactions is banned (`-bantime`), refused while banned and admitted again afterwards; one
//! oversized gossip message bans its sender at once; sync requests beyond the per-peer rate are
//! denied and a flood of them bans. And, with two in-process endpoints (one playing the node with
//! small limits): gossip over the per-peer rate is dropped and penalised, a sustained flood bans
//! until the ban ends; open sync requests and connections per peer are bounded.
//!
//! Every wait is bounded; data directories are temporary and the node is killed on drop.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use wattle_ledger::address::{Address, AddressFormat};
use wattle_ledger::amount::Amount;
use wattle_ledger::block::Block;
use wattle_ledger::codec;
use wattle_ledger::hash::Hash256;
use wattle_ledger::keys::SecretKey;
use wattle_ledger::params::ChainParams;
use wattle_ledger::sighash;
use wattle_ledger::testkit::{key, unsigned_input};
use wattle_ledger::tx::{AssetId, OutPoint, Output, TX_VERSION, Transaction, Txid};
use wattle_node::datadir::DataDir;
use wattle_node::network::{
    self, NetError, NetEvent, NetworkConfig, NetworkHandle, Request, Response, Verdict,
};
use wattle_node::rpc::client::{CallError, RpcClient};

/// A transaction as the tx topic carries it: a batch of one.
fn gossip(tx: &Transaction) -> Vec<u8> {
    wattle_node::chain::encode_tx_batch(std::slice::from_ref(tx))
}

/// Longest wait for something that should happen.
const SOON: Duration = Duration::from_secs(20);
/// How long the observer watches for something that must not arrive: several of the node's
/// 200 ms gossip heartbeats, so a forwarded message would arrive by mesh or by IHAVE/IWANT.
const QUIET: Duration = Duration::from_millis(1500);
/// Longest wait for the node to start.
const START_TIMEOUT: Duration = Duration::from_secs(40);
/// Bound on a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(240);
const HOUR_MS: u64 = 3_600_000;
/// The node logs its gossip verdicts at debug level.
const LOG_FILTER: &str = "info,libp2p=warn,wattle_node=debug,wattle_consensus=debug";

fn now_ms() -> u64 {
    wattle_node::chain::now_ms()
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `SOON`.
fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < SOON, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------------------------------------
// The node process

struct Node {
    child: Child,
    tmp: tempfile::TempDir,
    dir: DataDir,
    rpc: RpcClient,
    p2p_port: u16,
    params: ChainParams,
    chain_id: Hash256,
    admin: SecretKey,
    fmt: AddressFormat,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = fs::read_to_string(self.dir.log_path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("--- last lines of the node's debug.log (newest first) ---");
            for line in tail {
                eprintln!("{line}");
            }
            let stderr = fs::read_to_string(self.tmp.path().join("stderr.log")).unwrap_or_default();
            eprintln!("--- node stderr ---\n{stderr}");
        }
    }
}

impl Node {
    /// Creates the chain `params` in a fresh data directory with `admin` as the node's first
    /// wallet key, starts `wattled` and waits for its ports.
    fn start(params: ChainParams, admin: SecretKey) -> Node {
        Node::start_with(params, admin, &[])
    }

    /// `start` with extra `wattled` options.
    fn start_with(params: ChainParams, admin: SecretKey, options: &[&str]) -> Node {
        params.validate().expect("test chain parameters are valid");
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::new(Some(tmp.path().to_path_buf()), &params.chain_name);
        fs::create_dir_all(dir.chain_dir()).expect("chain directory");
        fs::write(dir.params_path(), wattle_node::params_file::render(&params))
            .expect("write params.toml");
        wattle_node::datadir::write_private(
            &dir.wallet_path(),
            format!("{}\n", hex::encode(admin.to_bytes())).as_bytes(),
        )
        .expect("write wallet.keys");
        let stderr = fs::File::create(tmp.path().join("stderr.log")).expect("stderr file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_wattled"))
            .arg(&params.chain_name)
            .arg(format!("-datadir={}", tmp.path().display()))
            .args(["-port=0", "-rpcport=0"])
            .args(options)
            .env("RUST_LOG", LOG_FILTER)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start wattled");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            // Keep draining after the ports are known, so the node never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let seed_prefix = format!("wattled {}@", params.chain_name);
        let (mut rpc_port, mut p2p_port) = (None, None);
        let deadline = Instant::now() + START_TIMEOUT;
        while rpc_port.is_none() || p2p_port.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = child.kill();
                    let stderr =
                        fs::read_to_string(tmp.path().join("stderr.log")).unwrap_or_default();
                    panic!("wattled did not print its ports ({e}); stderr:\n{stderr}");
                }
            };
            if let Some(rest) = line.strip_prefix("Listening for API requests on port ") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                rpc_port = Some(digits.parse::<u16>().expect("rpc port"));
            } else if let Some(rest) = line.strip_prefix(&seed_prefix) {
                let port = rest.rsplit(':').next().expect("host:port");
                p2p_port = Some(port.trim().parse::<u16>().expect("p2p port"));
            }
        }
        let mut rpc = RpcClient::from_datadir(&dir, rpc_port).expect("rpc credentials");
        rpc.timeout = Duration::from_secs(10);
        let fmt = params.address_format();
        let mut node = Node {
            child,
            tmp,
            dir,
            rpc,
            p2p_port: p2p_port.expect("p2p port"),
            params,
            chain_id: Hash256::ZERO,
            admin,
            fmt,
        };
        let genesis = node.block(0);
        node.chain_id = genesis.header.id(&Hash256::ZERO);
        node
    }

    fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        self.rpc.call(method, params)
    }

    fn ok(&self, method: &str, params: Value) -> Value {
        self.call(method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params} failed: {e}"))
    }

    fn addr(&self, address: &Address) -> String {
        self.fmt.encode(address)
    }

    fn height(&self) -> u32 {
        let h = self.ok("getblockcount", json!([]));
        h.as_u64().expect("getblockcount is a number") as u32
    }

    fn block(&self, height: u32) -> Block {
        let hex = self.ok("getblock", json!([height, false]));
        codec::decode_hex(hex.as_str().expect("getblock 0 gives hex")).expect("block decodes")
    }

    fn tip(&self) -> Block {
        self.block(self.height())
    }

    fn tx(&self, txid: &Txid) -> Transaction {
        let hex = self.ok("getrawtransaction", json!([txid.to_hex(), false]));
        codec::decode_hex(hex.as_str().expect("raw transaction hex")).expect("tx decodes")
    }

    /// Whether the node knows the transaction (mempool or chain).
    fn knows_tx(&self, txid: &Txid) -> bool {
        self.call("getrawtransaction", json!([txid.to_hex(), false]))
            .is_ok()
    }

    fn wait_mined(&self, txid: &Txid) {
        wait_until(&format!("transaction {txid} to be confirmed"), || {
            let v = self
                .call("getrawtransaction", json!([txid.to_hex(), true]))
                .ok()?;
            v.get("blockhash").map(|_| ())
        });
    }

    fn wait_height(&self, height: u32) {
        wait_until(&format!("height {height}"), || {
            (self.height() >= height).then_some(())
        });
    }

    /// Sends an RPC that creates a transaction and waits until it is confirmed.
    fn confirm(&self, method: &str, params: Value) -> Txid {
        let txid = self.ok(method, params);
        let txid = Hash256::from_hex(txid.as_str().expect("txid")).expect("txid hex");
        self.wait_mined(&txid);
        txid
    }

    /// What a hostile message must not change.
    fn snapshot(&self, watched: &[Address]) -> Snapshot {
        let height = self.height();
        Snapshot {
            height,
            tip: self.ok("getblockhash", json!([height])),
            mempool: self.ok("getmempoolinfo", json!([])),
            balances: watched
                .iter()
                .map(|a| self.ok("getaddressbalances", json!([self.addr(a), 0])))
                .collect(),
        }
    }

    /// The node still runs, answers RPC, and its state is `before`.
    fn check_unchanged(&mut self, before: &Snapshot, watched: &[Address], what: &str) {
        assert!(
            self.child.try_wait().expect("wait on child").is_none(),
            "the node exited after {what}"
        );
        self.ok("getinfo", json!([]));
        assert_eq!(
            &self.snapshot(watched),
            before,
            "{what} changed the node's state"
        );
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.log_path()).unwrap_or_default()
    }

    /// Waits until at least `count` lines of the node's log contain all of `parts`.
    fn wait_log(&self, what: &str, parts: &[&str], count: usize) -> Vec<String> {
        wait_until(&format!("the node's log to show {what}"), || {
            let found: Vec<String> = self
                .log()
                .lines()
                .filter(|l| parts.iter().all(|p| l.contains(p)))
                .map(str::to_string)
                .collect();
            (found.len() >= count).then_some(found)
        })
    }

    /// Waits for the node's verdict on a gossiped block (logged with the block id and the reason
    /// for anything but Accept) and returns the log line.
    fn block_verdict(&self, block: &Block, reason: &str) -> String {
        let id = block.header.id(&self.chain_id).to_hex();
        let what = format!("a verdict on block {id} ({reason})");
        let mut lines = self.wait_log(&what, &["block not accepted", &id, reason], 1);
        lines.remove(0)
    }

    /// A block on `parent` (next height, a timestamp after the parent's), signed by `signer` for
    /// `chain`.
    fn block_on(
        &self,
        parent: &Block,
        signer: &SecretKey,
        timestamp_ms: u64,
        txs: Vec<Transaction>,
        chain: &Hash256,
    ) -> Block {
        Block::build(
            parent.header.id(&self.chain_id),
            parent.header.height + 1,
            timestamp_ms,
            txs,
            signer,
            chain,
        )
    }

    /// A valid block on `parent` signed by `signer`.
    fn valid_block_on(&self, parent: &Block, signer: &SecretKey) -> Block {
        let ts = now_ms().max(parent.header.timestamp_ms + 1);
        self.block_on(parent, signer, ts, vec![], &self.chain_id)
    }
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    height: u32,
    tip: Value,
    mempool: Value,
    balances: Vec<Value>,
}

// ------------------------------------------------------------------------------------------------
// In-process peers

#[derive(Clone, Copy, Debug)]
enum Topic {
    Tx,
    Block,
}

/// A libp2p peer of the node: it dials the node, permits it, answers its requests with `Denied`,
/// drops (Ignore) whatever it is sent, and hands the gossip it received to the test.
struct Peer {
    name: &'static str,
    handle: NetworkHandle,
    gossip: mpsc::UnboundedReceiver<Vec<u8>>,
    /// The node's peer id.
    node: network::PeerId,
    /// Whether a connection to the node is open.
    link: watch::Receiver<bool>,
}

impl Peer {
    /// Connects to the node and waits until the node has admitted it (its `GetStatus` is
    /// answered, which the node does only for peers holding `connect`).
    async fn connect(name: &'static str, node: &Node, key: &SecretKey) -> Peer {
        Peer::connect_with(name, node, key, |_| {}).await
    }

    /// `connect` with a changed network configuration.
    async fn connect_with(
        name: &'static str,
        node: &Node,
        key: &SecretKey,
        tweak: impl FnOnce(&mut NetworkConfig),
    ) -> Peer {
        let mut config = NetworkConfig::new(key.to_bytes(), node.chain_id.0);
        config.seeds = vec![("127.0.0.1".to_string(), node.p2p_port)];
        config.heartbeat = Duration::from_millis(100);
        config.max_transmit_size = node.params.maximum_block_size as usize + 65_536;
        config.request_timeout = Duration::from_secs(5);
        config.redial_min = Duration::from_millis(200);
        config.redial_max = Duration::from_secs(1);
        tweak(&mut config);
        let (handle, mut events, _) = network::spawn(config).await.expect("peer network");
        let (gossip_tx, gossip) = mpsc::unbounded_channel();
        let (node_tx, mut node_rx) = watch::channel(None);
        let (link_tx, link) = watch::channel(false);
        let admin = node.admin.address();
        let h = handle.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NetEvent::PeerConnected { peer, address, .. } => {
                        let _ = h.set_permitted(peer, true).await;
                        if address == admin {
                            let _ = node_tx.send(Some(peer));
                            let _ = link_tx.send(true);
                        }
                    }
                    NetEvent::Tx {
                        peer,
                        msg_id,
                        bytes,
                    }
                    | NetEvent::Block {
                        peer,
                        msg_id,
                        bytes,
                    } => {
                        let _ = h.report(msg_id, peer, Verdict::Ignore).await;
                        let _ = gossip_tx.send(bytes);
                    }
                    NetEvent::Request { channel, .. } => {
                        let denied = Response::Denied("hostile test peer".into());
                        let _ = h.respond(channel, denied).await;
                    }
                    NetEvent::PeerDisconnected { peer } => {
                        if *node_tx.borrow() == Some(peer) {
                            let _ = link_tx.send(false);
                        }
                    }
                }
            }
        });
        let node_peer = tokio::time::timeout(SOON, node_rx.wait_for(Option::is_some))
            .await
            .unwrap_or_else(|_| panic!("{name}: never connected to the node"))
            .map(|peer| *peer)
            .expect("event task alive")
            .expect("node peer id");
        let peer = Peer {
            name,
            handle,
            gossip,
            node: node_peer,
            link,
        };
        peer.wait_admitted().await;
        peer
    }

    /// Waits until the node answers our `GetStatus` (it does only for admitted peers).
    async fn wait_admitted(&self) {
        let admitted = async {
            loop {
                if let Ok(Response::Status { .. }) =
                    self.handle.request(self.node, Request::GetStatus).await
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(SOON, admitted)
            .await
            .unwrap_or_else(|_| panic!("{}: the node never admitted it", self.name));
    }

    /// Waits until the connection to the node is open (`true`) or closed (`false`).
    async fn wait_link(&mut self, open: bool) {
        tokio::time::timeout(SOON, self.link.wait_for(|l| *l == open))
            .await
            .unwrap_or_else(|_| panic!("{}: the link to the node never became {open}", self.name))
            .expect("event task alive");
    }

    fn id(&self) -> String {
        self.handle.local_peer_id().to_string()
    }

    async fn publish(&self, topic: Topic, bytes: Vec<u8>) {
        match topic {
            Topic::Tx => self.publish_tx(bytes),
            Topic::Block => self.publish_block(bytes).await,
        }
    }

    fn publish_tx(&self, bytes: Vec<u8>) {
        self.handle
            .publish_tx(bytes)
            .unwrap_or_else(|e| panic!("{}: publish_tx: {e}", self.name));
    }

    /// Publishes a block, retrying while gossipsub does not yet see the node subscribed.
    async fn publish_block(&self, bytes: Vec<u8>) {
        let publish = async {
            loop {
                match self.handle.publish_block(bytes.clone()).await {
                    Ok(_) => return,
                    Err(NetError::NoPeers) => tokio::time::sleep(Duration::from_millis(50)).await,
                    Err(e) => panic!("{}: publish_block: {e}", self.name),
                }
            }
        };
        tokio::time::timeout(SOON, publish)
            .await
            .unwrap_or_else(|_| panic!("{}: the node never subscribed", self.name));
    }

    /// Waits until these exact bytes arrive.
    async fn expect_gossip(&mut self, what: &str, bytes: &[u8]) {
        let wait = async {
            loop {
                match self.gossip.recv().await {
                    Some(got) if got == bytes => return,
                    Some(_) => {}
                    None => panic!("{}: gossip stream closed", self.name),
                }
            }
        };
        tokio::time::timeout(SOON, wait)
            .await
            .unwrap_or_else(|_| panic!("{}: never received {what}", self.name));
    }

    /// Asserts that none of `hostile` arrives within `QUIET`.
    async fn expect_none(&mut self, what: &str, hostile: &[Vec<u8>]) {
        let deadline = tokio::time::Instant::now() + QUIET;
        while let Ok(Some(got)) = tokio::time::timeout_at(deadline, self.gossip.recv()).await {
            if let Some(i) = hostile.iter().position(|h| *h == got) {
                panic!(
                    "{}: the node forwarded {what} (message {} of {}, {} bytes)",
                    self.name,
                    i + 1,
                    hostile.len(),
                    got.len()
                );
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Messages

/// An unspent coin of the admin.
#[derive(Clone, Debug)]
struct Coin {
    outpoint: OutPoint,
    output: Output,
}

/// A valid transaction spending `coin` (owned by `owner`): `qty` raw units of `asset` to `to`,
/// the rest back to `owner`. Returns it with its change coin.
fn pay(
    chain: &Hash256,
    owner: &SecretKey,
    coin: &Coin,
    asset: AssetId,
    to: Address,
    qty: u64,
) -> (Transaction, Coin) {
    let have = coin.output.amount_of(&asset).raw();
    let amount = |q: u64| Amount::new(q).expect("amount in range");
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: vec![unsigned_input(coin.outpoint)],
        outputs: vec![
            Output::new(to, [(asset, amount(qty))]),
            Output::new(owner.address(), [(asset, amount(have - qty))]),
        ],
        ops: vec![],
    };
    sighash::sign_all(&mut tx, &[owner], chain);
    let change = Coin {
        outpoint: tx.outpoint(1),
        output: tx.outputs[1].clone(),
    };
    (tx, change)
}

/// The same encoding with its first integer (the version, 1) written in three bytes instead of
/// one: bincode decodes it, but it is not the canonical encoding.
fn non_canonical(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(
        bytes[0], 1,
        "the encoding starts with 1 (a version, or a batch of one)"
    );
    [&[251u8, 1, 0][..], &bytes[1..]].concat()
}

/// Deterministic junk.
fn garbage(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn verdict_of(line: &str) -> &str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("verdict="))
        .unwrap_or("?")
}

// ------------------------------------------------------------------------------------------------
// Tests

/// Three stateless faults of one kind from one attacker: each is judged and dropped, none is
/// forwarded, the state is kept, and the attacker is penalised (graylisted and banned): the valid
/// `probe` it sends next is dropped unseen (not forwarded, unknown to the node).
#[allow(clippy::too_many_arguments)]
async fn rejects_silence_the_sender(
    node: &mut Node,
    observer: &mut Peer,
    attacker: &Peer,
    topic: Topic,
    hostile: Vec<Vec<u8>>,
    judged: impl Fn(&Node),
    probe: &Transaction,
    before: &Snapshot,
    watched: &[Address],
) {
    for bytes in &hostile {
        attacker.publish(topic, bytes.clone()).await;
    }
    judged(node);
    // Three rejects: P4 score -10 x 3² = -90, below the graylist threshold (-80) for ~6 s, and
    // 3 x 34 misbehaviour points: banned. The log line comes just before the verdict reaches
    // gossipsub: give it a moment.
    node.wait_log(
        &format!("{}'s ban", attacker.name),
        &["peer banned", &attacker.id(), "invalid gossip"],
        1,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    attacker.publish_tx(gossip(probe));
    let mut all = hostile;
    all.push(gossip(probe));
    let what = format!(
        "{}'s messages (the last one is the valid probe: forwarding it means no penalty)",
        attacker.name
    );
    observer.expect_none(&what, &all).await;
    node.check_unchanged(before, watched, &what);
    assert!(
        !node.knows_tx(&probe.txid()),
        "{}: a valid transaction from a peer that just sent three invalid messages was accepted \
         (no penalty for Reject)",
        attacker.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_gossip_is_dropped_unforwarded_and_the_node_keeps_its_state() {
    tokio::time::timeout(TEST_LIMIT, invalid_gossip_body())
        .await
        .expect("test finished in time");
}

async fn invalid_gossip_body() {
    let mut params = ChainParams::new("hostile");
    // No empty blocks during the test: the state changes only when a test step changes it.
    params.empty_block_interval_ms = HOUR_MS;
    let admin = key(0);
    let mut node = Node::start(params, admin.clone());
    let chain = node.chain_id;

    let observer_key = key(100);
    let control_key = key(101);
    let ignorer_key = key(102);
    let non_miner_key = key(103);
    let reject_keys = [key(104), key(105), key(106), key(107)];
    let receiver = key(108).address();
    let mut granted: Vec<String> = [&observer_key, &control_key, &ignorer_key, &non_miner_key]
        .into_iter()
        .chain(reject_keys.iter())
        .map(|k| node.addr(&k.address()))
        .collect();
    granted.push(node.addr(&receiver));
    node.confirm("grant", json!([granted.join(","), "connect,send,receive"]));
    let admin_addr = node.addr(&admin.address());
    node.confirm("issue", json!([admin_addr, "gold", 1000]));
    let sent = node.confirm("sendasset", json!([node.addr(&receiver), "gold", 100]));
    // The on-chain transfer whose coins a double spend will try to spend again.
    let transfer = node.tx(&sent);
    let asset = transfer
        .outputs
        .iter()
        .flat_map(|o| o.assets.iter())
        .map(|(id, _)| *id)
        .next()
        .expect("the transfer carries gold");
    let change = transfer
        .outputs
        .iter()
        .position(|o| o.address == admin.address() && !o.amount_of(&asset).is_zero())
        .expect("the transfer has change");
    let mut coin = Coin {
        outpoint: transfer.outpoint(change as u32),
        output: transfer.outputs[change].clone(),
    };
    let watched = [admin.address(), receiver];

    let mut observer = Peer::connect("observer", &node, &observer_key).await;
    let control = Peer::connect("control", &node, &control_key).await;
    let ignorer = Peer::connect("ignorer", &node, &ignorer_key).await;
    let non_miner = Peer::connect("non-miner", &node, &non_miner_key).await;
    let garbage_tx = Peer::connect("garbage-tx", &node, &reject_keys[0]).await;
    let garbage_block = Peer::connect("garbage-block", &node, &reject_keys[1]).await;
    let bad_signature = Peer::connect("bad-signature", &node, &reject_keys[2]).await;
    let other_chain = Peer::connect("other-chain", &node, &reject_keys[3]).await;

    // -- Controls: a valid block and a valid transaction from a peer are relayed to the observer.
    let tip = node.tip();
    let block = node.valid_block_on(&tip, &admin);
    control.publish_block(block.encode()).await;
    observer
        .expect_gossip("the control block", &block.encode())
        .await;
    node.wait_height(tip.header.height + 1);
    assert_eq!(node.tip(), block, "the control block is the new tip");
    let (tx, next) = pay(&chain, &admin, &coin, asset, receiver, 1);
    coin = next;
    control.publish_tx(gossip(&tx));
    observer
        .expect_gossip("the control transaction", &gossip(&tx))
        .await;
    node.wait_mined(&tx.txid());

    // -- State-dependent faults (Ignore): dropped, not forwarded, no penalty.
    let before = node.snapshot(&watched);
    let tip = node.tip();
    for (what, ts) in [
        ("a block an hour ahead", now_ms() + HOUR_MS),
        ("a block at the end of time", u64::MAX),
    ] {
        let future = node.block_on(&tip, &admin, ts, vec![], &chain);
        ignorer.publish_block(future.encode()).await;
        let line = node.block_verdict(&future, "timestamp too far ahead");
        assert_eq!(verdict_of(&line), "Ignore", "{what}: {line}");
        observer.expect_none(what, &[future.encode()]).await;
        node.check_unchanged(&before, &watched, what);
    }

    // A double spend of the coins of the confirmed transfer: the same inputs, the amounts swapped
    // (the receiver would get the change), signed by the owner. Then a block carrying it.
    let mut double_spend = transfer.clone();
    let to_receiver = double_spend
        .outputs
        .iter()
        .position(|o| o.address == receiver)
        .expect("the transfer pays the receiver");
    let (a, b) = (to_receiver.min(change), to_receiver.max(change));
    let (left, right) = double_spend.outputs.split_at_mut(b);
    std::mem::swap(&mut left[a].assets, &mut right[0].assets);
    let owners: Vec<&SecretKey> = double_spend.inputs.iter().map(|_| &admin).collect();
    sighash::sign_all(&mut double_spend, &owners, &chain);
    assert_ne!(double_spend.txid(), transfer.txid());
    ignorer.publish_tx(gossip(&double_spend));
    let ts = now_ms().max(tip.header.timestamp_ms + 1);
    let carrier = node.block_on(&tip, &admin, ts, vec![double_spend.clone()], &chain);
    ignorer.publish_block(carrier.encode()).await;
    // Gossip from one peer is handled in order: once the block is judged, so is the transaction.
    let line = node.block_verdict(&carrier, "S1 inputs-exist");
    assert_eq!(
        verdict_of(&line),
        "Ignore",
        "block with a double spend: {line}"
    );
    observer
        .expect_none("a double spend", &[gossip(&double_spend), carrier.encode()])
        .await;
    node.check_unchanged(&before, &watched, "a double spend");
    // The node's own judgement of those bytes: already spent.
    match node.call("sendrawtransaction", json!([double_spend.to_hex()])) {
        Err(CallError::Rpc { message, .. }) => {
            assert!(message.contains("missing inputs"), "{message}")
        }
        other => panic!("the double spend was not refused over RPC: {other:?}"),
    }
    node.check_unchanged(&before, &watched, "a double spend over RPC");

    // No penalty: the same peer's valid transaction is still accepted and relayed (four
    // messages judged Reject would have graylisted it: -10 x (1² + 3²) = -100 < -80).
    let (tx, next) = pay(&chain, &admin, &coin, asset, receiver, 1);
    coin = next;
    ignorer.publish_tx(gossip(&tx));
    observer
        .expect_gossip("the ignorer's valid transaction", &gossip(&tx))
        .await;
    node.wait_mined(&tx.txid());

    // -- A block signed by a key without `mine`. DESIGN §5 counts it among the Reject faults; the
    // engine judges B5 state-dependent (Ignore). Either way it must be dropped, not forwarded,
    // and change nothing; the verdict is printed.
    let before = node.snapshot(&watched);
    let tip = node.tip();
    let forged = node.valid_block_on(&tip, &non_miner_key);
    non_miner.publish_block(forged.encode()).await;
    let line = node.block_verdict(&forged, "B5 miner");
    eprintln!("verdict on a block by a non-miner: {}", verdict_of(&line));
    observer
        .expect_none("a block by a non-miner", &[forged.encode()])
        .await;
    node.check_unchanged(&before, &watched, "a block by a non-miner");

    // -- Stateless faults (Reject): dropped, not forwarded, and the sender is penalised.
    // `probe` is valid; only the last step publishes it from a clean peer.
    let (probe, _) = pay(&chain, &admin, &coin, asset, receiver, 1);
    let valid = node.valid_block_on(&tip, &admin);
    let bytes = gossip(&probe);

    let peer = garbage_tx.id();
    rejects_silence_the_sender(
        &mut node,
        &mut observer,
        &garbage_tx,
        Topic::Tx,
        vec![
            garbage(1, 300),
            [&bytes[..], &[0u8]].concat(),
            non_canonical(&bytes),
        ],
        |n| {
            n.wait_log(
                "undecodable transactions",
                &["undecodable transaction", &peer],
                3,
            );
            n.wait_log(
                "trailing bytes",
                &["undecodable transaction", &peer, "trailing"],
                1,
            );
            n.wait_log(
                "non-canonical",
                &["undecodable transaction", &peer, "non-canonical"],
                1,
            );
        },
        &probe,
        &before,
        &watched,
    )
    .await;

    let peer = garbage_block.id();
    let block_bytes = valid.encode();
    rejects_silence_the_sender(
        &mut node,
        &mut observer,
        &garbage_block,
        Topic::Block,
        vec![
            garbage(2, 500),
            [&block_bytes[..], &[0u8]].concat(),
            non_canonical(&block_bytes),
        ],
        |n| {
            n.wait_log("undecodable blocks", &["undecodable block", &peer], 3);
            n.wait_log(
                "trailing bytes",
                &["undecodable block", &peer, "trailing"],
                1,
            );
            n.wait_log(
                "non-canonical",
                &["undecodable block", &peer, "non-canonical"],
                1,
            );
        },
        &probe,
        &before,
        &watched,
    )
    .await;

    let peer = bad_signature.id();
    let forged: Vec<Vec<u8>> = [0usize, 7, 31]
        .into_iter()
        .map(|i| {
            let mut tx = probe.clone();
            tx.inputs[0].signature.0[i] ^= 0x40;
            gossip(&tx)
        })
        .collect();
    rejects_silence_the_sender(
        &mut node,
        &mut observer,
        &bad_signature,
        Topic::Tx,
        forged,
        |n| {
            n.wait_log("bad signatures", &["invalid transaction", &peer, "T9"], 3);
        },
        &probe,
        &before,
        &watched,
    )
    .await;

    // Blocks valid in every way except that they are signed for another chain (by our miner).
    let foreign: Vec<Block> = [[1u8; 32], [2; 32], [0; 32]]
        .into_iter()
        .zip(1u64..)
        .map(|(other, i)| {
            let ts = valid.header.timestamp_ms + i;
            node.block_on(&tip, &admin, ts, vec![], &Hash256(other))
        })
        .collect();
    let foreign_bytes = foreign.iter().map(Block::encode).collect();
    rejects_silence_the_sender(
        &mut node,
        &mut observer,
        &other_chain,
        Topic::Block,
        foreign_bytes,
        |n| {
            for b in &foreign {
                let line = n.block_verdict(b, "bad block signature");
                assert_eq!(
                    verdict_of(&line),
                    "Reject",
                    "block for another chain: {line}"
                );
            }
        },
        &probe,
        &before,
        &watched,
    )
    .await;

    // -- The probe was valid all along: from a clean peer it is relayed and confirmed.
    control.publish_tx(gossip(&probe));
    observer
        .expect_gossip("the probe from a clean peer", &gossip(&probe))
        .await;
    node.wait_mined(&probe.txid());
}

/// The diversity rule with two miners (`mining-diversity` 1: each may sign every other block).
/// Only the admin's miner runs; the second miner's key is the test's. A block by a miner that is
/// barred at its height is dropped and not forwarded; a valid block at the same height, sent the
/// same way, is relayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_block_by_a_barred_miner_is_dropped() {
    tokio::time::timeout(TEST_LIMIT, barred_miner_body())
        .await
        .expect("test finished in time");
}

async fn barred_miner_body() {
    let mut params = ChainParams::new("barred");
    params.mining_diversity = 1_000_000;
    params.setup_first_blocks = 1;
    params.empty_block_interval_ms = HOUR_MS;
    let admin = key(0);
    let mut node = Node::start(params, admin.clone());
    let second = key(200);
    let observer_key = key(201);
    let attacker_key = key(202);
    let peers = format!(
        "{},{}",
        node.addr(&observer_key.address()),
        node.addr(&attacker_key.address())
    );
    node.confirm("grant", json!([peers, "connect,send,receive"]));
    node.confirm("grant", json!([node.addr(&second.address()), "mine"]));
    // The admin signed the block with the grant: with two miners it may sign again only two
    // blocks later, and nobody runs the second miner, so the chain waits here.
    let tip = node.tip();
    assert_eq!(tip.header.miner, admin.public());
    let watched = [admin.address()];

    let mut observer = Peer::connect("observer", &node, &observer_key).await;
    let attacker = Peer::connect("attacker", &node, &attacker_key).await;

    let before = node.snapshot(&watched);
    let barred = node.valid_block_on(&tip, &admin);
    attacker.publish_block(barred.encode()).await;
    let line = node.block_verdict(&barred, "B6 diversity");
    eprintln!(
        "verdict on a block by a barred miner: {}",
        verdict_of(&line)
    );
    observer
        .expect_none("a block by the barred admin", &[barred.encode()])
        .await;
    node.check_unchanged(&before, &watched, "a block by the barred admin");

    // Control: the second miner's block at that height is valid and relayed.
    let good = node.valid_block_on(&tip, &second);
    attacker.publish_block(good.encode()).await;
    observer
        .expect_gossip("the second miner's block", &good.encode())
        .await;
    node.wait_height(tip.header.height + 1);
    assert_eq!(node.tip(), good);

    // Now the second miner is the barred one.
    let before = node.snapshot(&watched);
    let barred = node.valid_block_on(&good, &second);
    attacker.publish_block(barred.encode()).await;
    let line = node.block_verdict(&barred, "B6 diversity");
    eprintln!(
        "verdict on a block by a barred miner: {}",
        verdict_of(&line)
    );
    observer
        .expect_none("a block by the barred second miner", &[barred.encode()])
        .await;
    node.check_unchanged(&before, &watched, "a block by the barred second miner");

    // Control: the admin's block at that height is valid and relayed.
    let good = node.valid_block_on(&good, &admin);
    attacker.publish_block(good.encode()).await;
    observer
        .expect_gossip("the admin's block", &good.encode())
        .await;
    node.wait_height(good.header.height);
    assert_eq!(node.tip(), good);
}

// ------------------------------------------------------------------------------------------------
// Issue 7, point 4: bans and per-peer limits

/// The ban of the flood test, in seconds (`wattled -bantime`; 600 by default).
const BAN_SECS: u64 = 4;

/// A permitted peer floods invalid transactions (bad signatures, garbage batches): the node bans
/// it (log line naming it and the reason), drops the flood unforwarded and keeps its state; while
/// the ban lasts the peer's reconnection attempts are refused and the node does not list it,
/// while another peer is still served; once the ban is over the peer is admitted again and its
/// valid transaction is relayed and confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_flooding_invalid_transactions_is_banned_until_the_ban_ends() {
    tokio::time::timeout(TEST_LIMIT, flood_ban_body())
        .await
        .expect("test finished in time");
}

/// The admin's gold coin (change of a confirmed transfer to `receiver`) and the asset id.
fn gold_coin(node: &Node, receiver: Address) -> (Coin, AssetId) {
    let admin = node.admin.address();
    node.confirm("issue", json!([node.addr(&admin), "gold", 1000]));
    let sent = node.confirm("sendasset", json!([node.addr(&receiver), "gold", 100]));
    let transfer = node.tx(&sent);
    let asset = transfer
        .outputs
        .iter()
        .flat_map(|o| o.assets.iter())
        .map(|(id, _)| *id)
        .next()
        .expect("the transfer carries gold");
    let change = transfer
        .outputs
        .iter()
        .position(|o| o.address == admin && !o.amount_of(&asset).is_zero())
        .expect("the transfer has change");
    let coin = Coin {
        outpoint: transfer.outpoint(change as u32),
        output: transfer.outputs[change].clone(),
    };
    (coin, asset)
}

async fn flood_ban_body() {
    let mut params = ChainParams::new("flood");
    params.empty_block_interval_ms = HOUR_MS;
    let admin = key(0);
    let bantime = format!("-bantime={BAN_SECS}");
    let mut node = Node::start_with(params, admin.clone(), &[&bantime]);
    let chain = node.chain_id;
    let flooder_key = key(300);
    let control_key = key(301);
    let receiver = key(302).address();
    let granted: Vec<String> = [flooder_key.address(), control_key.address(), receiver]
        .iter()
        .map(|a| node.addr(a))
        .collect();
    node.confirm("grant", json!([granted.join(","), "connect,send,receive"]));
    let (coin, asset) = gold_coin(&node, receiver);
    let watched = [admin.address(), receiver];
    let (valid, _) = pay(&chain, &admin, &coin, asset, receiver, 1);
    let flood: Vec<Vec<u8>> = (0..20)
        .flat_map(|i| {
            let mut forged = valid.clone();
            forged.inputs[0].signature.0[i] ^= 0x40;
            [gossip(&forged), garbage(1000 + i as u32, 200)]
        })
        .collect();

    let mut flooder = Peer::connect("flooder", &node, &flooder_key).await;
    let mut control = Peer::connect("control", &node, &control_key).await;
    let before = node.snapshot(&watched);
    for bytes in &flood {
        flooder.publish_tx(bytes.clone());
    }
    let line = node.wait_log("the flooder's ban", &["peer banned", &flooder.id()], 1);
    let banned_at = Instant::now();
    assert!(line[0].contains("invalid gossip"), "{}", line[0]);
    eprintln!("{}", line[0]);
    flooder.wait_link(false).await;

    // While banned: the flooder keeps redialling (every 0.2 s to 1 s) and is refused each time;
    // the node does not list it and does not answer it; the control peer is still served.
    node.wait_log(
        "the flooder's reconnections refused",
        &["connection from a banned peer refused", &flooder.id()],
        2,
    );
    let listed = node.ok("getpeerinfo", json!([])).to_string();
    let asked = flooder
        .handle
        .request(flooder.node, Request::GetStatus)
        .await;
    let during = banned_at.elapsed();
    assert!(
        during < Duration::from_secs(BAN_SECS - 1),
        "the checks during the ban took {during:?}: make BAN_SECS longer"
    );
    assert!(
        !listed.contains(&flooder.id()),
        "the banned peer is listed: {listed}"
    );
    assert!(
        !matches!(asked, Ok(Response::Status { .. })),
        "a banned peer was answered"
    );
    control.wait_admitted().await;
    control
        .expect_none("the flood (the node forwarded it)", &flood)
        .await;
    node.check_unchanged(&before, &watched, "the flood");
    let early = banned_at.elapsed();
    let expired = node.log().lines().any(|l| l.contains("ban expired"));
    assert!(
        early >= Duration::from_secs(BAN_SECS) || !expired,
        "the ban ended after {early:?} of {BAN_SECS} s"
    );

    // After the ban: admitted again, and heard.
    node.wait_log("the end of the ban", &["ban expired", &flooder.id()], 1);
    flooder.wait_admitted().await;
    let waited = banned_at.elapsed();
    assert!(
        waited >= Duration::from_secs(BAN_SECS) - Duration::from_millis(500),
        "readmitted after {waited:?}, before the {BAN_SECS} s ban ended"
    );
    // A fresh payment per attempt: the first ones may reach the node while gossipsub still
    // graylists the peer (its P4 score from the three rejects outlives a 4 s ban by a few
    // seconds), and gossipsub never publishes the same bytes twice.
    let relayed = publish_until_relayed(
        &flooder,
        &mut control,
        "the readmitted peer's payment",
        |i| gossip(&pay(&chain, &admin, &coin, asset, receiver, 1 + i as u64).0),
    )
    .await;
    let tx: Vec<Transaction> = codec::decode(&relayed).expect("a batch");
    node.wait_mined(&tx[0].txid());
}

/// Publishes the transaction batches `make(0)`, `make(1)`, … from `from`, one a second, until
/// `observer` receives one; returns it.
async fn publish_until_relayed(
    from: &Peer,
    observer: &mut Peer,
    what: &str,
    make: impl Fn(usize) -> Vec<u8>,
) -> Vec<u8> {
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(make(i));
        from.publish_tx(sent[i].clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(Some(got)) = tokio::time::timeout_at(deadline, observer.gossip.recv()).await {
            if sent.contains(&got) {
                return got;
            }
        }
    }
    panic!("{}: never received {what}", observer.name);
}

/// One gossip payload just over the node's limit (it still fits gossipsub's frame, so the node
/// sees who sent it) bans its sender at once; the node's reconnection refusals follow. A peer
/// that fires 200 sync requests at once gets the excess over its rate answered `Denied`
/// (a burst of 40 is served) and is banned; the node stays up and serves others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_gossip_and_request_floods_ban_the_sender() {
    tokio::time::timeout(TEST_LIMIT, oversize_body())
        .await
        .expect("test finished in time");
}

async fn oversize_body() {
    let mut params = ChainParams::new("oversize");
    params.empty_block_interval_ms = HOUR_MS;
    params.maximum_block_size = 100_000;
    params.max_std_tx_size = 50_000;
    let admin = key(0);
    let mut node = Node::start(params, admin.clone());
    let big_key = key(310);
    let asker_key = key(311);
    let observer_key = key(312);
    let granted: Vec<String> = [&big_key, &asker_key, &observer_key]
        .iter()
        .map(|k| node.addr(&k.address()))
        .collect();
    node.confirm("grant", json!([granted.join(","), "connect"]));
    let watched = [admin.address()];

    // The node's gossip payload limit (daemon: maximum-block-size + 64 KiB).
    let limit = node.params.maximum_block_size as usize + 65_536;
    let mut big = Peer::connect_with("oversize", &node, &big_key, |c| {
        c.max_transmit_size = 2 * limit;
    })
    .await;
    let mut observer = Peer::connect("observer", &node, &observer_key).await;
    let before = node.snapshot(&watched);
    let oversized = garbage(7, limit + 1);
    big.publish_tx(oversized.clone());
    let line = node.wait_log("the oversize ban", &["peer banned", &big.id()], 1);
    assert!(line[0].contains("oversized gossip"), "{}", line[0]);
    let seen = node
        .log()
        .lines()
        .filter(|l| l.contains("oversized gossip") && l.contains("size=") && l.contains(&big.id()))
        .count();
    assert_eq!(seen, 1, "one oversized message was enough");
    big.wait_link(false).await;
    observer
        .expect_none("the oversized message", &[oversized])
        .await;
    node.check_unchanged(&before, &watched, "an oversized message");
    node.wait_log(
        "the oversized sender's reconnection refused",
        &["connection from a banned peer refused", &big.id()],
        1,
    );

    // 200 requests, 10 at a time (below the open-request limit): at most the burst (40) plus
    // the refill (20/s) is served, the rest is denied until the ban cuts the connection.
    let asker = Peer::connect("asker", &node, &asker_key).await;
    let start = Instant::now();
    let mut results = Vec::new();
    for _ in 0..20 {
        let wave = (0..10).map(|_| asker.handle.request(asker.node, Request::GetStatus));
        results.extend(futures::future::join_all(wave).await);
        if results.iter().any(Result::is_err) {
            break; // banned: disconnected
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let served = results
        .iter()
        .filter(|r| matches!(r, Ok(Response::Status { .. })))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Ok(Response::Denied(reason)) if reason.contains("rate limit")))
        .count();
    eprintln!(
        "{} requests in {secs:.2} s: {served} served, {refused} denied for the rate",
        results.len()
    );
    assert!(
        refused >= 50,
        "{refused} requests denied for the rate: {results:?}"
    );
    assert!(
        (1.0..=41.0 + 20.0 * secs).contains(&(served as f64)),
        "{served} requests served in {secs:.2} s with a burst of 40 and 20/s"
    );
    let line = node.wait_log("the asker's ban", &["peer banned", &asker.id()], 1);
    assert!(
        line[0].contains("sync requests over the rate limit"),
        "{}",
        line[0]
    );
    observer.wait_admitted().await;
    node.check_unchanged(&before, &watched, "a request flood");
}

// ---- in-process endpoints with small limits

const ENDPOINT_CHAIN: [u8; 32] = [0xd7; 32];

/// A bare network endpoint (no node behind it): the test plays the node.
struct Endpoint {
    handle: NetworkHandle,
    events: mpsc::Receiver<NetEvent>,
    port: u16,
    peer: network::PeerId,
}

impl Endpoint {
    async fn start(
        secret: u8,
        seed: Option<&Endpoint>,
        tweak: impl FnOnce(&mut NetworkConfig),
    ) -> Endpoint {
        let mut config = NetworkConfig::new([secret; 32], ENDPOINT_CHAIN);
        config.heartbeat = Duration::from_millis(100);
        config.max_transmit_size = 64 * 1024;
        config.request_timeout = Duration::from_secs(5);
        config.redial_min = Duration::from_millis(200);
        config.redial_max = Duration::from_millis(400);
        config.seeds = seed
            .map(|s| ("127.0.0.1".to_string(), s.port))
            .into_iter()
            .collect();
        tweak(&mut config);
        let (handle, events, port) = network::spawn(config).await.expect("endpoint starts");
        let peer = handle.local_peer_id();
        Endpoint {
            handle,
            events,
            port,
            peer,
        }
    }

    /// The next event matching `pred` (others are skipped; gossip is reported `Ignore`).
    async fn expect(&mut self, what: &str, pred: impl Fn(&NetEvent) -> bool) -> NetEvent {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Some(event) if pred(&event) => return event,
                    Some(
                        NetEvent::Tx { peer, msg_id, .. } | NetEvent::Block { peer, msg_id, .. },
                    ) => {
                        let _ = self.handle.report(msg_id, peer, Verdict::Ignore).await;
                    }
                    Some(_) => {}
                    None => panic!("event stream closed while waiting for {what}"),
                }
            }
        };
        tokio::time::timeout(SOON, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// Waits for `peer` to connect and permits it.
    async fn admit(&mut self, peer: network::PeerId) {
        self.expect(
            "PeerConnected",
            |e| matches!(e, NetEvent::PeerConnected { peer: p, .. } if *p == peer),
        )
        .await;
        self.handle.set_permitted(peer, true).await.expect("permit");
    }

    /// Transaction messages received within `window` (each reported `Ignore`).
    async fn count_txs(&mut self, window: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + window;
        let mut count = 0;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            if let NetEvent::Tx { peer, msg_id, .. } = event {
                count += 1;
                let _ = self.handle.report(msg_id, peer, Verdict::Ignore).await;
            }
        }
        count
    }

    async fn info(&self, peer: network::PeerId) -> Option<network::PeerInfo> {
        let peers = self.handle.peers().await.expect("peers");
        peers.into_iter().find(|p| p.peer == peer)
    }
}

/// A "node" endpoint with `tweak`ed limits and an attacker dialling it, admitted on both sides,
/// with the node's subscriptions known to the attacker.
async fn node_and_attacker(tweak: impl FnOnce(&mut NetworkConfig)) -> (Endpoint, Endpoint) {
    let mut node = Endpoint::start(41, None, tweak).await;
    let mut attacker = Endpoint::start(42, Some(&node), |_| {}).await;
    node.admit(attacker.peer).await;
    attacker.admit(node.peer).await;
    (node, attacker)
}

/// Publishes distinct transaction messages until the node hears one (subscriptions exchanged);
/// then lets the node's gossip bucket refill.
async fn warm_up(node: &mut Endpoint, attacker: &Endpoint, refill: Duration) {
    for i in 0..50 {
        attacker
            .handle
            .publish_tx(format!("warm-up {i}").into_bytes())
            .expect("publish");
        if node.count_txs(Duration::from_millis(200)).await > 0 {
            tokio::time::sleep(refill).await;
            return;
        }
    }
    panic!("the node never heard the attacker");
}

/// Gossip over a peer's rate (5/s, burst 5 here) is dropped before the node sees it and
/// penalised (one point per message); within the rate the peer is heard again; a sustained
/// flood bans it (disconnected, reconnection refused) until the ban (1 s here) ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_over_the_rate_limit_is_dropped_penalised_and_a_flood_banned() {
    tokio::time::timeout(TEST_LIMIT, async {
        let (mut node, mut attacker) = node_and_attacker(|c| {
            c.gossip_rate = 5;
            c.gossip_burst = 5;
            c.ban_duration = Duration::from_secs(1);
        })
        .await;
        warm_up(&mut node, &attacker, Duration::from_millis(1200)).await;

        for i in 0..20 {
            attacker
                .handle
                .publish_tx(format!("burst {i}").into_bytes())
                .expect("publish");
        }
        let heard = node.count_txs(Duration::from_millis(600)).await;
        assert!((5..=8).contains(&heard), "heard {heard} of 20 with a burst of 5 and 5/s");
        let info = node.info(attacker.peer).await.expect("the attacker is still connected");
        let dropped = 20 - heard as u32;
        assert!(
            (dropped..100).contains(&info.misbehaviour),
            "{dropped} messages dropped, misbehaviour {}",
            info.misbehaviour
        );

        tokio::time::sleep(Duration::from_millis(400)).await;
        attacker
            .handle
            .publish_tx(b"within the rate".to_vec())
            .expect("publish");
        assert_eq!(node.count_txs(Duration::from_millis(500)).await, 1, "heard again");

        // A flood: ~100 messages over the rate ban the sender.
        for i in 0..150 {
            attacker
                .handle
                .publish_tx(format!("flood {i}").into_bytes())
                .expect("publish");
        }
        let banned = |e: &NetEvent| matches!(e, NetEvent::PeerDisconnected { peer } if *peer == attacker.peer);
        node.expect("the flooder's disconnection", banned).await;
        let banned_at = Instant::now();
        attacker
            .expect("the node's disconnection", |e| matches!(e, NetEvent::PeerDisconnected { .. }))
            .await;
        // Its redials (every 0.2-0.4 s) are refused until the ban ends; then it is back.
        node.expect("the attacker back", |e| matches!(e, NetEvent::PeerConnected { peer, .. } if *peer == attacker.peer))
            .await;
        let waited = banned_at.elapsed();
        assert!(
            waited >= Duration::from_millis(800),
            "reconnected {waited:?} after a 1 s ban"
        );
        let info = node.info(attacker.peer).await.expect("listed again");
        assert_eq!(info.misbehaviour, 0, "a fresh start after the ban");
    })
    .await
    .expect("test finished in time");
}

/// At most `max_open_requests` (3 here) inbound requests of one peer wait for the node; more are
/// answered `Denied` at once, without reaching the node and without a penalty; once answered,
/// the peer may ask again. Requests beyond the rate (burst 4, 2/s here) are denied too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sync_requests_and_their_rate_are_bounded_per_peer() {
    tokio::time::timeout(TEST_LIMIT, async {
        let (mut node, attacker) = node_and_attacker(|c| {
            c.max_open_requests = 3;
            c.request_rate = 2;
            c.request_burst = 4;
        })
        .await;
        let target = node.peer;
        let asks = (0..4).map(|_| attacker.handle.request(target, Request::GetStatus));
        let status = Response::Status {
            height: 1,
            tip: [3; 32],
        };
        let (answers, channels) = tokio::join!(futures::future::join_all(asks), async {
            let mut channels = Vec::new();
            while channels.len() < 3 {
                let event = node
                    .expect("Request", |e| matches!(e, NetEvent::Request { .. }))
                    .await;
                if let NetEvent::Request { channel, .. } = event {
                    channels.push(channel);
                }
            }
            // The fourth must not reach the node: it is denied at once.
            tokio::time::sleep(Duration::from_millis(500)).await;
            for channel in &channels {
                node.handle
                    .respond(*channel, status.clone())
                    .await
                    .expect("respond");
            }
            channels
        });
        assert_eq!(channels.len(), 3);
        let served = answers.iter().filter(|a| **a == Ok(status.clone())).count();
        let denied: Vec<_> = answers
            .iter()
            .filter(|a| matches!(a, Ok(Response::Denied(r)) if r.contains("open-request limit")))
            .collect();
        assert_eq!((served, denied.len()), (3, 1), "{answers:?}");
        assert_eq!(
            node.info(attacker.peer)
                .await
                .expect("connected")
                .misbehaviour,
            0,
            "no penalty for open requests"
        );

        // The bucket (burst 4) holds at most 4 tokens: of 8 quick requests, 3 or more are over
        // the rate.
        let node_events = async {
            loop {
                match node.events.recv().await {
                    Some(NetEvent::Request { channel, .. }) => {
                        let _ = node
                            .handle
                            .respond(channel, Response::Denied("served".into()))
                            .await;
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        };
        let asks = async {
            let mut out = Vec::new();
            for _ in 0..8 {
                out.push(attacker.handle.request(target, Request::GetStatus).await);
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
            out.push(attacker.handle.request(target, Request::GetStatus).await);
            out
        };
        let answers = tokio::select! {
            out = asks => out,
            _ = node_events => panic!("node events closed"),
        };
        let over = answers[..8]
            .iter()
            .filter(|a| matches!(a, Ok(Response::Denied(r)) if r.contains("rate limit")))
            .count();
        assert!(over >= 3, "{answers:?}");
        assert_eq!(
            answers[8],
            Ok(Response::Denied("served".into())),
            "after a pause, within the rate again"
        );
        let info = node.info(attacker.peer).await.expect("connected");
        assert!(
            (over as u32..100).contains(&info.misbehaviour),
            "one point per request over the rate: {}",
            info.misbehaviour
        );
    })
    .await
    .expect("test finished in time");
}

/// A peer may hold at most two connections with us: further dials are refused. The dialler is a
/// bare libp2p swarm without limits of its own, so only the node's limit can hold it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_peer_are_bounded() {
    use futures::StreamExt;
    use libp2p::swarm::{SwarmEvent, dummy};
    use libp2p::{noise, tcp, yamux};

    tokio::time::timeout(TEST_LIMIT, async {
        let node = Endpoint::start(41, None, |_| {}).await;
        let keypair = libp2p::identity::Keypair::ed25519_from_bytes([43u8; 32]).unwrap();
        let mut raw = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| dummy::Behaviour)
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let raw_peer = *raw.local_peer_id();
        let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", node.port).parse().unwrap();
        for _ in 0..5 {
            raw.dial(addr.clone()).expect("dial starts");
        }
        let (opened_tx, mut opened) = watch::channel(0u32);
        tokio::spawn(async move {
            let mut count = 0;
            while let Some(event) = raw.next().await {
                if let SwarmEvent::ConnectionEstablished { .. } = event {
                    count += 1;
                    let _ = opened_tx.send(count);
                }
            }
        });
        // Wait until all five handshakes are through on the dialler's side.
        tokio::time::timeout(SOON, opened.wait_for(|n| *n >= 5))
            .await
            .expect("five connections established by the dialler")
            .expect("swarm task alive");
        let mut most = 0;
        let deadline = Instant::now() + Duration::from_millis(1000);
        while Instant::now() < deadline {
            if let Some(info) = node.info(raw_peer).await {
                most = most.max(info.connections);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            most,
            network::MAX_CONNECTIONS_PER_PEER,
            "connections of one peer held by the node (5 dials)"
        );
    })
    .await
    .expect("test finished in time");
}
