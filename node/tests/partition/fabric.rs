//! The test network: one network namespace per node, each with two interfaces.
//!
//! - `eth0`, the data interface (10.77.0.N/24, peer-to-peer traffic only): one end of a veth pair
//!   whose other end, in the root namespace, carries a macvtap device in passthru mode. Every
//!   frame the node sends comes out of that macvtap's character device (`/dev/tapIFINDEX`) in
//!   this test process, and every frame written there goes to the node. [`crate::wire::Wire`]
//!   switches the frames between the nodes and applies delay, loss and the partition.
//! - `ctl0`, the control interface: a veth pair to the root namespace, a /30 per node, which the
//!   test uses for JSON-RPC (never delayed, never cut). The node has no route between the two
//!   networks, so peers can only reach each other through the wire.
//!
//! Why not `tc qdisc ... netem` and a kernel bridge: this machine's kernel is built without
//! `sch_netem` (`CONFIG_NET_SCH_NETEM` is not set: `tc qdisc add ... netem` answers "Specified
//! qdisc kind is unknown"), and no other qdisc delays packets by a fixed time. The wire does in
//! user space what netem does on each node's egress: every frame is delayed by the same time
//! (so the round trip is twice that) and dropped with the given probability, and a partition is
//! 100 % loss between the two sides.
//!
//! Names are unique per run (`wpt<pid><n>`: the test process's id in hex and a counter), the
//! control /28 is picked among free ones, and [`Fabric`]'s `Drop` removes everything it made
//! (killing first any process still running in its namespaces), also when the test panics.
//! Namespaces left by a test process that no longer exists (a SIGKILLed run) and that hold no
//! process are removed at the next start.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The p2p port of every node (each has its own address).
pub const P2P_PORT: u16 = 7447;
const NETNS_PREFIX: &str = "wpt";

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`; the error names the command and what it printed.
pub fn ip(args: &[&str]) -> Result<String, String> {
    run("ip", args)
}

pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{program} {}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why the test cannot run here, if it cannot: not root, no `ip` or `ss`, no network
/// namespaces, no veth or macvtap.
pub fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string));
    if uid.as_deref() != Some("0") {
        return Some(format!(
            "not root (effective uid {}): network namespaces need root",
            uid.unwrap_or_else(|| "unknown".into())
        ));
    }
    for (tool, args) in [("ip", ["-V"]), ("ss", ["-V"])] {
        if let Err(e) = run(tool, &args) {
            return Some(format!("no usable `{tool}` command (iproute2): {e}"));
        }
    }
    // A throw-away namespace with a veth + macvtap, as the real fabric makes them.
    let probe = Fabric::with_nodes(1);
    match probe.and_then(|f| f.tap_device(0).map(drop)) {
        Ok(()) => None,
        Err(e) => Some(format!(
            "network namespaces, veth or macvtap unavailable: {e}"
        )),
    }
}

/// One node's host: its namespace and addresses.
#[derive(Clone, Debug)]
pub struct Host {
    pub netns: String,
    /// Address on the data network (p2p).
    pub data_ip: String,
    /// The node's end of the control link (JSON-RPC listens here).
    pub ctl_ip: String,
    /// The root namespace's end of the control link (the test's source address).
    pub ctl_peer_ip: String,
    /// The root namespace's end of the data veth (the macvtap's lower device).
    pub data_link: String,
    /// The macvtap device in the root namespace.
    pub tap: String,
    /// The root namespace's end of the control veth.
    pub ctl_link: String,
}

/// The namespaces and links of one run; removed on drop.
pub struct Fabric {
    pub id: String,
    pub hosts: Vec<Host>,
    /// Made so far, removed in reverse order on drop.
    links: Vec<String>,
    namespaces: Vec<String>,
}

impl Fabric {
    /// `n` hosts.
    pub fn with_nodes(n: usize) -> Result<Fabric, String> {
        sweep_stale();
        let id = format!(
            "{:06x}{:x}",
            std::process::id() & 0xff_ffff,
            RUN_COUNTER.fetch_add(1, Ordering::SeqCst) % 16
        );
        let mut fabric = Fabric {
            id: id.clone(),
            hosts: Vec::new(),
            links: Vec::new(),
            namespaces: Vec::new(),
        };
        let (a, b) = free_control_block()?;
        for i in 0..n {
            let netns = format!("{NETNS_PREFIX}-{id}-n{i}");
            let host = Host {
                netns: netns.clone(),
                data_ip: format!("10.77.0.{}", i + 1),
                ctl_ip: format!("10.231.{a}.{}", b + 4 * i as u32 + 2),
                ctl_peer_ip: format!("10.231.{a}.{}", b + 4 * i as u32 + 1),
                data_link: format!("wp{id}v{i}"),
                tap: format!("wp{id}t{i}"),
                ctl_link: format!("wp{id}c{i}"),
            };
            fabric.add_host(&host)?;
            fabric.hosts.push(host);
        }
        Ok(fabric)
    }

    fn add_host(&mut self, h: &Host) -> Result<(), String> {
        ip(&["netns", "add", &h.netns])?;
        self.namespaces.push(h.netns.clone());
        let ns = h.netns.as_str();
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        // Data: veth (node end eth0), macvtap on the root end.
        ip(&[
            "link",
            "add",
            &h.data_link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        ])?;
        self.links.push(h.data_link.clone());
        ip(&["link", "set", &h.data_link, "up"])?;
        ip(&[
            "link",
            "add",
            "link",
            &h.data_link,
            "name",
            &h.tap,
            "type",
            "macvtap",
            "mode",
            "passthru",
        ])?;
        ip(&["link", "set", &h.tap, "up"])?;
        // One frame per TCP segment: the wire drops and delays segments, as netem does (with
        // segmentation offload a frame could carry 40 of them).
        ip(&["-n", ns, "link", "set", "eth0", "gso_max_segs", "1"])?;
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", h.data_ip),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        // Control: a /30 to the root namespace.
        ip(&[
            "link",
            "add",
            &h.ctl_link,
            "type",
            "veth",
            "peer",
            "name",
            "ctl0",
            "netns",
            ns,
        ])?;
        self.links.push(h.ctl_link.clone());
        ip(&[
            "addr",
            "add",
            &format!("{}/30", h.ctl_peer_ip),
            "dev",
            &h.ctl_link,
        ])?;
        ip(&["link", "set", &h.ctl_link, "up"])?;
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/30", h.ctl_ip),
            "dev",
            "ctl0",
        ])?;
        ip(&["-n", ns, "link", "set", "ctl0", "up"])?;
        Ok(())
    }

    /// The character device of host `i`'s macvtap (created by devtmpfs, maybe a moment late).
    pub fn tap_device(&self, i: usize) -> Result<std::fs::File, String> {
        let tap = &self.hosts[i].tap;
        let index = std::fs::read_to_string(format!("/sys/class/net/{tap}/ifindex"))
            .map_err(|e| format!("ifindex of {tap}: {e}"))?;
        let path = format!("/dev/tap{}", index.trim());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
            {
                Ok(f) => return Ok(f),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("cannot open {path} ({tap}): {e}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Aborts host `i`'s TCP connections to `peer_ip` (`ss -K`): what a long outage does once
    /// TCP gives up, or a stateful firewall or NAT that forgets the flows. The peer's end does
    /// not hear of it while the wire is cut.
    pub fn kill_connections(&self, i: usize, peer_ip: &str) -> Result<(), String> {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.hosts[i].netns,
                "ss",
                "-K",
                "-t",
                "dst",
                peer_ip,
            ],
        )
        .map(drop)
    }

    /// Kills every process still running in our namespaces (they are the nodes this run
    /// started; normally they are gone already).
    fn kill_stragglers(&self) {
        for ns in &self.namespaces {
            let Ok(pids) = ip(&["netns", "pids", ns]) else {
                continue;
            };
            for pid in pids.split_whitespace() {
                let _ = run("kill", &["-9", pid]);
            }
        }
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        self.kill_stragglers();
        // Deleting the root end of a veth deletes both ends (and the macvtap on top).
        for link in self.links.iter().rev() {
            let _ = ip(&["link", "del", link]);
        }
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A free /28 in 10.231.0.0/16 for the control links: `(third octet, first host - 1)`.
fn free_control_block() -> Result<(u32, u32), String> {
    let used = ip(&["-4", "-o", "addr", "show"])?;
    let start = std::process::id().wrapping_mul(2_654_435_761) % 4096;
    for k in 0..4096 {
        let block = (start + k) % 4096;
        let (a, b) = (block / 16, (block % 16) * 16);
        let prefix = format!("10.231.{a}.");
        let taken = used.split_whitespace().any(|w| {
            w.strip_prefix(&prefix)
                .and_then(|rest| rest.split('/').next()?.parse::<u32>().ok())
                .is_some_and(|last| (b..b + 16).contains(&last))
        });
        if !taken {
            return Ok((a, b));
        }
    }
    Err("no free /28 in 10.231.0.0/16".into())
}

/// Removes namespaces and links of runs whose test process is gone, if no process is left in
/// them.
fn sweep_stale() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(&format!("{NETNS_PREFIX}-")) else {
            continue;
        };
        let Some(id) = rest.split('-').next().filter(|id| id.len() == 7) else {
            continue;
        };
        let Ok(pid) = u32::from_str_radix(&id[..6], 16) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if ip(&["netns", "pids", name]).is_ok_and(|p| !p.trim().is_empty()) {
            continue;
        }
        for kind in ["v", "c"] {
            for i in 0..16 {
                let _ = ip(&["link", "del", &format!("wp{id}{kind}{i}")]);
            }
        }
        let _ = ip(&["netns", "del", name]);
    }
}
