//! `wattle-exchange`: the energy exchange web service. (Placeholder.)

fn main() -> std::process::ExitCode {
    eprintln!("Error: not built yet");
    std::process::ExitCode::from(1)
}
