//! Consumer-group bookkeeping against a plain reference model: random XADD, XDEL,
//! XREADGROUP (new entries and a consumer's history), XACK, XCLAIM (with and without JUSTID)
//! and XAUTOCLAIM on an embedded instance, and after every step the pending entries, their
//! owners and delivery counts, and each consumer's share must be what the model says.

use std::collections::{BTreeMap, BTreeSet};

use cachedesk_engine::protocol::Reply;
use cachedesk_engine::{Instance, InstanceConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Id = (u64, u64);

/// What Redis should hold: live entries, the group's last delivered id, and its pending
/// entries (owner, delivery count).
#[derive(Default)]
struct Model {
    entries: BTreeSet<Id>,
    next_ms: u64,
    last_added: Id,
    last_delivered: Id,
    pending: BTreeMap<Id, (String, u64)>,
    consumers: BTreeSet<String>,
    /// Deliveries and claims checked, so a run that exercised nothing fails.
    checked: usize,
}

impl Model {
    fn owned_by(&self, consumer: &str) -> Vec<Id> {
        self.pending
            .iter()
            .filter(|(_, (owner, _))| owner == consumer)
            .map(|(id, _)| *id)
            .collect()
    }
}

fn id_text(id: Id) -> String {
    format!("{}-{}", id.0, id.1)
}

fn parse_id(reply: &Reply) -> Id {
    let Reply::Bulk(b) = reply else {
        panic!("an id, got {reply:?}")
    };
    let text = String::from_utf8_lossy(b);
    let (ms, seq) = text.split_once('-').expect("ms-seq");
    (ms.parse().expect("ms"), seq.parse().expect("seq"))
}

fn array(reply: Reply) -> Vec<Reply> {
    match reply {
        Reply::Array(items) => items,
        Reply::NullArray => Vec::new(),
        other => panic!("an array, got {other:?}"),
    }
}

fn int(reply: Reply) -> i64 {
    match reply {
        Reply::Int(n) => n,
        other => panic!("an integer, got {other:?}"),
    }
}

/// The ids of entries in an XRANGE-style reply, with whether each came with its fields.
fn entry_ids(entries: Vec<Reply>) -> Vec<(Id, bool)> {
    entries
        .into_iter()
        .map(|e| {
            let parts = array(e);
            (parse_id(&parts[0]), matches!(parts[1], Reply::Array(_)))
        })
        .collect()
}

/// XREADGROUP's reply for the one stream: its entries.
fn read_reply(reply: Reply) -> Vec<(Id, bool)> {
    let streams = array(reply);
    match streams.into_iter().next() {
        None => Vec::new(),
        Some(stream) => {
            let mut parts = array(stream);
            entry_ids(array(parts.remove(1)))
        }
    }
}

struct Run {
    instance: Instance,
    model: Model,
    rng: StdRng,
}

const CONSUMERS: [&str; 4] = ["ann", "bob", "cyd", "dee"];

impl Run {
    fn exec(&self, args: &[String]) -> Reply {
        let reply = self.instance.execute(0, args);
        assert!(
            !matches!(reply, Reply::Error(_)),
            "{args:?} failed: {reply:?}"
        );
        reply
    }

    fn consumer(&mut self) -> String {
        CONSUMERS[self.rng.random_range(0..CONSUMERS.len())].to_string()
    }

    /// Some ids: pending ones, live ones and made-up ones.
    fn some_ids(&mut self) -> Vec<Id> {
        let mut pool: Vec<Id> = self.model.pending.keys().copied().collect();
        pool.extend(self.model.entries.iter().copied().take(20));
        pool.push((self.model.next_ms + 5, 0));
        let n = self.rng.random_range(1..5);
        (0..n)
            .map(|_| pool[self.rng.random_range(0..pool.len())])
            .collect()
    }

    fn step(&mut self) {
        let args = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self.rng.random_range(0..100) {
            0..=29 => {
                self.model.next_ms += self.rng.random_range(0..3);
                let last = self.model.last_added;
                let id = match (self.model.next_ms, self.rng.random_range(0..4u64)) {
                    (ms, seq) if (ms, seq) > last => (ms, seq),
                    _ => (last.0, last.1 + 1),
                };
                self.exec(&args(&["XADD", "s", &id_text(id), "f", "v"]));
                self.model.entries.insert(id);
                self.model.last_added = id;
            }
            30..=37 => {
                let Some(&id) = self
                    .model
                    .entries
                    .iter()
                    .nth(self.rng.random_range(0..self.model.entries.len().max(1)))
                else {
                    return;
                };
                assert_eq!(int(self.exec(&args(&["XDEL", "s", &id_text(id)]))), 1);
                self.model.entries.remove(&id);
            }
            38..=54 => {
                let consumer = self.consumer();
                let count = self.rng.random_range(1..6);
                let reply = self.exec(&args(&[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    &consumer,
                    "COUNT",
                    &count.to_string(),
                    "STREAMS",
                    "s",
                    ">",
                ]));
                let expected: Vec<(Id, bool)> = self
                    .model
                    .entries
                    .range((
                        std::ops::Bound::Excluded(self.model.last_delivered),
                        std::ops::Bound::Unbounded,
                    ))
                    .take(count)
                    .map(|id| (*id, true))
                    .collect();
                assert_eq!(read_reply(reply), expected, "XREADGROUP >");
                if !expected.is_empty() {
                    self.model.consumers.insert(consumer.clone());
                }
                self.model.checked += expected.len();
                for (id, _) in expected {
                    self.model.pending.insert(id, (consumer.clone(), 1));
                    self.model.last_delivered = id;
                }
            }
            55..=62 => {
                let consumer = self.consumer();
                let reply = self.exec(&args(&[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    &consumer,
                    "STREAMS",
                    "s",
                    "0",
                ]));
                self.model.consumers.insert(consumer.clone());
                let owned = self.model.owned_by(&consumer);
                let expected: Vec<(Id, bool)> = owned
                    .iter()
                    .map(|id| (*id, self.model.entries.contains(id)))
                    .collect();
                assert_eq!(read_reply(reply), expected, "XREADGROUP history");
                for id in owned {
                    if self.model.entries.contains(&id) {
                        if let Some(p) = self.model.pending.get_mut(&id) {
                            p.1 += 1;
                        }
                    }
                }
            }
            63..=74 => {
                let ids = self.some_ids();
                let mut cmd = args(&["XACK", "s", "g"]);
                cmd.extend(ids.iter().map(|id| id_text(*id)));
                let mut expected = 0;
                for id in &ids {
                    if self.model.pending.remove(id).is_some() {
                        expected += 1;
                    }
                }
                assert_eq!(int(self.exec(&cmd)), expected, "XACK {ids:?}");
            }
            75..=87 => {
                let consumer = self.consumer();
                let ids = self.some_ids();
                let just_id = self.rng.random_bool(0.5);
                let mut cmd = args(&["XCLAIM", "s", "g", &consumer, "0"]);
                cmd.extend(ids.iter().map(|id| id_text(*id)));
                if just_id {
                    cmd.push("JUSTID".into());
                }
                let reply = array(self.exec(&cmd));
                let got: Vec<Id> = reply
                    .iter()
                    .map(|r| match r {
                        Reply::Array(parts) => parse_id(&parts[0]),
                        other => parse_id(other),
                    })
                    .collect();
                let mut expected = Vec::new();
                for id in ids {
                    if !self.model.pending.contains_key(&id) {
                        continue;
                    }
                    if !self.model.entries.contains(&id) {
                        self.model.pending.remove(&id);
                        continue;
                    }
                    self.model.consumers.insert(consumer.clone());
                    let p = self.model.pending.get_mut(&id).expect("pending");
                    p.0 = consumer.clone();
                    if !just_id {
                        p.1 += 1;
                    }
                    expected.push(id);
                }
                assert_eq!(got, expected, "XCLAIM");
                self.model.checked += expected.len();
            }
            _ => {
                let consumer = self.consumer();
                let count = self.rng.random_range(1..5usize);
                let reply = array(self.exec(&args(&[
                    "XAUTOCLAIM",
                    "s",
                    "g",
                    &consumer,
                    "0",
                    "0",
                    "COUNT",
                    &count.to_string(),
                ])));
                let mut left = count;
                let mut claimed = Vec::new();
                let mut deleted = Vec::new();
                let mut cursor = (0, 0);
                for id in self.model.pending.keys().copied().collect::<Vec<_>>() {
                    if left == 0 {
                        cursor = id;
                        break;
                    }
                    left -= 1;
                    if self.model.entries.contains(&id) {
                        self.model.consumers.insert(consumer.clone());
                        let p = self.model.pending.get_mut(&id).expect("pending");
                        p.0 = consumer.clone();
                        p.1 += 1;
                        claimed.push((id, true));
                    } else {
                        self.model.pending.remove(&id);
                        deleted.push(id);
                    }
                }
                let mut parts = reply.into_iter();
                let next = parts.next().expect("cursor");
                assert_eq!(parse_id(&next), cursor, "XAUTOCLAIM cursor");
                assert_eq!(
                    entry_ids(array(parts.next().expect("claimed"))),
                    claimed,
                    "XAUTOCLAIM claimed"
                );
                let got_deleted: Vec<Id> = array(parts.next().expect("deleted"))
                    .iter()
                    .map(parse_id)
                    .collect();
                assert_eq!(got_deleted, deleted, "XAUTOCLAIM deleted");
            }
        }
    }

    /// The pending list, its summary and each consumer's count, as the model has them.
    fn check(&self) {
        let args = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pending: Vec<(Id, String, i64)> =
            array(self.exec(&args(&["XPENDING", "s", "g", "-", "+", "100000"])))
                .into_iter()
                .map(|p| {
                    let parts = array(p);
                    let Reply::Bulk(owner) = &parts[1] else {
                        panic!("owner")
                    };
                    let Reply::Int(count) = parts[3] else {
                        panic!("count")
                    };
                    (
                        parse_id(&parts[0]),
                        String::from_utf8_lossy(owner).into_owned(),
                        count,
                    )
                })
                .collect();
        let expected: Vec<(Id, String, i64)> = self
            .model
            .pending
            .iter()
            .map(|(id, (owner, count))| (*id, owner.clone(), *count as i64))
            .collect();
        assert_eq!(pending, expected, "XPENDING");
        let summary = array(self.exec(&args(&["XPENDING", "s", "g"])));
        assert_eq!(summary[0], Reply::Int(self.model.pending.len() as i64));
        let consumers = array(self.exec(&args(&["XINFO", "CONSUMERS", "s", "g"])));
        let names: BTreeSet<String> = consumers
            .into_iter()
            .map(|c| {
                let Reply::Map(fields) = c else {
                    panic!("a consumer map")
                };
                let (Reply::Bulk(name), Reply::Int(owned)) = (&fields[0].1, &fields[1].1) else {
                    panic!("name and pending")
                };
                let name = String::from_utf8_lossy(name).into_owned();
                assert_eq!(
                    *owned as usize,
                    self.model.owned_by(&name).len(),
                    "{name}'s pending entries"
                );
                name
            })
            .collect();
        assert_eq!(names, self.model.consumers, "consumers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_bookkeeping_matches_a_reference_model() {
    for seed in 0..8u64 {
        let instance = Instance::start(InstanceConfig::default())
            .await
            .expect("instance starts");
        instance.execute(0, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        instance.execute(0, &["CONFIG", "SET", "stream-node-max-entries", "4"]);
        let mut run = Run {
            instance,
            model: Model::default(),
            rng: StdRng::seed_from_u64(seed),
        };
        run.model.next_ms = 1;
        for _ in 0..600 {
            run.step();
            run.check();
        }
        assert!(
            run.model.checked > 100,
            "seed {seed}: {} checked",
            run.model.checked
        );
        run.instance.stop().await;
    }
}
