//! Lua scripting for the EVAL family: one Lua 5.1 state per instance (mlua, vendored Lua
//! 5.1, the version Redis runs) with Redis's script environment, the script cache, and the
//! run itself. A script runs atomically: under the keyspace lock its EVAL holds, with
//! `redis.call` going through the same dispatch as clients' commands (`commands::run`).
//!
//! The environment (env.lua): `redis.*`, Redis's `pcall`, `bit`, and readonly globals. Stock
//! Lua 5.1 has no readonly tables, so a script sees the globals through a proxy whose writes
//! fail with Redis's text ("Attempt to modify a readonly table"), and so do the library
//! tables it reaches through it.
//!
//! Other clients see a running script through `ScriptStatus` (no lock needed): past
//! busy-reply-threshold they get -BUSY, and SCRIPT KILL stops a script that has not written.

mod bit;
mod cjson;
mod cmsgpack;
pub mod convert;
mod libs;
mod struct_lib;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

/// A script's flags, from its shebang (`#!lua flags=...`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScriptFlags {
    /// A `#!lua` line was there: Redis checks such a script's writes before it runs.
    pub shebang: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
}

impl ScriptFlags {
    /// Takes one flag of a shebang or of register_function's `flags`; false if unknown.
    /// allow-stale, no-cluster and allow-cross-slot-keys are accepted and change nothing
    /// (there are no replicas or cluster yet).
    fn set(&mut self, flag: &str) -> bool {
        match flag {
            "no-writes" => self.no_writes = true,
            "allow-oom" => self.allow_oom = true,
            "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
            _ => return false,
        }
        true
    }
}

/// A compiled script in the cache.
pub struct Script {
    pub function: Function,
    pub flags: ScriptFlags,
}

/// The instance's Lua state and script cache.
pub struct Scripts {
    pub lua: Lua,
    /// By lowercase SHA1 of the body.
    pub cache: HashMap<String, Script>,
    /// Runs a function under Redis's error handler: (true, result) or (false, error table).
    runner: Function,
    /// Runs a library's code, collecting what it registers: (ok, error, registered).
    loader: Function,
    /// Function libraries by name, and functions by lowercase name.
    pub libraries: std::collections::BTreeMap<String, Library>,
    pub functions: HashMap<String, LibFunction>,
    /// The readonly globals every script runs with.
    sandbox: Table,
    /// Scripts run since the last garbage-collection step.
    runs: u32,
}

/// A running script, as other clients see it without the keyspace lock.
#[derive(Debug, Default)]
pub struct ScriptStatus {
    running: AtomicBool,
    started_ms: AtomicU64,
    /// busy-reply-threshold (alias lua-time-limit), in ms; 0: never busy, never killable.
    pub threshold_ms: AtomicU64,
    kill: AtomicBool,
    /// The script ran a write command: SCRIPT KILL may no longer stop it.
    wrote: AtomicBool,
}

/// What SCRIPT KILL found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KillOutcome {
    Killed,
    NotBusy,
    Unkillable,
}

impl ScriptStatus {
    pub fn with_threshold(threshold_ms: u64) -> Self {
        let status = ScriptStatus::default();
        status.threshold_ms.store(threshold_ms, Ordering::Relaxed);
        status
    }

    /// True while a script runs past busy-reply-threshold: other clients are answered -BUSY.
    pub fn timed_out(&self) -> bool {
        let threshold = self.threshold_ms.load(Ordering::Relaxed);
        self.running.load(Ordering::Acquire)
            && threshold > 0
            && crate::util::now_ms().saturating_sub(self.started_ms.load(Ordering::Relaxed))
                >= threshold
    }

    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// SCRIPT KILL: flags the running script to stop at its next check.
    pub fn kill(&self, force: bool) -> KillOutcome {
        if !self.running() {
            return KillOutcome::NotBusy;
        }
        if self.wrote.load(Ordering::Acquire) && !force {
            return KillOutcome::Unkillable;
        }
        self.kill.store(true, Ordering::Release);
        KillOutcome::Killed
    }

