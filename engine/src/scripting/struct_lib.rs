//! The `struct` library Redis loads for scripts (Roberto Ierusalimschy's struct 0.2 with
//! Redis's fixes): `pack`, `unpack` and `size` over its format language (b B h H l L T i[n]
//! I[n] f d c[n] s x, `<` `>` `![n]`), with C's alignment and x86 conversion rules.

use mlua::{Lua, Table, Value, Variadic};

use super::libs::{
    answer, arg_error, check_integer, check_number, check_string, to_number, type_of, x86_i64,
    LibResult,
};

/// The most results one unpack returns (Redis's Lua stack, less the arguments).
const MAX_RESULTS: usize = 7997;

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| answer(lua, pack(lua, &args)))?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| answer(lua, unpack(lua, &args)))?,
    )?;
    t.set(
        "size",
        lua.create_function(|lua, args: Variadic<Value>| answer(lua, size(lua, &args)))?,
    )?;
    Ok(t)
}

/// The format's reading state: where it is, byte order, largest alignment.
struct Format<'a> {
    text: &'a [u8],
    at: usize,
    little: bool,
    max_align: usize,
    name: &'static str,
}

impl<'a> Format<'a> {
    fn new(text: &'a [u8], name: &'static str) -> Self {
        // Read as a C string: it ends at a NUL.
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        Format {
            text: &text[..end],
            at: 0,
            little: true,
            max_align: 1,
            name,
        }
    }

    fn next(&mut self) -> Option<u8> {
        let c = *self.text.get(self.at)?;
        self.at += 1;
        Some(c)
    }

    /// The decimal number at the current place, or `default` if there is none.
    fn number(&mut self, default: usize) -> Result<usize, String> {
        if !self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let max = i32::MAX as usize;
        let mut a = 0usize;
        while let Some(&d) = self.text.get(self.at).filter(|d| d.is_ascii_digit()) {
            let digit = usize::from(d - b'0');
            if a > max / 10 || a * 10 > max - digit {
                return Err("integral size overflow".into());
            }
            a = a * 10 + digit;
            self.at += 1;
        }
        Ok(a)
    }

    /// The size of option `opt` (reading its number, if it takes one).
    fn size_of(&mut self, opt: u8) -> Result<usize, String> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let n = self.number(4)?;
                if n > 32 {
                    return Err(format!("integral size {n} is larger than limit of 32"));
                }
                n
            }
            _ => 0,
        })
    }

    /// The padding before an option of `size` at `pos`.
    fn padding(&self, pos: usize, opt: u8, size: usize) -> usize {
        if size == 0 || opt == b'c' {
            return 0;
        }
        let a = size.min(self.max_align);
        a.wrapping_sub(pos & a.wrapping_sub(1)) & a.wrapping_sub(1)
    }

    /// Byte order, alignment and spaces; anything else is not an option.
    fn control(&mut self, opt: u8) -> Result<(), String> {
        match opt {
            b' ' => {}
            b'>' => self.little = false,
            b'<' => self.little = true,
            b'!' => {
                let a = self.number(8)?;
                if !a.is_power_of_two() {
                    return Err(format!("alignment {a} is not a power of 2"));
                }
                self.max_align = a;
            }
            other => {
                return Err(arg_error(
                    1,
                    self.name,
                    &format!("invalid format option '{}'", char::from(other)),
                ));
            }
        }
        Ok(())
    }
}

fn format_arg(lua: &Lua, args: &[Value], name: &str) -> Result<Vec<u8>, String> {
    check_string(lua, args, 0, name)
}

/// Argument `i` (0-based) as pack reads it: one past the last is a nil (struct pushes one).
fn pack_arg(args: &[Value], i: usize) -> Option<&Value> {
    static NIL: Value = Value::Nil;
    match args.get(i) {
        Some(v) => Some(v),
        None if i == args.len() => Some(&NIL),
        None => None,
    }
}

/// A double as C converts it to uint64 on x86 (what struct's putinteger stores).
fn to_u64(n: f64) -> u64 {
    if n < 0.0 {
        x86_i64(n) as u64
    } else if n >= 9_223_372_036_854_775_808.0 {
        (x86_i64(n - 9_223_372_036_854_775_808.0) as u64) ^ (1 << 63)
    } else {
        x86_i64(n) as u64
    }
}

fn ordered(bytes: &mut [u8], little: bool) {
    if !little {
        bytes.reverse();
    }
}

