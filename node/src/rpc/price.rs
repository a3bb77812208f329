//! The order book's display ↔ raw conversions: a market (base, quote) shows prices as quote per
//! one base and quantities in base, in display units; the ledger keeps an exact fraction of raw
//! units (`Price { num, den }`, buy per sell) and trades in whole lots (DESIGN §8,
//! `ledger::orderbook`). Nothing here goes through floating point, and nothing is rounded
//! silently: a price or quantity the assets' units cannot carry exactly is an error.

use wattle_ledger::Amount;
use wattle_ledger::amount::{MAX_MULTIPLE, Rounding, format_quantity, parse_quantity};
use wattle_ledger::orderbook::{OrderKind, PlaceOrder, Price};
use wattle_ledger::tx::AssetId;

/// Decimal places a display price may have (as many as the finest asset unit).
pub const PRICE_PLACES: u32 = 8;

/// Why a price or quantity was refused (each becomes an RPC error −8 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderTermsError {
    #[error("Invalid price, should be a positive number with at most 8 decimal places")]
    BadPrice,
    #[error("Invalid price, should be positive")]
    ZeroPrice,
    #[error("Invalid price, out of range")]
    PriceOutOfRange,
    #[error("Invalid quantity, should be positive")]
    ZeroQuantity,
    #[error("Invalid quantity, should be a whole number of the base asset's smallest unit {unit}")]
    QuantityNotInUnits { unit: String },
    #[error("Invalid quantity, out of range")]
    QuantityOutOfRange,
    #[error(
        "Invalid quantity: at price {price} the quote asset's units only trade in lots of {lot} base for {lot_value} quote, so the quantity should be a multiple of {lot}"
    )]
    NotWholeLots {
        price: String,
        lot: String,
        lot_value: String,
    },
}

/// Buy or sell of the base asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Sell,
    Buy,
}

impl Side {
    /// `"sell"` or `"buy"` (any letter case).
    pub fn parse(text: &str) -> Option<Side> {
        match text.to_ascii_lowercase().as_str() {
            "sell" => Some(Side::Sell),
            "buy" => Some(Side::Buy),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Sell => "sell",
            Side::Buy => "buy",
        }
    }
}

/// A market's two assets with their multiples (raw units per display unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Market {
    pub base: AssetId,
    pub base_multiple: u32,
    pub quote: AssetId,
    pub quote_multiple: u32,
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `num / den` in lowest terms as a `Price`, if both terms fit.
fn reduced(num: u128, den: u128) -> Option<Price> {
    let g = gcd(num, den).max(1);
    Some(Price::new(
        u64::try_from(num / g).ok()?,
        u64::try_from(den / g).ok()?,
    ))
}

impl Market {
    /// A display price (quote per one base, decimal text) as raw quote units per raw base units,
    /// reduced. Display `p` = `v / 10^8` with `v` whole, so raw = `v × qm / (10^8 × bm)`.
    pub fn parse_price(&self, text: &str) -> Result<Price, OrderTermsError> {
        if text.trim().starts_with('-') {
            return Err(OrderTermsError::BadPrice);
        }
        let scaled = parse_quantity(text, MAX_MULTIPLE, Rounding::Exact).map_err(|e| match e {
            wattle_ledger::amount::QuantityError::OutOfRange => OrderTermsError::PriceOutOfRange,
            _ => OrderTermsError::BadPrice,
        })?;
        if scaled.is_zero() {
            return Err(OrderTermsError::ZeroPrice);
        }
        let num = u128::from(scaled.raw()) * u128::from(self.quote_multiple);
        let den = u128::from(MAX_MULTIPLE) * u128::from(self.base_multiple);
        reduced(num, den).ok_or(OrderTermsError::PriceOutOfRange)
    }

