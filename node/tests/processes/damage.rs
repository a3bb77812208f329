//! A damaged store and a full disk (issue 7, point 4): a lost or damaged state database is
//! rebuilt from the block files (also on `-reindex`, and after an interrupted rebuild); a damaged
//! block file is a clear error at start-up, and `-reindex` keeps the blocks before the damage;
//! a full disk stops the node with a clear error, never a panic or a half-written block, and once
//! there is space again the node starts with every block it had committed.

use crate::harness::{Node, issue_to_self, wait_until};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn assert_no_panic(what: &str, text: &str) {
    assert!(
        !text.contains("panicked"),
        "{what}: wattled panicked:\n{text}"
    );
}

fn totals(node: &Node) -> Value {
    node.rpc("gettotalbalances", json!([]))
}

/// XORs every 97th byte of sled's data file, from byte 100 on.
fn damage_sled(chain_dir: &Path) {
    let path = chain_dir.join("sled").join("db");
    let mut bytes = std::fs::read(&path).expect("read sled's db file");
    for i in (100..bytes.len()).step_by(97) {
        bytes[i] ^= 0x5a;
    }
    std::fs::write(&path, bytes).expect("write sled's db file");
}

#[test]
fn a_lost_or_damaged_state_database_is_rebuilt_from_the_block_files() {
    let mut admin = Node::create("admin", "rebuildchain");
    issue_to_self(&admin, "gold", 1000);
    issue_to_self(&admin, "silver", 20);
    let (h, hash) = admin.tip();
    let before = totals(&admin);
    let chain_dir = admin.root().join("rebuildchain");
    admin.stop();

    // sled's data damaged: it comes back empty; the node must not start a new chain over the
    // block files but rebuild the state from them.
    damage_sled(&chain_dir);
    admin.restart();
    assert!(
        admin
            .stderr_lines()
            .iter()
            .any(|l| l.contains("Rebuilding the state database")),
        "no rebuild reported: {:?}",
        admin.stderr_lines()
    );
    assert_eq!(
        admin.block_hash(h),
        hash,
        "block {h} changed in the rebuild"
    );
    assert_eq!(totals(&admin), before, "balances changed in the rebuild");
    admin.stop();

    // Asked for explicitly, on a healthy store.
    admin.restart_with(&["-reindex"]);
    assert_eq!(admin.block_hash(h), hash);
    assert_eq!(totals(&admin), before);
    admin.stop();

    // A rebuild interrupted right after it moved the block files aside starts over.
    std::fs::rename(chain_dir.join("blocks"), chain_dir.join("blocks.reindex")).unwrap();
    admin.restart();
    assert_eq!(admin.block_hash(h), hash);
    assert_eq!(totals(&admin), before);
    assert!(!chain_dir.join("blocks.reindex").exists());

    // The chain goes on: the rebuilt node still mines and signs.
    issue_to_self(&admin, "copper", 5);
    assert!(admin.height() > h);
}

/// The byte offsets of the records in a block file (magic, u32 LE length, 8-byte checksum).
fn record_offsets(path: &Path) -> Vec<(u64, u32)> {
    let bytes = std::fs::read(path).expect("read the block file");
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 16 <= bytes.len() {
        assert_eq!(&bytes[at..at + 4], b"WBLK", "record magic at {at}");
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        out.push((at as u64, len));
        at += 16 + len as usize;
    }
    out
}

