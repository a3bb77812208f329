//! `wattled`: the Wattle node daemon.

use wattle_node::daemon::{self, Command};

/// mimalloc: the node allocates and frees many small buffers per transaction (decoding, state
/// values, gossip); glibc's malloc spent about a tenth of the node's CPU on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match daemon::parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let result = match command {
        Command::Help => {
            println!("{}", daemon::USAGE);
            Ok(())
        }
        Command::Version => {
            println!("wattled {}", daemon::VERSION);
            Ok(())
        }
        Command::Run(opts) => runtime.block_on(daemon::run(opts, None)),
        Command::Devnet(opts) => {
            let exit = opts.exit;
            runtime.block_on(wattle_node::devnet::run(opts, exit))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
