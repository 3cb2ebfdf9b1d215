//! The `cjson` library Redis loads for scripts (Lua CJSON 2.1.0 as Redis vendors it):
//! `encode`, `decode`, their settings, `new` and `null`, with its texts and quirks (`/` is
//! escaped, numbers are written with `%.14g`, sparse arrays refused, a NUL ends the input).
//!
//! Its errors are raised as luaL_error raises them (`libs::raise`).

use std::sync::{Arc, Mutex};

use mlua::{LightUserData, Lua, Table, Value, Variadic};

use super::libs::{answer, arg_error, c_int, check_integer, fmt_g, LibResult};

/// The deepest a value nests whatever the depth settings say (Redis's own defaults): the walks
/// are recursive on a worker thread's stack, which 4,000 levels overflowed. Redis stops near
/// 8,000, at its Lua stack check, with the same texts.
const MAX_NESTING: i32 = 1000;

/// A module table's settings (each `cjson.new()` has its own).
#[derive(Debug, Clone)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    precision: i32,
    keep_buffer: bool,
    /// 0: refused, 1: written as nan/inf, 2: written as null.
    encode_invalid: i32,
    decode_invalid: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            precision: 14,
            keep_buffer: true,
            encode_invalid: 0,
            decode_invalid: true,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

fn config(shared: &Shared) -> Config {
    shared.lock().map(|c| c.clone()).unwrap_or_default()
}

fn update(shared: &Shared, f: impl FnOnce(&mut Config)) {
    if let Ok(mut c) = shared.lock() {
        f(&mut c);
    }
}

/// `cjson.null`: a light userdata holding NULL.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// A fresh module table with default settings.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let shared: Shared = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    let cfg = shared.clone();
    t.set(
        "encode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            answer(lua, encode_call(lua, &config(&cfg), &args))
        })?,
    )?;
    let cfg = shared.clone();
    t.set(
        "decode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            answer(lua, decode_call(lua, &config(&cfg), &args))
        })?,
    )?;
    let cfg = shared.clone();
    t.set(
        "encode_sparse_array",
        lua.create_function(move |lua, args: Variadic<Value>| {
            answer(lua, sparse_array(lua, &cfg, &args))
        })?,
    )?;
    for (name, max) in [
        ("encode_max_depth", i32::MAX),
        ("decode_max_depth", i32::MAX),
        ("encode_number_precision", 14),
    ] {
        let cfg = shared.clone();
        t.set(
            name,
            lua.create_function(move |lua, args: Variadic<Value>| {
                answer(lua, integer_option(&cfg, name, max, &args))
            })?,
        )?;
    }
    for name in ["encode_keep_buffer", "decode_invalid_numbers"] {
        let cfg = shared.clone();
        t.set(
            name,
            lua.create_function(move |lua, args: Variadic<Value>| {
                answer(lua, switch_option(lua, &cfg, name, &args))
            })?,
        )?;
    }
    let cfg = shared;
    t.set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, args: Variadic<Value>| {
            answer(lua, invalid_numbers_option(lua, &cfg, &args))
        })?,
    )?;
    t.set(
        "new",
        lua.create_function(|lua, ()| {
            answer(
                lua,
                module(lua)
                    .map(|t| vec![Value::Table(t)])
                    .map_err(|e| e.to_string()),
            )
        })?,
    )?;
    t.set("null", null())?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    Ok(t)
}

fn too_many(args: &[Value], max: usize, name: &str) -> Result<(), String> {
    if args.len() > max {
        return Err(arg_error(max + 1, name, "found too many arguments"));
    }
    Ok(())
}

fn present(args: &[Value], i: usize) -> Option<&Value> {
    args.get(i).filter(|v| !v.is_nil())
}

