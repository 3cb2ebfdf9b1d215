//! The `cmsgpack` library Redis loads for scripts (lua-cmsgpack 0.4.0 with Redis's fixes):
//! `pack` (several values, tables nested 16 deep at most, circular ones cut there),
//! `unpack`, `unpack_one` and `unpack_limit` (with the offset of what follows), Redis's texts.

use mlua::{Lua, Table, Value, Variadic};

use super::libs::{answer, arg_error, check_integer, check_string, x86_i64, LibResult};

/// Tables deeper than this are packed as nil (how circular references end).
const MAX_NESTING: usize = 16;
/// How deep a decoded value may nest (Redis runs out of Lua stack near 4,000 with these
/// texts; the decoder recurses on a worker thread's stack, so it stops sooner).
const MAX_DECODE_DEPTH: usize = 1000;
/// The most values one unpack returns (the Lua stack's size in Redis, less its own slots).
const MAX_RESULTS: usize = 7998;
const TOO_MANY: &str =
    "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)";

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| answer(lua, pack(lua, &args)))?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| {
            answer(
                lua,
                check_string(lua, &args, 0, "unpack").and_then(|s| full(lua, &s, 0, 0)),
            )
        })?,
    )?;
    t.set(
        "unpack_one",
        lua.create_function(|lua, args: Variadic<Value>| {
            let result = optional_integer(&args, 1, "unpack_one").and_then(|offset| {
                full(lua, &check_string(lua, &args, 0, "unpack_one")?, 1, offset)
            });
            answer(lua, result)
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(|lua, args: Variadic<Value>| {
            let result = (|| {
                let limit = check_integer(args.get(1).unwrap_or(&Value::Nil), 2, "unpack_limit")?;
                let offset = optional_integer(&args, 2, "unpack_limit")?;
                full(
                    lua,
                    &check_string(lua, &args, 0, "unpack_limit")?,
                    limit,
                    offset,
                )
            })();
            answer(lua, result)
        })?,
    )?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

fn optional_integer(args: &[Value], i: usize, name: &str) -> Result<i64, String> {
    match args.get(i) {
        None | Some(Value::Nil) => Ok(0),
        Some(v) => check_integer(v, i + 1, name),
    }
}

fn pack(lua: &Lua, args: &[Value]) -> LibResult {
    if args.is_empty() {
        return Err(arg_error(0, "pack", "MessagePack pack needs input."));
    }
    if args.len() > 4000 {
        return Err(arg_error(
            0,
            "pack",
            "Too many arguments for MessagePack pack.",
        ));
    }
    let mut out = Vec::new();
    for v in args {
        encode(v, 0, &mut out)?;
    }
    Ok(vec![Value::String(
        lua.create_string(&out).map_err(|e| e.to_string())?,
    )])
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        _ => None,
    }
}

fn encode_integer(n: i64, out: &mut Vec<u8>) {
    match n {
        0..=127 => out.push(n as u8),
        128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        n if n > 0 => {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        -32..=-1 => out.push(n as u8),
        -128..=-33 => out.extend_from_slice(&[0xd0, n as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(n as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn encode_number(x: f64, out: &mut Vec<u8>) {
    let int = x86_i64(x);
    if !x.is_infinite() && int as f64 == x {
        encode_integer(int, out);
        return;
    }
    let single = x as f32;
    if f64::from(single) == x {
        out.push(0xca);
        out.extend_from_slice(&single.to_bits().to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&x.to_bits().to_be_bytes());
    }
}

fn encode_len(len: usize, fix: u8, fix_max: usize, wide: [u8; 2], out: &mut Vec<u8>) {
    if len <= fix_max {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(wide[0]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(wide[1]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// The length of `t` as an array (exactly the keys 1..n), or None for a map.
fn array_length(t: &Table) -> Result<Option<usize>, String> {
    let mut count = 0usize;
    let mut max = 0f64;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let Some(k) = number_of(&k) else {
            return Ok(None);
        };
        let as_int = if (-2_147_483_648.0..2_147_483_648.0).contains(&k) {
            k as i32
        } else {
            i32::MIN
        };
        if k <= 0.0 || f64::from(as_int) != k {
            return Ok(None);
        }
        count += 1;
        max = max.max(k);
    }
    Ok((max as usize == count).then_some(count))
}

fn encode(v: &Value, level: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::String(s) => {
            let bytes = s.as_bytes();
            let len = bytes.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xff {
                out.extend_from_slice(&[0xd9, len as u8]);
            } else if len <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            out.extend_from_slice(&bytes);
        }
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(_) | Value::Integer(_) => encode_number(number_of(v).unwrap_or(0.0), out),
        Value::Table(t) if level < MAX_NESTING => match array_length(t)? {
            Some(n) => {
                encode_len(n, 0x90, 15, [0xdc, 0xdd], out);
                for i in 1..=n {
                    let item: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                    encode(&item, level + 1, out)?;
                }
            }
            None => {
                let n = t.clone().pairs::<Value, Value>().count();
                encode_len(n, 0x80, 15, [0xde, 0xdf], out);
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, item) = pair.map_err(|e| e.to_string())?;
                    encode(&k, level + 1, out)?;
                    encode(&item, level + 1, out)?;
                }
            }
        },
        _ => out.push(0xc0),
    }
    Ok(())
}

const MISSING: &str = "Missing bytes in input.";
const BAD: &str = "Bad data format in input.";

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or(MISSING)?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn be(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
}

fn decode(lua: &Lua, r: &mut Reader, depth: usize) -> Result<Value, String> {
    let lua_err = |e: mlua::Error| e.to_string();
    let b = r.take(1)?[0];
    let num = |n: f64| Ok(Value::Number(n));
    let string = |r: &mut Reader, len: usize| -> Result<Value, String> {
        let bytes = r.take(len)?;
        Ok(Value::String(lua.create_string(bytes).map_err(lua_err)?))
    };
    match b {
        0x00..=0x7f => num(f64::from(b)),
        0x80..=0x8f => map(lua, r, usize::from(b & 0x0f), depth),
        0x90..=0x9f => array(lua, r, usize::from(b & 0x0f), depth),
        0xa0..=0xbf => string(r, usize::from(b & 0x1f)),
        0xc0 => Ok(Value::Nil),
        0xc2 => Ok(Value::Boolean(false)),
        0xc3 => Ok(Value::Boolean(true)),
        0xca => num(f64::from(f32::from_bits(r.be(4)? as u32))),
        0xcb => num(f64::from_bits(r.be(8)?)),
        0xcc => num(r.be(1)? as f64),
        0xcd => num(r.be(2)? as f64),
        0xce => num(r.be(4)? as f64),
        0xcf => num(r.be(8)? as i64 as f64),
        0xd0 => num(f64::from(r.be(1)? as u8 as i8)),
        0xd1 => num(f64::from(r.be(2)? as u16 as i16)),
        0xd2 => num(f64::from(r.be(4)? as u32 as i32)),
        0xd3 => num(r.be(8)? as i64 as f64),
        0xd9 => {
            let len = r.be(1)? as usize;
            string(r, len)
        }
        0xda => {
            let len = r.be(2)? as usize;
            string(r, len)
        }
        0xdb => {
            let len = r.be(4)? as usize;
            string(r, len)
        }
        0xdc => {
            let n = r.be(2)? as usize;
            array(lua, r, n, depth)
        }
        0xdd => {
            let n = r.be(4)? as usize;
            array(lua, r, n, depth)
        }
        0xde => {
            let n = r.be(2)? as usize;
            map(lua, r, n, depth)
        }
        0xdf => {
            let n = r.be(4)? as usize;
            map(lua, r, n, depth)
        }
        0xe0..=0xff => num(f64::from(b as i8)),
        _ => Err(BAD.into()),
    }
}

fn array(lua: &Lua, r: &mut Reader, n: usize, depth: usize) -> Result<Value, String> {
    if depth >= MAX_DECODE_DEPTH {
        return Err("stack overflow (in function mp_decode_to_lua_array)".into());
    }
    let t = lua.create_table().map_err(|e| e.to_string())?;
    for i in 1..=n {
        let v = decode(lua, r, depth + 1)?;
        t.set(i, v).map_err(|e| e.to_string())?;
    }
    Ok(Value::Table(t))
}

fn map(lua: &Lua, r: &mut Reader, n: usize, depth: usize) -> Result<Value, String> {
    if depth >= MAX_DECODE_DEPTH {
        return Err(TOO_MANY.into());
    }
    let t = lua.create_table().map_err(|e| e.to_string())?;
    for _ in 0..n {
        let k = decode(lua, r, depth + 1)?;
        let v = decode(lua, r, depth + 1)?;
        match &k {
            Value::Nil => return Err("table index is nil".into()),
            Value::Number(n) if n.is_nan() => return Err("table index is NaN".into()),
            _ => {}
        }
        t.set(k, v).map_err(|e| e.to_string())?;
    }
    Ok(Value::Table(t))
}

/// lua-cmsgpack's mp_unpack_full: up to `limit` values from `offset` (0 and 0: all of them,
/// without the offset of what follows in front).
fn full(lua: &Lua, data: &[u8], limit: i64, offset: i64) -> LibResult {
    let len = data.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        ));
    }
    if offset as u64 > len as u64 {
        return Err(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        ));
    }
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };
    let mut r = Reader {
        data,
        pos: offset as usize,
    };
    let mut values = Vec::new();
    while r.pos < len && (values.len() as i64) < limit {
        if values.len() >= MAX_RESULTS + usize::from(decode_all) {
            return Err(TOO_MANY.into());
        }
        values.push(decode(lua, &mut r, 0)?);
    }
    if decode_all {
        return Ok(values);
    }
    let next = if r.pos == len { -1.0 } else { r.pos as f64 };
    let mut out = Vec::with_capacity(values.len() + 1);
    out.push(Value::Number(next));
    out.extend(values);
    Ok(out)
}
