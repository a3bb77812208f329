//! multichain-cli's argument conversion (`vRPCConvertParams`): arguments are strings, except at
//! the listed (method, position) pairs, where they are parsed as JSON. A position marked
//! "may be a string" sends non-JSON text, numbers and strings as plain strings, and objects,
//! arrays and booleans as JSON.

use serde_json::Value;

/// (method, 0-based position, may be a string).
const CONVERT: &[(&str, usize, bool)] = &[
    ("grant", 2, false),
    ("grant", 3, false),
    ("grant", 4, false),
    ("grantfrom", 3, false),
    ("grantfrom", 4, false),
    ("grantfrom", 5, false),
    ("revoke", 2, false),
    ("revokefrom", 3, false),
    ("issue", 1, true),
    ("issue", 2, false),
    ("issue", 3, false),
    ("issue", 4, false),
    ("issue", 5, false),
    ("issuefrom", 2, true),
    ("issuefrom", 3, false),
    ("issuefrom", 4, false),
    ("issuefrom", 5, false),
    ("issuefrom", 6, false),
    ("issuemore", 2, false),
    ("issuemore", 3, false),
    ("issuemore", 4, false),
    ("issuemorefrom", 3, false),
    ("issuemorefrom", 4, false),
    ("issuemorefrom", 5, false),
    ("gettotalbalances", 0, false),
    ("gettotalbalances", 1, false),
    ("gettotalbalances", 2, false),
    ("getmultibalances", 0, true),
    ("getmultibalances", 1, true),
    ("getmultibalances", 2, false),
    ("getmultibalances", 3, false),
    ("getmultibalances", 4, false),
    ("getaddressbalances", 1, false),
    ("getaddressbalances", 2, false),
    ("preparelockunspent", 0, false),
    ("preparelockunspent", 1, false),
    ("preparelockunspentfrom", 1, false),
    ("preparelockunspentfrom", 2, false),
    ("createrawexchange", 1, false),
    ("createrawexchange", 2, false),
    ("appendrawexchange", 2, false),
    ("appendrawexchange", 3, false),
    ("completerawexchange", 2, false),
    ("completerawexchange", 3, false),
    ("completerawexchange", 4, true),
    ("decoderawexchange", 1, false),
    ("sendasset", 2, false),
    ("sendasset", 3, false),
    ("sendassettoaddress", 2, false),
    ("sendassettoaddress", 3, false),
    ("sendassetfrom", 3, false),
    ("sendassetfrom", 4, false),
    ("listassets", 0, true),
    ("listassets", 1, false),
    ("listassets", 2, false),
    ("listassets", 3, false),
    ("listpermissions", 1, true),
    ("listpermissions", 2, false),
    ("listaddresses", 0, true),
    ("listaddresses", 1, false),
    ("listaddresses", 2, false),
    ("listaddresses", 3, false),
    ("listunspent", 0, false),
    ("listunspent", 1, false),
    ("listunspent", 2, false),
    ("getrawtransaction", 1, false),
    ("sendrawtransaction", 1, false),
    ("lockunspent", 0, false),
    ("lockunspent", 1, false),
    ("getblockchainparams", 0, false),
    ("getblockchainparams", 1, false),
    ("getblockhash", 0, false),
    ("getblock", 1, false),
    ("stop", 0, false),
    ("placeorder", 3, false),
    ("placeorder", 5, false),
    ("listorders", 0, true),
    ("listorders", 4, false),
    ("listorders", 5, false),
    ("getorderbook", 2, false),
    ("listtrades", 2, false),
    ("listtrades", 3, false),
];

/// Converts command-line arguments to JSON params for `method`.
pub fn params(method: &str, args: &[String]) -> Result<Vec<Value>, String> {
    args.iter()
        .enumerate()
        .map(
            |(i, arg)| match CONVERT.iter().find(|(m, p, _)| *m == method && *p == i) {
                None => Ok(Value::String(arg.clone())),
                Some((_, _, false)) => {
                    serde_json::from_str(arg).map_err(|_| format!("Error parsing JSON:{arg}"))
                }
                Some((_, _, true)) => match serde_json::from_str::<Value>(arg) {
                    Ok(v @ (Value::Object(_) | Value::Array(_) | Value::Bool(_))) => Ok(v),
                    _ => Ok(Value::String(arg.clone())),
                },
            },
        )
        .collect()
}

