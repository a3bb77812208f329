//! `wattle-cli`'s argument handling: splitting an interactive line into words and converting
//! arguments to JSON-RPC parameters (multichain-cli's `vRPCConvertParams`).

use serde_json::Value;
use wattle_cli::convert::{params, split_words};

/// `cli_args`: the input is text; its first line is a command line for the interactive mode,
/// the next line the method and the remaining lines its arguments.
///
/// Properties: quoting each split word again (when it has no double quote) and joining with
/// spaces splits back to the same words; a conversion keeps one parameter per argument, each
/// the argument as a string or its JSON reading, and fails only with "Error parsing JSON".
pub fn cli_args(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let line = lines.next().unwrap_or("");
    let words = split_words(line);
    if words.iter().all(|w| !w.contains('"')) {
        let again: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
        assert_eq!(split_words(&again.join(" ")), words);
    }
    if let Some((method, args)) = words.split_first() {
        check_params(method, args);
    }
    let method = lines.next().unwrap_or("");
    let args: Vec<String> = lines.map(str::to_string).collect();
    check_params(method, &args);
}

fn check_params(method: &str, args: &[String]) {
    match params(method, args) {
        Ok(values) => {
            assert_eq!(values.len(), args.len());
            for (v, arg) in values.iter().zip(args) {
                let as_string = matches!(v, Value::String(s) if s == arg);
                let as_json = serde_json::from_str::<Value>(arg).ok().as_ref() == Some(v);
                assert!(as_string || as_json, "{arg:?} became {v}");
            }
        }
        Err(e) => assert!(e.starts_with("Error parsing JSON:"), "{e}"),
    }
}
