//! `wattle-cli`: a JSON-RPC client for Wattle nodes with multichain-cli's conventions.

use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;
use wattle_cli::convert;
use wattle_node::datadir::{DataDir, RpcConf};
use wattle_node::rpc::client as http;

const USAGE: &str = "Usage: wattle-cli CHAIN [options] COMMAND [PARAMS ...]
       wattle-cli CHAIN [options]            (interactive: one command per line; exit, quit or bye leaves)

Sends COMMAND to the chain's node over JSON-RPC, reading the port and password from
DIR/CHAIN/wattle.conf and params.toml. Parameters are strings, except where MultiChain's CLI
parses them as JSON (quantities, flags, objects). `wattle-cli CHAIN help` lists the commands.

Options:
  -datadir=DIR          data directory (default ~/.wattle)
  -rpcconnect=HOST      node host (default 127.0.0.1)
  -rpcport=N            node JSON-RPC port
  -rpcuser=U -rpcpassword=P   credentials (default: from wattle.conf)
  -requestout=stderr|stdout|null   where to echo the JSON request (default stderr)";

struct Client {
    host: String,
    port: u16,
    user: String,
    password: String,
    chain: String,
    request_out: String,
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<u8, String> {
    if args.is_empty() || args[0] == "-help" || args[0] == "--help" || args[0] == "-h" {
        println!("{USAGE}");
        return Ok(if args.is_empty() { 1 } else { 0 });
    }
    let mut opts: Vec<(String, String)> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    let mut chain: Option<String> = None;
    for a in args {
        if rest.is_empty()
            && a.starts_with('-')
            && a.len() > 1
            && !a[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            let flag = a.trim_start_matches('-');
            let (k, v) = flag.split_once('=').unwrap_or((flag, ""));
            opts.push((k.to_string(), v.to_string()));
        } else if chain.is_none() {
            chain = Some(a.clone());
        } else {
            rest.push(a.clone());
        }
    }
    let chain = chain.ok_or("missing CHAIN")?;
    let opt = |name: &str| {
        opts.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    for (k, _) in &opts {
        if ![
            "datadir",
            "rpcconnect",
            "rpcport",
            "rpcuser",
            "rpcpassword",
            "requestout",
        ]
        .contains(&k.as_str())
        {
            return Err(format!("unknown option -{k} (see wattle-cli -help)"));
        }
    }
    let dir = DataDir::new(opt("datadir").map(PathBuf::from), &chain);
    let conf = RpcConf::read(&dir.conf_path());
    let password = match (opt("rpcpassword"), &conf) {
        (Some(p), _) => p,
        (None, Ok(c)) => c.password.clone(),
        (None, Err(_)) => {
            return Err(format!(
                "You must set rpcpassword=<password> in the configuration file:\n{}",
                dir.conf_path().display()
            ));
        }
    };
    let user = opt("rpcuser")
        .or_else(|| conf.as_ref().ok().map(|c| c.user.clone()))
        .unwrap_or_else(|| "multichainrpc".into());
    let params_port = std::fs::read_to_string(dir.params_path())
        .ok()
        .and_then(|t| wattle_node::params_file::parse(&t).ok())
        .map(|p| p.default_rpc_port);
    let port = match opt("rpcport") {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid -rpcport: {p}"))?,
        None => conf
            .as_ref()
            .ok()
            .and_then(|c| c.port)
            .or(params_port)
            .unwrap_or(8570),
    };
    let client = Client {
        host: opt("rpcconnect").unwrap_or_else(|| "127.0.0.1".into()),
        port,
        user,
        password,
        chain: chain.clone(),
        request_out: opt("requestout").unwrap_or_else(|| "stderr".into()),
    };
    if rest.is_empty() {
        return interactive(&client);
    }
    Ok(client.call(&rest[0], &rest[1..]))
}

fn interactive(client: &Client) -> Result<u8, String> {
    let stdin = std::io::stdin();
    let mut last = 0;
    loop {
        print!("{}: ", client.chain);
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        if stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?
            == 0
        {
            return Ok(last);
        }
        let words = convert::split_words(line.trim());
        match words.first().map(String::as_str) {
            None => continue,
            Some("exit" | "quit" | "bye") => return Ok(last),
            Some(cmd) => last = client.call(cmd, &words[1..]),
        }
    }
}

impl Client {
    /// Runs one command; prints the result or the error; returns the exit code.
    fn call(&self, method: &str, args: &[String]) -> u8 {
        let params = match convert::params(method, args) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        let mut digits = [0u8; 4];
        rand::fill(&mut digits);
        let id = format!(
            "{:08}-{}",
            u32::from_le_bytes(digits) % 100_000_000,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        );
        let request =
            json!({"method": method, "params": params, "id": id, "chain_name": self.chain});
        match self.request_out.as_str() {
            "stdout" => println!("{request}\n"),
            "null" | "none" => {}
            _ => eprintln!("{request}\n"),
        }
        let reply = match http::post(
            &self.host,
            self.port,
            &self.user,
            &self.password,
            &request.to_string(),
            Duration::from_secs(900),
        ) {
            Ok(r) => r,
            Err(http::HttpError::Connect(e)) => {
                eprintln!(
                    "error: Could not connect to the server {}:{} ({e})\n\nMake sure the wattled server is running and that you are connecting to the correct RPC port.",
                    self.host, self.port
                );
                return 1;
            }
            Err(e) => {
                eprintln!("error: {e:?}");
                return 1;
            }
        };
        if reply.status == 401 {
            eprintln!("error: incorrect rpcuser or rpcpassword (authorization failed)");
            return 1;
        }
        let body: Value = match serde_json::from_str(&reply.body) {
            Ok(v) => v,
            Err(_) => {
                eprintln!(
                    "error: server returned HTTP error {}: {}",
                    reply.status,
                    reply.body.trim()
                );
                return 1;
            }
        };
        if let Some(err) = body.get("error").filter(|e| !e.is_null()) {
            let code = err.get("code").and_then(Value::as_i64).unwrap_or(-1);
            let message = err.get("message").and_then(Value::as_str).unwrap_or("");
            eprintln!("error code: {code}\nerror message:\n{message}");
            let exit = (code.unsigned_abs() % 256) as u8;
            return if exit == 0 { 1 } else { exit };
        }
        match body.get("result") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => println!("{s}"),
            Some(v) => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
        }
        0
    }
}
