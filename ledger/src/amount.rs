//! Raw asset quantities with checked arithmetic, and the conversion between display quantities
//! (decimal text, as JSON carries them) and raw integers.
//!
//! Raw = display × multiple. An asset's `multiple` must divide 10^8, so every raw quantity has an
//! exact decimal display with at most 8 places. Conversion never goes through floating point.

use bincode::{Decode, Encode};
use std::fmt;

/// The largest raw quantity of one asset in existence: 2^63 − 1, as in MultiChain.
pub const MAX_AMOUNT: u64 = i64::MAX as u64;
/// The finest unit an asset may have: 10^-8.
pub const MAX_MULTIPLE: u32 = 100_000_000;

/// A raw quantity, always within `0..=MAX_AMOUNT`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode)]
pub struct Amount(u64);

// Decoding enforces the range, so no `Amount` above 2^63 − 1 can come off the wire.
impl<Context> Decode<Context> for Amount {
    fn decode<D: bincode::de::Decoder<Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let raw = u64::decode(decoder)?;
        Amount::new(raw).map_err(|_| bincode::error::DecodeError::Other("amount above 2^63-1"))
    }
}
bincode::impl_borrow_decode!(Amount);

/// Arithmetic left the allowed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount out of range")]
pub struct AmountOverflow;

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX: Amount = Amount(MAX_AMOUNT);

    pub fn new(raw: u64) -> Result<Amount, AmountOverflow> {
        if raw > MAX_AMOUNT {
            Err(AmountOverflow)
        } else {
            Ok(Amount(raw))
        }
    }

    pub fn raw(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountOverflow> {
        self.0
            .checked_add(other.0)
            .ok_or(AmountOverflow)
            .and_then(Amount::new)
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountOverflow> {
        self.0
            .checked_sub(other.0)
            .map(Amount)
            .ok_or(AmountOverflow)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether a multiple (1 / smallest unit) is allowed: it must divide 10^8.
pub fn is_valid_multiple(multiple: u32) -> bool {
    (1..=MAX_MULTIPLE).contains(&multiple) && MAX_MULTIPLE.is_multiple_of(multiple)
}

/// How a display quantity becomes raw units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Issue quantities: must be a whole number of smallest units.
    Exact,
    /// Transfer and ask quantities: MultiChain's `floor(q × multiple + 0.499999)`.
    Transfer,
}

/// Why a display quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantity is not a decimal number")]
    NotANumber,
    #[error("quantity must not be negative")]
    Negative,
    #[error("quantity should be divisible by smallest unit")]
    NotMultiple,
    #[error("quantity out of range")]
    OutOfRange,
    #[error("invalid smallest unit")]
    BadMultiple,
}

/// A non-negative decimal: `mantissa × 10^-scale`, digits only.
struct Decimal {
    int_digits: String,
    frac_digits: String,
}

fn parse_decimal(text: &str) -> Result<Decimal, QuantityError> {
    let text = text.trim();
    let (sign_neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => {
            let e: i64 = body[i + 1..]
                .parse()
                .map_err(|_| QuantityError::NotANumber)?;
            (&body[..i], e)
        }
        None => (body, 0),
    };
    if exp.abs() > 64 {
        return Err(QuantityError::OutOfRange);
    }
    let (int_part, frac_part) = match mant.split_once('.') {
        Some((a, b)) => (a, b),
        None => (mant, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return Err(QuantityError::NotANumber);
    }
    let mut digits = format!("{int_part}{frac_part}");
    let mut point = int_part.len() as i64 + exp;
    if point < 0 {
        digits = format!("{}{}", "0".repeat((-point) as usize), digits);
        point = 0;
    }
    while (digits.len() as i64) < point {
        digits.push('0');
    }
    let (i, f) = digits.split_at(point as usize);
    let int_digits = i.trim_start_matches('0').to_string();
    let frac_digits = f.trim_end_matches('0').to_string();
    let is_zero = int_digits.is_empty() && frac_digits.bytes().all(|b| b == b'0');
    if sign_neg && !is_zero {
        return Err(QuantityError::Negative);
    }
    Ok(Decimal {
        int_digits,
        frac_digits,
    })
}

/// Converts a display quantity (decimal text) into raw units of an asset with `multiple`.
pub fn parse_quantity(
    text: &str,
    multiple: u32,
    rounding: Rounding,
) -> Result<Amount, QuantityError> {
    if !is_valid_multiple(multiple) {
        return Err(QuantityError::BadMultiple);
    }
    let dec = parse_decimal(text)?;
    if dec.int_digits.len() > 20 {
        return Err(QuantityError::OutOfRange);
    }
    let int: u128 = if dec.int_digits.is_empty() {
        0
    } else {
        dec.int_digits
            .parse()
            .map_err(|_| QuantityError::OutOfRange)?
    };
    // Keep at most 20 fraction digits; anything beyond is below 10^-12 of a raw unit.
    let kept = &dec.frac_digits[..dec.frac_digits.len().min(20)];
    let dropped_nonzero = dec.frac_digits.len() > 20;
    let frac: u128 = if kept.is_empty() {
        0
    } else {
        kept.parse().map_err(|_| QuantityError::NotANumber)?
    };
    let denom: u128 = 10u128.pow(kept.len() as u32);
    let m = multiple as u128;
    let whole = int.checked_mul(m).ok_or(QuantityError::OutOfRange)?;
    let frac_scaled = frac * m; // < 10^20 × 10^8
    let (frac_whole, frac_rem) = (frac_scaled / denom, frac_scaled % denom);
    let raw = match rounding {
        Rounding::Exact => {
            if frac_rem != 0 || dropped_nonzero {
                return Err(QuantityError::NotMultiple);
            }
            whole + frac_whole
        }
        Rounding::Transfer => {
            // floor(x + 0.499999) where x = whole + frac_whole + frac_rem / denom.
            let up = frac_rem * 1_000_000 + 499_999 * denom >= 1_000_000 * denom;
            whole + frac_whole + u128::from(up)
        }
    };
    if raw > MAX_AMOUNT as u128 {
        return Err(QuantityError::OutOfRange);
    }
    Ok(Amount(raw as u64))
}

/// The multiple for a smallest unit given as decimal text (`0.001` → 1000).
pub fn multiple_from_smallest_unit(text: &str) -> Result<u32, QuantityError> {
    let dec = parse_decimal(text).map_err(|_| QuantityError::BadMultiple)?;
    // u = 10^-8 × n for an integer n dividing 10^8.
    let as_raw = parse_quantity(text, MAX_MULTIPLE, Rounding::Exact)
        .map_err(|_| QuantityError::BadMultiple)?;
    let n = as_raw.raw();
    if dec.int_digits.len() > 1
        || n == 0
        || n > MAX_MULTIPLE as u64
        || !(MAX_MULTIPLE as u64).is_multiple_of(n)
    {
        return Err(QuantityError::BadMultiple);
    }
    Ok((MAX_MULTIPLE as u64 / n) as u32)
}

/// Shows raw units of an asset with `multiple` as the shortest exact decimal (`1`, `0.001`).
pub fn format_quantity(raw: Amount, multiple: u32) -> String {
    let m = if is_valid_multiple(multiple) {
        multiple as u128
    } else {
        1
    };
    let scaled = raw.0 as u128 * (MAX_MULTIPLE as u128 / m);
    let int = scaled / MAX_MULTIPLE as u128;
    let frac = scaled % MAX_MULTIPLE as u128;
    if frac == 0 {
        return int.to_string();
    }
    let frac_text = format!("{frac:08}");
    format!("{int}.{}", frac_text.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic() {
        assert_eq!(Amount::new(MAX_AMOUNT + 1), Err(AmountOverflow));
        assert_eq!(Amount::MAX.checked_add(Amount(1)), Err(AmountOverflow));
        assert_eq!(Amount(1).checked_sub(Amount(2)), Err(AmountOverflow));
        assert_eq!(Amount(5).checked_add(Amount(2)), Ok(Amount(7)));
        let too_big = crate::codec::encode(&(MAX_AMOUNT + 1));
        assert!(crate::codec::decode::<Amount>(&too_big).is_err());
        assert_eq!(
            crate::codec::decode::<Amount>(&crate::codec::encode(&MAX_AMOUNT)),
            Ok(Amount::MAX)
        );
    }

    #[test]
    fn exact_issue_quantities() {
        assert_eq!(parse_quantity("1", 1000, Rounding::Exact), Ok(Amount(1000)));
        assert_eq!(
            parse_quantity("0.001", 1000, Rounding::Exact),
            Ok(Amount(1))
        );
        assert_eq!(
            parse_quantity("1.5e3", 1, Rounding::Exact),
            Ok(Amount(1500))
        );
        assert_eq!(
            parse_quantity("20000.000", 1, Rounding::Exact),
            Ok(Amount(20000))
        );
        assert_eq!(
            parse_quantity("0.0015", 1000, Rounding::Exact),
            Err(QuantityError::NotMultiple)
        );
        assert_eq!(
            parse_quantity("-1", 1, Rounding::Exact),
            Err(QuantityError::Negative)
        );
        assert_eq!(parse_quantity("-0", 1, Rounding::Exact), Ok(Amount(0)));
        assert_eq!(
            parse_quantity("1x", 1, Rounding::Exact),
            Err(QuantityError::NotANumber)
        );
        assert_eq!(
            parse_quantity(".", 1, Rounding::Exact),
            Err(QuantityError::NotANumber)
        );
        assert_eq!(
            parse_quantity("1e400", 1, Rounding::Exact),
            Err(QuantityError::OutOfRange)
        );
        assert_eq!(
            parse_quantity("9223372036854775808", 1, Rounding::Exact),
            Err(QuantityError::OutOfRange)
        );
        assert_eq!(
            parse_quantity("9223372036854775807", 1, Rounding::Exact),
            Ok(Amount::MAX)
        );
    }

    #[test]
    fn transfer_rounding_matches_multichain() {
        // floor(q × m + 0.499999)
        assert_eq!(
            parse_quantity("0.0015", 1000, Rounding::Transfer),
            Ok(Amount(1))
        );
        assert_eq!(
            parse_quantity("0.0015000011", 1000, Rounding::Transfer),
            Ok(Amount(2))
        );
        assert_eq!(parse_quantity("0.4", 1, Rounding::Transfer), Ok(Amount(0)));
        assert_eq!(parse_quantity("2.5", 1, Rounding::Transfer), Ok(Amount(2)));
        assert_eq!(
            parse_quantity("2.500001", 1, Rounding::Transfer),
            Ok(Amount(3))
        );
    }

    #[test]
    fn smallest_units() {
        assert_eq!(multiple_from_smallest_unit("0.001"), Ok(1000));
        assert_eq!(multiple_from_smallest_unit("1"), Ok(1));
        assert_eq!(multiple_from_smallest_unit("0.25"), Ok(4));
        assert_eq!(multiple_from_smallest_unit("0.00000001"), Ok(100_000_000));
        assert_eq!(
            multiple_from_smallest_unit("0"),
            Err(QuantityError::BadMultiple)
        );
        assert_eq!(
            multiple_from_smallest_unit("2"),
            Err(QuantityError::BadMultiple)
        );
        assert_eq!(
            multiple_from_smallest_unit("0.3"),
            Err(QuantityError::BadMultiple)
        );
        assert_eq!(
            multiple_from_smallest_unit("0.000000001"),
            Err(QuantityError::BadMultiple)
        );
        assert!(!is_valid_multiple(3));
        assert!(is_valid_multiple(1000));
    }

    #[test]
    fn shortest_display() {
        assert_eq!(format_quantity(Amount(1000), 1000), "1");
        assert_eq!(format_quantity(Amount(1), 1000), "0.001");
        assert_eq!(format_quantity(Amount(20000), 1), "20000");
        assert_eq!(format_quantity(Amount(5), 4), "1.25");
        assert_eq!(
            format_quantity(Amount::MAX, 100_000_000),
            "92233720368.54775807"
        );
    }
}
