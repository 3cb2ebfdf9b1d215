//! Delivery of CLIENT TRACKING's invalidations (the table is keyspace/tracking.rs), as Redis's
//! sendTrackingMessage: each goes to its client or to the client it redirects to, as a RESP3
//! `invalidate` push, or for a RESP2 redirect target that is subscribed, as a message on
//! `__redis__:invalidate`. A client whose redirect target is gone is marked broken and, in
//! RESP3, told so with a `tracking-redir-broken` push.
//!
//! When: what a command owes other clients as it ends (`send`), what it owes its own client
//! after its reply (`send_after_reply`), and the BCAST prefixes' changes as a batch ends
//! (`end_of_batch`), as Redis broadcasts them before it sleeps.

use super::client::ClientInfo;
use super::{pubsub, Shared};
use crate::config::ClientClass;
use crate::keyspace::tracking::{Invalidation, Stale, Tracking};
use crate::keyspace::Keyspace;

/// Delivers what is owed now.
pub fn send(shared: &Shared, ks: &mut Keyspace) {
    let owed = ks.tracking.take_outbox();
    if !owed.is_empty() {
        deliver(shared, &mut ks.tracking, owed);
    }
}

/// Delivers what the command that just replied owes its own client.
pub fn send_after_reply(shared: &Shared, ks: &mut Keyspace) {
    let owed = ks.tracking.take_after_reply();
    if !owed.is_empty() {
        deliver(shared, &mut ks.tracking, owed);
    }
}

/// As a batch ends: the BCAST broadcasts, and anything still owed.
pub fn end_of_batch(shared: &Shared, ks: &mut Keyspace) {
    if !ks.tracking.has_mail() {
        return;
    }
    send_after_reply(shared, ks);
    ks.tracking.broadcast();
    send(shared, ks);
}

/// The cron's share: the key table held to `tracking-table-max-keys`, and what that (or
/// active expiry) made owed.
pub fn tick(shared: &Shared, ks: &mut Keyspace) {
    ks.tracking.set_current(None, false);
    ks.tracking.enforce_limit(ks.config.tracking_table_max_keys);
    end_of_batch(shared, ks);
}

fn deliver(shared: &Shared, tracking: &mut Tracking, owed: Vec<Invalidation>) {
    // The last frame built, by what it says and how: a BCAST prefix's clients share it.
    let mut last: Option<(Stale, bool, Vec<u8>)> = None;
    for message in owed {
        let redirect = tracking.tracker(message.to).map_or(0, |t| t.redirect);
        let receiver = if redirect == 0 {
            shared.client(message.to)
        } else {
            shared.client(redirect)
        };
        let Some(receiver) = receiver else {
            if redirect != 0 {
                redirect_broken(shared, tracking, message.to, redirect);
            }
            continue;
        };
        let resp3 = receiver.mailbox.resp3();
        if !resp3 && (redirect == 0 || !receiver.is_subscriber()) {
            // A RESP2 connection has no way to receive pushes among its replies.
            continue;
        }
        let reusable = last
            .as_ref()
            .is_some_and(|(stale, push, _)| *push == resp3 && same(stale, &message.stale));
        if !reusable {
            last = Some((message.stale.clone(), resp3, frame(&message.stale, resp3)));
        }
        if let Some((_, _, bytes)) = &last {
            pubsub::deliver(&receiver, bytes, limit_for(shared, &receiver));
        }
    }
}

/// The same message: one shared key list (or both "every key").
fn same(a: &Stale, b: &Stale) -> bool {
    match (a, b) {
        (Stale::Keys(a), Stale::Keys(b)) => std::sync::Arc::ptr_eq(a, b),
        (Stale::All, Stale::All) => true,
        _ => false,
    }
}

/// An invalidation as a RESP3 push, or as a RESP2 message on `__redis__:invalidate`.
fn frame(stale: &Stale, resp3: bool) -> Vec<u8> {
    let mut frame = Vec::new();
    if resp3 {
        frame.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    } else {
        frame.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    }
    encode_stale(stale, resp3, &mut frame);
    frame
}

/// The redirect target of client `id` is gone: it is marked broken, and told if it speaks
/// RESP3.
fn redirect_broken(shared: &Shared, tracking: &mut Tracking, id: u64, redirect: u64) {
    tracking.mark_broken(id);
    let Some(client) = shared.client(id) else {
        return;
    };
    client.set_tracking_broken();
    if client.mailbox.resp3() {
        let frame = format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{redirect}\r\n");
        pubsub::deliver(&client, frame.as_bytes(), limit_for(shared, &client));
    }
}

/// The keys an invalidation names: an array, or a null for every key.
fn encode_stale(stale: &Stale, resp3: bool, frame: &mut Vec<u8>) {
    match stale {
        Stale::All if resp3 => frame.extend_from_slice(b"_\r\n"),
        Stale::All => frame.extend_from_slice(b"$-1\r\n"),
        Stale::Keys(keys) => {
            let mut number = itoa::Buffer::new();
            frame.push(b'*');
            frame.extend_from_slice(number.format(keys.len()).as_bytes());
            frame.extend_from_slice(b"\r\n");
            for key in keys.iter() {
                frame.push(b'$');
                frame.extend_from_slice(number.format(key.len()).as_bytes());
                frame.extend_from_slice(b"\r\n");
                frame.extend_from_slice(key);
                frame.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// The output limit of the receiver's class (a subscriber's is the pubsub one).
fn limit_for(shared: &Shared, receiver: &ClientInfo) -> crate::config::OutputLimit {
    let class = if receiver.is_subscriber() {
        ClientClass::PubSub
    } else {
        ClientClass::Normal
    };
    shared.output_limit(class)
}
