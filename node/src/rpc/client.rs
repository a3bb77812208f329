//! A minimal HTTP/1.1 JSON-RPC client over a plain TCP connection: one connection per call
//! (`Connection: close`), as multichain-cli sends it, or a [`Session`] that keeps one connection
//! alive across calls, as client libraries with a connection pool do. Used by `wattle-cli`, the
//! exchange service, the benchmarks and the tests.

use base64::Engine as _;
use std::io::{BufRead, BufReader, Read, Write};
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

/// Bodies larger than this are refused by [`Session`] (the node's replies are far smaller).
const MAX_REPLY_BYTES: usize = 256 * 1024 * 1024;

/// One HTTP/1.1 connection kept alive across calls (reconnects once if the server closed it).
pub struct Session {
    pub client: RpcClient,
    stream: Option<BufReader<TcpStream>>,
}

impl Session {
    pub fn new(client: RpcClient) -> Session {
        Session {
            client,
            stream: None,
        }
    }

    /// Calls `method` with positional `params` over the kept-alive connection.
    pub fn call(
        &mut self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, CallError> {
        let body = self.client.request_body(method, params);
        let reply = self
            .post(&body)
            .map_err(|e| CallError::Transport(format!("{e:?}")))?;
        RpcClient::result_of(reply)
    }

    /// POSTs `body`; a connection the server closed in the meantime is reopened once, before
    /// anything of the request was answered.
    pub fn post(&mut self, body: &str) -> Result<HttpReply, HttpError> {
        let fresh = self.stream.is_none();
        match self.try_post(body) {
            Err(HttpError::Io(_)) | Err(HttpError::Connect(_)) if !fresh => {
                self.stream = None;
                self.try_post(body)
            }
            other => other,
        }
    }

    fn try_post(&mut self, body: &str) -> Result<HttpReply, HttpError> {
        let c = &self.client;
        if self.stream.is_none() {
            let stream = TcpStream::connect((c.host.as_str(), c.port))
                .map_err(|e| HttpError::Connect(e.to_string()))?;
            stream
                .set_read_timeout(Some(c.timeout))
                .map_err(|e| HttpError::Io(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            self.stream = Some(BufReader::new(stream));
        }
        let result = Self::exchange(self.stream.as_mut().expect("connected"), c, body);
        match &result {
            Ok((_, keep)) if *keep => {}
            _ => self.stream = None,
        }
        result.map(|(reply, _)| reply)
    }

    /// Writes one request and reads one reply; also says whether the connection stays open.
    fn exchange(
        stream: &mut BufReader<TcpStream>,
        c: &RpcClient,
        body: &str,
    ) -> Result<(HttpReply, bool), HttpError> {
        let io = |e: std::io::Error| HttpError::Io(e.to_string());
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAccept: application/json\r\nUser-Agent: wattle-json-rpc/{}\r\nAuthorization: Basic {}\r\n\r\n{body}",
            c.host,
            body.len(),
            env!("CARGO_PKG_VERSION"),
            c.basic_auth(),
        );
        stream.get_mut().write_all(request.as_bytes()).map_err(io)?;
        let mut head = Vec::new();
        loop {
            let before = head.len();
            stream.read_until(b'\n', &mut head).map_err(io)?;
            if head.len() == before {
                return Err(HttpError::Io("connection closed before the reply".into()));
            }
            if head.ends_with(b"\r\n\r\n") {
                break;
            }
            if head.len() > 64 * 1024 {
                return Err(HttpError::Malformed("reply header too long".into()));
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_ascii_lowercase())
            })
        };
        let keep = header("connection").is_none_or(|v| v != "close");
        let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            // Rare for the node's fixed-size replies: read to the end and dechunk.
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).map_err(io)?;
            let mut raw = head.clone().into_bytes();
            raw.extend(rest);
            return parse_reply(&raw).map(|r| (r, false));
        } else {
            let len: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| HttpError::Malformed("reply without content-length".into()))?;
            if len > MAX_REPLY_BYTES {
                return Err(HttpError::Malformed(format!("reply of {len} bytes")));
            }
            let mut body = vec![0; len];
            stream.read_exact(&mut body).map_err(io)?;
            String::from_utf8_lossy(&body).to_string()
        };
        let status = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| HttpError::Malformed("bad status line".into()))?;
        Ok((HttpReply { status, body }, keep))
    }
}

/// Parses a whole reply. Bytes, not text, until the body is put together: chunk sizes count
/// bytes, and a chunk may end inside a UTF-8 character.
pub(crate) fn parse_reply(raw: &[u8]) -> Result<HttpReply, HttpError> {
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| HttpError::Malformed("no header end".into()))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let body = &raw[end + 4..];
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
        body.to_vec()
    };
    Ok(HttpReply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    loop {
        let line_end =
            find(body, b"\r\n").ok_or_else(|| HttpError::Malformed("bad chunk".into()))?;
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|line| usize::from_str_radix(line.trim(), 16).ok())
            .ok_or_else(|| HttpError::Malformed("bad chunk size".into()))?;
        let rest = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| HttpError::Malformed("short chunk".into()))?;
        out.extend_from_slice(chunk);
        body = &rest[size..];
        while let Some(next) = body.strip_prefix(b"\r\n") {
            body = next;
        }
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
        let body = self.request_body(method, params);
        let reply = post(
            &self.host,
            self.port,
            &self.user,
            &self.password,
            &body,
            self.timeout,
        )
        .map_err(|e| CallError::Transport(format!("{e:?}")))?;
        Self::result_of(reply)
    }

    fn request_body(&self, method: &str, params: serde_json::Value) -> String {
        serde_json::json!({"method": method, "params": params, "id": 1, "chain_name": self.chain})
            .to_string()
    }

    fn basic_auth(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.user, self.password))
    }

    /// The result or the JSON-RPC error of one reply.
    pub(crate) fn result_of(reply: HttpReply) -> Result<serde_json::Value, CallError> {
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

    #[test]
    fn chunks_count_bytes_not_characters() {
        // Found by fuzzing (http_reply): a chunk ending inside a UTF-8 character, or a byte that
        // is not UTF-8 before it, made the text-based dechunking slice off a character boundary
        // and panic.
        let r = parse_reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n\xc3\r\n1\r\n\xa9\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(r.body, "\u{e9}");
        let crash = b"HTTP/1.1 500 Internal Server \xffrror\r\ntransfer-encoding: chunked\r\n\r\n1e\r\n{\"result\":null,\"1d\r\n:-8,\"mess\xfdage\":\"bad\"},\"d\":1}\r\n0\r\n\r\n";
        assert!(matches!(parse_reply(crash), Err(HttpError::Malformed(_))));
        assert!(
            parse_reply(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n\xc3\xa9")
                .is_err()
        );
    }
}
