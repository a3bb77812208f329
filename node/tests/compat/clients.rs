//! Hostile clients against a real `wattled` (issue 7, point 4): the JSON-RPC server listens on
//! 127.0.0.1 unless `rpcallowip` says otherwise and answers 403 to addresses it does not allow;
//! failed logins wait 250 ms without holding up other clients; the work queue, the connection
//! limit and the server timeout hold against clients that hold slots or dribble bytes; and the
//! files that hold secrets are readable by their owner only.
//!
//! The checks "from another address" need a local address other than loopback (found through
//! the routing table); on a host without one they are skipped with a message.

use crate::harness::{Node, basic, connect, exchange, read_reply, request_bytes, wait_until};
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BODY: &str = r#"{"method":"getblockcount","params":[],"id":1}"#;

/// This host's own non-loopback IPv4 address, if it has one that a local TCP connection really
/// comes from.
fn local_ipv4() -> Option<Ipv4Addr> {
    let ip = [
        "192.0.2.1:9",
        "198.51.100.1:9",
        "10.255.255.254:9",
        "8.8.8.8:53",
    ]
    .iter()
    .find_map(|target| {
        let s = UdpSocket::bind("0.0.0.0:0").ok()?;
        s.connect(target).ok()?;
        match s.local_addr().ok()? {
            SocketAddr::V4(a) if !a.ip().is_loopback() && !a.ip().is_unspecified() => Some(*a.ip()),
            _ => None,
        }
    })?;
    // A connection to that address must arrive from it (not from loopback).
    let listener = std::net::TcpListener::bind("0.0.0.0:0").ok()?;
    let port = listener.local_addr().ok()?.port();
    let _client = TcpStream::connect((ip, port)).ok()?;
    let (_, from) = listener.accept().ok()?;
    (from.ip() == IpAddr::V4(ip)).then_some(ip)
}

/// One request to `ip:port` on a new connection: the reply, or the connection error.
fn post_at(ip: Ipv4Addr, port: u16, auth: String) -> std::io::Result<crate::harness::Reply> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(&request_bytes(
        "POST",
        "/",
        &[("Authorization", auth)],
        BODY.as_bytes(),
    ))?;
    read_reply(&mut s)
}

fn debug_log(node: &Node) -> String {
    std::fs::read_to_string(node.chain_dir().join("debug.log")).unwrap_or_default()
}

/// Writes a `wattle.conf` with a known password and `extra` lines.
fn write_conf(chain_dir: &Path, extra: &str) {
    std::fs::write(
        chain_dir.join("wattle.conf"),
        format!("rpcuser=multichainrpc\nrpcpassword=clients-test-pw\n{extra}"),
    )
    .expect("write wattle.conf");
}

