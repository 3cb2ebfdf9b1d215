//! x87 80-bit `long double` arithmetic and printing, as Redis computes INCRBYFLOAT and
//! HINCRBYFLOAT: parse like strtold, add with 64-bit mantissa rounding, print as `%.17Lf` with
//! trailing zeros removed. Using f64 instead would give different digits (Redis answers
//! "205.60000000000000001" for 5.6 + 200), so the engine follows the 80-bit format exactly:
//! rustc_apfloat does the IEEE work, this file the exact decimal printing.

use rustc_apfloat::ieee::X87DoubleExtended;
use rustc_apfloat::Float;

#[derive(Debug, Clone, Copy)]
pub struct LongDouble(X87DoubleExtended);

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble(X87DoubleExtended::ZERO);

    /// Parses as Redis's string2ld: no surrounding spaces, no NaN; "inf" and friends allowed.
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        let text = std::str::from_utf8(text).ok()?;
        if text.is_empty()
            || text.len() > 5 * 1024
            || text.starts_with(|c: char| c.is_ascii_whitespace())
        {
            return None;
        }
        let lower = text.to_ascii_lowercase();
        let unsigned = lower.trim_start_matches(['+', '-']);
        if unsigned.len() + 1 < lower.len() {
            return None;
        }
        if unsigned == "inf" || unsigned == "infinity" {
            let inf = X87DoubleExtended::INFINITY;
            return Some(LongDouble(if lower.starts_with('-') { -inf } else { inf }));
        }
        let valid = unsigned
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | 'e' | 'x' | 'p' | '+' | '-'));
        if !valid || unsigned.is_empty() {
            return None;
        }
        let value: X87DoubleExtended = text.trim_start_matches('+').parse().ok()?;
        (!value.is_nan()).then_some(LongDouble(value))
    }

    pub fn is_finite(self) -> bool {
        self.0.is_finite()
    }

    /// `%.17Lf` with trailing zeros (and a trailing point) removed, "-0" printed as "0".
    pub fn to_human_string(self) -> String {
        let bits = self.0.to_bits();
        let negative = (bits >> 79) & 1 == 1;
        let exponent = ((bits >> 64) & 0x7FFF) as i32;
        let significand = (bits & u128::from(u64::MAX)) as u64;
        // value = significand * 2^(exponent - 16383 - 63)
        let e2 = if exponent == 0 {
            1 - 16383 - 63
        } else {
            exponent - 16383 - 63
        };
        let digits = scaled_decimal(significand, e2, 17);
        let (int_part, frac_part) = digits.split_at(digits.len() - 17);
        let frac = frac_part.trim_end_matches('0');
        let mut text = String::new();
        if negative {
            text.push('-');
        }
        text.push_str(int_part);
        if !frac.is_empty() {
            text.push('.');
            text.push_str(frac);
        }
        if text == "-0" {
            text = "0".into();
        }
        text
    }
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;
    /// Adds with round-to-nearest-even to the 64-bit mantissa, as the x87 FPU does.
    fn add(self, other: LongDouble) -> LongDouble {
        LongDouble((self.0 + other.0).value)
    }
}

/// Decimal digits of round(significand * 2^e2 * 10^decimals), at least decimals+1 long.
fn scaled_decimal(significand: u64, e2: i32, decimals: u32) -> String {
    let scale = 10u128.pow(decimals);
    let digits = if e2 >= 0 {
        big_decimal(u128::from(significand) * scale, e2 as u32)
    } else {
        let shift = (-e2) as u32;
        let n = u128::from(significand) * scale;
        let q = if shift >= 128 {
            0
        } else {
            let q = n >> shift;
            let rem = n - (q << shift);
            let half = 1u128 << (shift - 1);
            if rem > half || (rem == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        };
        q.to_string()
    };
    format!("{digits:0>width$}", width = decimals as usize + 1)
}

/// Decimal text of n * 2^shift, with base-1e9 limbs.
fn big_decimal(n: u128, shift: u32) -> String {
    const BASE: u64 = 1_000_000_000;
    let mut limbs: Vec<u64> = Vec::new();
    let mut rest = n;
    while rest > 0 {
        limbs.push((rest % u128::from(BASE)) as u64);
        rest /= u128::from(BASE);
    }
    let mut remaining = shift;
    while remaining > 0 {
        let step = remaining.min(29);
        let mut carry = 0u64;
        for limb in limbs.iter_mut() {
            let v = (*limb << step) + carry;
            *limb = v % BASE;
            carry = v / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
        remaining -= step;
    }
    let mut text = limbs
        .last()
        .map_or_else(|| "0".to_string(), |l| l.to_string());
    for limb in limbs.iter().rev().skip(1) {
        text.push_str(&format!("{limb:09}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        let a = LongDouble::parse(a.as_bytes()).unwrap();
        let b = LongDouble::parse(b.as_bytes()).unwrap();
        (a + b).to_human_string()
    }

    #[test]
    fn matches_redis_long_double_results() {
        // Values observed from redis-server 7.0's INCRBYFLOAT.
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("5.6", "2.0e2"), "205.60000000000000001");
        assert_eq!(sum("3", "1.5"), "4.5");
        assert_eq!(sum("0", "5.25"), "5.25");
        assert_eq!(sum("10.6", "-5"), "5.6");
        assert_eq!(sum("1e20", "1"), "100000000000000000000");
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("1.23456789012345678", "0"), "1.23456789012345678");
        assert_eq!(sum("3.0e-20", "0"), "0");
        assert_eq!(sum("-1.5", "1.5"), "0");
        assert_eq!(sum("5.0e3", "0"), "5000");
    }

    #[test]
    fn parsing_rules() {
        assert!(LongDouble::parse(b" 1").is_none());
        assert!(LongDouble::parse(b"nan").is_none());
        assert!(LongDouble::parse(b"abc").is_none());
        assert!(LongDouble::parse(b"").is_none());
        assert!(!LongDouble::parse(b"-inf").unwrap().is_finite());
        assert!(LongDouble::parse(b"1e5000").is_none_or(|v| !v.is_finite()));
    }
}