/// An enum option: a boolean, or one of `options` by name (its index).
fn enum_option(lua: &Lua, v: &Value, name: &str, options: &[&str]) -> Result<usize, String> {
    match v {
        Value::Boolean(b) => Ok(usize::from(*b)),
        Value::String(_) | Value::Number(_) | Value::Integer(_) => {
            let text = lua
                .coerce_string(v.clone())
                .ok()
                .flatten()
                .map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned())
                .unwrap_or_default();
            options
                .iter()
                .position(|o| *o == text)
                .ok_or_else(|| arg_error(1, name, &format!("invalid option '{text}'")))
        }
        other => Err(arg_error(
            1,
            name,
            &format!("string expected, got {}", other.type_name()),
        )),
    }
}

fn bounded(v: &Value, name: &str, min: i32, max: i32) -> Result<i32, String> {
    let n = c_int(check_integer(v, 1, name)?);
    if n < min || n > max {
        return Err(arg_error(
            1,
            name,
            &format!("expected integer between {min} and {max}"),
        ));
    }
    Ok(n)
}

fn sparse_array(lua: &Lua, cfg: &Shared, args: &[Value]) -> LibResult {
    let name = "encode_sparse_array";
    too_many(args, 3, name)?;
    let mut c = config(cfg);
    if let Some(v) = present(args, 0) {
        c.sparse_convert = enum_option(lua, v, name, &["off", "on"])? == 1;
    }
    if let Some(v) = present(args, 1) {
        c.sparse_ratio = bounded(v, name, 0, i32::MAX)?;
    }
    if let Some(v) = present(args, 2) {
        c.sparse_safe = bounded(v, name, 0, i32::MAX)?;
    }
    update(cfg, |stored| *stored = c.clone());
    Ok(vec![
        Value::Boolean(c.sparse_convert),
        Value::Number(f64::from(c.sparse_ratio)),
        Value::Number(f64::from(c.sparse_safe)),
    ])
}

fn integer_option(cfg: &Shared, name: &str, max: i32, args: &[Value]) -> LibResult {
    too_many(args, 1, name)?;
    let mut c = config(cfg);
    if let Some(v) = present(args, 0) {
        let n = bounded(v, name, 1, max)?;
        match name {
            "encode_max_depth" => c.encode_max_depth = n,
            "decode_max_depth" => c.decode_max_depth = n,
            _ => c.precision = n,
        }
    }
    let value = match name {
        "encode_max_depth" => c.encode_max_depth,
        "decode_max_depth" => c.decode_max_depth,
        _ => c.precision,
    };
    update(cfg, |stored| *stored = c.clone());
    Ok(vec![Value::Number(f64::from(value))])
}

fn switch_option(lua: &Lua, cfg: &Shared, name: &str, args: &[Value]) -> LibResult {
    too_many(args, 1, name)?;
    let mut c = config(cfg);
    if let Some(v) = present(args, 0) {
        let on = enum_option(lua, v, name, &["off", "on"])? == 1;
        if name == "encode_keep_buffer" {
            c.keep_buffer = on;
        } else {
            c.decode_invalid = on;
        }
    }
    let value = if name == "encode_keep_buffer" {
        c.keep_buffer
    } else {
        c.decode_invalid
    };
    update(cfg, |stored| *stored = c.clone());
    Ok(vec![Value::Boolean(value)])
}

fn invalid_numbers_option(lua: &Lua, cfg: &Shared, args: &[Value]) -> LibResult {
    let name = "encode_invalid_numbers";
    too_many(args, 1, name)?;
    let mut c = config(cfg);
    if let Some(v) = present(args, 0) {
        c.encode_invalid = enum_option(lua, v, name, &["off", "on", "null"])? as i32;
    }
    update(cfg, |stored| *stored = c.clone());
    Ok(vec![match c.encode_invalid {
        2 => Value::String(lua.create_string("null").map_err(|e| e.to_string())?),
        n => Value::Boolean(n == 1),
    }])
}

fn encode_call(lua: &Lua, cfg: &Config, args: &[Value]) -> LibResult {
    if args.len() != 1 {
        return Err(arg_error(1, "encode", "expected 1 argument"));
    }
    let mut out = Vec::new();
    encode_value(cfg, &args[0], 0, &mut out)?;
    Ok(vec![Value::String(
        lua.create_string(&out).map_err(|e| e.to_string())?,
    )])
}

