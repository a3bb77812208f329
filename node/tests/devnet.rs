//! The README's main job: `wattled devnet` replays the paper's trade on three real nodes.

use std::process::Command;

#[test]
fn devnet_replays_the_paper_trade_on_three_nodes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_wattled"))
        .args([
            "devnet",
            &format!("-datadir={}", dir.path().display()),
            "-exit",
        ])
        .output()
        .expect("wattled runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "devnet failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("complete false"),
        "the offer was not decoded as incomplete:\n{stdout}"
    );
    assert!(stdout.contains("confirmed on all three nodes"), "{stdout}");
    assert!(
        stdout.contains("producer holds 1000 ecoin; consumer holds 1 energy, 19000 ecoin"),
        "final balances are wrong:\n{stdout}"
    );
}