    /// A display quantity of the base asset as raw units, exactly (never rounded).
    pub fn parse_base_quantity(&self, text: &str) -> Result<Amount, OrderTermsError> {
        if text.trim().starts_with('-') {
            return Err(OrderTermsError::ZeroQuantity);
        }
        let raw =
            parse_quantity(text, self.base_multiple, Rounding::Exact).map_err(|e| match e {
                wattle_ledger::amount::QuantityError::NotMultiple => {
                    OrderTermsError::QuantityNotInUnits {
                        unit: format_quantity(
                            Amount::new(1).unwrap_or_default(),
                            self.base_multiple,
                        ),
                    }
                }
                wattle_ledger::amount::QuantityError::OutOfRange => {
                    OrderTermsError::QuantityOutOfRange
                }
                _ => OrderTermsError::ZeroQuantity,
            })?;
        if raw.is_zero() {
            return Err(OrderTermsError::ZeroQuantity);
        }
        Ok(raw)
    }

    /// The ledger op for `side` of `quantity` raw base units at `price` (raw quote per raw base):
    /// a sell order sells the base at that price; a buy order sells `quantity × price` of the
    /// quote (exact: the quantity must be whole lots) at the inverse price, as `OrderKind::Buy`,
    /// so it receives exactly `quantity` base, and is refunded what a better price saves.
    pub fn place_order(
        &self,
        side: Side,
        quantity: Amount,
        price: Price,
    ) -> Result<PlaceOrder, OrderTermsError> {
        let price = price.reduced();
        // A lot: `den` raw base for `num` raw quote. Only whole lots trade (ledger T6, matching).
        if quantity.is_zero() {
            return Err(OrderTermsError::ZeroQuantity);
        }
        if !quantity.raw().is_multiple_of(price.den) {
            return Err(OrderTermsError::NotWholeLots {
                price: self.format_price(price),
                lot: format_quantity(
                    Amount::new(price.den).unwrap_or(Amount::MAX),
                    self.base_multiple,
                ),
                lot_value: format_quantity(
                    Amount::new(price.num).unwrap_or(Amount::MAX),
                    self.quote_multiple,
                ),
            });
        }
        Ok(match side {
            Side::Sell => PlaceOrder {
                sell: self.base,
                quantity,
                buy: self.quote,
                price,
                kind: OrderKind::Sell,
            },
            Side::Buy => {
                // Whole lots, so the ceiling is exact; kept as the rule for any quantity.
                let cost = (u128::from(quantity.raw()) * u128::from(price.num))
                    .div_ceil(u128::from(price.den));
                let cost = u64::try_from(cost)
                    .ok()
                    .and_then(|c| Amount::new(c).ok())
                    .ok_or(OrderTermsError::QuantityOutOfRange)?;
                PlaceOrder {
                    sell: self.quote,
                    quantity: cost,
                    buy: self.base,
                    price: price.inverse(),
                    kind: OrderKind::Buy,
                }
            }
        })
    }

    /// A raw price (quote per base) as a display price: `num × bm / (den × qm)`.
    pub fn format_price(&self, price: Price) -> String {
        format_ratio(
            u128::from(price.num) * u128::from(self.base_multiple),
            u128::from(price.den) * u128::from(self.quote_multiple),
        )
    }

    pub fn format_base(&self, raw: Amount) -> String {
        format_quantity(raw, self.base_multiple)
    }

    pub fn format_quote(&self, raw: Amount) -> String {
        format_quantity(raw, self.quote_multiple)
    }
}

/// `amount × price.num / price.den`, rounded down: what `amount` of an order's sell asset is
/// worth in its buy asset at `price` (exact for whole lots).
pub fn mul_floor(amount: Amount, price: Price) -> Amount {
    let q = u128::from(amount.raw()) * u128::from(price.num) / u128::from(price.den.max(1));
    Amount::new(u64::try_from(q).unwrap_or(u64::MAX)).unwrap_or(Amount::MAX)
}

