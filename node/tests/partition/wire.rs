//! The wire between the nodes: a learning Ethernet switch in this process, one port per node
//! (the node's macvtap character device), that does what `tc qdisc add dev eth0 root netem
//! delay Xms loss Y%` on every node would do, plus the partition:
//!
//! - every frame is delivered `delay` after it was sent (one way; a round trip takes twice
//!   that), in order per destination;
//! - every frame is dropped with probability `loss` (independently per frame and destination;
//!   TCP retransmits, as with netem);
//! - while partitioned, every frame between nodes on different sides is dropped (netem's
//!   `loss 100%` on the links that cross the cut); frames within a side pass.
//!
//! A reader thread per port takes the frames a node sends (each with the 10-byte virtio-net
//! header macvtap puts in front, passed on unchanged) and queues them on the destination ports;
//! a writer thread per port hands each to its node when it is due. The threads stop with the
//! wire (a reader blocked in `read` ends when its device is deleted, or with the process).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// macvtap's virtio-net header in front of each frame.
const VNET_HDR: usize = 10;

/// What the wire does to frames now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Conditions {
    pub delay: Duration,
    /// Probability that a frame is dropped, 0..=1.
    pub loss: f64,
    pub partitioned: bool,
}

/// Frame counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub forwarded: AtomicU64,
    pub lost: AtomicU64,
    pub cut: AtomicU64,
    pub flooded: AtomicU64,
}

struct Port {
    side: u8,
    queue: Mutex<VecDeque<(Instant, Vec<u8>)>>,
    ready: Condvar,
}

struct Shared {
    ports: Vec<Port>,
    conditions: Mutex<Conditions>,
    macs: Mutex<HashMap<[u8; 6], usize>>,
    counters: Counters,
    stop: AtomicBool,
}

/// The running switch. Dropping it stops the writers.
pub struct Wire {
    shared: Arc<Shared>,
}

impl Wire {
    /// Starts the switch on `taps` (one per node, in node order); `sides[i]` is port i's side.
    pub fn start(taps: Vec<File>, sides: &[u8], seed: u64) -> Result<Wire, String> {
        let shared = Arc::new(Shared {
            ports: sides
                .iter()
                .map(|s| Port {
                    side: *s,
                    queue: Mutex::new(VecDeque::new()),
                    ready: Condvar::new(),
                })
                .collect(),
            conditions: Mutex::new(Conditions::default()),
            macs: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
        });
        for (i, tap) in taps.into_iter().enumerate() {
            let writer = tap.try_clone().map_err(|e| format!("clone tap {i}: {e}"))?;
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("wire-read-{i}"))
                .spawn(move || read_port(&s, i, tap, seed.wrapping_add(i as u64 * 0x9E37)))
                .map_err(|e| e.to_string())?;
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("wire-write-{i}"))
                .spawn(move || write_port(&s, i, writer))
                .map_err(|e| e.to_string())?;
        }
        Ok(Wire { shared })
    }

    pub fn set(&self, c: Conditions) {
        *self.shared.conditions.lock().unwrap() = c;
    }

    pub fn partition(&self, on: bool) {
        self.shared.conditions.lock().unwrap().partitioned = on;
    }

    /// (forwarded, lost, cut by the partition) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        let c = &self.shared.counters;
        (
            c.forwarded.load(Ordering::Relaxed),
            c.lost.load(Ordering::Relaxed),
            c.cut.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for p in &self.shared.ports {
            p.ready.notify_all();
        }
    }
}

/// xorshift64*: a small seeded generator for the loss draws.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn read_port(s: &Shared, from: usize, mut tap: File, seed: u64) {
    let mut rng = Rng(seed | 1);
    let mut buf = vec![0u8; 65_536 + VNET_HDR];
    while !s.stop.load(Ordering::SeqCst) {
        let n = match tap.read(&mut buf) {
            Ok(0) | Err(_) if s.stop.load(Ordering::SeqCst) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                // The device is gone (the fabric is being removed) or not up yet.
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        if n < VNET_HDR + 14 {
            continue;
        }
        let now = Instant::now();
        let frame = &buf[VNET_HDR..n];
        let dst: [u8; 6] = frame[0..6].try_into().unwrap();
        let src: [u8; 6] = frame[6..12].try_into().unwrap();
        let targets: Vec<usize> = {
            let mut macs = s.macs.lock().unwrap();
            if src[0] & 1 == 0 {
                macs.insert(src, from);
            }
            match macs.get(&dst) {
                Some(&to) if dst[0] & 1 == 0 => {
                    if to == from {
                        continue;
                    }
                    vec![to]
                }
                _ => {
                    s.counters.flooded.fetch_add(1, Ordering::Relaxed);
                    (0..s.ports.len()).filter(|&p| p != from).collect()
                }
            }
        };
        let c = *s.conditions.lock().unwrap();
        for to in targets {
            if c.partitioned && s.ports[to].side != s.ports[from].side {
                s.counters.cut.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if c.loss > 0.0 && rng.unit() < c.loss {
                s.counters.lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let port = &s.ports[to];
            port.queue
                .lock()
                .unwrap()
                .push_back((now + c.delay, buf[..n].to_vec()));
            port.ready.notify_one();
        }
    }
}

fn write_port(s: &Shared, to: usize, mut tap: File) {
    let port = &s.ports[to];
    let mut queue = port.queue.lock().unwrap();
    loop {
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        match queue.front() {
            Some((due, _)) if *due <= now => {
                let (_, frame) = queue.pop_front().unwrap();
                drop(queue);
                // A frame the device refuses (e.g. while it is being removed) is lost.
                if tap.write_all(&frame).is_ok() {
                    s.counters.forwarded.fetch_add(1, Ordering::Relaxed);
                }
                queue = port.queue.lock().unwrap();
            }
            Some((due, _)) => {
                let wait = *due - now;
                queue = port.ready.wait_timeout(queue, wait).unwrap().0;
            }
            None => {
                queue = port
                    .ready
                    .wait_timeout(queue, Duration::from_millis(200))
                    .unwrap()
                    .0;
            }
        }
    }
}
