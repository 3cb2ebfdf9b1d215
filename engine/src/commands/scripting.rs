//! Scripting commands. So far only FUNCTION FLUSH: the engine has no function libraries yet
//! (EVAL and FUNCTION LOAD come with the scripting issue), so flushing them has nothing to
//! remove, as on a Redis server that never loaded one. The other subcommands are refused as
//! unknown, never faked.

use super::{is, CmdError, CmdResult, Ctx};
use crate::protocol::Reply;

pub fn function(_ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if is(args[1], "FLUSH") {
        return match args.len() {
            2 => Ok(Reply::OK),
            3 if is(args[2], "ASYNC") || is(args[2], "SYNC") => Ok(Reply::OK),
            3 => Err(CmdError::other(
                "FUNCTION FLUSH only supports SYNC|ASYNC option",
            )),
            _ => Err(CmdError::other(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                String::from_utf8_lossy(args[1])
            ))),
        };
    }
    Err(CmdError::other(format!(
        "unknown subcommand '{}'. Try FUNCTION HELP.",
        String::from_utf8_lossy(args[1])
    )))
}
