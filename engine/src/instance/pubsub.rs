//! Pub/Sub delivery: who listens to which channel, pattern and shard channel, and each
//! subscriber's mailbox, where published messages wait (already encoded in the subscriber's
//! protocol) until its connection writes them out.
//!
//! Publishing runs under the keyspace lock, as every command does, and only appends to
//! mailboxes: it never waits for a subscriber. A subscriber whose unread messages pass its
//! `client-output-buffer-limit pubsub` is closed, as Redis closes it, and counted.
//!
//! Lock order: the keyspace, then the hub, then a mailbox.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexSet;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::client::ClientInfo;
use crate::config::OutputLimit;
use crate::keyspace::Blob;
use crate::protocol::{Output, Reply};

/// Where a client's pushed frames (Pub/Sub messages, MONITOR lines, tracking
/// invalidations) wait for its connection. Every client has one, in its `ClientInfo`.
#[derive(Debug)]
pub struct Mailbox {
    /// The client speaks RESP3: messages are push frames.
    resp3: AtomicBool,
    queue: Mutex<Queue>,
    /// Frames wait in the queue (checked without the lock: a frame that races the check
    /// leaves `arrived` notified, so the connection comes back for it).
    has_mail: AtomicBool,
    /// Bytes delivered and not yet written to the socket (what the output limit counts).
    pending: AtomicUsize,
    /// Closed for passing its limit: nothing more is delivered.
    closed: AtomicBool,
    /// Woken when messages arrive.
    pub arrived: Notify,
    /// The instance's total of client memory, which `pending` is part of.
    counted_in: Arc<AtomicUsize>,
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.counted_in
            .fetch_sub(*self.pending.get_mut(), Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Queue {
    frames: Output,
    /// Since when `pending` has been over the soft limit (None: it is not).
    over_soft_since: Option<Instant>,
}

/// What delivering one frame did.
#[derive(Debug, PartialEq, Eq)]
enum Delivery {
    Queued,
    /// Queued, and it took the mailbox past its limit: the client is to be closed.
    OverLimit,
    /// The mailbox was closed already; nothing was queued.
    Closed,
}

impl Mailbox {
    /// An empty mailbox whose pending bytes count in `counted_in`.
    pub fn new(counted_in: Arc<AtomicUsize>) -> Self {
        Mailbox {
            resp3: AtomicBool::new(false),
            queue: Mutex::default(),
            has_mail: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            arrived: Notify::new(),
            counted_in,
        }
    }

    pub fn set_resp3(&self, resp3: bool) {
        self.resp3.store(resp3, Ordering::Relaxed);
    }

    pub fn resp3(&self) -> bool {
        self.resp3.load(Ordering::Relaxed)
    }

    /// Takes the frames waiting, appended to `out`; their bytes stay counted until
    /// `written` says the socket took them.
    pub fn take_into(&self, out: &mut Output) -> usize {
        if !self.has_mail.load(Ordering::Acquire) {
            return 0;
        }
        let waiting = {
            let mut queue = self.queue.lock();
            self.has_mail.store(false, Ordering::Release);
            std::mem::take(&mut queue.frames)
        };
        let len = waiting.len();
        out.append(waiting);
        len
    }

    /// `bytes` taken by `take_into` have left for the socket.
    pub fn written(&self, bytes: usize) {
        if bytes > 0 {
            self.pending.fetch_sub(bytes, Ordering::AcqRel);
            self.counted_in.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Bytes delivered and not yet written out.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Queues one frame. Past `limit` the client is to be closed, as Redis's
    /// checkClientOutputBufferLimits does.
    fn deliver(&self, bytes: &[u8], limit: OutputLimit) -> Delivery {
        if self.closed.load(Ordering::Acquire) {
            return Delivery::Closed;
        }
        // Counted under the queue's lock: what `take_into` takes is always counted already.
        let mut queue = self.queue.lock();
        queue.frames.put_slice(bytes);
        // Frames already waiting were announced, and are taken with these (`take_into` clears
        // the flag under this lock): only the first frame wakes the connection.
        let announced = self.has_mail.swap(true, Ordering::AcqRel);
        let pending = (self.pending.fetch_add(bytes.len(), Ordering::AcqRel) + bytes.len()) as u64;
        self.counted_in.fetch_add(bytes.len(), Ordering::Relaxed);
        let over_hard = limit.hard > 0 && pending >= limit.hard;
        let soft_for_too_long = if limit.soft > 0 && pending >= limit.soft {
            let since = *queue.over_soft_since.get_or_insert_with(Instant::now);
            since.elapsed().as_secs() > limit.soft_secs
        } else {
            queue.over_soft_since = None;
            false
        };
        drop(queue);
        if !announced {
            self.arrived.notify_one();
        }
        if over_hard || soft_for_too_long {
            self.closed.store(true, Ordering::Release);
            Delivery::OverLimit
        } else {
            Delivery::Queued
        }
    }

    /// Closed for passing its output limit (the connection then logs and counts it).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Delivers one frame (encoded in the client's protocol) to a client's mailbox, closing
/// the client if that takes it past `limit`; false if its mailbox was closed already.
pub fn deliver(to: &ClientInfo, bytes: &[u8], limit: OutputLimit) -> bool {
    match to.mailbox.deliver(bytes, limit) {
        Delivery::Queued => true,
        Delivery::OverLimit => {
            to.kill();
            true
        }
        Delivery::Closed => false,
    }
}

/// A message's frame, encoded for a protocol the first time a subscriber speaking it needs
/// it: a RESP2 array or a RESP3 push (the same bytes but the first).
struct Frames<'a> {
    parts: &'a [&'a [u8]],
    encoded: std::cell::OnceCell<Vec<u8>>,
    resp3: std::cell::OnceCell<Vec<u8>>,
}

impl<'a> Frames<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Frames<'a> {
        Frames {
            parts,
            encoded: std::cell::OnceCell::new(),
            resp3: std::cell::OnceCell::new(),
        }
    }

    /// A frame that is the same in both protocols (a MONITOR line).
    fn raw(line: &'a [&'a [u8]]) -> Frames<'a> {
        let frames = Frames::new(line);
        let _ = frames.encoded.set(line.concat());
        let _ = frames.resp3.set(line.concat());
        frames
    }