fn pack(lua: &Lua, args: &[Value]) -> LibResult {
    let text = format_arg(lua, args, "pack")?;
    let mut fmt = Format::new(&text, "pack");
    let mut out: Vec<u8> = Vec::new();
    let mut arg = 1;
    while let Some(opt) = fmt.next() {
        let mut size = fmt.size_of(opt)?;
        let pad = fmt.padding(out.len(), opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = check_number(pack_arg(args, arg), arg + 1, "pack")?;
                arg += 1;
                let mut value = to_u64(n);
                let mut bytes = vec![0u8; size];
                for b in bytes.iter_mut() {
                    *b = value as u8;
                    value = value.checked_shr(8).unwrap_or(0);
                }
                ordered(&mut bytes, fmt.little);
                out.extend_from_slice(&bytes);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = check_number(pack_arg(args, arg), arg + 1, "pack")?;
                arg += 1;
                let mut bytes = (n as f32).to_le_bytes();
                ordered(&mut bytes, fmt.little);
                out.extend_from_slice(&bytes);
            }
            b'd' => {
                let n = check_number(pack_arg(args, arg), arg + 1, "pack")?;
                arg += 1;
                let mut bytes = n.to_le_bytes();
                ordered(&mut bytes, fmt.little);
                out.extend_from_slice(&bytes);
            }
            b'c' | b's' => {
                let s = match pack_arg(args, arg) {
                    Some(Value::Nil) | None => {
                        return Err(arg_error(
                            arg + 1,
                            "pack",
                            &format!("string expected, got {}", type_of(pack_arg(args, arg))),
                        ))
                    }
                    Some(_) => check_string(lua, args, arg, "pack")?,
                };
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(arg_error(arg + 1, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
                // (`size` only counts toward alignment, which `out.len()` already tracks.)
            }
            other => fmt.control(other)?,
        }
    }
    Ok(vec![Value::String(
        lua.create_string(&out).map_err(|e| e.to_string())?,
    )])
}

fn too_short() -> String {
    arg_error(2, "unpack", "data string too short")
}

fn fits(pos: u64, size: u64, len: u64) -> bool {
    size <= len && pos <= len - size
}

fn unpack(lua: &Lua, args: &[Value]) -> LibResult {
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(v) => check_integer(v, 3, "unpack")?,
    } as u64;
    let text = format_arg(lua, args, "unpack")?;
    let data = check_string(lua, args, 1, "unpack")?;
    if start == 0 {
        return Err(arg_error(3, "unpack", "offset must be 1 or greater"));
    }
    let len = data.len() as u64;
    let mut pos = start - 1;
    let mut fmt = Format::new(&text, "unpack");
    let mut out: Vec<Value> = Vec::new();
    let lua_err = |e: mlua::Error| e.to_string();
    while let Some(opt) = fmt.next() {
        let mut size = fmt.size_of(opt)? as u64;
        pos = pos.wrapping_add(fmt.padding(pos as usize, opt, size as usize) as u64);
        if !fits(pos, size, len) {
            return Err(too_short());
        }
        if out.len() >= MAX_RESULTS {
            return Err("stack overflow (too many results)".into());
        }
        let at = pos as usize;
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let bytes = &data[at..at + size as usize];
                let mut u: u64 = 0;
                let mut shift_in = |b: u8| u = u.checked_shl(8).unwrap_or(0) | u64::from(b);
                if fmt.little {
                    bytes.iter().rev().for_each(|&b| shift_in(b));
                } else {
                    bytes.iter().for_each(|&b| shift_in(b));
                }
                let signed = opt.is_ascii_lowercase();
                let value = if signed {
                    let mask = u64::MAX << ((size * 8).wrapping_sub(1) & 63);
                    if u & mask != 0 {
                        u |= mask;
                    }
                    u as i64 as f64
                } else {
                    u as f64
                };
                out.push(Value::Number(value));
            }
            b'x' => {}
            b'f' => {
                let mut bytes: [u8; 4] = data[at..at + 4].try_into().unwrap_or_default();
                ordered(&mut bytes, fmt.little);
                out.push(Value::Number(f64::from(f32::from_le_bytes(bytes))));
            }
            b'd' => {
                let mut bytes: [u8; 8] = data[at..at + 8].try_into().unwrap_or_default();
                ordered(&mut bytes, fmt.little);
                out.push(Value::Number(f64::from_le_bytes(bytes)));
            }
            b'c' => {
                if size == 0 {
                    let previous = out.last().and_then(to_number);
                    let Some(n) = previous else {
                        return Err("format 'c0' needs a previous size".into());
                    };
                    out.pop();
                    size = to_u64(n);
                    if !fits(pos, size, len) {
                        return Err(too_short());
                    }
                }
                let bytes = &data[at..at + size as usize];
                out.push(Value::String(lua.create_string(bytes).map_err(lua_err)?));
            }
            b's' => {
                let Some(nul) = data[at..].iter().position(|&b| b == 0) else {
                    return Err("unfinished string in data".into());
                };
                out.push(Value::String(
                    lua.create_string(&data[at..at + nul]).map_err(lua_err)?,
                ));
                size = nul as u64 + 1;
            }
            other => fmt.control(other)?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(out)
}

fn size(lua: &Lua, args: &[Value]) -> LibResult {
    let text = format_arg(lua, args, "size")?;
    let mut fmt = Format::new(&text, "size");
    let mut pos = 0usize;
    while let Some(opt) = fmt.next() {
        let size = fmt.size_of(opt)?;
        pos += fmt.padding(pos, opt, size);
        if opt == b's' {
            return Err(arg_error(1, "size", "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(arg_error(1, "size", "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            fmt.control(opt)?;
        }
        pos += size;
    }
    Ok(vec![Value::Number(pos as f64)])
}
