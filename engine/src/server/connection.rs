//! One client connection: read what arrived, run every complete request under a single hold
//! of the keyspace lock, answer with one write. Blocking commands release the lock and wait
//! for a list push, the timeout, a kill or a disconnect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::commands::pubsub;
use crate::commands::{self, transactions, Ctx};
use crate::config::{ClientClass, ClientLimits};
use crate::instance::batch::Batch;
use crate::instance::blocked::{leave_queue, BlockedCount, Waiter};
use crate::instance::client::{ClientInfo, ClientState};
use crate::instance::Shared;
use crate::persistence::aof::Flushed;
use crate::protocol::{Output, Reply, Request, RequestParser};
use crate::telemetry::EventKind;

const READ_CHUNK: usize = 16 * 1024;
/// How many requests of a pipelined batch have their keys warmed ahead of running.
const WARM_AHEAD: usize = 32;
/// While a client is blocked, stop buffering its further input beyond this.
const MAX_BUFFER_WHILE_BLOCKED: usize = 1024 * 1024;

/// Answers a connection over maxclients (or refused by protected mode) and closes it.
pub async fn refuse(mut stream: TcpStream, text: &'static [u8]) {
    let _ = stream.write_all(text).await;
}

/// What a batch left the connection to do.
enum Next {
    Continue,
    /// A blocking command found nothing: its arguments (owned, since the buffer moves on)
    /// and deadline.
    Block(Vec<Vec<u8>>, Option<u64>),
    /// CLIENT PAUSE holds the command back (true: for writing): it runs once the pause ends.
    Paused(Vec<Vec<u8>>, bool),
    Close,
}

/// A connection's own state, released however the connection ends (a panic included): its
/// WATCHes go, and the instance forgets the client, so its slot under maxclients is free.
struct Session<'a> {
    shared: &'a Shared,
    client: ClientState,
    /// When the output first went over its class's soft limit (None: it is under).
    soft_limit_since: Option<Instant>,
    /// Bytes of Pub/Sub messages moved into the output and not yet written.
    mail_unwritten: usize,
}

impl Session<'_> {
    /// Moves the Pub/Sub messages waiting for this client into `output`.
    fn take_mail(&mut self, output: &mut Output) {
        self.mail_unwritten += take_mail(&self.client, output);
    }

    /// The output was written: its messages no longer count toward the subscriber's limit.
    fn mail_written(&mut self) {
        self.client
            .info
            .mailbox
            .written(std::mem::take(&mut self.mail_unwritten));
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.shared.wait_for_keyspace(|| {
            let mut ks = self.shared.keyspace.lock();
            let mut ctx = Ctx::new(&mut ks, &mut self.client, self.shared);
            transactions::release_watches(&mut ctx);
            pubsub::unsubscribe_all(&mut ctx);
            commands::tracking::disable(&mut ctx);
        });
        let mailbox = &self.client.info.mailbox;
        if mailbox.is_closed() {
            close_for_limit(
                self.shared,
                &self.client.info,
                "output buffer limits (pubsub)",
                mailbox.pending(),
            );
        }
        self.shared.unregister_client(self.client.id());
    }
}

/// What a connection holds only while it has input: the parser's place, the bytes read and
/// the replies not yet written. An idle connection drops them all, so an idle client costs
/// little more than its socket (as in Redis).
#[derive(Default)]
struct Buffers {
    parser: RequestParser,
    input: BytesMut,
    output: Output,
}

