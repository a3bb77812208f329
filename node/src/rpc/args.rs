//! Reading positional JSON-RPC parameters with MultiChain's error codes and messages.

use super::server::{RpcError, code};
use serde_json::Value;
use wattle_ledger::address::{Address, AddressFormat};

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "real",
        Value::String(_) => "str",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `value is type X, expected Y` (code −1), as MultiChain's JSON type checks say.
pub fn type_error(v: &Value, expected: &str) -> RpcError {
    RpcError::new(
        code::MISC_ERROR,
        format!("value is type {}, expected {expected}", type_name(v)),
    )
}

/// Positional parameters of one call.
pub struct Args<'a> {
    pub params: &'a [Value],
}

impl<'a> Args<'a> {
    pub fn new(params: &'a [Value]) -> Args<'a> {
        Args { params }
    }

    /// A parameter that is present and not null.
    pub fn get(&self, i: usize) -> Option<&'a Value> {
        self.params.get(i).filter(|v| !v.is_null())
    }

    pub fn str(&self, i: usize) -> Result<&'a str, RpcError> {
        match self.params.get(i) {
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(type_error(v, "str")),
            None => Err(RpcError::new(code::MISC_ERROR, "missing parameter")),
        }
    }

    pub fn opt_str(&self, i: usize) -> Result<Option<&'a str>, RpcError> {
        match self.get(i) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(type_error(v, "str")),
        }
    }

    pub fn bool_or(&self, i: usize, default: bool) -> Result<bool, RpcError> {
        match self.get(i) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            // MultiChain accepts 0/1 for verbose flags.
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64() != Some(0)),
            Some(v) => Err(type_error(v, "bool")),
        }
    }

    pub fn int_or(&self, i: usize, default: i64) -> Result<i64, RpcError> {
        match self.get(i) {
            None => Ok(default),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| type_error(&Value::Number(n.clone()), "int")),
            Some(v) => Err(type_error(v, "int")),
        }
    }

    /// A quantity as its exact decimal text (JSON numbers keep their text: arbitrary precision).
    pub fn quantity(&self, i: usize) -> Result<String, RpcError> {
        match self.params.get(i) {
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(v) => Err(type_error(v, "real")),
            None => Err(RpcError::new(code::MISC_ERROR, "missing parameter")),
        }
    }

    pub fn object(&self, i: usize) -> Result<Option<&'a serde_json::Map<String, Value>>, RpcError> {
        match self.get(i) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(type_error(v, "object")),
        }
    }

    /// MultiChain's `count` / `start` paging (`mc_AdjustStartAndCount`) over `size` items, with
    /// the parameters at `at` and `at + 1`: count defaults to `default_count`, start to -count
    /// (the last `count` items), and a negative start counts from the end.
    pub fn window(
        &self,
        at: usize,
        default_count: i64,
        size: usize,
    ) -> Result<std::ops::Range<usize>, RpcError> {
        let mut count = self.int_or(at, default_count)?;
        if count < 0 {
            return Err(RpcError::new(code::INVALID_PARAMETER, "Invalid count"));
        }
        let size = size as i64;
        let mut start = self.int_or(at + 1, -count)?;
        if start < 0 {
            start += size;
            if start < 0 {
                count += start;
                start = 0;
            }
        }
        let start = start.min(size);
        let take = count.min(size - start).max(0);
        Ok(start as usize..(start + take) as usize)
    }

    /// A native amount: must be absent or 0 (Wattle has no native currency).
    pub fn native_zero(&self, i: usize) -> Result<(), RpcError> {
        match self.get(i) {
            None => Ok(()),
            Some(Value::Number(n))
                if n.to_string()
                    .trim_start_matches('-')
                    .chars()
                    .all(|c| c == '0' || c == '.') =>
            {
                Ok(())
            }
            Some(Value::Number(_)) => Err(RpcError::new(
                code::INVALID_PARAMETER,
                "Native currency amounts must be 0: this chain has no native currency",
            )),
            Some(v) => Err(type_error(v, "real")),
        }
    }
}

/// Parses an address of this chain: −5 "Invalid address: X".
pub fn address(fmt: &AddressFormat, text: &str) -> Result<Address, RpcError> {
    fmt.parse(text.trim()).map_err(|_| {
        RpcError::new(
            code::INVALID_ADDRESS_OR_KEY,
            format!("Invalid address: {text}"),
        )
    })
}

/// A comma-separated address list (no duplicates: −8), or a JSON array of addresses.
pub fn address_list(fmt: &AddressFormat, value: &Value) -> Result<Vec<Address>, RpcError> {
    let items: Vec<String> = match value {
        Value::String(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| type_error(v, "str"))
            })
            .collect::<Result<_, _>>()?,
        v => return Err(type_error(v, "str")),
    };
    let mut out = Vec::new();
    for item in items {
        let a = address(fmt, &item)?;
        if out.contains(&a) {
            return Err(RpcError::new(
                code::INVALID_PARAMETER,
                format!("Invalid parameter, duplicated address: {item}"),
            ));
        }
        out.push(a);
    }
    if out.is_empty() {
        return Err(RpcError::new(
            code::INVALID_ADDRESS_OR_KEY,
            "Invalid address: empty list",
        ));
    }
    Ok(out)
}

/// A JSON number from exact decimal text.
pub fn number(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}
