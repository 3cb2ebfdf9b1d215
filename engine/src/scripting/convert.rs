//! Conversions between command replies and Lua values, by Redis's rules for scripts: a
//! reply becomes what `redis.call` returns (RESP2 or, after `redis.setresp(3)`, RESP3
//! forms), and a script's return value becomes the reply its caller gets.

use mlua::{Lua, Table, Value};

use crate::protocol::reply::format_double;
use crate::protocol::Reply;

/// A command's reply as `redis.call` returns it to the script.
pub fn reply_to_lua(lua: &Lua, reply: Reply, resp3: bool) -> mlua::Result<Value> {
    let field = |name: &str, value: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(name, value)?;
        Ok(Value::Table(t))
    };
    let string = |bytes: &[u8]| lua.create_string(bytes).map(Value::String);
    Ok(match reply {
        Reply::Status(s) => field("ok", string(s.as_bytes())?)?,
        Reply::StatusOwned(s) => field("ok", string(s.as_bytes())?)?,
        Reply::Error(e) => {
            let t = lua.create_table()?;
            t.raw_set("err", e)?;
            t.raw_set("ignore_error_stats_update", true)?;
            Value::Table(t)
        }
        Reply::Int(n) => Value::Number(n as f64),
        Reply::Bulk(b) => string(&b)?,
        Reply::Null | Reply::NullArray if resp3 => Value::Nil,
        Reply::Null | Reply::NullArray => Value::Boolean(false),
        Reply::Bool(b) if resp3 => Value::Boolean(b),
        Reply::Bool(b) => Value::Number(f64::from(u8::from(b))),
        // Scripts cannot subscribe, so a push only reaches them as an array.
        Reply::Array(items) | Reply::Push(items) => array(lua, items, resp3)?,
        Reply::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(reply_to_lua(lua, item, resp3)?, true)?;
            }
            field("set", Value::Table(set))?
        }
        Reply::Set(items) => array(lua, items, resp3)?,
        Reply::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(reply_to_lua(lua, k, resp3)?, reply_to_lua(lua, v, resp3)?)?;
            }
            field("map", Value::Table(map))?
        }
        Reply::Map(pairs) => array(
            lua,
            pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            resp3,
        )?,
        Reply::Double(d) if resp3 => field("double", Value::Number(d))?,
        Reply::Double(d) => string(format_double(d).as_bytes())?,
        Reply::DoubleText(text) if resp3 => {
            field("double", Value::Number(text.parse().unwrap_or(f64::NAN)))?
        }
        Reply::DoubleText(text) => string(text.as_bytes())?,
        Reply::BigNumber(n) if resp3 => field("big_number", string(n.as_bytes())?)?,
        Reply::BigNumber(n) => string(n.as_bytes())?,
        Reply::Verbatim(text) if resp3 => {
            let v = lua.create_table()?;
            v.raw_set("format", "txt")?;
            v.raw_set("string", lua.create_string(text.as_bytes())?)?;
            field("verbatim_string", Value::Table(v))?
        }
        Reply::Verbatim(text) => string(text.as_bytes())?,
        encoded @ (Reply::Encoded(_) | Reply::Pushes(_)) => {
            reply_to_lua(lua, encoded.into_tree(), resp3)?
        }
    })
}

fn array(lua: &Lua, items: Vec<Reply>, resp3: bool) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.into_iter().enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
    }
    Ok(Value::Table(t))
}

/// How deep a returned table may nest before the rest is cut (Redis stops at its Lua stack
/// limit, with this error in place of the deeper levels). Lower than Redis's ~7,900: the
/// reply is built, encoded and freed by recursive walks on a worker thread's stack, which a
/// self-referencing table 7,900 deep overflowed (the process aborted).
const MAX_DEPTH: usize = 1000;

/// A script's result as its caller's reply. `resp3` is the script's protocol (setresp),
/// which decides what booleans become.
pub fn lua_to_reply(value: &Value, resp3: bool) -> Reply {
    to_reply(value, resp3, 0)
}

fn to_reply(value: &Value, resp3: bool, depth: usize) -> Reply {
    match value {
        Value::String(s) => Reply::bulk(s.as_bytes()),
        Value::Integer(n) => Reply::Int(*n),
        Value::Number(n) => Reply::Int(c_truncate(*n)),
        Value::Boolean(true) if resp3 => Reply::Bool(true),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) if resp3 => Reply::Bool(false),
        Value::Table(_) if depth >= MAX_DEPTH => Reply::error("ERR reached lua stack limit"),
        Value::Table(t) => table_to_reply(t, resp3, depth),
        _ => Reply::Null,
    }
}

fn table_to_reply(t: &Table, resp3: bool, depth: usize) -> Reply {
    let get = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = get("err") {
        return Reply::Error(one_line(&e.to_string_lossy()));
    }
    if let Value::String(ok) = get("ok") {
        let text = ok.to_string_lossy();
        let text = text.split('\0').next().unwrap_or_default();
        return Reply::StatusOwned(one_line(text));
    }
    if let Value::Number(d) = get("double") {
        return Reply::Double(d);
    }
    if let Value::Integer(d) = get("double") {
        return Reply::Double(d as f64);
    }
    if let Value::String(n) = get("big_number") {
        return Reply::BigNumber(one_line(&n.to_string_lossy()));
    }
    if let Value::Table(v) = get("verbatim_string") {
        if let (Ok(Value::String(_)), Ok(Value::String(text))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            return Reply::Verbatim(text.to_string_lossy());
        }
    }
    if let Value::Table(map) = get("map") {
        let pairs = map
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                (
                    to_reply(&k, resp3, depth + 1),
                    to_reply(&v, resp3, depth + 1),
                )
            })
            .collect();
        return Reply::Map(pairs);
    }
    if let Value::Table(set) = get("set") {
        let members = set
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| to_reply(&k, resp3, depth + 1))
            .collect();
        return Reply::Set(members);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_reply(&v, resp3, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// A double cast to an integer as C's (long long) cast does on x86-64: toward zero, and
/// the "integer indefinite" value for NaN or out of range.
pub fn c_truncate(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// Error and status texts go out on one line.
fn one_line(text: &str) -> String {
    text.trim_end_matches(['\r', '\n'])
        .replace(['\r', '\n'], " ")
}