/// Splits a line of `wattle-cli`'s interactive mode into words, honouring single and double
/// quotes.
pub fn split_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn converts_like_multichain_cli() {
        assert_eq!(
            params("issuefrom", &s(&["A", "B", "energy", "10"])).unwrap(),
            vec![json!("A"), json!("B"), json!("energy"), json!(10)]
        );
        assert_eq!(
            params(
                "issuefrom",
                &s(&["A", "B", r#"{"name":"energy","open":true}"#, "0", "0.001"])
            )
            .unwrap()[2],
            json!({"name": "energy", "open": true})
        );
        assert_eq!(
            params("grant", &s(&["A", "connect,send,receive"])).unwrap(),
            vec![json!("A"), json!("connect,send,receive")]
        );
        assert_eq!(params("getblockhash", &s(&["5"])).unwrap(), vec![json!(5)]);
        assert_eq!(params("issue", &s(&["A", "7"])).unwrap()[1], json!("7"));
        assert_eq!(
            params("grant", &s(&["A", "send", "{bad"])).unwrap_err(),
            "Error parsing JSON:{bad"
        );
        let q = params("sendasset", &s(&["A", "energy", "0.001"])).unwrap();
        assert_eq!(q[2].to_string(), "0.001");
    }

    #[test]
    fn converts_the_order_book_commands() {
        let p = params(
            "placeorder",
            &s(&["A", "buy", "energy", "0.2", "ecoin", "105.5"]),
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                json!("A"),
                json!("buy"),
                json!("energy"),
                json!(0.2),
                json!("ecoin"),
                json!(105.5)
            ]
        );
        // Exact decimal text reaches the node (arbitrary precision, never a float).
        assert_eq!(p[3].to_string(), "0.2");
        let tiny = params(
            "placeorder",
            &s(&["A", "sell", "e", "1", "q", "0.00000001"]),
        )
        .unwrap();
        assert_eq!(tiny[5].to_string(), "0.00000001");
        assert_eq!(
            params("placeorder", &s(&["A", "sell", "e", "ten", "q", "1"])).unwrap_err(),
            "Error parsing JSON:ten"
        );
        assert_eq!(
            params("cancelorder", &s(&["A", "00ff"])).unwrap(),
            vec![json!("A"), json!("00ff")]
        );
        assert_eq!(
            params(
                "listorders",
                &s(&["*", "energy", "ecoin", "all", "5", "-5"])
            )
            .unwrap(),
            vec![
                json!("*"),
                json!("energy"),
                json!("ecoin"),
                json!("all"),
                json!(5),
                json!(-5)
            ]
        );
        assert_eq!(
            params("listorders", &s(&[r#"["A","B"]"#])).unwrap(),
            vec![json!(["A", "B"])]
        );
        assert_eq!(
            params("getorderbook", &s(&["energy", "ecoin", "3"])).unwrap()[2],
            json!(3)
        );
        assert_eq!(
            params("listtrades", &s(&["energy", "ecoin", "10", "0"])).unwrap()[2..],
            [json!(10), json!(0)]
        );
        assert_eq!(
            params("getorder", &s(&["00ff"])).unwrap(),
            vec![json!("00ff")]
        );
    }

    #[test]
    fn splits_quoted_words() {
        assert_eq!(
            split_words(r#"issue A '{"name":"x"}' 0 "a b""#),
            vec!["issue", "A", r#"{"name":"x"}"#, "0", "a b"]
        );
        assert_eq!(split_words("  getinfo  "), vec!["getinfo"]);
        assert_eq!(split_words(r#"x """#), vec!["x", ""]);
    }
}