    pub fn note_write(&self) {
        self.wrote.store(true, Ordering::Release);
    }

    fn begin(&self) {
        self.kill.store(false, Ordering::Release);
        self.wrote.store(false, Ordering::Release);
        self.started_ms
            .store(crate::util::now_ms(), Ordering::Relaxed);
        self.running.store(true, Ordering::Release);
    }

    fn end(&self) {
        self.running.store(false, Ordering::Release);
    }

    fn killed(&self) -> bool {
        self.kill.load(Ordering::Acquire)
    }
}

/// Registry slots: the running EVAL's control function, and the error table of the
/// redis.call that just failed.
const CONTROL: &str = "cachedesk.control";
const PENDING_ERROR: &str = "cachedesk.pending_error";

/// The running EVAL's control function (scripting calls outside a run are refused).
fn lent_control(lua: &Lua) -> mlua::Result<Function> {
    match lua.named_registry_value::<Value>(CONTROL)? {
        Value::Function(f) => Ok(f),
        _ => Err(mlua::Error::runtime(
            "redis.call/pcall can only be called inside a script invocation",
        )),
    }
}

/// Raises Redis's error table {err = text} from a native function: the table waits in the
/// registry for the error handler (mlua raises its own error value).
fn raise(lua: &Lua, text: &str) -> mlua::Result<mlua::Error> {
    let error = lua.create_table()?;
    error.raw_set("err", text)?;
    lua.set_named_registry_value(PENDING_ERROR, error)?;
    Ok(mlua::Error::runtime(text.to_string()))
}

/// The text a killed script's caller gets (before the " script: ..." suffix).
pub const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

/// How often (in Lua VM instructions) a running script checks its time and SCRIPT KILL.
const HOOK_INSTRUCTIONS: u32 = 100_000;

impl Scripts {
    pub fn new() -> mlua::Result<Scripts> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        let natives = lua.create_table()?;
        // Native, as in Redis (a C function keeps the script's frame below it).
        natives.set(
            "sha1hex",
            lua.create_function(|lua, args: MultiValue| {
                if args.len() != 1 {
                    return Err(raise(lua, "ERR wrong number of arguments")?);
                }
                // As lua_tolstring reads it: a number as Lua writes it, others as "".
                let text = match &args[0] {
                    Value::String(s) => s.as_bytes().to_vec(),
                    v @ (Value::Number(_) | Value::Integer(_)) => lua
                        .coerce_string(v.clone())?
                        .map(|s| s.as_bytes().to_vec())
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                lua.create_string(sha1_hex(&text))
            })?,
        )?;
        natives.set("bit", bit::library(&lua)?)?;
        natives.set("cjson", cjson::module(&lua)?)?;
        natives.set("cmsgpack", cmsgpack::module(&lua)?)?;
        natives.set("struct", struct_lib::module(&lua)?)?;
        natives.set(
            "control",
            lua.create_function(|lua, args: MultiValue| {
                lent_control(lua)?.call::<MultiValue>(args)
            })?,
        )?;
        // redis.call and redis.pcall hand their arguments over as one table (a script may
        // pass thousands, more than the Lua stack takes twice).
        let call = |lua: &Lua, args: MultiValue| -> mlua::Result<(bool, Value)> {
            let args = lua.create_sequence_from(args)?;
            lent_control(lua)?.call(("call", args))
        };
        natives.set(
            "call",
            lua.create_function(move |lua, args: MultiValue| match call(lua, args)? {
                (true, value) => Ok(value),
                (false, error) => {
                    lua.set_named_registry_value(PENDING_ERROR, error)?;
                    Err(mlua::Error::runtime("redis.call failed"))
                }
            })?,
        )?;
        natives.set(
            "pcall",
            lua.create_function(move |lua, args: MultiValue| Ok(call(lua, args)?.1))?,
        )?;
        natives.set(
            "take_error",
            lua.create_function(|lua, ()| {
                let e: Value = lua.named_registry_value(PENDING_ERROR)?;
                lua.set_named_registry_value(PENDING_ERROR, Value::Nil)?;
                Ok(e)
            })?,
        )?;
        natives.set("rand48", lua.create_function(|_, ()| Ok(lrand48()))?)?;
        natives.set(
            "seed48",
            lua.create_function(|_, seed: f64| {
                seed48(seed);
                Ok(())
            })?,
        )?;
        let (runner, sandbox, loader): (Function, Table, Function) = lua
            .load(include_str!("env.lua"))
            .set_name("=env")
            .call((natives, crate::REDIS_VERSION, version_number()))?;
        Ok(Scripts {
            lua,
            cache: HashMap::new(),
            runner,
            loader,
            libraries: Default::default(),
            functions: HashMap::new(),
            sandbox,
            runs: 0,
        })
    }

