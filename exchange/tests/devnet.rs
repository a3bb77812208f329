//! The README's main job, `wattle-exchange devnet`, as a user runs it: it starts the three nodes
//! and services, completes the paper's trade through the services, prints the three UI
//! addresses, serves them, and on Ctrl-C (SIGINT) stops everything and exits 0, leaving no
//! process behind and the data directory in place.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the devnet if the test fails half-way.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn get(url: &str) -> Result<(u16, String), String> {
    let hostport = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = TcpStream::connect(&hostport).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(format!("bad reply: {raw}"))?;
    Ok((status, raw))
}

/// Processes (other than zombies) whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if cmdline.contains(needle) && !zombie {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

#[test]
fn devnet_trades_serves_the_uis_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("market");
    let root_text = root.display().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_wattle-exchange"))
        .arg("devnet")
        .arg(format!("-datadir={root_text}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wattle-exchange devnet");
    let mut guard = Guard(Some(child));
    let pid = guard.0.as_ref().map(Child::id).expect("pid");
    let stdout = guard
        .0
        .as_mut()
        .and_then(|c| c.stdout.take())
        .expect("stdout");
    let stderr = guard
        .0
        .as_mut()
        .and_then(|c| c.stderr.take())
        .expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(format!("stderr: {line}"));
        }
    });

    // Wait for the trade and the three UI lines (bounded).
    let mut lines: Vec<String> = Vec::new();
    let mut urls = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while urls.len() < 3 || !lines.iter().any(|l| l.contains("Ctrl-C")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                for role in ["admin", "producer", "consumer"] {
                    if let Some(url) = line.strip_prefix(role).map(str::trim)
                        && url.starts_with("http://127.0.0.1:")
                    {
                        urls.push((role, url.to_string()));
                    }
                }
                assert!(
                    !line.starts_with("stderr: Error"),
                    "the devnet failed: {line}\n{}",
                    lines.join("\n")
                );
                lines.push(line);
            }
            Err(_) => panic!(
                "no three UI addresses and Ctrl-C hint within 180 s; output so far:\n{}",
                lines.join("\n")
            ),
        }
    }
    let out = lines.join("\n");
    assert!(
        out.contains("the exchange is confirmed on all three nodes"),
        "the trade did not complete:\n{out}"
    );
    assert!(
        out.contains("Ctrl-C"),
        "it should say how to stop it:\n{out}"
    );
    // Each service answers on its address.
    for (role, url) in &urls {
        let (status, _) = get(url).unwrap_or_else(|e| panic!("{role} UI at {url}: {e}"));
        assert!(status < 500, "{role} UI at {url} answered HTTP {status}");
    }

    // Ctrl-C: SIGINT to the devnet; it stops everything and exits 0.
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success(), "kill -INT failed");
    let mut child = guard.0.take().expect("child");
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the devnet did not stop within 60 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        exit.success(),
        "the devnet exited with {exit} after Ctrl-C:\n{}",
        rest.join("\n")
    );
    assert!(
        rest.iter().any(|l| l.starts_with("Stopped.")),
        "no 'Stopped.' line after Ctrl-C:\n{}",
        rest.join("\n")
    );
    // Nothing left behind: no process names the data directory, and no service still listens.
    let left = processes_mentioning(&root_text);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    for (role, url) in &urls {
        assert!(
            get(url).is_err(),
            "the {role} service at {url} still answers after Ctrl-C"
        );
    }
    // The data stays where it was printed.
    assert!(
        root.join("admin")
            .join("energybc")
            .join("params.toml")
            .exists(),
        "the devnet removed its data directory"
    );
}
