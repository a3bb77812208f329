//! `tests/python/multichain_client.py` against a real node: a standard-library-only Python 3
//! client that talks JSON-RPC the way MultiChain's Python libraries (Savoir) do. Skipped, with a
//! message, only when `python3` is not installed.

use crate::harness::Node;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/multichain_client.py")
}

fn python3_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the script with `args`, killing it after `SCRIPT_TIMEOUT`.
fn run_script(args: &[&str]) -> Output {
    let mut child = Command::new("python3")
        .arg(script())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    let start = Instant::now();
    while child.try_wait().expect("poll python3").is_none() {
        if start.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reap python3");
            panic!(
                "the script ran longer than {SCRIPT_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect python3 output")
}

#[test]
fn python_client_talks_to_the_node_like_savoir() {
    if !python3_available() {
        println!("SKIPPED python_client_talks_to_the_node_like_savoir: python3 is not installed");
        return;
    }
    assert!(script().exists(), "{} is missing", script().display());
    let node = Node::create("python");
    let url = format!(
        "http://{}:{}@127.0.0.1:{}",
        node.rpc.user, node.rpc.password, node.rpc.port
    );
    let out = run_script(&[&url, "compat"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the Python client failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    // It issued an asset through the node: the node agrees.
    let assets = node.ok("listassets", serde_json::json!([]));
    assert_eq!(assets.as_array().map(Vec::len), Some(1), "{assets}");

    // The script detects mismatches: a wrong password or a wrong chain name fails it.
    let bad = format!(
        "http://{}:{}x@127.0.0.1:{}",
        node.rpc.user, node.rpc.password, node.rpc.port
    );
    let out = run_script(&[&bad, "compat"]);
    assert_eq!(out.status.code(), Some(1), "wrong password: {out:?}");
    let out = run_script(&[&url, "otherchain"]);
    assert_eq!(out.status.code(), Some(1), "wrong chain: {out:?}");
    let out = run_script(&[&url]);
    assert_eq!(out.status.code(), Some(2), "usage: {out:?}");
}