    /// Compiles a script into the cache (unless there already); returns its SHA1.
    pub fn load(&mut self, body: &[u8]) -> Result<String, String> {
        let sha = sha1_hex(body);
        if self.cache.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, code_start) = parse_shebang(body)?;
        let function = self
            .lua
            .load(&body[code_start..])
            .set_name("@user_script")
            .set_environment(self.sandbox.clone())
            .into_function()
            .map_err(|e| format!("Error compiling script (new function): {}", lua_message(&e)))?;
        self.cache.insert(sha.clone(), Script { function, flags });
        Ok(sha)
    }

    /// Loads a function library (FUNCTION LOAD): runs its code, which registers its
    /// functions with redis.register_function. Returns the library's name.
    pub fn load_library(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let (name, code_start) = parse_library_shebang(code)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(format!("Library '{name}' already exists"));
        }
        let chunk = self
            .lua
            .load(&code[code_start..])
            .set_name("@user_function")
            .set_environment(self.sandbox.clone())
            .into_function()
            .map_err(|e| format!("Error compiling function: {}", lua_message(&e)))?;
        let (ok, error, registered): (bool, Value, Table) = self
            .loader
            .call(chunk)
            .map_err(|e| format!("Error registering functions: {}", lua_message(&e)))?;
        if !ok {
            let text = match &error {
                Value::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
                other => format!("{other:?}"),
            };
            return Err(format!(
                "Error registering functions: {}",
                text.strip_prefix("ERR ").unwrap_or(&text)
            ));
        }
        let mut functions = Vec::new();
        for entry in registered.sequence_values::<Table>() {
            let entry = entry.map_err(|e| e.to_string())?;
            let fname: String = entry.raw_get("name").map_err(|e| e.to_string())?;
            let function: Function = entry.raw_get("callback").map_err(|e| e.to_string())?;
            let flag_names: Vec<String> = entry.raw_get("flags").unwrap_or_default();
            let mut flags = ScriptFlags {
                shebang: true,
                ..ScriptFlags::default()
            };
            if !flag_names.iter().all(|flag| flags.set(flag)) {
                return Err("Error registering functions: unknown flag given".into());
            }
            let description: Option<String> = entry.raw_get("description").unwrap_or_default();
            let key = fname.to_ascii_lowercase();
            if functions.iter().any(|f: &(String, LibFunction)| f.0 == key) {
                return Err(format!("Function {fname} already exists"));
            }
            if let Some(other) = self.functions.get(&key) {
                if !other.library.eq_ignore_ascii_case(&name) {
                    return Err(format!("Function {fname} already exists"));
                }
            }
            functions.push((
                key,
                LibFunction {
                    name: fname,
                    library: name.clone(),
                    function,
                    flags,
                    flag_names,
                    description,
                },
            ));
        }
        if functions.is_empty() {
            return Err("No functions registered".into());
        }
        self.delete_library(&name);
        self.libraries.insert(
            name.clone(),
            Library {
                name: name.clone(),
                code: code.to_vec(),
                functions: functions.iter().map(|(n, _)| n.clone()).collect(),
            },
        );
        self.functions.extend(functions);
        Ok(name)
    }

    /// Removes a library and its functions; false if there was none.
    pub fn delete_library(&mut self, name: &str) -> bool {
        let Some(library) = self.libraries.remove(name) else {
            return false;
        };
        for f in &library.functions {
            self.functions.remove(f);
        }
        true
    }

    /// Runs a cached script (KEYS and ARGV as globals) or a library function (KEYS and ARGV
    /// as its arguments). `control` serves redis.call and the rest (see env.lua). Returns the
    /// result or the error table.
    pub fn run(
        &mut self,
        target: Target<'_>,
        keys: &[&[u8]],
        argv: &[&[u8]],
        status: &Arc<ScriptStatus>,
        control: &mut dyn FnMut(&Lua, MultiValue) -> mlua::Result<MultiValue>,
    ) -> Result<Value, RunError> {
        let function = match target {
            Target::Script(sha) => self.cache.get(sha).map(|s| s.function.clone()),
            Target::Function(name) => self
                .functions
                .get(&name.to_ascii_lowercase())
                .map(|f| f.function.clone()),
        }
        .ok_or(RunError::NoScript)?;
        let to_table = |items: &[&[u8]]| -> mlua::Result<Table> {
            let t = self.lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, self.lua.create_string(item)?)?;
            }
            Ok(t)
        };
        let keys = to_table(keys).map_err(RunError::Lua)?;
        let argv = to_table(argv).map_err(RunError::Lua)?;
        let as_arguments = matches!(target, Target::Function(_));
        if !as_arguments {
            let globals = self.lua.globals();
            globals
                .raw_set("KEYS", keys.clone())
                .map_err(RunError::Lua)?;
            globals
                .raw_set("ARGV", argv.clone())
                .map_err(RunError::Lua)?;
        }
        self.runs += 1;
        if self.runs >= 50 {
            self.runs = 0;
            let _ = self.lua.gc_step_kbytes(50);
        }
        status.begin();
        let hooked = status.threshold_ms.load(Ordering::Relaxed) > 0;
        if hooked {
            let status = status.clone();
            let _ = self.lua.set_hook(
                HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS),
                move |_, _| {
                    if status.killed() {
                        Err(mlua::Error::runtime(KILLED))
                    } else {
                        Ok(VmState::Continue)
                    }
                },
            );
        }
        let runner = self.runner.clone();
        let outcome = self.lua.scope(|scope| {
            let lent = scope.create_function_mut(|lua, args: MultiValue| control(lua, args))?;
            self.lua.set_named_registry_value(CONTROL, lent)?;
            let killed = scope.create_function(|_, ()| Ok(status.killed()))?;
            let outcome = if as_arguments {
                runner.call::<(bool, Value)>((function, killed, keys, argv))
            } else {
                runner.call::<(bool, Value)>((function, killed))
            };
            self.lua.set_named_registry_value(CONTROL, Value::Nil)?;
            outcome
        });
        if hooked {
            self.lua.remove_hook();
        }
        let killed = status.killed();
        status.end();
        match outcome {
            Ok((true, value)) => Ok(value),
            Ok((false, error)) if killed => Err(RunError::Killed(error_line(&error))),
            Ok((false, error)) => Err(RunError::Script(error)),
            Err(e) => Err(RunError::Lua(e)),
        }
    }
}