fn encode_number(cfg: &Config, n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if !n.is_finite() {
        match cfg.encode_invalid {
            0 => return Err("Cannot serialise number: must not be NaN or Inf".into()),
            2 => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            _ if n.is_nan() => {
                out.extend_from_slice(b"nan");
                return Ok(());
            }
            _ => {}
        }
    }
    out.extend_from_slice(fmt_g(n, cfg.precision as usize).as_bytes());
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0C => out.extend_from_slice(b"\\f"),
            0x0D => out.extend_from_slice(b"\\r"),
            0x00..=0x1F | 0x7F => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        _ => None,
    }
}

/// C's (int) of a double on x86: INT32_MIN when out of range.
fn x86_int(k: f64) -> i32 {
    if !(-2_147_483_648.0..2_147_483_648.0).contains(&k) {
        i32::MIN
    } else {
        k as i32
    }
}

/// The array length of `t` if it is one, else None (an object), as cjson's array_length.
fn array_length(cfg: &Config, t: &Table) -> Result<Option<i32>, String> {
    let mut max: i32 = 0;
    let mut items: i64 = 0;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        match number_of(&k) {
            Some(k) if k != 0.0 && k.floor() == k && k >= 1.0 => {
                if k > f64::from(max) {
                    max = x86_int(k);
                }
                items += 1;
            }
            _ => return Ok(None),
        }
    }
    let ratio = i64::from(cfg.sparse_ratio);
    if ratio > 0 && i64::from(max) > items * ratio && max > cfg.sparse_safe {
        if !cfg.sparse_convert {
            return Err("Cannot serialise table: excessively sparse array".into());
        }
        return Ok(None);
    }
    Ok((max > 0).then_some(max))
}

fn encode_value(cfg: &Config, v: &Value, depth: i32, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(_) | Value::Integer(_) => {
            encode_number(cfg, number_of(v).unwrap_or(0.0), out)?;
        }
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth || depth > MAX_NESTING {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            match array_length(cfg, t)? {
                Some(len) => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let item: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                        encode_value(cfg, &item, depth, out)?;
                    }
                    out.push(b']');
                }
                None => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.clone().pairs::<Value, Value>() {
                        let (k, item) = pair.map_err(|e| e.to_string())?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::Number(_) | Value::Integer(_) => {
                                out.push(b'"');
                                encode_number(cfg, number_of(&k).unwrap_or(0.0), out)?;
                                out.extend_from_slice(b"\":");
                            }
                            Value::String(s) => {
                                encode_string(&s.as_bytes(), out);
                                out.push(b':');
                            }
                            other => {
                                return Err(format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    type_name(other)
                                ));
                            }
                        }
                        encode_value(cfg, &item, depth, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                type_name(other)
            ));
        }
    }
    Ok(())
}

