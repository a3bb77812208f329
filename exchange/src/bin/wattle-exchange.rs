//! `wattle-exchange`: the energy exchange web service of one site (admin, producer or consumer),
//! driving that site's node over JSON-RPC (DESIGN §7).

use std::path::PathBuf;
use std::process::ExitCode;
use wattle_exchange::{Role, ServiceConfig};
use wattle_node::datadir::DataDir;
use wattle_node::rpc::client::RpcClient;

const USAGE: &str =
    "Usage: wattle-exchange --role admin|producer|consumer CHAIN [-datadir=DIR] [-rpcport=N]
                       --listen HOST:PORT [--exchange URL] [--db DIR]
       wattle-exchange devnet [-datadir=DIR] [-exit]

Serves one site's energy exchange: a REST JSON API under /api/ and the browser UI at /, on
HOST:PORT. It drives the site's own node (wattled CHAIN) over JSON-RPC with the credentials in
the node's data directory, as wattle-cli does, and keeps its records in its own database.

  --role ROLE       admin: connects sites, approves ecoin purchases, runs the offer board;
                    producer: issues energy and offers it for ecoin;
                    consumer: requests ecoin and buys offered energy
  CHAIN             the chain's name (e.g. energybc)
  -datadir=DIR      the node's data directory (default ~/.wattle); its files are in DIR/CHAIN/
  -rpcport=N        the node's JSON-RPC port (default: rpcport in DIR/CHAIN/wattle.conf)
  --listen H:P      where to serve, e.g. 127.0.0.1:8080 (port 0: any free port, printed)
  --exchange URL    producer/consumer: the admin service's base URL, e.g. http://10.0.0.1:8080
                    (usually set through the UI or POST /api/ROLE/reg_exchange_ip instead,
                    which also connects the site)
  --db DIR          the service's database (default DIR/CHAIN/exchange-ROLE/)
  --help            this text

  devnet            a whole market on this machine (see wattle-exchange devnet -help)

Logs go to stderr (RUST_LOG=debug for more). Ctrl-C or SIGTERM stops the service.";

/// Parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    role: Role,
    chain: String,
    datadir: Option<PathBuf>,
    rpcport: Option<u16>,
    listen: String,
    exchange: Option<String>,
    db: Option<PathBuf>,
}

/// `-name=value`, `--name=value`, or `--name value` (the value taken from `rest`).
fn option_value(
    arg: &str,
    names: &[&str],
    rest: &mut std::slice::Iter<'_, String>,
) -> Option<Result<String, String>> {
    let flag = arg.trim_start_matches('-');
    if !arg.starts_with('-') {
        return None;
    }
    let (name, inline) = match flag.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (flag, None),
    };
    if !names.contains(&name) {
        return None;
    }
    Some(match inline.or_else(|| rest.next().cloned()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("{arg} needs a value")),
    })
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let (mut role, mut chain, mut datadir, mut rpcport) = (None, None, None, None);
    let (mut listen, mut exchange, mut db) = (None, None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(v) = option_value(arg, &["role"], &mut it) {
            role = Some(v?.parse::<Role>()?);
        } else if let Some(v) = option_value(arg, &["datadir"], &mut it) {
            datadir = Some(PathBuf::from(v?));
        } else if let Some(v) = option_value(arg, &["rpcport"], &mut it) {
            let v = v?;
            rpcport = Some(
                v.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or(format!("invalid -rpcport: {v}"))?,
            );
        } else if let Some(v) = option_value(arg, &["listen"], &mut it) {
            listen = Some(v?);
        } else if let Some(v) = option_value(arg, &["exchange"], &mut it) {
            exchange = Some(v?);
        } else if let Some(v) = option_value(arg, &["db"], &mut it) {
            db = Some(PathBuf::from(v?));
        } else if arg.starts_with('-') {
            return Err(format!("unknown option {arg}"));
        } else if chain.is_none() {
            chain = Some(arg.clone());
        } else {
            return Err(format!("unexpected argument {arg}"));
        }
    }
    let role = role.ok_or("missing --role admin|producer|consumer")?;
    if role == Role::Admin && exchange.is_some() {
        return Err("--exchange is for producer and consumer services".into());
    }
    Ok(Args {
        role,
        chain: chain.ok_or("missing CHAIN (the chain's name, e.g. energybc)")?,
        datadir,
        rpcport,
        listen: listen.ok_or("missing --listen HOST:PORT")?,
        exchange,
        db,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("devnet") {
        return wattle_exchange::devnet::run(&args[1..]);
    }
    if args.is_empty()
        || args
            .iter()
            .any(|a| ["-h", "-help", "--help", "-?"].contains(&a.as_str()))
    {
        println!("{USAGE}");
        return if args.is_empty() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        };
    }
    let args = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("Error: {e}\n\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let dir = DataDir::new(args.datadir.clone(), &args.chain);
    let rpc = RpcClient::from_datadir(&dir, args.rpcport).map_err(|e| {
        format!(
            "cannot read the node's RPC settings in {}: {e} (is `wattled {}` set up there? use -datadir=)",
            dir.chain_dir().display(),
            args.chain
        )
    })?;
    let db_dir = args
        .db
        .clone()
        .unwrap_or_else(|| dir.chain_dir().join(format!("exchange-{}", args.role)));
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "{} service for {} on http://{local}/ (node RPC 127.0.0.1:{}, database {})",
        args.role,
        args.chain,
        rpc.port,
        db_dir.display()
    );
    let config = ServiceConfig {
        role: args.role,
        rpc,
        db_dir,
        exchange_url: args.exchange,
    };
    wattle_exchange::serve(listener, config, stop_signal()).await
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stopping");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_the_documented_command_line() {
        let a = parse_args(&args(
            "--role producer energybc -datadir=/d -rpcport=9 --listen 127.0.0.1:0 --exchange http://h:1",
        ))
        .unwrap();
        assert_eq!(a.role, Role::Producer);
        assert_eq!(a.chain, "energybc");
        assert_eq!(a.datadir, Some(PathBuf::from("/d")));
        assert_eq!(a.rpcport, Some(9));
        assert_eq!(a.listen, "127.0.0.1:0");
        assert_eq!(a.exchange.as_deref(), Some("http://h:1"));
        let a = parse_args(&args("energybc --role=admin --listen=0.0.0.0:80 --db=/x")).unwrap();
        assert_eq!((a.role, a.db), (Role::Admin, Some(PathBuf::from("/x"))));
    }

    #[test]
    fn refuses_bad_command_lines_clearly() {
        let err = |s: &str| parse_args(&args(s)).unwrap_err();
        assert!(err("energybc --listen :1").contains("--role"));
        assert!(err("--role boss energybc --listen :1").contains("unknown role"));
        assert!(err("--role admin --listen :1").contains("CHAIN"));
        assert!(err("--role admin energybc").contains("--listen"));
        assert!(err("--role admin energybc --listen").contains("needs a value"));
        assert!(err("--role admin energybc --listen :1 -rpcport=x").contains("-rpcport"));
        assert!(err("--role admin energybc --listen :1 --bogus").contains("unknown option"));
        assert!(
            err("--role admin energybc --listen :1 --exchange http://h:1").contains("--exchange")
        );
    }
}