/// What a run runs.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A cached EVAL script, by SHA1.
    Script(&'a str),
    /// A library function (FCALL), by name.
    Function(&'a str),
}

/// A function library (FUNCTION LOAD): its code, and the functions it registered (by
/// lowercase name: function names are case-insensitive in Redis, library names are not).
pub struct Library {
    pub name: String,
    pub code: Vec<u8>,
    pub functions: Vec<String>,
}

/// A function a library registered.
pub struct LibFunction {
    pub name: String,
    pub library: String,
    pub function: Function,
    pub flags: ScriptFlags,
    pub flag_names: Vec<String>,
    pub description: Option<String>,
}

/// Reads a library's `#!lua name=<name>` first line: the name and where the code starts.
fn parse_library_shebang(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]);
    let mut tokens = line.split_ascii_whitespace();
    let engine = &tokens.next().unwrap_or_default()[2..];
    let mut name = None;
    for token in tokens {
        match token.get(..5) {
            Some(prefix) if prefix.eq_ignore_ascii_case("name=") => {
                if name.is_some() {
                    return Err(
                        "Invalid metadata value, name argument was given multiple times".into(),
                    );
                }
                name = Some(token[5..].to_string());
            }
            _ => return Err(format!("Invalid metadata value given: {token}")),
        }
    }
    let name = name.ok_or("Library name was not given")?;
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    Ok((name, end))
}