/// Lua's name for a value's type (a light userdata is a userdata).
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::LightUserData(_) => "userdata",
        other => other.type_name(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Token {
    fn name(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Boolean(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(text) => text,
        }
    }
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    depth: i32,
    cfg: &'a Config,
}

impl Parser<'_> {
    fn byte(&self, at: usize) -> u8 {
        self.data.get(at).copied().unwrap_or(0)
    }

    /// The next token and the offset it is reported at.
    fn token(&mut self) -> (Token, usize) {
        while matches!(self.byte(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let at = self.pos;
        let simple = match self.byte(at) {
            b'{' => Some(Token::ObjBegin),
            b'}' => Some(Token::ObjEnd),
            b'[' => Some(Token::ArrBegin),
            b']' => Some(Token::ArrEnd),
            b',' => Some(Token::Comma),
            b':' => Some(Token::Colon),
            0 => return (Token::End, at),
            _ => None,
        };
        if let Some(t) = simple {
            self.pos += 1;
            return (t, at);
        }
        let c = self.byte(at);
        if c == b'"' {
            return self.string();
        }
        if c == b'-' || c.is_ascii_digit() {
            if !self.cfg.decode_invalid && self.is_invalid_number() {
                return (Token::Error("invalid number"), at);
            }
            return self.number();
        }
        let rest = &self.data[at.min(self.data.len())..];
        for (word, token) in [
            (&b"true"[..], Token::Boolean(true)),
            (b"false", Token::Boolean(false)),
            (b"null", Token::Null),
        ] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return (token, at);
            }
        }
        if self.cfg.decode_invalid && self.is_invalid_number() {
            return self.number();
        }
        (Token::Error("invalid token"), at)
    }

    fn is_invalid_number(&self) -> bool {
        let mut p = self.pos;
        if self.byte(p) == b'+' {
            return true;
        }
        if self.byte(p) == b'-' {
            p += 1;
        }
        let c = self.byte(p);
        if c == b'0' {
            let next = self.byte(p + 1);
            return next == b'x' || next == b'X' || next.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let word: Vec<u8> = (0..3)
            .map(|i| self.byte(p + i).to_ascii_lowercase())
            .collect();
        word == b"inf" || word == b"nan"
    }

    fn number(&mut self) -> (Token, usize) {
        let at = self.pos;
        let end = self
            .data
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.data.len());
        match strtod(&self.data[at..end]) {
            Some((value, used)) => {
                self.pos += used;
                (Token::Number(value), at)
            }
            None => (Token::Error("invalid number"), at),
        }
    }

    fn string(&mut self) -> (Token, usize) {
        let start = self.pos;
        let mut p = start + 1;
        let mut out = Vec::new();
        loop {
            let c = self.byte(p);
            if p >= self.data.len() || c == 0 {
                return (Token::Error("unexpected end of string"), p);
            }
            if c == b'"' {
                self.pos = p + 1;
                return (Token::Str(out), start);
            }
            if c != b'\\' {
                out.push(c);
                p += 1;
                continue;
            }
            let escape = self.byte(p + 1);
            let simple = match escape {
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'/' => Some(b'/'),
                b'b' => Some(0x08),
                b't' => Some(b'\t'),
                b'n' => Some(b'\n'),
                b'f' => Some(0x0C),
                b'r' => Some(b'\r'),
                _ => None,
            };
            if let Some(b) = simple {
                out.push(b);
                p += 2;
                continue;
            }
            if escape != b'u' {
                return (Token::Error("invalid escape code"), p);
            }
            match self.unicode_escape(p) {
                Some((code, used)) => {
                    let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    p += used;
                }
                None => return (Token::Error("invalid unicode escape code"), p),
            }
        }
    }

    /// `\uXXXX` (and a surrogate pair) at `p`: the code point and the bytes taken.
    fn unicode_escape(&self, p: usize) -> Option<(u32, usize)> {
        let hex4 = |at: usize| -> Option<u32> {
            let digits = self.data.get(at..at + 4)?;
            let text = std::str::from_utf8(digits).ok()?;
            if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(text, 16).ok()
        };
        let high = hex4(p + 2)?;
        if !(0xD800..=0xDFFF).contains(&high) {
            return Some((high, 6));
        }
        if high > 0xDBFF || self.byte(p + 6) != b'\\' || self.byte(p + 7) != b'u' {
            return None;
        }
        let low = hex4(p + 8)?;
        if !(0xDC00..=0xDFFF).contains(&low) {
            return None;
        }
        Some((0x10000 + (((high & 0x3FF) << 10) | (low & 0x3FF)), 12))
    }
}

fn expected(what: &str, token: &Token, at: usize) -> String {
    format!(
        "Expected {what} but found {} at character {}",
        token.name(),
        at + 1
    )
}

