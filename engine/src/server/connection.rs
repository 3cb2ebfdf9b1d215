//! One client connection: read what arrived, run every complete request under a single hold
//! of the keyspace lock, answer with one write. Blocking commands release the lock and wait
//! for a list push, the timeout, a kill or a disconnect.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client::{ClientInfo, ClientState};
use super::Shared;
use crate::commands::{self, transactions, Ctx};
use crate::persistence::aof;
use crate::protocol::{Reply, Request, RequestParser};

const READ_CHUNK: usize = 16 * 1024;
/// How many requests of a pipelined batch have their keys warmed ahead of running.
const WARM_AHEAD: usize = 32;
/// An empty read buffer larger than this is replaced by a small one.
const MAX_IDLE_BUFFER: usize = 4 * 1024 * 1024;
/// While a client is blocked, stop buffering its further input beyond this.
const MAX_BUFFER_WHILE_BLOCKED: usize = 1024 * 1024;

/// Answers a connection over maxclients and closes it.
pub async fn refuse(mut stream: TcpStream) {
    let _ = stream
        .write_all(b"-ERR max number of clients reached\r\n")
        .await;
}

/// What a batch left the connection to do.
enum Next {
    Continue,
    /// A blocking command found nothing: its arguments (owned, since the buffer moves on)
    /// and deadline.
    Block(Vec<Vec<u8>>, Option<u64>),
    Close,
}

pub async fn serve(shared: Arc<Shared>, mut stream: TcpStream, info: Arc<ClientInfo>) {
    let authenticated = shared.access_keys().is_empty();
    let mut client = ClientState::new(info.clone(), authenticated);
    let mut parser = RequestParser::new();
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::with_capacity(READ_CHUNK);
    loop {
        if input.is_empty() && input.capacity() > MAX_IDLE_BUFFER {
            // A big request has been run: give its buffer back.
            input = BytesMut::with_capacity(READ_CHUNK);
        }
        let wanted = parser.wanted(input.len()).max(READ_CHUNK / 4);
        if input.capacity() - input.len() < wanted {
            input.reserve(wanted.max(READ_CHUNK));
        }
        let read = tokio::select! {
            r = stream.read_buf(&mut input) => r,
            _ = info.kill_notify.notified() => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => shared.stats.add_input(n),
        }
        let mut next = run_batch(&shared, &mut client, &mut parser, &mut input, &mut output);
        while let Next::Block(args, deadline) = next {
            if flush(&shared, &mut stream, &mut output).await.is_err() {
                next = Next::Close;
                break;
            }
            next = wait_blocked(
                &shared,
                &mut client,
                &mut stream,
                &mut input,
                args,
                deadline,
            )
            .await;
            if let Next::Continue = next {
                next = run_batch(&shared, &mut client, &mut parser, &mut input, &mut output);
            }
        }
        if flush(&shared, &mut stream, &mut output).await.is_err() || matches!(next, Next::Close) {
            break;
        }
        if info.is_killed() {
            break;
        }
    }
    let mut ks = shared.keyspace.lock();
    let mut ctx = Ctx::new(&mut ks, &mut client, &shared);
    transactions::release_watches(&mut ctx);
}

async fn flush(
    shared: &Shared,
    stream: &mut TcpStream,
    output: &mut BytesMut,
) -> std::io::Result<()> {
    if output.is_empty() {
        return Ok(());
    }
    stream.write_all(output).await?;
    shared.stats.add_output(output.len());
    output.clear();
    if output.capacity() > MAX_IDLE_BUFFER {
        *output = BytesMut::with_capacity(READ_CHUNK);
    }
    Ok(())
}