    /// Delivers the frame to one client, in its protocol.
    fn deliver(&self, to: &ClientInfo, limit: OutputLimit) -> bool {
        deliver(to, self.for_protocol(to.mailbox.resp3()), limit)
    }

    fn for_protocol(&self, resp3: bool) -> &[u8] {
        let resp2 = self.encoded.get_or_init(|| {
            let size: usize = self.parts.iter().map(|p| p.len() + 16).sum();
            let mut frame = Vec::with_capacity(size + 8);
            let mut number = itoa::Buffer::new();
            frame.push(b'*');
            frame.extend_from_slice(number.format(self.parts.len()).as_bytes());
            frame.extend_from_slice(b"\r\n");
            for part in self.parts {
                frame.push(b'$');
                frame.extend_from_slice(number.format(part.len()).as_bytes());
                frame.extend_from_slice(b"\r\n");
                frame.extend_from_slice(part);
                frame.extend_from_slice(b"\r\n");
            }
            frame
        });
        if !resp3 {
            return resp2;
        }
        self.resp3.get_or_init(|| {
            let mut push = resp2.clone();
            push[0] = b'>';
            push
        })
    }
}

/// The three kinds of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    /// The words of this kind's confirmations and messages.
    pub fn subscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    pub fn unsubscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

/// A connection's subscriptions, in the order it made them, and its mailbox.
#[derive(Debug)]
pub struct Subscriptions {
    /// The subscriber (the hub lists it under each of its names).
    pub owner: Arc<ClientInfo>,
    pub channels: IndexSet<Blob>,
    pub patterns: IndexSet<Blob>,
    pub shard_channels: IndexSet<Blob>,
}

impl Subscriptions {
    pub fn new(owner: Arc<ClientInfo>) -> Self {
        Subscriptions {
            owner,
            channels: IndexSet::new(),
            patterns: IndexSet::new(),
            shard_channels: IndexSet::new(),
        }
    }