fn decode_call(lua: &Lua, cfg: &Config, args: &[Value]) -> LibResult {
    if args.len() != 1 {
        return Err(arg_error(1, "decode", "expected 1 argument"));
    }
    let text = match &args[0] {
        Value::String(s) => s.as_bytes().to_vec(),
        v @ (Value::Number(_) | Value::Integer(_)) => lua
            .coerce_string(v.clone())
            .ok()
            .flatten()
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default(),
        other => {
            return Err(arg_error(
                1,
                "decode",
                &format!("string expected, got {}", type_name(other)),
            ))
        }
    };
    if text.len() >= 2 && (text[0] == 0 || text[1] == 0) {
        return Err("JSON parser does not support UTF-16 or UTF-32".into());
    }
    let mut parser = Parser {
        data: &text,
        pos: 0,
        depth: 0,
        cfg,
    };
    let (token, at) = parser.token();
    let value = parse_value(lua, &mut parser, token, at)?;
    let (token, at) = parser.token();
    if token != Token::End {
        return Err(expected("the end", &token, at));
    }
    Ok(vec![value])
}

fn descend(parser: &mut Parser) -> Result<(), String> {
    parser.depth += 1;
    if parser.depth > parser.cfg.decode_max_depth || parser.depth > MAX_NESTING {
        return Err(format!(
            "Found too many nested data structures ({}) at character {}",
            parser.depth, parser.pos
        ));
    }
    Ok(())
}

fn parse_value(lua: &Lua, parser: &mut Parser, token: Token, at: usize) -> Result<Value, String> {
    let lua_err = |e: mlua::Error| e.to_string();
    match token {
        Token::Str(s) => Ok(Value::String(lua.create_string(&s).map_err(lua_err)?)),
        Token::Number(n) => Ok(Value::Number(n)),
        Token::Boolean(b) => Ok(Value::Boolean(b)),
        Token::Null => Ok(null()),
        Token::ObjBegin => {
            descend(parser)?;
            let t = lua.create_table().map_err(lua_err)?;
            let (mut token, mut at) = parser.token();
            if token == Token::ObjEnd {
                parser.depth -= 1;
                return Ok(Value::Table(t));
            }
            loop {
                let Token::Str(key) = token else {
                    return Err(expected("object key string", &token, at));
                };
                let (colon, colon_at) = parser.token();
                if colon != Token::Colon {
                    return Err(expected("colon", &colon, colon_at));
                }
                let (next, next_at) = parser.token();
                let value = parse_value(lua, parser, next, next_at)?;
                t.raw_set(lua.create_string(&key).map_err(lua_err)?, value)
                    .map_err(lua_err)?;
                let (sep, sep_at) = parser.token();
                match sep {
                    Token::ObjEnd => break,
                    Token::Comma => {}
                    other => return Err(expected("comma or object end", &other, sep_at)),
                }
                (token, at) = parser.token();
            }
            parser.depth -= 1;
            Ok(Value::Table(t))
        }
        Token::ArrBegin => {
            descend(parser)?;
            let t = lua.create_table().map_err(lua_err)?;
            let (mut token, mut at) = parser.token();
            if token == Token::ArrEnd {
                parser.depth -= 1;
                return Ok(Value::Table(t));
            }
            let mut i = 1;
            loop {
                let value = parse_value(lua, parser, token, at)?;
                t.raw_set(i, value).map_err(lua_err)?;
                i += 1;
                let (sep, sep_at) = parser.token();
                match sep {
                    Token::ArrEnd => break,
                    Token::Comma => {}
                    other => return Err(expected("comma or array end", &other, sep_at)),
                }
                (token, at) = parser.token();
            }
            parser.depth -= 1;
            Ok(Value::Table(t))
        }
        other => Err(expected("value", &other, at)),
    }
}