#[test]
fn a_damaged_block_file_is_a_clear_error_and_reindex_keeps_the_blocks_before_it() {
    let mut admin = Node::create("admin", "damagedchain");
    issue_to_self(&admin, "gold", 1000);
    let gold_height = admin.height();
    let gold_hash = admin.block_hash(gold_height);
    issue_to_self(&admin, "silver", 20);
    issue_to_self(&admin, "copper", 3);
    let tip = admin.height();
    assert!(tip >= gold_height + 2);
    admin.stop();

    // Damage the payload of the block after gold's: more blocks follow it.
    let file = admin.root().join("damagedchain/blocks/00000.dat");
    let records = record_offsets(&file);
    let (offset, len) = records[gold_height as usize + 1];
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[(offset + 16 + u64::from(len) / 2) as usize] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();

    let (status, text) = admin.run_to_exit(&[], Duration::from_secs(30));
    let status =
        status.unwrap_or_else(|| panic!("wattled kept running on a damaged block file:\n{text}"));
    assert!(!status.success(), "exit {status}:\n{text}");
    assert_no_panic("damaged block file", &text);
    assert!(
        text.contains("corrupt block record") && text.contains("-reindex"),
        "no clear error:\n{text}"
    );

    // -reindex keeps every block before the damage.
    admin.restart_with(&["-reindex"]);
    assert_eq!(admin.block_hash(gold_height), gold_hash);
    let assets = admin.rpc("listassets", json!([]));
    let names: Vec<&str> = assets
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(names.contains(&"gold"), "gold lost: {names:?}");
    issue_to_self(&admin, "tin", 1);
}

/// A small tmpfs mounted on a fresh directory; unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (not root?): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system up with one file; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0xa5u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_stops_the_node_with_a_clear_error_and_loses_no_block() {
    let disk = match SmallDisk::mount(16) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let dir = tempfile::TempDir::new_in(disk.path()).expect("dir on the small disk");
    let mut admin = Node::create_in("admin", "fullchain", dir);
    let me = admin.address();
    issue_to_self(&admin, "gold", 1000);
    let addresses = admin.addresses();

    let filler = disk.fill();
    // A key that cannot be written is not handed out.
    let err = admin
        .try_rpc("getnewaddress", json!([]))
        .expect_err("getnewaddress on a full disk");
    assert!(
        format!("{err:?}").contains("No space left"),
        "unclear error: {err:?}"
    );
    assert_eq!(
        admin.addresses(),
        addresses,
        "a key that is not on disk was kept"
    );

    // Transactions keep coming until a block cannot be written: the node stops, clearly.
    let mut committed = admin.tip();
    wait_until(
        "the node to stop on the full disk",
        Duration::from_secs(60),
        || {
            if admin.exited().is_some() {
                return Ok(());
            }
            if let Ok(tip) = admin.try_rpc("getblockcount", json!([])) {
                let h = tip.as_u64().unwrap_or(0);
                if h > committed.0
                    && let Ok(hash) = admin.try_rpc("getblockhash", json!([h]))
                {
                    committed = (h, hash.as_str().unwrap_or_default().to_string());
                }
            }
            let _ = admin.try_rpc("sendasset", json!([me, "gold", 1]));
            std::thread::sleep(Duration::from_millis(100));
            Err("still running".to_string())
        },
    );
    let status = admin.exited().expect("exited");
    let output = format!(
        "{}\n{}",
        admin.stdout_lines().join("\n"),
        admin.stderr_lines().join("\n")
    );
    assert!(!status.success(), "exit {status} on a full disk:\n{output}");
    assert_no_panic("full disk", &output);
    assert!(
        output.contains("No space left on device"),
        "the error does not say the disk is full:\n{output}"
    );
    admin.forget_exited();

    // Started again on the still-full disk: a clear error (or it runs), never a panic.
    let (status, text) = admin.run_to_exit(&[], Duration::from_secs(10));
    assert_no_panic("restart on a full disk", &text);
    if let Some(status) = status {
        assert!(!status.success(), "exit {status}:\n{text}");
        assert!(
            text.contains("No space left on device"),
            "unclear error:\n{text}"
        );
    }

    // With space again, every block it had committed is there and the chain goes on.
    std::fs::remove_file(filler).unwrap();
    admin.restart();
    assert_eq!(
        admin.block_hash(committed.0),
        committed.1,
        "block {} changed or was lost",
        committed.0
    );
    let gold = admin.rpc("gettotalbalances", json!([]));
    assert_eq!(gold[0]["qty"].as_f64(), Some(1000.0), "{gold}");
    issue_to_self(&admin, "silver", 1);
}
