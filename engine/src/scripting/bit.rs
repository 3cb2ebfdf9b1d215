//! The `bit` library Redis loads for scripts (LuaBitOp's API): 32-bit operations on Lua
//! numbers, which are first normalised to a signed 32-bit integer as LuaBitOp does (through
//! the 2^52 + 2^51 rounding trick: to nearest, and modulo 2^32).

use mlua::{Lua, MultiValue, Table, Value, Variadic};

/// A Lua number as the 32-bit integer LuaBitOp works on.
fn tobit(n: f64) -> i32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

fn number(v: &Value, position: usize, name: &str) -> mlua::Result<f64> {
    match v {
        Value::Number(n) => Ok(*n),
        Value::Integer(n) => Ok(*n as f64),
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| bad_argument(position, name)),
        _ => Err(bad_argument(position, name)),
    }
}

fn bad_argument(position: usize, name: &str) -> mlua::Error {
    mlua::Error::runtime(format!(
        "bad argument #{position} to '{name}' (number expected)"
    ))
}

fn result(n: i32) -> Value {
    Value::Number(f64::from(n))
}

/// A function of every argument folded with `op` (band, bor, bxor).
fn fold(lua: &Lua, name: &'static str, op: fn(i32, i32) -> i32) -> mlua::Result<mlua::Function> {
    lua.create_function(move |_, args: MultiValue| {
        let mut acc = tobit(number(args.front().unwrap_or(&Value::Nil), 1, name)?);
        for (i, v) in args.iter().enumerate().skip(1) {
            acc = op(acc, tobit(number(v, i + 1, name)?));
        }
        Ok(result(acc))
    })
}

/// A shift or rotation of the first argument by the second (taken modulo 32).
fn shift(lua: &Lua, name: &'static str, op: fn(i32, u32) -> i32) -> mlua::Result<mlua::Function> {
    lua.create_function(move |_, (x, n): (Value, Value)| {
        let x = tobit(number(&x, 1, name)?);
        let n = tobit(number(&n, 2, name)?) as u32 & 31;
        Ok(result(op(x, n)))
    })
}

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let bit = lua.create_table()?;
    bit.set(
        "tobit",
        lua.create_function(|_, x: Value| Ok(result(tobit(number(&x, 1, "tobit")?))))?,
    )?;
    bit.set(
        "bnot",
        lua.create_function(|_, x: Value| Ok(result(!tobit(number(&x, 1, "bnot")?))))?,
    )?;
    bit.set("band", fold(lua, "band", |a, b| a & b)?)?;
    bit.set("bor", fold(lua, "bor", |a, b| a | b)?)?;
    bit.set("bxor", fold(lua, "bxor", |a, b| a ^ b)?)?;
    bit.set(
        "lshift",
        shift(lua, "lshift", |x, n| ((x as u32) << n) as i32)?,
    )?;
    bit.set(
        "rshift",
        shift(lua, "rshift", |x, n| ((x as u32) >> n) as i32)?,
    )?;
    bit.set("arshift", shift(lua, "arshift", |x, n| x >> n)?)?;
    bit.set(
        "rol",
        shift(lua, "rol", |x, n| (x as u32).rotate_left(n) as i32)?,
    )?;
    bit.set(
        "ror",
        shift(lua, "ror", |x, n| (x as u32).rotate_right(n) as i32)?,
    )?;
    bit.set(
        "bswap",
        lua.create_function(|_, x: Value| Ok(result(tobit(number(&x, 1, "bswap")?).swap_bytes())))?,
    )?;
    bit.set(
        "tohex",
        lua.create_function(|lua, args: Variadic<Value>| {
            let x = tobit(number(args.first().unwrap_or(&Value::Nil), 1, "tohex")?) as u32;
            let n = match args.get(1) {
                None | Some(Value::Nil) => 8,
                Some(v) => tobit(number(v, 2, "tohex")?),
            };
            let upper = n < 0;
            let digits = n.unsigned_abs().min(8) as usize;
            let hex = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            lua.create_string(&hex[8 - digits..])
        })?,
    )?;
    Ok(bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_as_luabitop() {
        assert_eq!(tobit(0xffff_ffff_u32 as f64), -1);
        assert_eq!(tobit(4294967296.0 + 5.0), 5);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(3.5), 4);
    }
}