/// glibc's strtod on the start of `s`: the value and the bytes it read, None if none.
pub fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let mut p = 0;
    let negative = match s.first() {
        Some(b'-') => {
            p += 1;
            true
        }
        Some(b'+') => {
            p += 1;
            false
        }
        _ => false,
    };
    let sign = if negative { -1.0 } else { 1.0 };
    let rest = &s[p..];
    let lower = |n: usize| -> Vec<u8> { rest.iter().take(n).map(u8::to_ascii_lowercase).collect() };
    if lower(8) == b"infinity" {
        return Some((sign * f64::INFINITY, p + 8));
    }
    if lower(3) == b"inf" {
        return Some((sign * f64::INFINITY, p + 3));
    }
    if lower(3) == b"nan" {
        let mut used = p + 3;
        if s.get(used) == Some(&b'(') {
            let close = s[used + 1..]
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'));
            if let Some(len) = close {
                if s.get(used + 1 + len) == Some(&b')') {
                    used += len + 2;
                }
            }
        }
        let nan = if negative { -f64::NAN } else { f64::NAN };
        return Some((nan, used));
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        if let Some((value, used)) = hex_float(&rest[2..]) {
            return Some((sign * value, p + 2 + used));
        }
        return Some((sign * 0.0, p + 1));
    }
    let mut q = 0;
    let digits = |q: &mut usize| {
        let start = *q;
        while rest.get(*q).is_some_and(u8::is_ascii_digit) {
            *q += 1;
        }
        *q - start
    };
    let mut count = digits(&mut q);
    if rest.get(q) == Some(&b'.') {
        q += 1;
        count += digits(&mut q);
    }
    if count == 0 {
        return None;
    }
    if rest.get(q).is_some_and(|&b| b == b'e' || b == b'E') {
        let mut e = q + 1;
        if rest.get(e).is_some_and(|&b| b == b'+' || b == b'-') {
            e += 1;
        }
        if rest.get(e).is_some_and(u8::is_ascii_digit) {
            q = e;
            digits(&mut q);
        }
    }
    let text = std::str::from_utf8(&rest[..q]).ok()?;
    let text = if text.starts_with('.') {
        format!("0{text}")
    } else {
        text.to_string()
    };
    let value: f64 = text.parse().ok()?;
    Some((sign * value, p + q))
}

/// The hex digits (with a fraction and a `p` exponent) after `0x`: value and bytes read.
fn hex_float(s: &[u8]) -> Option<(f64, usize)> {
    let mut value = 0.0f64;
    let mut q = 0;
    let mut seen = false;
    while let Some(d) = s.get(q).and_then(|b| (*b as char).to_digit(16)) {
        value = value * 16.0 + f64::from(d);
        q += 1;
        seen = true;
    }
    let mut scale = 0i32;
    if s.get(q) == Some(&b'.') {
        let mut f = q + 1;
        let mut any = false;
        while let Some(d) = s.get(f).and_then(|b| (*b as char).to_digit(16)) {
            value = value * 16.0 + f64::from(d);
            scale -= 4;
            f += 1;
            any = true;
        }
        if seen || any {
            q = f;
            seen = true;
        }
    }
    if !seen {
        return None;
    }
    if s.get(q).is_some_and(|&b| b == b'p' || b == b'P') {
        let mut e = q + 1;
        let negative = s.get(e) == Some(&b'-');
        if s.get(e).is_some_and(|&b| b == b'+' || b == b'-') {
            e += 1;
        }
        let start = e;
        let mut exp = 0i32;
        while let Some(d) = s.get(e).filter(|b| b.is_ascii_digit()) {
            exp = exp.saturating_mul(10).saturating_add(i32::from(d - b'0'));
            e += 1;
        }
        if e > start {
            scale = scale.saturating_add(if negative { -exp } else { exp });
            q = e;
        }
    }
    Some((value * 2f64.powi(scale), q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_reads_what_glibc_reads() {
        assert_eq!(strtod(b"+5"), Some((5.0, 2)));
        assert_eq!(strtod(b"0x1F"), Some((31.0, 4)));
        assert_eq!(strtod(b"0x1.8p1"), Some((3.0, 7)));
        assert_eq!(strtod(b"1e"), Some((1.0, 1)));
        assert_eq!(strtod(b"0x"), Some((0.0, 1)));
        assert_eq!(strtod(b"-.5"), Some((-0.5, 3)));
        assert_eq!(strtod(b"1."), Some((1.0, 2)));
        assert_eq!(strtod(b"Infinity"), Some((f64::INFINITY, 8)));
        assert!(strtod(b".").is_none());
        assert!(strtod(b"x").is_none());
    }
}