/// Parses and runs every complete request in `input`, appending replies to `output`, then
/// drops the requests run from `input`. The keyspace lock is taken once, for warming a
/// pipelined batch's keys or else at the first complete request, and held for the batch.
fn run_batch(
    shared: &Shared,
    client: &mut ClientState,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    output: &mut BytesMut,
) -> Next {
    let data: &[u8] = input;
    let mut guard = None;
    let mut args: Vec<&[u8]> = Vec::new();
    // A pipelined batch: fetch its keys' entries into the cache together, not one by one.
    parser.peek_keys(data, WARM_AHEAD, &mut args);
    if args.len() > 1 {
        guard
            .get_or_insert_with(|| shared.keyspace.lock())
            .warm(client.db, &args);
    }
    let mut count = 0;
    let mut next = Next::Continue;
    loop {
        let words = match parser.parse(data, client.authenticated) {
            Ok(Some(Request::Multibulk)) => None,
            Ok(Some(Request::Inline(words))) => Some(words),
            Ok(None) => break,
            Err(e) => {
                Reply::Error(format!("ERR {e}")).encode(output, client.resp3);
                next = Next::Close;
                break;
            }
        };
        let ks = guard.get_or_insert_with(|| shared.keyspace.lock());
        count += 1;
        args.clear();
        let inline_args;
        let request: &[&[u8]] = match &words {
            None => {
                parser.args(data, &mut args);
                &args
            }
            Some(words) => {
                inline_args = commands::arg_slices(words);
                &inline_args
            }
        };
        let mut ctx = Ctx::new(ks, client, shared);
        let reply = commands::execute(&mut ctx, request);
        if let Some(block) = ctx.block {
            let owned = request.iter().map(|a| a.to_vec()).collect();
            next = Next::Block(owned, block.deadline_ms);
            break;
        }
        ks.clock_reusable = ctx.ran_fast;
        client.block_deadline = None;
        reply.encode(output, client.resp3);
        if client.close_after_reply {
            next = Next::Close;
            break;
        }
    }
    drop(args);
    input.advance(parser.take_consumed());
    if let Some(mut ks) = guard {
        ks.clock_reusable = false;
        shared.wake_blocked_clients(&mut ks);
        ks.capture_assist();
        // The AOF gets this batch's writes before its replies leave.
        aof::flush(shared, ks);
        shared.stats.commands_processed(count);
        shared.note_traffic();
        client.info.mark_active(client.db, client.resp3, count);
    }
    next
}

/// Waits for a blocked command's chance, then runs it again. Returns Continue once it has
/// replied (with data or on timeout), Close if the client went away.
async fn wait_blocked(
    shared: &Shared,
    client: &mut ClientState,
    stream: &mut TcpStream,
    input: &mut BytesMut,
    args: Vec<Vec<u8>>,
    deadline_ms: Option<u64>,
) -> Next {
    let args = commands::arg_slices(&args);
    shared.stats.blocked_clients.fetch_add(1, Ordering::Relaxed);
    let outcome = loop {
        let notified = shared.list_pushed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Retry now that we are registered for wake-ups, so no push is missed.
        let (reply, still_blocked) = {
            let mut ks = shared.keyspace.lock();
            let mut ctx = Ctx::new(&mut ks, client, shared);
            let reply = commands::execute(&mut ctx, &args);
            let still_blocked = ctx.block.is_some();
            shared.wake_blocked_clients(&mut ks);
            aof::flush(shared, ks);
            (reply, still_blocked)
        };
        if !still_blocked {
            break Some(reply);
        }
        let remaining =
            deadline_ms.map(|d| Duration::from_millis(d.saturating_sub(crate::util::now_ms())));
        if remaining == Some(Duration::ZERO) {
            break Some(reply);
        }
        let timeout = async {
            match remaining {
                Some(r) => tokio::time::sleep(r).await,
                None => std::future::pending().await,
            }
        };
        let can_read = input.len() < MAX_BUFFER_WHILE_BLOCKED;
        tokio::select! {
            _ = &mut notified => {}
            _ = timeout => {}
            _ = client.info.kill_notify.notified() => break None,
            r = stream.read_buf(input), if can_read => match r {
                Ok(0) | Err(_) => break None,
                Ok(n) => shared.stats.add_input(n),
            },
        }
    };
    shared.stats.blocked_clients.fetch_sub(1, Ordering::Relaxed);
    client.block_deadline = None;
    match outcome {
        Some(reply) => {
            let mut out = BytesMut::new();
            reply.encode(&mut out, client.resp3);
            match stream.write_all(&out).await {
                Ok(()) => {
                    shared.stats.add_output(out.len());
                    Next::Continue
                }
                Err(_) => Next::Close,
            }
        }
        None => Next::Close,
    }
}
