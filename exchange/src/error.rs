//! The service's one error type: every failure becomes `{"error": {"code", "message"}}` with an
//! HTTP status that says whose fault it is — 4xx for the caller (bad input, a state that does not
//! allow the request), 5xx only when the node, the exchange service or the disk failed us.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wattle_node::rpc::client::CallError;

/// An error as the client sees it: status, a stable machine-readable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// 400 `invalid_request`: malformed JSON, a missing or mistyped field, a bad query.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 with `code`: the request is well-formed but the record's state forbids it.
    pub fn conflict(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 400 `insufficient_funds`.
    pub fn insufficient(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "insufficient_funds", message)
    }

    /// 500 `storage_error`: the service's own database failed.
    pub fn storage(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            format!("the service's database failed: {e}"),
        )
    }

    /// 504 `timeout`: the node did not get there in time.
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
    }

    /// A node RPC error, classified by MultiChain's error code (MULTICHAIN.md §1.7): a refusal
    /// caused by the request is 4xx, a transport failure or a fault on the node's side is 502.
    pub fn node(method: &str, e: CallError) -> ApiError {
        match e {
            CallError::Transport(t) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "node_unreachable",
                format!("the node did not answer {method}: {t}"),
            ),
            CallError::Rpc { code, message } => {
                let text = format!("the node refused {method} (error {code}): {message}");
                let (status, kind) = match code {
                    -5 => (StatusCode::BAD_REQUEST, "invalid_address"),
                    -6 | -716 => (StatusCode::BAD_REQUEST, "insufficient_funds"),
                    -704 => (StatusCode::FORBIDDEN, "not_permitted"),
                    -707 | -715 | -22 => (StatusCode::BAD_REQUEST, "invalid_exchange"),
                    -26 | -27 => (StatusCode::CONFLICT, "rejected"),
                    // Faults on the node's side (or ours in building the call).
                    -32700 | -32600 | -32601 | -32603 | -1 | -4 | -7 | -9 | -10 | -20 | -28 => {
                        (StatusCode::BAD_GATEWAY, "node_error")
                    }
                    _ => (StatusCode::BAD_REQUEST, "node_rejected"),
                };
                ApiError::new(status, kind, text)
            }
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = %self.code, "{}", self.message);
        } else {
            tracing::debug!(status = self.status.as_u16(), code = %self.code, "{}", self.message);
        }
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<sled::Error> for ApiError {
    fn from(e: sled::Error) -> ApiError {
        ApiError::storage(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_are_classified_by_blame() {
        let rpc = |code| CallError::Rpc {
            code,
            message: "m".into(),
        };
        assert_eq!(
            ApiError::node("grant", rpc(-5)).status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(ApiError::node("issuemore", rpc(-704)).code, "not_permitted");
        assert_eq!(ApiError::node("x", rpc(-6)).code, "insufficient_funds");
        assert_eq!(
            ApiError::node("x", rpc(-32603)).status,
            StatusCode::BAD_GATEWAY
        );
        let t = ApiError::node("getinfo", CallError::Transport("refused".into()));
        assert_eq!(t.status, StatusCode::BAD_GATEWAY);
        assert!(t.message.contains("getinfo"));
    }
}