#[test]
fn rpc_listens_on_loopback_unless_rpcallowip_allows_more() {
    // A bad subnet stops wattled at once, with bitcoind's message.
    let out = Command::new(env!("CARGO_BIN_EXE_wattled"))
        .args(["compat", "-rpcallowip=192.168.*.*"])
        .output()
        .expect("run wattled");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Invalid -rpcallowip subnet specification: 192.168.*.*"),
        "{stderr}"
    );

    let ip = local_ipv4();
    let ip_text = ip
        .map(|i| i.to_string())
        .unwrap_or_else(|| "10.99.99.99".into());
    let other = "-rpcallowip=198.51.100.0/24,203.0.113.7".to_string();
    let allow_me = format!("-rpcallowip={ip_text}");
    // Four nodes, started at the same time:
    // - no rpcallowip: loopback only;
    // - rpcallowip naming other networks: 0.0.0.0, 403 for this host's address;
    // - rpcallowip=<this host> in wattle.conf: served from this host's address;
    // - rpcallowip on the command line but rpcbind=127.0.0.1 in wattle.conf: loopback only.
    let conf_allow = format!("rpcallowip={ip_text}/32\n");
    let starts = [
        std::thread::spawn(|| Node::create("local-only")),
        std::thread::spawn(move || Node::create_custom("allow-other", |_| {}, &[other])),
        std::thread::spawn(move || {
            Node::create_custom("allow-conf", |d| write_conf(d, &conf_allow), &[])
        }),
        std::thread::spawn(move || {
            Node::create_custom(
                "bind-loopback",
                |d| write_conf(d, "rpcbind=127.0.0.1\n"),
                &[allow_me],
            )
        }),
    ];
    let [local_only, allow_other, allow_conf, bind_loopback] =
        starts.map(|t| t.join().expect("node start"));

    let listening = |n: &Node| {
        n.stdout_lines()
            .into_iter()
            .find(|l| l.starts_with("Listening for API requests on port"))
            .unwrap_or_default()
    };
    assert!(
        listening(&local_only).contains("(local only - see rpcallowip setting)"),
        "{}",
        listening(&local_only)
    );
    assert!(
        listening(&allow_other).contains("on 0.0.0.0;")
            && listening(&allow_other).contains("198.51.100.0/24, 203.0.113.7"),
        "{}",
        listening(&allow_other)
    );
    assert!(
        listening(&bind_loopback).contains("on 127.0.0.1;"),
        "{}",
        listening(&bind_loopback)
    );
    // Loopback is always served (each node's start-up already called getinfo over it).
    for n in [&local_only, &allow_other, &allow_conf, &bind_loopback] {
        assert_eq!(n.post(BODY).status, 200, "{}", n.label);
    }

    let Some(ip) = ip else {
        eprintln!(
            "this host has no non-loopback IPv4 address: the checks from another address are skipped"
        );
        return;
    };
    // Not listening beyond loopback: the connection itself is refused.
    for n in [&local_only, &bind_loopback] {
        match post_at(ip, n.rpc.port, n.rpc.auth()) {
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{}: {e}", n.label),
            Ok(r) => panic!("{}: answered {ip} with {r:?}", n.label),
        }
    }
    // Listening on 0.0.0.0, but this address is not allowed: 403 even with the password.
    let r = post_at(ip, allow_other.rpc.port, allow_other.rpc.auth()).expect("connect");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(!r.body.contains("result"), "a refused request ran: {r:?}");
    wait_until("the refusal in debug.log", Duration::from_secs(5), || {
        let log = debug_log(&allow_other);
        log.contains(&format!("refused a connection from {ip}"))
            .then_some(())
            .ok_or_else(|| "not yet".to_string())
    });
    // Allowed through wattle.conf: served, and the password is still required.
    let r = post_at(ip, allow_conf.rpc.port, allow_conf.rpc.auth()).expect("connect");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("\"result\":"), "{r:?}");
    let r = post_at(ip, allow_conf.rpc.port, basic("multichainrpc", "wrong")).expect("connect");
    assert_eq!(r.status, 401, "{r:?}");
}

/// Failed logins are answered 401 after 250 ms, but the wait holds up no one: a good request
/// sent while a dozen failed logins wait is answered at once, and the dozen finish together.
/// (A blocking sleep on the node's worker threads would serialise them.)
#[test]
fn failed_logins_wait_250ms_without_holding_up_other_clients() {
    let node = Node::create("logins");
    let port = node.rpc.port;
    let bad = request_bytes(
        "POST",
        "/",
        &[("Authorization", basic("multichainrpc", "wrong"))],
        BODY.as_bytes(),
    );
    let t0 = Instant::now();
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let bad = bad.clone();
            std::thread::spawn(move || (exchange(port, &bad), t0.elapsed()))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let t1 = Instant::now();
    let good = node.post(BODY);
    let took = t1.elapsed();
    assert_eq!(good.status, 200, "{good:?}");
    assert!(
        took < Duration::from_millis(240),
        "a good request took {took:?} while failed logins waited"
    );
    for t in threads {
        let (r, at) = t.join().unwrap();
        assert_eq!(r.status, 401, "{r:?}");
        assert!(at >= Duration::from_millis(250), "a 401 after only {at:?}");
    }
    let all = t0.elapsed();
    assert!(
        all < Duration::from_millis(1200),
        "12 failed logins took {all:?} together: the delay blocks"
    );
    assert!(
        debug_log(&node).contains("incorrect password attempt from 127.0.0.1"),
        "no log line for the failed logins"
    );
}

