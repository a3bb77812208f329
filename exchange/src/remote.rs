//! A producer's or consumer's calls to the exchange — the admin service at the registered base
//! URL (`http://HOST:PORT[/PREFIX]`). A small blocking HTTP/1.1 client (one connection per call,
//! `Connection: close`) run on tokio's blocking pool. The exchange's own errors are passed on
//! with their status and code; a failure to reach it is 502 `exchange_unreachable`.

use crate::error::ApiError;
use axum::http::StatusCode;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The longest the exchange may take to answer (register_bid waits for the transaction).
const TIMEOUT: Duration = Duration::from_secs(60);
/// Replies larger than this are refused.
const MAX_REPLY: u64 = 32 * 1024 * 1024;

/// A parsed base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    host: String,
    port: u16,
    prefix: String,
}

impl BaseUrl {
    /// Accepts `http://HOST:PORT`, `http://HOST:PORT/PREFIX/` or `HOST:PORT` (port 80 if none).
    pub fn parse(url: &str) -> Result<BaseUrl, String> {
        let url = url.trim();
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "{url}: only http:// is supported (not {scheme}://)"
                ));
            }
            None => url,
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{url}: invalid port {p}"))?,
            ),
            None => (hostport, 80),
        };
        if host.is_empty() || host.contains(['@', ' ', '?', '#']) || port == 0 {
            return Err(format!(
                "{url} is not a valid exchange URL (expected http://HOST:PORT)"
            ));
        }
        Ok(BaseUrl {
            host: host.to_string(),
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// The canonical form, `http://HOST:PORT[/PREFIX]`.
    pub fn text(&self) -> String {
        format!("http://{}:{}{}", self.host, self.port, self.prefix)
    }
}

/// Calls `path` (with its query) at the exchange: a GET when `body` is `None`, else a POST of
/// the JSON. Returns the JSON answer of a 2xx reply.
pub async fn call(base: &BaseUrl, path: &str, body: Option<Value>) -> Result<Value, ApiError> {
    let base = base.clone();
    let path = path.to_string();
    tokio::task::spawn_blocking(move || call_blocking(&base, &path, body.as_ref()))
        .await
        .unwrap_or_else(|e| Err(unreachable_err("", &format!("task failed: {e}"))))
}

fn unreachable_err(url: &str, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "exchange_unreachable",
        format!("cannot reach the exchange at {url}: {why}"),
    )
}

fn call_blocking(base: &BaseUrl, path: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let url = base.text();
    let (status, text) = exchange(base, path, body).map_err(|e| unreachable_err(&url, &e))?;
    let v: Value = serde_json::from_str(&text).map_err(|_| {
        unreachable_err(
            &url,
            &format!(
                "HTTP {status} with a body that is not JSON: {}",
                short(&text)
            ),
        )
    })?;
    if (200..300).contains(&status) {
        return Ok(v);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let code = v["error"]["code"].as_str().unwrap_or("exchange_error");
    let message = v["error"]["message"].as_str().unwrap_or("no message");
    Err(ApiError::new(
        status,
        code,
        format!("the exchange refused: {message}"),
    ))
}

fn short(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Sends one request and returns (status, body).
fn exchange(base: &BaseUrl, path: &str, body: Option<&Value>) -> Result<(u16, String), String> {
    let addr = (base.host.trim_matches(['[', ']']), base.port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("the host name resolves to nothing")?;
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let host = format!("{}:{}", base.host, base.port);
    let target = format!("{}{path}", base.prefix);
    let request = match body {
        Some(b) => {
            let b = b.to_string();
            format!(
                "POST {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )
        }
        None => format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
        ),
    };
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .take(MAX_REPLY)
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    parse_reply(&raw)
}

/// Splits an HTTP/1.1 reply into status and body (plain or chunked).
fn parse_reply(raw: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed HTTP reply")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("malformed HTTP status line")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").ok_or("bad chunk")?;
        let n = usize::from_str_radix(size.trim(), 16).map_err(|_| "bad chunk size")?;
        if n == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..n).ok_or("short chunk")?;
        out.push_str(chunk);
        body = rest[n..].trim_start_matches("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let u = BaseUrl::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(u.text(), "http://127.0.0.1:8080");
        let u = BaseUrl::parse("localhost:9/x/").unwrap();
        assert_eq!(u.text(), "http://localhost:9/x");
        assert_eq!(BaseUrl::parse("http://h").unwrap().text(), "http://h:80");
        assert!(BaseUrl::parse("https://h:1").is_err());
        assert!(BaseUrl::parse("http://:1").is_err());
        assert!(BaseUrl::parse("http://h:99999").is_err());
        assert!(BaseUrl::parse("").is_err());
    }

    #[test]
    fn replies() {
        let (s, b) = parse_reply(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((s, b.as_str()), (200, "{}"));
        let (s, b) = parse_reply(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((s, b.as_str()), (404, "{}"));
        assert!(parse_reply(b"nonsense").is_err());
        assert!(
            parse_reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }
}