/// `num / den` as the shortest decimal: exact when it ends within `PRICE_PLACES` decimals
/// (every price placed through `placeorder` does), otherwise rounded half up at that place (a
/// fraction such as 1/3 placed with a raw transaction).
pub fn format_ratio(num: u128, den: u128) -> String {
    if den == 0 {
        return "0".into();
    }
    let scale = 10u128.pow(PRICE_PLACES);
    let int = num / den;
    let rem = num % den;
    // rem < den ≤ 2^64 × 10^8, so rem × 10^8 < 2^128.
    let frac = (rem * scale + den / 2) / den;
    let (int, frac) = if frac >= scale {
        (int + 1, frac - scale)
    } else {
        (int, frac)
    };
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = PRICE_PLACES as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattle_ledger::Hash256;
    use wattle_ledger::amount::MAX_AMOUNT;

    /// energy in thousandths (multiple 1000), ecoin whole (multiple 1), as in the paper.
    fn energy_ecoin() -> Market {
        Market {
            base: Hash256([1; 32]),
            base_multiple: 1000,
            quote: Hash256([2; 32]),
            quote_multiple: 1,
        }
    }

    fn raw(n: u64) -> Amount {
        Amount::new(n).unwrap()
    }

    #[test]
    fn display_prices_become_exact_raw_fractions() {
        let m = energy_ecoin();
        // 100 ecoin per energy = 100 raw ecoin per 1000 raw energy.
        assert_eq!(m.parse_price("100").unwrap(), Price::new(1, 10));
        assert_eq!(m.parse_price("105").unwrap(), Price::new(21, 200));
        assert_eq!(m.parse_price("110").unwrap(), Price::new(11, 100));
        assert_eq!(m.parse_price("0.5").unwrap(), Price::new(1, 2000));
        assert_eq!(m.parse_price("1e2").unwrap(), Price::new(1, 10));
        assert_eq!(
            m.parse_price("0.00000001").unwrap(),
            Price::new(1, 100_000_000_000)
        );
        // Display ← raw is the exact inverse.
        for text in ["100", "105", "110", "0.5", "0.00000001", "123456.789"] {
            assert_eq!(m.format_price(m.parse_price(text).unwrap()), text);
        }
        let same = Market {
            base_multiple: 1,
            ..m
        };
        assert_eq!(same.parse_price("2.5").unwrap(), Price::new(5, 2));
    }

    #[test]
    fn bad_prices_are_errors_not_rounded() {
        let m = energy_ecoin();
        assert_eq!(m.parse_price("0"), Err(OrderTermsError::ZeroPrice));
        assert_eq!(m.parse_price("0.000"), Err(OrderTermsError::ZeroPrice));
        assert_eq!(m.parse_price("-1"), Err(OrderTermsError::BadPrice));
        assert_eq!(m.parse_price("0.000000001"), Err(OrderTermsError::BadPrice));
        assert_eq!(m.parse_price("abc"), Err(OrderTermsError::BadPrice));
        assert_eq!(m.parse_price("1e30"), Err(OrderTermsError::PriceOutOfRange));
        // The largest price: the reduced terms always fit (10^8 × bm is a multiple of qm).
        let fine = Market {
            base_multiple: 1,
            quote_multiple: 100_000_000,
            ..m
        };
        assert_eq!(
            fine.parse_price("92233720368.54775807").unwrap(),
            Price::new(MAX_AMOUNT, 1)
        );
    }

    #[test]
    fn quantities_are_exact_in_base_units() {
        let m = energy_ecoin();
        assert_eq!(m.parse_base_quantity("10").unwrap(), raw(10_000));
        assert_eq!(m.parse_base_quantity("0.001").unwrap(), raw(1));
        assert_eq!(
            m.parse_base_quantity("0.0005"),
            Err(OrderTermsError::QuantityNotInUnits {
                unit: "0.001".into()
            })
        );
        assert_eq!(
            m.parse_base_quantity("0"),
            Err(OrderTermsError::ZeroQuantity)
        );
        assert_eq!(
            m.parse_base_quantity("-3"),
            Err(OrderTermsError::ZeroQuantity)
        );
        assert_eq!(
            m.parse_base_quantity("1e19"),
            Err(OrderTermsError::QuantityOutOfRange)
        );
    }

    #[test]
    fn sides_map_onto_the_symmetric_ledger_op() {
        let m = energy_ecoin();
        let sell = m
            .place_order(Side::Sell, raw(10_000), m.parse_price("100").unwrap())
            .unwrap();
        assert_eq!(
            sell,
            PlaceOrder {
                sell: m.base,
                quantity: raw(10_000),
                buy: m.quote,
                price: Price::new(1, 10),
                kind: OrderKind::Sell,
            }
        );
        // Buying 5 energy at 105 escrows 525 ecoin at 200 raw energy per 21 ecoin; its target
        // is exactly the 5 energy.
        let buy = m
            .place_order(Side::Buy, raw(5_000), m.parse_price("105").unwrap())
            .unwrap();
        assert_eq!(
            buy,
            PlaceOrder {
                sell: m.quote,
                quantity: raw(525),
                buy: m.base,
                price: Price::new(200, 21),
                kind: OrderKind::Buy,
            }
        );
        assert_eq!(buy.target().unwrap(), raw(5_000));
        wattle_ledger::validate::check_place_order(&buy).unwrap();
        wattle_ledger::validate::check_place_order(&sell).unwrap();
    }

    #[test]
    fn quantities_that_are_not_whole_lots_are_refused() {
        let m = energy_ecoin();
        // At 105 a lot is 0.2 energy for 21 ecoin: 0.1 energy would cost 10.5 ecoin.
        let p = m.parse_price("105").unwrap();
        let err = m.place_order(Side::Buy, raw(100), p).unwrap_err();
        assert_eq!(
            err,
            OrderTermsError::NotWholeLots {
                price: "105".into(),
                lot: "0.2".into(),
                lot_value: "21".into()
            }
        );
        assert!(m.place_order(Side::Sell, raw(4_100), p).is_err());
        assert!(m.place_order(Side::Sell, raw(4_200), p).is_ok());
        assert_eq!(
            m.place_order(Side::Sell, Amount::ZERO, p),
            Err(OrderTermsError::ZeroQuantity)
        );
        // A buy order's cost must fit in an amount.
        let whole = Market {
            base_multiple: 1,
            ..m
        };
        assert_eq!(
            whole.place_order(Side::Buy, raw(MAX_AMOUNT), Price::new(2, 1)),
            Err(OrderTermsError::QuantityOutOfRange)
        );
    }

    #[test]
    fn conversions_between_the_two_assets_round_down() {
        let p = Price::new(21, 200);
        assert_eq!(mul_floor(raw(5_000), p), raw(525));
        assert_eq!(mul_floor(raw(525), p.inverse()), raw(5_000));
        assert_eq!(mul_floor(raw(20), p.inverse()), raw(190));
        assert_eq!(mul_floor(Amount::MAX, Price::new(2, 1)), Amount::MAX);
    }

    #[test]
    fn ratios_format_exactly_or_round_at_the_eighth_place() {
        assert_eq!(format_ratio(100, 1), "100");
        assert_eq!(format_ratio(21, 200), "0.105");
        assert_eq!(format_ratio(1, 3), "0.33333333");
        assert_eq!(format_ratio(2, 3), "0.66666667");
        assert_eq!(format_ratio(999_999_999_999, 1_000_000_000_000), "1");
        assert_eq!(format_ratio(0, 5), "0");
        assert_eq!(format_ratio(1, 0), "0");
        assert_eq!(
            format_ratio(u128::from(u64::MAX) * 100_000_000, 1),
            "1844674407370955161500000000"
        );
    }

    #[test]
    fn sides_parse_in_any_case() {
        assert_eq!(Side::parse("sell"), Some(Side::Sell));
        assert_eq!(Side::parse("BUY"), Some(Side::Buy));
        assert_eq!(Side::parse("bid"), None);
        assert_eq!(Side::parse(""), None);
    }
}
