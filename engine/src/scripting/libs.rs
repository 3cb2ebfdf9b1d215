//! What the natively written script libraries (cjson, cmsgpack, struct) share: raising an
//! error as luaL_error does (a string with the calling line's position, which scripts get from
//! pcall as a string), Lua 5.1's argument coercions under C's x86 conversion rules, and
//! `%.14g`, the number format Lua and cjson write with.

use mlua::{Lua, MultiValue, Value};

/// A library function's results, or the message of the error it raises.
pub type LibResult = Result<Vec<Value>, String>;

/// A library function's results as Lua gets them, or its error raised.
pub fn answer(lua: &Lua, result: LibResult) -> mlua::Result<MultiValue> {
    match result {
        Ok(values) => Ok(MultiValue::from_vec(values)),
        Err(message) => Err(raise(lua, &message)),
    }
}

/// The error luaL_error raises: `message` after the position of the line that called the
/// library function (none if a C function did). The text is left for env.lua, which hands
/// scripts the string (mlua raises a userdata).
pub fn raise(lua: &Lua, message: &str) -> mlua::Error {
    let at = lua
        .inspect_stack(1, |d| {
            let source = d.source().short_src.map(|s| s.into_owned());
            match (source, d.current_line()) {
                (Some(src), Some(line)) if line > 0 => format!("{src}:{line}: "),
                _ => String::new(),
            }
        })
        .unwrap_or_default();
    let text = format!("{at}{message}");
    // If the registry cannot take it, the caller sees mlua's own error text instead.
    let _ = lua.set_named_registry_value(super::PENDING_ERROR, text.as_str());
    mlua::Error::runtime(text)
}

/// luaL_argerror's text.
pub fn arg_error(n: usize, name: &str, extra: &str) -> String {
    format!("bad argument #{n} to '{name}' ({extra})")
}

/// Lua's name for a value's type, `no value` for a missing argument.
pub fn type_of(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::LightUserData(_)) => "userdata",
        Some(other) => other.type_name(),
    }
}

/// luaL_checklstring of argument `i` (0-based; a number as its text).
pub fn check_string(lua: &Lua, args: &[Value], i: usize, name: &str) -> Result<Vec<u8>, String> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Number(_) | Value::Integer(_))) => Ok(lua
            .coerce_string(v.clone())
            .ok()
            .flatten()
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default()),
        other => Err(arg_error(
            i + 1,
            name,
            &format!("string expected, got {}", type_of(other)),
        )),
    }
}

/// lua_tonumber: a number, or a string that reads as one (spaces around, hex with 0x).
pub fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(s) => {
            let bytes = s.as_bytes();
            let text = std::str::from_utf8(&bytes).ok()?.trim();
            let (negative, body) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text.strip_prefix('+').unwrap_or(text)),
            };
            if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
                let n = u64::from_str_radix(hex, 16).ok()? as f64;
                return Some(if negative { -n } else { n });
            }
            match super::cjson::strtod(text.as_bytes()) {
                Some((n, used)) if used == text.len() && !text.is_empty() => Some(n),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A double truncated to int64 as x86 does (INT64_MIN when NaN or out of range).
pub fn x86_i64(n: f64) -> i64 {
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// luaL_checknumber.
pub fn check_number(v: Option<&Value>, n: usize, name: &str) -> Result<f64, String> {
    v.and_then(to_number)
        .ok_or_else(|| arg_error(n, name, &format!("number expected, got {}", type_of(v))))
}

/// luaL_checkinteger (a ptrdiff_t, truncated toward zero).
pub fn check_integer(v: &Value, n: usize, name: &str) -> Result<i64, String> {
    check_number(Some(v), n, name).map(x86_i64)
}

/// An int64 narrowed to C's int (its low 32 bits).
pub fn c_int(n: i64) -> i32 {
    n as i32
}

/// C's `printf("%.<p>g", x)` as glibc writes it.
pub fn fmt_g(x: f64, precision: usize) -> String {
    let p = precision.max(1);
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exponent < -4 || exponent >= p as i32 {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mantissa), exponent.abs())
    } else {
        let decimals = (p as i32 - 1 - exponent).max(0) as usize;
        strip(&format!("{x:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_glibc_prints_them_with_14_digits() {
        let cases: &[(f64, &str)] = &[
            (1e15, "1e+15"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.33333333333333"),
            (-0.0, "-0"),
            (100.0, "100"),
            (123456789012345.0, "1.2345678901234e+14"),
            (9007199254740992.0, "9.007199254741e+15"),
            (1e-5, "1e-05"),
            (std::f64::consts::PI, "3.1415926535898"),
            (5e-324, "4.9406564584125e-324"),
            (2147483648.0, "2147483648"),
            (12345678901234.0, "12345678901234"),
            (0.0003, "0.0003"),
            (1023.2, "1023.2"),
        ];
        for (x, text) in cases {
            assert_eq!(fmt_g(*x, 14), *text, "{x}");
        }
        assert_eq!(fmt_g(3.25159, 3), "3.25");
        assert_eq!(fmt_g(1234567.0, 3), "1.23e+06");
    }
}
