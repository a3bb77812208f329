//! Quantities as the client wrote them. A [`Qty`] keeps the JSON number's decimal text (serde_json
//! `arbitrary_precision`) and is passed to the node unchanged, so no quantity ever goes through
//! `f64`; comparisons use exact units of 10^-8 (the finest any asset can be divided).

use crate::error::ApiError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};
use wattle_ledger::Amount;
use wattle_ledger::amount::{Rounding, format_quantity, parse_quantity};

/// 10^8: units per display unit at the finest granularity.
const FINEST: u32 = 100_000_000;

/// A positive decimal quantity (display units), e.g. `1`, `0.001`, `20000`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qty(Number);

impl Qty {
    /// Parses decimal text; it must be a positive number with at most 8 decimals.
    pub fn parse(text: &str) -> Result<Qty, String> {
        let units = parse_quantity(text, FINEST, Rounding::Exact)
            .map_err(|e| format!("{text} is not a valid quantity: {e} (at most 8 decimals)"))?;
        if units.is_zero() {
            return Err("the quantity must be greater than 0".into());
        }
        let n: Number = serde_json::from_str(text.trim())
            .map_err(|_| format!("{text} is not a JSON number"))?;
        Ok(Qty(n))
    }

    /// A quantity the node reported (a JSON number or numeric string).
    pub fn from_value(v: &Value) -> Result<Qty, String> {
        match v {
            Value::Number(n) => Qty::parse(&n.to_string()),
            Value::String(s) => Qty::parse(s),
            other => Err(format!("{other} is not a quantity")),
        }
    }

    /// Exact units of 10^-8.
    pub fn units(&self) -> u64 {
        // parse() accepted the text, so this cannot fail; 0 would only make comparisons fail.
        parse_quantity(&self.0.to_string(), FINEST, Rounding::Exact)
            .map(Amount::raw)
            .unwrap_or(0)
    }

    /// The number as JSON (its original decimal text).
    pub fn json(&self) -> Value {
        Value::Number(self.0.clone())
    }

    /// Whether this is a whole number of units of an asset with `multiple` (1 / smallest unit).
    pub fn fits_multiple(&self, multiple: u32) -> bool {
        parse_quantity(&self.0.to_string(), multiple, Rounding::Exact).is_ok()
    }
}

impl std::fmt::Display for Qty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Qty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Qty {
    /// Accepts a JSON number or a string holding one (HTML inputs give strings).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Qty, D::Error> {
        let v = Value::deserialize(d)?;
        Qty::from_value(&v).map_err(serde::de::Error::custom)
    }
}

/// A quantity of `v` (node JSON), as exact units, or 0 when it is not a number.
pub fn units_of(v: &Value) -> u64 {
    Qty::from_value(v).map(|q| q.units()).unwrap_or(0)
}

/// `ask / offer` (e.g. ecoin per kWh) as a decimal JSON number with at most 8 decimals, or null.
pub fn price(offer: &Qty, ask: &Qty) -> Value {
    let (o, a) = (offer.units() as u128, ask.units() as u128);
    if o == 0 {
        return Value::Null;
    }
    let scaled = a * FINEST as u128 / o;
    u64::try_from(scaled)
        .ok()
        .and_then(|raw| Amount::new(raw).ok())
        .and_then(|amount| serde_json::from_str(&format_quantity(amount, FINEST)).ok())
        .unwrap_or(Value::Null)
}

/// Reads a required positive quantity out of a request field.
pub fn require(v: Option<&Value>, field: &str) -> Result<Qty, ApiError> {
    let v = v.ok_or_else(|| ApiError::invalid(format!("missing field `{field}`")))?;
    Qty::from_value(v).map_err(|e| ApiError::invalid(format!("`{field}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_keep_their_text_and_compare_exactly() {
        let q = Qty::parse("0.001").unwrap();
        assert_eq!(q.units(), 100_000);
        assert_eq!(q.json().to_string(), "0.001");
        assert_eq!(
            Qty::parse("1000").unwrap().units(),
            Qty::parse("1e3").unwrap().units()
        );
        assert!(Qty::parse("0").is_err());
        assert!(Qty::parse("-1").is_err());
        assert!(Qty::parse("abc").is_err());
        assert!(Qty::parse("0.000000001").is_err());
        assert!(Qty::parse("1.5").unwrap().fits_multiple(1000));
        assert!(!Qty::parse("1.5").unwrap().fits_multiple(1));
    }

    #[test]
    fn quantities_deserialize_from_numbers_and_strings() {
        let q: Qty = serde_json::from_str("12.5").unwrap();
        assert_eq!(q.to_string(), "12.5");
        let q: Qty = serde_json::from_str("\"7\"").unwrap();
        assert_eq!(q.units(), 700_000_000);
        assert!(serde_json::from_str::<Qty>("true").is_err());
        assert!(serde_json::from_str::<Qty>("-3").is_err());
    }

    #[test]
    fn price_is_ask_per_offered_unit() {
        let p = price(&Qty::parse("2").unwrap(), &Qty::parse("1000").unwrap());
        assert_eq!(p.to_string(), "500");
        let p = price(&Qty::parse("0.001").unwrap(), &Qty::parse("1").unwrap());
        assert_eq!(p.to_string(), "1000");
        let p = price(&Qty::parse("3").unwrap(), &Qty::parse("1").unwrap());
        assert_eq!(p.to_string(), "0.33333333");
    }
}