/// Whether the server closed `s` within `within` (EOF or reset; anything it sent is ignored).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// `-rpcworkqueue=1 -rpcmaxconnections=3 -rpcservertimeout=1`: a request whose body is held
/// back fills the work queue (others get 503) until the timeout answers it 408; a head dribbled
/// in byte by byte is cut off; three idle connections make a fourth wait until the timeout
/// closes them. Each limit leaves a line in debug.log.
#[test]
fn work_queue_connection_limit_and_timeouts_hold_against_slow_clients() {
    let args = [
        "-rpcworkqueue=1",
        "-rpcmaxconnections=3",
        "-rpcservertimeout=1",
    ]
    .map(String::from);
    let node = Node::create_custom("limits", |_| {}, &args);
    let port = node.rpc.port;
    let full = request_bytes(
        "POST",
        "/",
        &[("Authorization", node.rpc.auth())],
        BODY.as_bytes(),
    );

    // The work queue: one request without the end of its body holds the only slot. (Should the
    // probe overtake it and take the slot first, the holder gets the 503: try again.)
    let (mut holder, t, r) = (0..10)
        .find_map(|_| {
            let mut holder = connect(port);
            let t = Instant::now();
            holder.write_all(&full[..full.len() - 5]).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let r = exchange(port, &full);
            (r.status == 503).then_some((holder, t, r))
        })
        .expect("a 503 while a request holds the only slot");
    assert!(r.body.contains("Work queue depth exceeded"), "{r:?}");
    // The rest of the body never comes: 408 after the one-second timeout, and the slot is free.
    let r = read_reply(&mut holder).expect("a reply to the held request");
    assert_eq!(r.status, 408, "{r:?}");
    let held = t.elapsed();
    assert!(
        held < Duration::from_secs(4),
        "the body was awaited {held:?}"
    );
    assert_eq!(exchange(port, &full).status, 200);

    // Slowloris: one header byte every 100 ms is cut off after about a second.
    let mut slow = connect(port);
    let t = Instant::now();
    let dribble = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        .iter()
        .chain(&[b'a'; 200]);
    let mut cut = false;
    for b in dribble {
        if slow.write_all(&[*b]).is_err() || closed_within(&mut slow, Duration::from_millis(100)) {
            cut = true;
            break;
        }
    }
    let lasted = t.elapsed();
    assert!(cut, "a dribbled head kept its connection for {lasted:?}");
    assert!(
        lasted >= Duration::from_millis(800) && lasted < Duration::from_secs(4),
        "cut after {lasted:?}, expected about 1 s"
    );

    // The connection limit: three idle connections hold every slot; a fourth client waits
    // (it is not refused) until the timeout closes them.
    let idle: Vec<TcpStream> = (0..3).map(|_| connect(port)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let r = exchange(port, &full);
    let waited = t.elapsed();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(4),
        "served after {waited:?}: expected to wait for the idle connections' 1 s timeout"
    );
    drop(idle);

    let log = debug_log(&node);
    for line in [
        "rejected because 1 requests are being handled (the -rpcworkqueue limit)",
        "the request body did not arrive within 1s",
        "3 connections are open (the -rpcmaxconnections limit); new connections wait",
    ] {
        assert!(log.contains(line), "debug.log lacks {line:?}");
    }
    // Still serving normally.
    assert_eq!(node.height(), node.height());
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// After a real start (and the wallet writing its keys and locks again), every file that holds
/// a secret (the RPC password, a wallet key in hex or raw) is mode 0600, and the chain directory,
/// created 0755 by the test, is 0700. No temporary file is left behind.
#[cfg(unix)]
#[test]
fn keys_and_credentials_on_disk_are_owner_only() {
    let node = Node::create("files");
    // A second key (wallet.keys rewritten) and a lock (wallet.locks written).
    node.ok("getnewaddress", json!([]));
    let me = node.address();
    let txid = node.txid("issue", json!([me, "gold", 10, 1]));
    node.wait_confirmed(&txid);
    assert_eq!(
        node.ok("lockunspent", json!([false, [{"txid": txid, "vout": 0}]])),
        json!(true)
    );

    let dir = node.chain_dir();
    let keys_text = std::fs::read_to_string(dir.join("wallet.keys")).unwrap();
    let keys: Vec<String> = keys_text.lines().map(str::to_string).collect();
    assert_eq!(keys.len(), 2, "{keys_text}");
    let mut secrets: Vec<Vec<u8>> = vec![node.rpc.password.clone().into_bytes()];
    for k in &keys {
        secrets.push(k.clone().into_bytes());
        secrets.push(hex::decode(k).unwrap());
    }
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    let mut holding = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp"),
            "a temporary file was left: {}",
            f.display()
        );
        let bytes = std::fs::read(f).unwrap();
        if secrets
            .iter()
            .any(|s| bytes.windows(s.len()).any(|w| w == s.as_slice()))
        {
            assert_eq!(mode(f), 0o600, "{} holds a secret", f.display());
            holding.push(name);
        }
    }
    holding.sort();
    assert_eq!(
        holding,
        ["wallet.keys", "wattle.conf"],
        "files holding secrets"
    );
    assert_eq!(mode(&dir.join("wallet.locks")), 0o600);
    assert_eq!(mode(&dir), 0o700, "the chain directory");
}