pub async fn serve(shared: Arc<Shared>, mut stream: TcpStream, info: Arc<ClientInfo>) {
    let mut session = Session {
        shared: &shared,
        client: new_client(&shared, &info),
        soft_limit_since: None,
        mail_unwritten: 0,
    };
    let mut buffers: Option<Box<Buffers>> = None;
    loop {
        if buffers.as_ref().is_none_or(|b| b.input.is_empty()) {
            // Idle (its replies all written): wait holding no buffers. The cron closes the
            // connection after `timeout` idle seconds.
            buffers = None;
            match wait_input(&stream, &info).await {
                Wake::Readable => {}
                Wake::Mail => {
                    if deliver_mail(&mut session, &mut stream).await.is_err() {
                        break;
                    }
                    continue;
                }
                Wake::Closed => break,
            }
        }
        let Buffers {
            parser,
            input,
            output,
        } = &mut **buffers.get_or_insert_with(Box::default);
        let mut next = match read_and_run(&mut session, &stream, parser, input, output) {
            Step::Ran(next) => next,
            Step::Closed => break,
            // A readiness that was not: wait again at the top, holding no buffer.
            Step::WouldBlock if input.is_empty() => continue,
            Step::WouldBlock => {
                if !wait_readable(&stream, &info).await {
                    break;
                }
                continue;
            }
        };
        while matches!(next, Next::Block(..) | Next::Paused(..)) {
            if flush(&shared, &info, &mut stream, output).await.is_err() {
                next = Next::Close;
                break;
            }
            let (args, deadline) = match std::mem::replace(&mut next, Next::Continue) {
                Next::Paused(args, writes) => {
                    let _counted = BlockedCount::register(&shared, &info);
                    if !crate::instance::pause::wait_unpaused(&shared, &info, writes).await {
                        next = Next::Close;
                        break;
                    }
                    (args, None)
                }
                Next::Block(args, deadline) => (args, deadline),
                other => {
                    next = other;
                    break;
                }
            };
            next = Box::pin(wait_blocked(
                &mut session,
                &mut stream,
                input,
                args,
                deadline,
            ))
            .await;
            if let Next::Continue = next {
                // The limits again, as of now (they are not held across the waits).
                let limits = shared.client_limits();
                next = run_batch(&mut session, parser, input, output, &limits);
            }
        }
        if flush(&shared, &info, &mut stream, output).await.is_err() || matches!(next, Next::Close)
        {
            break;
        }
        session.mail_written();
        if info.is_killed() {
            break;
        }
    }
}

/// A new connection's client state. The key generation is read before the keys, so a key
/// change in between makes the client check again at its first command.
fn new_client(shared: &Shared, info: &Arc<ClientInfo>) -> ClientState {
    let auth_generation = shared.auth_generation();
    let mut client = ClientState::new(info.clone(), shared.access_keys().is_empty());
    client.auth_generation = auth_generation;
    client
}

/// Waits until the socket has bytes to read; false if it failed or the client was killed.
/// Polls the stream's readiness directly: no stored readiness future, which would make every
/// connection's task bigger.
async fn wait_readable(stream: &TcpStream, info: &ClientInfo) -> bool {
    tokio::select! {
        r = std::future::poll_fn(|cx| stream.poll_read_ready(cx)) => r.is_ok(),
        _ = info.kill_notify.notified() => false,
    }
}

/// What woke an idle connection.
enum Wake {
    Readable,
    /// Pub/Sub messages arrived.
    Mail,
    Closed,
}

/// Waits for input, or for pushes to write (messages, invalidations).
async fn wait_input(stream: &TcpStream, info: &ClientInfo) -> Wake {
    tokio::select! {
        readable = wait_readable(stream, info) => match readable {
            true => Wake::Readable,
            false => Wake::Closed,
        },
        _ = info.mailbox.arrived.notified() => Wake::Mail,
    }
}

/// Writes the Pub/Sub messages waiting for an idle subscriber. It first lets the tasks that
/// are ready run (publishers, most likely), so what they publish leaves in the same write, as
/// Redis writes a client's output once per turn of its event loop.
async fn deliver_mail(session: &mut Session<'_>, stream: &mut TcpStream) -> std::io::Result<()> {
    tokio::task::yield_now().await;
    let mut out = Output::new();
    session.take_mail(&mut out);
    flush(session.shared, &session.client.info, stream, &mut out).await?;
    session.mail_written();
    Ok(())
}

/// What reading the socket and running what arrived gave.
enum Step {
    Ran(Next),
    WouldBlock,
    Closed,
}

