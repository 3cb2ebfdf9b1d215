-- The environment scripts run in, built once per Lua state (scripting/mod.rs loads it with
-- the natives written in Rust and the version string). It sets up Redis's `redis` table, its
-- pcall, math.random, bit, an error handler that notes the script's line, and the readonly
-- sandbox every script sees as its globals. Returns the runner and the sandbox:
-- runner(script, control, killed) -> ok, result-or-error-table.
local natives, version, version_num = ...
local G = _G
local type, tostring, tonumber, error, select = type, tostring, tonumber, error, select
local rawget, rawset, rawequal = rawget, rawset, rawequal
local setmetatable, getmetatable = setmetatable, getmetatable
local getfenv, setfenv, loadstring, load = getfenv, setfenv, loadstring, load
local pcall, xpcall, floor = pcall, xpcall, math.floor
local READONLY = 'Attempt to modify a readonly table'

-- Not for scripts: files and printing (the debug library is not loaded).
G.dofile, G.loadfile, G.print = nil, nil, nil

-- The script line of the nearest script frame from `level` above the caller on (1: the
-- caller itself), from the position error() would give it ("user_script:N: ").
local function script_line(level)
  for up = level + 2, level + 10 do
    local _, at = pcall(error, '', up)
    local line = at:match('^user_[a-z]+:(%d+): $')
    if line then
      return tonumber(line)
    end
  end
end

-- What the running EVAL lends the script: killed() (true once SCRIPT KILL stopped it),
-- and control(op, ...) for redis.call and friends (natives.control reaches it). Unset
-- between runs.
local current = {}
local control = natives.control

-- Redis's error table for an error text: "-CODE message", or "ERR message".
local function error_table(text)
  local code, message
  if text:sub(1, 1) == '-' then
    local space = text:find(' ', 2, true)
    if space then
      code, message = text:sub(2, space - 1), text:sub(space + 1)
    else
      code, message = 'ERR', text:sub(2)
    end
  else
    code, message = 'ERR', text
  end
  message = message:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
  return {err = code .. ' ' .. message}
end

-- redis.call is native (a C function to Lua, as in Redis, so a script's frame stays below
-- it even in a tail call); its error table is handed over beside the error it raises.
local take_error = natives.take_error
local function as_table(e)
  if type(e) == 'userdata' then
    return take_error() or e
  end
  return e
end
local redis = {}
redis.call = natives.call
redis.pcall = natives.pcall
function redis.error_reply(...)
  local text = ...
  if select('#', ...) ~= 1 or type(text) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  if text:sub(1, 1) ~= '-' then
    text = '-' .. text
  end
  return error_table(text)
end
function redis.status_reply(...)
  local text = ...
  if select('#', ...) ~= 1 or type(text) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = text}
