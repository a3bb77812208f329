//! A minimal HTTP/1.1 JSON-RPC client over a plain TCP connection (`Connection: close`), as
//! multichain-cli sends it. Used by `wattle-cli`, the exchange service and the tests.

use base64::Engine as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The server's answer: HTTP status and body.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub body: String,
}

/// Why no answer came back.
#[derive(Debug)]
pub enum HttpError {
    Connect(String),
    Io(String),
    Malformed(String),
}

/// POSTs `body` to `host:port` with Basic auth and reads the whole reply.
pub fn post(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    body: &str,
    timeout: Duration,
) -> Result<HttpReply, HttpError> {
    let mut stream =
        TcpStream::connect((host, port)).map_err(|e| HttpError::Connect(e.to_string()))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| HttpError::Io(e.to_string()))?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAccept: application/json\r\nUser-Agent: wattle-json-rpc/{}\r\nAuthorization: Basic {auth}\r\n\r\n{body}",
        body.len(),
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| HttpError::Io(e.to_string()))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| HttpError::Io(e.to_string()))?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Result<HttpReply, HttpError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| HttpError::Malformed("no header end".into()))?;
    let status_line = head.lines().next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HttpError::Malformed(format!("bad status line: {status_line}")))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok(HttpReply { status, body })
}

fn dechunk(mut body: &str) -> Result<String, HttpError> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = body
            .split_once("\r\n")
            .ok_or_else(|| HttpError::Malformed("bad chunk".into()))?;
        let size = usize::from_str_radix(size_line.trim(), 16)
            .map_err(|_| HttpError::Malformed("bad chunk size".into()))?;
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size {
            return Err(HttpError::Malformed("short chunk".into()));
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
}

/// A JSON-RPC client for one node.
#[derive(Clone, Debug)]
pub struct RpcClient {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub chain: String,
    pub timeout: Duration,
}

/// Why a call failed: the node's JSON-RPC error, or no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    Rpc { code: i64, message: String },
    Transport(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rpc { code, message } => write!(f, "error code {code}: {message}"),
            CallError::Transport(t) => write!(f, "{t}"),
        }
    }
}

impl RpcClient {
    /// A client using the credentials and port in a chain's data directory.
    pub fn from_datadir(
        dir: &crate::datadir::DataDir,
        port: Option<u16>,
    ) -> Result<RpcClient, String> {
        let conf = crate::datadir::RpcConf::read(&dir.conf_path())?;
        let port = port.or(conf.port).ok_or("no rpcport in wattle.conf")?;
        Ok(RpcClient {
            host: "127.0.0.1".into(),
            port,
            user: conf.user,
            password: conf.password,
            chain: dir.chain.clone(),
            timeout: Duration::from_secs(60),
        })
    }

    /// Calls `method` with positional `params`.
    pub fn call(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, CallError> {
        let body = serde_json::json!({"method": method, "params": params, "id": 1, "chain_name": self.chain}).to_string();
        let reply = post(
            &self.host,
            self.port,
            &self.user,
            &self.password,
            &body,
            self.timeout,
        )
        .map_err(|e| CallError::Transport(format!("{e:?}")))?;
        let v: serde_json::Value = serde_json::from_str(&reply.body).map_err(|_| {
            CallError::Transport(format!("HTTP {}: {}", reply.status, reply.body.trim()))
        })?;
        match v.get("error") {
            Some(e) if !e.is_null() => Err(CallError::Rpc {
                code: e
                    .get("code")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(-1),
                message: e
                    .get("message")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            }),
            _ => Ok(v.get("result").cloned().unwrap_or(serde_json::Value::Null)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_replies() {
        let r = parse_reply(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        let r = parse_reply(b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "abcde"));
        assert!(parse_reply(b"garbage").is_err());
    }
}