/// Reads what the socket has (into a big argument's own buffer while one arrives), closes a
/// client past its query buffer limit, and runs every complete request. Synchronous, so its
/// locals are not part of the connection's task.
fn read_and_run(
    session: &mut Session,
    stream: &TcpStream,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    output: &mut Output,
) -> Step {
    let shared = session.shared;
    let limits = shared.client_limits();
    parser.set_max_bulk_len(limits.proto_max_bulk_len);
    let read = match parser.big_arg_room() {
        Some(mut room) => stream.try_read_buf(&mut room),
        None => {
            let wanted = parser.wanted(input.len()).max(READ_CHUNK / 4);
            if input.capacity() - input.len() < wanted {
                input.reserve(wanted.max(READ_CHUNK));
            }
            stream.try_read_buf(input)
        }
    };
    match read {
        Ok(0) => return Step::Closed,
        Ok(n) => {
            shared.stats.add_input(n);
            session.client.info.touch();
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Step::WouldBlock,
        Err(_) => return Step::Closed,
    }
    let query_buffer = input.len() + parser.big_arg_bytes();
    if query_buffer as u64 > limits.query_buffer {
        close_for_limit(
            shared,
            &session.client.info,
            "max query buffer length",
            query_buffer,
        );
        return Step::Closed;
    }
    let next = run_batch(session, parser, input, output, &limits);
    session
        .client
        .info
        .set_query_bytes(input.len() + parser.big_arg_bytes());
    // What the batch left (its input, what it published) may take clients past
    // maxmemory-clients, this one included.
    shared.evict_clients();
    Step::Ran(next)
}

/// Logs the closing of a client that went past one of its limits, as Redis logs it.
fn close_for_limit(shared: &Shared, info: &ClientInfo, limit: &str, bytes: usize) {
    shared.events.push(
        EventKind::Error,
        format!(
            "Closing client that reached {limit}: id={} addr={} ({bytes} bytes)",
            info.id, info.addr
        ),
    );
}

/// Writes the pending output: what the socket takes at once, then (for a client that reads
/// slower than it asks) the rest as the socket drains. A CLIENT KILL ends a write the client
/// is not reading, and the output's memory goes with the connection.
async fn flush(
    shared: &Shared,
    info: &ClientInfo,
    stream: &mut TcpStream,
    output: &mut Output,
) -> std::io::Result<()> {
    if output.is_empty() {
        return Ok(());
    }
    let len = output.len();
    if !output.try_write_to(stream)? {
        // Boxed: the waiting write's state is held only while it waits, not by every task.
        info.set_output_bytes(output.len());
        shared.evict_clients();
        let written = Box::pin(write_rest(info, stream, output)).await;
        info.set_output_bytes(0);
        written?;
    }
    shared.stats.add_output(len);
    Ok(())
}

/// The rest of a write the socket did not take at once, or CLIENT KILL.
async fn write_rest(
    info: &ClientInfo,
    stream: &mut TcpStream,
    output: &mut Output,
) -> std::io::Result<()> {
    tokio::select! {
        r = output.write_to(stream) => r,
        _ = info.kill_notify.notified() => Err(std::io::ErrorKind::ConnectionAborted.into()),
    }
}

/// True once the output has gone past its class's hard limit, or has stayed past the soft
/// limit for longer than allowed (Redis's checkClientOutputBufferLimits).
fn over_output_limit(session: &mut Session, used: usize, limits: &ClientLimits) -> bool {
    let limit = limits.output[ClientClass::Normal as usize];
    let used = used as u64;
    if limit.hard > 0 && used >= limit.hard {
        return true;
    }
    if limit.soft > 0 && used >= limit.soft {
        let since = *session.soft_limit_since.get_or_insert_with(Instant::now);
        return since.elapsed().as_secs() > limit.soft_secs;
    }
    session.soft_limit_since = None;
    false
}

/// Parses and runs every complete request in `input`, appending replies to `output`, then
/// drops the requests run from `input`. The keyspace lock is taken once, for warming a
/// pipelined batch's keys or else at the first complete request, and held for the batch.
fn run_batch(
    session: &mut Session,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    output: &mut Output,
    limits: &ClientLimits,
) -> Next {
    let shared = session.shared;
    let data: &[u8] = input;
    let mut batch = None;
    let mut args: Vec<&[u8]> = Vec::new();
    // A pipelined batch: fetch its keys' entries into the cache together, not one by one.
    parser.peek_keys(data, WARM_AHEAD, &mut args);
    if args.len() > 1 {
        batch = Batch::begin_unless_busy(shared);
        if let Some(batch) = &batch {
            batch.warm(session.client.db, &args);
        }
    }
    let mut count = 0;
    // Where this batch's replies start, and how many it encoded (a blocked command has none).
    let start = output.len();
    let mut replies = 0;
    // Bytes of Pub/Sub messages moved into the output among the replies.
    let mut mail = 0;
    let mut protocol_error = None;
    let mut next = Next::Continue;
    loop {
        let client = &mut session.client;
        let words = match parser.parse(data, client.authenticated) {
            Ok(Some(Request::Multibulk)) => None,
            Ok(Some(Request::Inline(words))) => Some(words),
            Ok(None) => break,
            Err(e) => {
                protocol_error = Some(Reply::Error(format!("ERR {e}")));
                next = Next::Close;
                break;
            }
        };
        if batch.is_none() {
            batch = Batch::begin_unless_busy(shared);
        }
        count += 1;
        args.clear();
        let mut big_args = parser.take_big_args();
        let own_args;
        let request: &[&[u8]] = match &words {
            None if big_args.is_empty() => {
                parser.args(data, &[], &mut args);
                &args
            }
            None => {
                let mut with_big = Vec::new();
                parser.args(data, &big_args, &mut with_big);
                own_args = with_big;
                &own_args
            }
            Some(words) => {
                own_args = commands::arg_slices(words);
                &own_args
            }
        };
        let Some(ks) = batch.as_mut() else {
            // A script is busy past its threshold and holds the keyspace.
            let (reply, close) = busy_reply(shared, client, request);
            mail += take_mail(client, output);
            reply.encode(output, client.resp3);
            replies += 1;
            if close {
                next = Next::Close;
                break;
            }
            continue;
        };
        let mut ctx = Ctx::new(ks, client, shared);
        ctx.big_args = &big_args;
        let reply = commands::execute(&mut ctx, request);
        if let Some(block) = ctx.block.take() {
            let owned = block
                .retry_args
                .unwrap_or_else(|| request.iter().map(|a| a.to_vec()).collect());
            next = match block.paused {
                Some(writes) => Next::Paused(owned, writes),
                None => Next::Block(owned, block.deadline_ms),
            };
            break;
        }
        for adoption in std::mem::take(&mut ctx.adopted) {
            let bytes = std::mem::take(&mut big_args[adoption.arg]);
            ks.adopt_string(adoption.db, &adoption.key, bytes);
        }
        client.block_deadline = None;
        // Messages published before this reply was made (by this very command, too) go
        // first, as Redis writes them into the output at once.
        mail += take_mail(client, output);
        let dropped = client.reply_mode.after_command();
        if !dropped || matches!(reply, Reply::Pushes(_)) {
            reply.encode(output, client.resp3);
        }
        // Invalidations of what the command itself changed follow its reply.
        crate::instance::tracking::send_after_reply(shared, ks);
        mail += take_mail(client, output);
        replies += 1;
        if client.multi.is_some() && client.multi_bytes as u64 > limits.query_buffer {
            close_for_limit(
                shared,
                &client.info,
                "max query buffer length (MULTI)",
                client.multi_bytes,
            );
            next = Next::Close;
            break;
        }
        if over_output_limit(session, output.len(), limits) {
            close_for_limit(
                shared,
                &session.client.info,
                "output buffer limits",
                output.len(),
            );
            output.clear();
            next = Next::Close;
            break;
        }
        if session.client.close_after_reply {
            next = Next::Close;
            break;
        }
    }
    drop(args);
    input.advance(parser.take_consumed());
    let resp3 = session.client.resp3;
    if let Some(batch) = batch {
        // The AOF gets this batch's writes before its replies leave; writes it could not
        // keep are never acknowledged: every reply of the batch becomes the refusal.
        if let Flushed::NotDurable(e) = batch.end() {
            // The messages among the replies go with them.
            session
                .client
                .info
                .mailbox
                .written(std::mem::take(&mut mail));
            output.truncate(start);
            for _ in 0..replies {
                Reply::Error(e.to_string()).encode(output, session.client.resp3);
            }
        }
        shared.stats.commands_processed(count);
        shared.note_traffic();
        let client = &session.client;
        let last = client.last_command.map(|spec| spec.name);
        client
            .info
            .mark_active(client.db, client.resp3, client.multi_bytes, count, last);
    }
    session.mail_unwritten += mail;
    if let Some(error) = protocol_error {
        error.encode(output, resp3);
    }
    next
}

/// Moves a subscriber's waiting messages into `output`; returns their bytes.
fn take_mail(client: &ClientState, output: &mut Output) -> usize {
    client.info.mailbox.take_into(output)
}

/// The answer to a request while a script runs past busy-reply-threshold, as Redis gives it
/// (without the keyspace, which the script holds): SCRIPT KILL, SHUTDOWN NOSAVE and QUIT
/// work, and MULTI and DISCARD; anything else is -BUSY, which inside MULTI dooms the
/// transaction (an EXEC then discards it). True to close the connection after it.
fn busy_reply(shared: &Shared, client: &mut ClientState, args: &[&[u8]]) -> (Reply, bool) {
    use crate::scripting::KillOutcome;
    let is = |i: usize, word: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    };
    if (is(0, "SCRIPT") || is(0, "FUNCTION")) && is(1, "KILL") && args.len() == 2 {
        let reply = match shared.script_status.kill(false) {
            KillOutcome::Killed => Reply::OK,
            KillOutcome::NotBusy => Reply::error("NOTBUSY No scripts in execution right now."),
            KillOutcome::Unkillable => Reply::error("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."),
        };
        return (reply, false);
    }
    if is(0, "SHUTDOWN") && args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"NOSAVE")) {
        // The script stops at its next check, writes or not; nothing is saved.
        shared.script_status.kill(true);
        shared
            .persistence
            .update(|st| st.shutdown_save = Some(false));
        shared.request_shutdown();
        return (Reply::OK, true);
    }
    if is(0, "QUIT") {
        return (Reply::OK, true);
    }
    if is(0, "MULTI") && args.len() == 1 {
        if client.multi.is_some() {
            return (Reply::error("ERR MULTI calls can not be nested"), false);
        }
        client.multi = Some(Vec::new());
        return (Reply::OK, false);
    }
    if is(0, "DISCARD") && args.len() == 1 {
        if client.multi.take().is_none() {
            return (Reply::error("ERR DISCARD without MULTI"), false);
        }
        client.multi_failed = false;
        return (Reply::OK, false);
    }
    const BUSY: &str =
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
    if client.multi.is_some() {
        if is(0, "EXEC") {
            client.multi = None;
            client.multi_failed = false;
            return (
                Reply::Error(format!(
                    "EXECABORT Transaction discarded because of: {BUSY}"
                )),
                false,
            );
        }
        client.multi_failed = true;
    }
    (Reply::error(BUSY), false)
}