/// Why a run gave no result.
#[derive(Debug)]
pub enum RunError {
    NoScript,
    /// The script raised an error: its table ({err=..., line=...}).
    Script(Value),
    /// SCRIPT KILL stopped it (at this line of the script, if known).
    Killed(Option<i64>),
    Lua(mlua::Error),
}

/// The line an error table points at (`line`, set by the error handler).
pub fn error_line(error: &Value) -> Option<i64> {
    match error {
        Value::Table(t) => t.raw_get::<Option<i64>>("line").ok().flatten(),
        _ => None,
    }
}

/// A Lua error's message, without mlua's decorations.
fn lua_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_message(cause),
        other => other.to_string(),
    }
}

pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// Redis's scripts' PRNG: a 48-bit linear congruential generator (as lrand48), one state
/// per process, never reseeded by itself.
static RAND48: std::sync::Mutex<u64> = std::sync::Mutex::new(0x1234_ABCD_330E);

fn lrand48() -> u32 {
    let mut x = RAND48.lock().unwrap_or_else(|e| e.into_inner());
    *x = (0x5_DEEC_E66D_u64.wrapping_mul(*x).wrapping_add(0xB)) & ((1 << 48) - 1);
    (*x >> 17) as u32
}

fn seed48(seed: f64) {
    let n = seed as i32 as u32 as u64;
    let mut x = RAND48.lock().unwrap_or_else(|e| e.into_inner());
    *x = ((n >> 16) << 32) | ((n & 0xffff) << 16) | 0x330E;
}

/// REDIS_VERSION_NUM: 0x00MMmmpp.
fn version_number() -> i64 {
    crate::REDIS_VERSION
        .split('.')
        .map(|p| p.parse::<i64>().unwrap_or(0))
        .fold(0, |n, part| (n << 8) | part)
}

/// Reads a `#!lua flags=...` first line: the flags and where the code starts (the line
/// itself is left out, its newline kept so line numbers stay).
pub fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::default(), 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut tokens = line.split_ascii_whitespace();
    let engine = tokens.next().unwrap_or_default();
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = ScriptFlags {
        shebang: true,
        ..ScriptFlags::default()
    };
    for token in tokens {
        let Some(list) = token.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {token}"));
        };
        if list.is_empty() {
            continue;
        }
        if let Some(unknown) = list.split(',').find(|flag| !flags.set(flag)) {
            return Err(format!("Unexpected flag in script shebang: {unknown}"));
        }
    }
    Ok((flags, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_parse_as_redis() {
        assert_eq!(parse_shebang(b"return 1").unwrap().1, 0);
        let (flags, at) = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(flags.shebang && flags.no_writes && flags.allow_oom && at == 31);
        assert_eq!(
            parse_shebang(b"#!not-lua\nreturn 1").unwrap_err(),
            "Unexpected engine in script shebang: #!not-lua"
        );
        assert!(parse_shebang(b"#!lua badger=data\n").is_err());
        assert!(parse_shebang(b"#!lua flags=allow-oom,what?\n").is_err());
        assert!(parse_shebang(b"#!lua").is_err());
    }

    #[test]
    fn prng_is_lrand48() {
        *RAND48.lock().unwrap() = 0x1234_ABCD_330E;
        let first = lrand48();
        *RAND48.lock().unwrap() = 0x1234_ABCD_330E;
        assert_eq!(lrand48(), first);
        assert!(first < 1 << 31);
    }
}
