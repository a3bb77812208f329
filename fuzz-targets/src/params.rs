//! `params.toml` (`params_file`): the file a node reads at start-up and a joining node receives
//! from its seed, and the `-name=value` settings of `wattle-util create`.

use wattle_ledger::ChainParams;
use wattle_node::params_file::{parse, render, set, to_json};

/// `params_toml`: the input as the text of `params.toml`, and each of its `name=value` lines as
/// a setting on the defaults. Parameters that parse are valid, and render to a file that parses
/// back to the same parameters.
pub fn params_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(params) = parse(text) {
        check_valid(&params);
    }
    let mut params = ChainParams::new("fuzzchain");
    for line in text.lines().take(8) {
        if let Some((name, value)) = line.split_once('=') {
            let _ = set(&mut params, name.trim(), value);
        }
    }
    if params.validate().is_ok() {
        check_valid(&params);
    }
}

fn check_valid(params: &ChainParams) {
    params.validate().expect("parsed parameters are valid");
    let text = render(params);
    assert_eq!(
        parse(&text).as_ref(),
        Ok(params),
        "render does not parse back:\n{text}"
    );
    let _ = to_json(params, &params.hash());
}