    pub fn of(&mut self, kind: Kind) -> &mut IndexSet<Blob> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// The count a (un)subscribe confirmation reports: channels and patterns together, shard
    /// channels apart, as Redis counts them.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shard_channels.len(),
        }
    }

    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }
}

/// Subscribers of one channel or pattern, in the order they subscribed.
type Subscribers = Vec<Arc<ClientInfo>>;

/// The instance's subscriptions, by channel and pattern.
#[derive(Debug, Default)]
pub struct Hub {
    channels: std::collections::HashMap<Blob, Subscribers>,
    /// In the order first subscribed (publishing tries each one).
    patterns: indexmap::IndexMap<Blob, Subscribers>,
    shard_channels: std::collections::HashMap<Blob, Subscribers>,
    /// Messages published (PUBLISH, SPUBLISH and keyspace notifications).
    published: u64,
    /// MONITOR clients, fed every command as it runs.
    monitors: Vec<Arc<ClientInfo>>,
}

/// Pub/Sub figures for INFO and the telemetry.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HubStats {
    pub channels: usize,
    pub patterns: usize,
    pub shard_channels: usize,
    pub published: u64,
}

impl Hub {
    fn table(&mut self, kind: Kind) -> &mut dyn SubscriberTable {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// Adds a subscriber to `name`; false if it was subscribed already.
    pub fn subscribe(&mut self, subs: &mut Subscriptions, kind: Kind, name: &[u8]) -> bool {
        if !subs.of(kind).insert(Blob::from_slice(name)) {
            return false;
        }
        let owner = subs.owner.clone();
        self.table(kind).add(name, owner);
        true
    }

    /// Removes a subscriber from `name`; false if it was not subscribed.
    pub fn unsubscribe(&mut self, subs: &mut Subscriptions, kind: Kind, name: &[u8]) -> bool {
        if !subs.of(kind).shift_remove(name) {
            return false;
        }
        let owner = subs.owner.clone();
        self.table(kind).remove(name, &owner);
        true
    }

    /// Makes a client a MONITOR, fed every command from now on; false if it was one.
    pub fn add_monitor(&mut self, subs: &Subscriptions) -> bool {
        if self.monitors.iter().any(|m| Arc::ptr_eq(m, &subs.owner)) {
            return false;
        }
        self.monitors.push(subs.owner.clone());
        true
    }

    pub fn monitor_count(&self) -> usize {
        self.monitors.len()
    }

    /// Sends one MONITOR line (already formatted, ending in CRLF) to every monitor, cut at
    /// `limit` (the replica class's, where Redis classes monitors).
    pub fn feed_monitors(&mut self, line: &[u8], limit: OutputLimit) {
        let parts = [line];
        let frames = Frames::raw(&parts);
        for monitor in &self.monitors {
            frames.deliver(monitor, limit);
        }
    }

    /// Removes every subscription of a connection that goes away (or RESETs), and its
    /// MONITOR if it was one.
    pub fn forget(&mut self, subs: &mut Subscriptions) {
        self.monitors.retain(|m| !Arc::ptr_eq(m, &subs.owner));
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            let names: Vec<Blob> = subs.of(kind).drain(..).collect();
            for name in names {
                self.table(kind).remove(&name, &subs.owner);
            }
        }
    }

    /// Delivers `message` to the subscribers of `channel` and of the patterns it matches
    /// (shard channels have no patterns). Returns how many received it.
    pub fn publish(
        &mut self,
        channel: &[u8],
        message: &[u8],
        shard: bool,
        limit: OutputLimit,
    ) -> usize {
        self.published += 1;
        let mut receivers = 0;
        let (direct, word) = if shard {
            (self.shard_channels.get(channel), "smessage")
        } else {
            (self.channels.get(channel), "message")
        };
        if let Some(subscribers) = direct {
            let parts = [word.as_bytes(), channel, message];
            let frames = Frames::new(&parts);
            receivers += subscribers
                .iter()
                .filter(|m| frames.deliver(m, limit))
                .count();
        }
        if shard {
            return receivers;
        }
        for (pattern, subscribers) in &self.patterns {
            if !crate::util::glob_match(pattern, channel, false) {
                continue;
            }
            let parts = [b"pmessage", &pattern[..], channel, message];
            let frames = Frames::new(&parts);
            receivers += subscribers
                .iter()
                .filter(|m| frames.deliver(m, limit))
                .count();
        }
        receivers
    }