/// Waits for a blocked command's chance: it runs once more, and if it still finds nothing the
/// client joins the blocked queue in the same hold of the lock (so no push in between is
/// missed) and waits to be served (`instance::blocked`), timed out, unblocked or closed.
/// Returns Continue once it has replied, Close if the client went away.
async fn wait_blocked(
    session: &mut Session<'_>,
    stream: &mut TcpStream,
    input: &mut BytesMut,
    args: Vec<Vec<u8>>,
    deadline_ms: Option<u64>,
) -> Next {
    let args = commands::arg_slices(&args);
    let shared = session.shared;
    let client = &mut session.client;
    let id = client.id();
    let (done, mut served) = tokio::sync::oneshot::channel();
    let mut paused_again = None;
    let (reply, still_blocked, flushed) = shared.wait_for_keyspace(|| {
        let mut batch = Batch::begin(shared);
        client.serving_blocked = true;
        let mut ctx = Ctx::new(&mut batch, client, shared);
        let reply = commands::execute(&mut ctx, &args);
        paused_again = ctx.block.as_ref().and_then(|b| b.paused);
        let still_blocked = ctx.block.is_some() && paused_again.is_none();
        client.serving_blocked = false;
        if still_blocked {
            let waiter = Waiter::new(client, &args, reply.clone(), done);
            shared.blocked.lock().add(&mut batch, waiter);
        }
        (reply, still_blocked, batch.end())
    });
    if let Some(writes) = paused_again {
        // Paused again before it could run: it waits for that pause too.
        return Next::Paused(args.iter().map(|a| a.to_vec()).collect(), writes);
    }
    let outcome = if !still_blocked {
        Some(match flushed {
            Flushed::Durable => reply,
            Flushed::NotDurable(e) => Reply::Error(e.to_string()),
        })
    } else {
        let info = client.info.clone();
        let _counted = BlockedCount::register(shared, &info);
        let remaining =
            deadline_ms.map(|d| Duration::from_millis(d.saturating_sub(crate::util::now_ms())));
        let timeout = async {
            match remaining {
                Some(r) => tokio::time::sleep(r).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        // A RESP3 client goes on receiving its pushes while it waits; its reply, once it is
        // served, goes before the pushes that came with it (invalidations of what it moved).
        let mailbox = &info.mailbox;
        loop {
            let can_read = input.len() < MAX_BUFFER_WHILE_BLOCKED;
            tokio::select! {
                biased;
                reply = &mut served => break reply.ok(),
                _ = mailbox.arrived.notified() => {
                    let mut out = Output::new();
                    let taken = mailbox.take_into(&mut out);
                    if flush(shared, &info, stream, &mut out).await.is_err() {
                        leave_queue(shared, id, &mut served).await;
                        break None;
                    }
                    mailbox.written(taken);
                }
                _ = &mut timeout => break leave_queue(shared, id, &mut served).await.or(Some(reply)),
                _ = info.kill_notify.notified() => {
                    leave_queue(shared, id, &mut served).await;
                    break None;
                }
                r = stream.read_buf(input), if can_read => match r {
                    Ok(0) | Err(_) => {
                        leave_queue(shared, id, &mut served).await;
                        break None;
                    }
                    Ok(n) => shared.stats.add_input(n),
                },
            }
        }
    };
    client.block_deadline = None;
    match outcome {
        Some(reply) => {
            let mut out = Output::new();
            reply.encode(&mut out, client.resp3);
            match flush(shared, &client.info, stream, &mut out).await {
                Ok(()) => Next::Continue,
                Err(_) => Next::Close,
            }
        }
        None => Next::Close,
    }
}