end
redis.sha1hex = natives.sha1hex
function redis.log(...)
  if select('#', ...) < 2 then
    error({err = 'ERR redis.log() requires two arguments or more.'}, 0)
  end
  local level = tonumber((...))
  if not level then
    error({err = 'ERR First argument must be a number (log level).'}, 0)
  end
  if level < 0 or level > 3 then
    error({err = 'ERR Invalid debug level.'}, 0)
  end
  local parts = {}
  for i = 2, select('#', ...) do
    local v = select(i, ...)
    if type(v) == 'string' or type(v) == 'number' then
      parts[#parts + 1] = tostring(v)
    end
  end
  control('log', level, table.concat(parts, ' '))
end
function redis.setresp(...)
  if select('#', ...) ~= 1 then
    error({err = 'ERR redis.setresp() requires one argument.'}, 0)
  end
  local resp = tonumber((...))
  if resp ~= 2 and resp ~= 3 then
    error({err = 'ERR RESP version must be 2 or 3.'}, 0)
  end
  control('setresp', resp)
end
function redis.set_repl(...)
  if select('#', ...) ~= 1 then
    error({err = 'ERR redis.set_repl() requires two arguments.'}, 0)
  end
  local flags = tonumber((...)) or 0
  if flags ~= floor(flags) or flags < 0 or flags > 3 then
    error({err = 'ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.'}, 0)
  end
  control('set_repl', flags)
end
function redis.replicate_commands()
  return true
end
function redis.breakpoint()
  return false
end
function redis.debug()
end
redis.REDIS_VERSION = version
redis.REDIS_VERSION_NUM = version_num
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
G.redis = redis
G.bit = natives.bit

G.cjson, G.cmsgpack, G.struct = natives.cjson, natives.cmsgpack, natives.struct

-- Redis's pcall: an error table comes back as its text; a kill is never caught.
local function settle(ok, ...)
  if ok then
    return true, ...
  end
  local e = as_table((...))
  if current.killed and current.killed() then
    error(e, 0)
  end
  if type(e) == 'table' then
    local text = rawget(e, 'err')
    if type(text) == 'string' or type(text) == 'number' then
      return false, text
    end
    return false, e, nil
  end
  return false, e
end
G.pcall = function(f, ...)
  return settle(pcall(f, ...))
end

-- Truncates a number argument as C's (int) cast does.
local function checkint(v, n, name)
  v = tonumber(v)
  if not v then
    error("bad argument #" .. n .. " to '" .. name .. "' (number expected)", 3)
  end
  return v >= 0 and floor(v) or -floor(-v)
end
math.random = function(...)
  local r = (natives.rand48() % 2147483647) / 2147483647
  local n = select('#', ...)
  if n == 0 then
    return r
  elseif n == 1 then
    local u = checkint((...), 1, 'random')
    if u < 1 then
      error("bad argument #1 to 'random' (interval is empty)", 2)
    end
    return floor(r * u) + 1
  elseif n == 2 then
    local l, u = ...
    l, u = checkint(l, 1, 'random'), checkint(u, 2, 'random')
    if l > u then
      error("bad argument #2 to 'random' (interval is empty)", 2)
    end
    return floor(r * (u - l + 1)) + l
  end
  error('wrong number of arguments', 2)
end
math.randomseed = function(seed)
  natives.seed48(checkint(seed, 1, 'randomseed'))
end

-- The readonly sandbox. `libraries` are the tables scripts may read but never change; a
-- script reaches each through a proxy that refuses writes.
local libraries = {}
for _, t in pairs({G, string, table, math, coroutine, redis, G.bit, G.cjson, G.cmsgpack, G.struct, getmetatable('')}) do
  libraries[t] = true
end
local proxies, is_proxy = {}, {}
local sandbox
local function guard(t)
  local proxy = proxies[t]
  if proxy then
    return proxy
  end
  proxy = {}
  local readonly_meta = setmetatable({}, {
    __newindex = function()
      error(READONLY, 2)
    end,
  })
  setmetatable(proxy, {
    __index = function(_, k)
      local v = t[k]
      if v == nil and rawequal(t, G) then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      if type(v) == 'table' and libraries[v] then
        return guard(v)
      end
      return v
    end,
    __newindex = function()
      error(READONLY, 2)
    end,
    __metatable = readonly_meta,
  })
  proxies[t], is_proxy[proxy] = proxy, true
  return proxy
end

-- The builtins that could reach around the proxies.
G.setmetatable = function(t, mt)
  if is_proxy[t] then
    error(READONLY, 0)
  end
  return setmetatable(t, mt)
end
G.rawset = function(t, k, v)
  if is_proxy[t] then
    error(READONLY, 0)
  end
  return rawset(t, k, v)
end
G.getmetatable = function(v)
  local mt = getmetatable(v)
  if type(mt) == 'table' and libraries[mt] then
    return guard(mt)
  end
  return mt
end
G.getfenv = function(f)
  local env = getfenv(f == nil and 2 or (type(f) == 'number' and f > 0 and f + 1) or f)
  if rawequal(env, G) then
    return sandbox
  end
  return env
end
G.setfenv = function(f, env)
  if f == 0 then
    error(READONLY, 0)
  end
  if type(f) == 'number' then
    f = f + 1
  end
  return setfenv(f, env)
end
-- Chunks loaded by a script run in the sandbox too, and only from source text (binary
-- chunks could crash the VM).
local function in_sandbox(f, message)
  if f then
    setfenv(f, sandbox)
  end
  return f, message
end
G.loadstring = function(s, name)
  if type(s) == 'string' and s:byte(1) == 27 then
    return nil, (name or '?') .. ": unexpected symbol near '" .. '\\27' .. "'"
  end
  return in_sandbox(loadstring(s, name))
end
G.load = function(reader, name)
  local pieces = {}
  while true do
    local piece = reader()
    if piece == nil or piece == '' then
      break
    end
    pieces[#pieces + 1] = piece
  end
  return G.loadstring(table.concat(pieces), name)
end
sandbox = guard(G)

-- Notes the script's line on an error, as Redis's error handler does: from the position
-- Lua put in the message, or else the frame that raised it.
local function handler(e)
  e = as_table(e)
  if type(e) ~= 'table' then
    local text = tostring(e)
    e = {err = 'ERR ' .. text}
    rawset(e, 'line', tonumber(text:match('^user_[a-z]+:(%d+):')) or script_line(3))
  elseif rawget(e, 'line') == nil then
    local line = script_line(3)
    if line then
      rawset(e, 'line', line)
    end
  end
  return e
end

local function finish(ok, ...)
  current.killed = nil
  return ok, (...)
end

local function runner(script, killed, ...)
  current.killed = killed
  if select('#', ...) > 0 then
    local keys, argv = ...
    return finish(xpcall(function()
      return script(keys, argv)
    end, handler))
  end
  return finish(xpcall(script, handler))
end

-- Runs a library's code (FUNCTION LOAD), collecting the functions it registers.
local function loader(code)
  local registered = {}
  current.registering = registered
  local ok, e = xpcall(code, handler)
  current.registering = nil
  return ok, e, registered
end

function redis.register_function(...)
  local registered = current.registering
  if not registered then
    error({err = 'ERR redis.register_function can only be called on FUNCTION LOAD command'}, 0)
  end
  local name, callback, flags, description
  if type((...)) == 'table' then
    local t = ...
    name, callback, flags, description = t.function_name, t.callback, t.flags, t.description
  else
    if select('#', ...) ~= 2 then
      error({err = 'ERR wrong number of arguments to redis.register_function'}, 0)
    end
    name, callback = ...
  end
  if type(name) ~= 'string' then
    error({err = 'ERR function_name argument given to redis.register_function must be a string'}, 0)
  end
  if type(callback) ~= 'function' then
    error({err = 'ERR callback argument given to redis.register_function must be a function'}, 0)
  end
  local flag_list = {}
  if flags ~= nil then
    if type(flags) ~= 'table' then
      error({err = 'ERR flags argument to redis.register_function must be a table representing function flags'}, 0)
    end
    for _, f in ipairs(flags) do
      flag_list[#flag_list + 1] = f
    end
  end
  registered[#registered + 1] = {name = name, callback = callback, flags = flag_list,
    description = description}
end

return runner, sandbox, loader