    /// The active channels (or shard channels) matching `pattern` (all without one).
    pub fn channel_names(&self, shard: bool, pattern: Option<&[u8]>) -> Vec<Reply> {
        let table = if shard {
            &self.shard_channels
        } else {
            &self.channels
        };
        table
            .keys()
            .filter(|name| pattern.is_none_or(|p| crate::util::glob_match(p, name, false)))
            .map(Reply::bulk)
            .collect()
    }

    /// How many subscribe to `channel` (patterns aside).
    pub fn subscriber_count(&self, shard: bool, channel: &[u8]) -> usize {
        let table = if shard {
            &self.shard_channels
        } else {
            &self.channels
        };
        table.get(channel).map_or(0, |s| s.len())
    }

    pub fn stats(&self) -> HubStats {
        HubStats {
            channels: self.channels.len(),
            patterns: self.patterns.len(),
            shard_channels: self.shard_channels.len(),
            published: self.published,
        }
    }
}

/// A map from channel or pattern to its subscribers (the hub keeps three).
trait SubscriberTable {
    fn add(&mut self, name: &[u8], subscriber: Arc<ClientInfo>);
    fn remove(&mut self, name: &[u8], subscriber: &Arc<ClientInfo>);
}

macro_rules! subscriber_table {
    ($map:ty, $remove:ident) => {
        impl SubscriberTable for $map {
            fn add(&mut self, name: &[u8], subscriber: Arc<ClientInfo>) {
                match self.get_mut(name) {
                    Some(subscribers) => subscribers.push(subscriber),
                    None => {
                        self.insert(Blob::from_slice(name), vec![subscriber]);
                    }
                }
            }

            fn remove(&mut self, name: &[u8], subscriber: &Arc<ClientInfo>) {
                let Some(subscribers) = self.get_mut(name) else {
                    return;
                };
                subscribers.retain(|m| !Arc::ptr_eq(m, subscriber));
                if subscribers.is_empty() {
                    // No empty entries: PUBSUB CHANNELS lists only channels with subscribers,
                    // and a client cannot grow the table by subscribing and leaving.
                    self.$remove(name);
                }
            }
        }
    };
}

subscriber_table!(std::collections::HashMap<Blob, Subscribers>, remove);
subscriber_table!(indexmap::IndexMap<Blob, Subscribers>, shift_remove);

/// Drops a client's subscriptions and MONITOR, without confirmations (RESET, and a client
/// that goes away).
pub fn leave(shared: &super::Shared, client: &mut super::client::ClientState) {
    if let Some(subs) = client.pubsub.as_mut() {
        let mut hub = shared.pubsub.lock();
        hub.forget(subs);
        shared
            .monitoring
            .store(hub.monitor_count() > 0, Ordering::Release);
        client.info.set_subscriptions(subs);
    }
}

/// Publishes the keyspace events the keyspace has raised since the last call: each on its
/// key's `__keyspace@<db>__:` channel (the event as message) and its event's
/// `__keyevent@<db>__:` channel (the key as message), as the setting asks.
pub fn publish_notices(shared: &super::Shared, ks: &mut crate::keyspace::Keyspace) {
    use crate::keyspace::notify::class;
    let notices = ks.take_notices();
    if notices.is_empty() {
        return;
    }
    let flags = ks.config.notify_flags;
    let limit = shared.output_limit(crate::config::ClientClass::PubSub);
    let mut hub = shared.pubsub.lock();
    for notice in notices {
        if flags & class::KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{}__:", notice.db).into_bytes();
            channel.extend_from_slice(&notice.key);
            hub.publish(&channel, notice.event.as_bytes(), false, limit);
        }
        if flags & class::KEYEVENT != 0 {
            let channel = format!("__keyevent@{}__:{}", notice.db, notice.event);
            hub.publish(channel.as_bytes(), &notice.key, false, limit);
        }
    }
}
