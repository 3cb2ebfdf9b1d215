//! The values a key can hold, laid out for memory: short strings and members live inline
//! (`Blob` keeps up to 24 bytes without a heap allocation), collections sit behind one box so
//! a key's entry stays small, and every value can tell its heap footprint in O(1).

use std::cmp::Ordering;
use std::collections::BTreeSet;

use smallvec::SmallVec;

use super::dict::Dict;
pub use super::list::List;
pub use super::stream::Stream;

/// Bytes of a key, a string value or a collection member; up to 24 are stored inline (measured:
/// HSET with 20-byte fields ran ~20% faster than with 16 inline, for 16 more bytes per key).
pub type Blob = SmallVec<[u8; 24]>;

/// Heap bytes behind a blob (0 while inline), rounded as malloc rounds.
pub fn heap_size_of(blob: &Blob) -> usize {
    if blob.spilled() {
        malloc_size(blob.capacity())
    } else {
        0
    }
}

/// glibc malloc's chunk size for a request: 8 bytes of header, 16-byte steps, 32 at least.
pub fn malloc_size(request: usize) -> usize {
    ((request + 8).div_ceil(16) * 16).max(32)
}

/// What `TYPE` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    List,
    Hash,
    Set,
    ZSet,
    Stream,
}

impl ValueType {
    /// Every type, in the order `index` numbers them.
    pub const ALL: [ValueType; 6] = [
        ValueType::String,
        ValueType::List,
        ValueType::Hash,
        ValueType::Set,
        ValueType::ZSet,
        ValueType::Stream,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::Stream => "stream",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<ValueType> {
        Some(match name.to_ascii_lowercase().as_slice() {
            b"string" => ValueType::String,
            b"list" => ValueType::List,
            b"hash" => ValueType::Hash,
            b"set" => ValueType::Set,
            b"zset" => ValueType::ZSet,
            b"stream" => ValueType::Stream,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub enum Value {
    Str(Blob),
    List(Box<List>),
    Hash(Box<Hash>),
    Set(Box<Set>),
    ZSet(Box<ZSet>),
    Stream(Box<Stream>),
}

/// A type of value one command family works on: how to find it in a `Value` (the typed
/// projection of `Ctx::read` and `Ctx::write`: a handler gets its type or WRONGTYPE, never
/// an impossible branch), and what a `ValueMut` over it needs for the memory accounting.
pub trait Kind {
    fn of(value: &Value) -> Option<&Self>;
    fn of_mut(value: &mut Value) -> Option<&mut Self>;
    /// Heap bytes it owns: changes by as much as the `Value::heap_size` of its value does.
    fn heap(&self) -> usize;
    /// A collection with no elements left (its key is then removed).
    fn emptied(&self) -> bool;
    /// After a write: a compact encoding the value has outgrown under `limits` gives way to
    /// the big one, as Redis converts after each command (never back).
    fn settle_encoding(&mut self, _limits: &EncodingLimits) {}
}

impl Kind for Value {
    fn of(value: &Value) -> Option<&Self> {
        Some(value)
    }
    fn of_mut(value: &mut Value) -> Option<&mut Self> {
        Some(value)
    }
    fn heap(&self) -> usize {
        self.heap_size()
    }
    fn emptied(&self) -> bool {
        !matches!(self, Value::Str(_) | Value::Stream(_)) && self.element_count() == 0
    }
    fn settle_encoding(&mut self, limits: &EncodingLimits) {
        match self {
            Value::Hash(h) => h.settle_encoding(limits),
            Value::Set(s) => s.settle_encoding(limits),
            Value::ZSet(z) => z.settle_encoding(limits),
            Value::Str(_) | Value::List(_) | Value::Stream(_) => {}
        }
    }
}

impl Kind for Blob {
    fn of(value: &Value) -> Option<&Self> {
        match value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    fn of_mut(value: &mut Value) -> Option<&mut Self> {
        match value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    fn heap(&self) -> usize {
        heap_size_of(self)
    }
    fn emptied(&self) -> bool {
        false
    }
}

impl Kind for Stream {
    fn of(value: &Value) -> Option<&Self> {
        match value {
            Value::Stream(s) => Some(s),
            _ => None,
        }
    }
    fn of_mut(value: &mut Value) -> Option<&mut Self> {
        match value {
            Value::Stream(s) => Some(s),
            _ => None,
        }
    }
    fn heap(&self) -> usize {
        self.heap_size()
    }
    /// A stream stays when its last entry goes (its ids and groups are state too).
    fn emptied(&self) -> bool {
        false
    }
}

/// `Kind` for the collection types, each boxed in its own `Value` variant, with the rule
/// that ends its compact encoding (lists are always quicklists in Redis 7.0).
macro_rules! collection_kind {
    ($($ty:ident => $variant:ident, $heap:expr, $settle:expr;)*) => {$(
        impl Kind for $ty {
            fn of(value: &Value) -> Option<&Self> {
                match value {
                    Value::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn of_mut(value: &mut Value) -> Option<&mut Self> {
                match value {
                    Value::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn heap(&self) -> usize {
                let heap: fn(&$ty) -> usize = $heap;
                heap(self)
            }
            fn emptied(&self) -> bool {
                self.len() == 0
            }
            fn settle_encoding(&mut self, limits: &EncodingLimits) {
                let settle: fn(&mut $ty, &EncodingLimits) = $settle;
                settle(self, limits)
            }
        }
    )*};
}

collection_kind! {
    List => List, List::mem_size, |_, _| {};
    Hash => Hash, Hash::mem_size, |h, l| {
        h.compact &= h.len() <= l.hash_entries && h.longest <= l.hash_value;
    };
    Set => Set, |s| s.members.mem_size(), |s, l| s.intset &= s.len() <= l.intset_entries;
    ZSet => ZSet, ZSet::mem_size, |z, l| {
        z.compact &= z.len() <= l.zset_entries && z.longest <= l.zset_value;
    };
}

/// Redis's encoding settings: how far a collection keeps its compact encoding. The defaults
/// are redis-server's own (without a config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodingLimits {
    /// hash-max-listpack-entries / -value (alias hash-max-ziplist-*).
    pub hash_entries: usize,
    pub hash_value: usize,
    /// zset-max-listpack-entries / -value (alias zset-max-ziplist-*).
    pub zset_entries: usize,
    pub zset_value: usize,
    /// set-max-intset-entries.
    pub intset_entries: usize,
    /// list-max-listpack-size (alias list-max-ziplist-size): entries per node if positive,
    /// -1..-5 for 4..64 KB nodes.
    pub list_node_size: i64,
    /// list-compress-depth: nodes left uncompressed at each end of a list (0: none compressed).
    pub list_compress_depth: u64,
    /// hll-sparse-max-bytes: the longest a sparse HyperLogLog grows before it turns dense.
    pub hll_sparse_max_bytes: usize,
    /// stream-node-max-bytes / -entries: how far a stream node grows (0: no limit).
    pub stream_node_max_bytes: usize,
    pub stream_node_max_entries: usize,
}

impl Default for EncodingLimits {
    fn default() -> Self {
        EncodingLimits {
            hash_entries: 512,
            hash_value: 64,
            zset_entries: 128,
            zset_value: 64,
            intset_entries: 512,
            list_node_size: -2,
            list_compress_depth: 0,
            hll_sparse_max_bytes: 3000,
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
        }
    }
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) => ValueType::String,
            Value::List(_) => ValueType::List,
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
            Value::Stream(_) => ValueType::Stream,
        }
    }

    /// Heap bytes owned by this value (not counting the entry that holds it).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => heap_size_of(s),
            Value::List(l) => malloc_size(std::mem::size_of::<List>()) + l.mem_size(),
            Value::Hash(h) => malloc_size(std::mem::size_of::<Hash>()) + h.mem_size(),
            Value::Set(s) => malloc_size(std::mem::size_of::<Set>()) + s.members.mem_size(),
            Value::ZSet(z) => malloc_size(std::mem::size_of::<ZSet>()) + z.mem_size(),
            Value::Stream(s) => malloc_size(std::mem::size_of::<Stream>()) + s.heap_size(),
        }
    }

    /// Number of elements, as eviction and lazy freeing weigh a value.
    pub fn element_count(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::List(l) => l.len(),
            Value::Hash(h) => h.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
            Value::Stream(s) => s.len() as usize,
        }
    }

    /// The name OBJECT ENCODING gives, following Redis 7.0's rules.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => {
                if s.len() <= 20 && crate::util::parse_i64(s).is_some() {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            Value::List(_) => "quicklist",
            Value::Hash(h) if h.compact => "listpack",
            Value::Hash(_) => "hashtable",
            Value::Set(s) if s.intset => "intset",
            Value::Set(_) => "hashtable",
            Value::ZSet(z) if z.compact => "listpack",
            Value::ZSet(_) => "skiplist",
            Value::Stream(_) => "stream",
        }
    }
}

/// A hash: field → value, with the listpack/hashtable encoding Redis would report.
#[derive(Debug, Clone)]
pub struct Hash {
    pub fields: Dict<Blob>,
    value_heap: usize,
    pub compact: bool,
    /// The longest field or value ever set (a compact hash outgrows its encoding by it).
    longest: usize,
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            fields: Dict::new(),
            value_heap: 0,
            compact: true,
            longest: 0,
        }
    }
}

impl Hash {
    pub fn len(&self) -> usize {
        self.fields.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
    fn mem_size(&self) -> usize {
        self.fields.mem_size() + self.value_heap
    }
    pub fn get(&self, field: &[u8]) -> Option<&Blob> {
        self.fields.get(field)
    }
    /// Sets a field; true if it is new.
    pub fn insert(&mut self, field: &[u8], value: Blob) -> bool {
        self.longest = self.longest.max(field.len()).max(value.len());
        self.value_heap += heap_size_of(&value);
        let old = self.fields.insert(Blob::from_slice(field), value);
        if let Some(old) = &old {
            self.value_heap -= heap_size_of(old);
        }
        old.is_none()
    }
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.fields.remove(field) {
            Some(old) => {
                self.value_heap -= heap_size_of(&old);
                true
            }
            None => false,
        }
    }
}

/// A set, with the intset/hashtable encoding Redis would report.
#[derive(Debug, Clone)]
pub struct Set {
    pub members: Dict<()>,
    pub intset: bool,
}

impl Default for Set {
    fn default() -> Self {
        Set {
            members: Dict::new(),
            intset: true,
        }
    }
}

impl Set {
    pub fn len(&self) -> usize {
        self.members.len()
    }
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains_key(member)
    }
    /// Adds a member; true if it was new.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        let added = self.members.insert_if_absent(member, || ());
        if added && self.intset && crate::util::parse_i64(member).is_none() {
            self.intset = false;
        }
        added
    }
    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.members.remove(member).is_some()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Blob> {
        self.members.keys()
    }
}

impl<'a> FromIterator<&'a [u8]> for Set {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        let mut set = Set::default();
        for m in iter {
            set.insert(m);
        }
        set
    }
}

/// A score and member, ordered as a sorted set orders them: by score, then by member bytes.
#[derive(Debug, Clone)]
pub struct Scored {
    pub score: f64,
    pub member: Blob,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| self.member.cmp(&other.member))
    }
}

/// A sorted set: member → score for lookups, an ordered tree for ranges.
#[derive(Debug, Clone)]
pub struct ZSet {
    pub scores: Dict<f64>,
    pub ordered: BTreeSet<Scored>,
    member_heap: usize,
    pub compact: bool,
    /// The longest member ever added (a compact sorted set outgrows its encoding by it).
    longest: usize,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet {
            scores: Dict::new(),
            ordered: BTreeSet::new(),
            member_heap: 0,
            compact: true,
            longest: 0,
        }
    }
}

/// Approximate bytes per element of a BTreeSet<Scored> (element plus node slack).
const BTREE_ELEMENT_BYTES: usize = 48;

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
    fn mem_size(&self) -> usize {
        self.scores.mem_size() + self.ordered.len() * BTREE_ELEMENT_BYTES + self.member_heap
    }
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }
    /// Sets a member's score; returns the previous score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let old = self.scores.get(member).copied();
        match old {
            Some(old_score) => {
                if old_score != score || old_score.is_sign_negative() != score.is_sign_negative() {
                    let mut entry = self
                        .ordered
                        .take(&Scored {
                            score: old_score,
                            member: Blob::from_slice(member),
                        })
                        .unwrap_or_else(|| Scored {
                            score,
                            member: Blob::from_slice(member),
                        });
                    entry.score = score;
                    self.ordered.insert(entry);
                    if let Some(slot) = self.scores.get_mut(member) {
                        *slot = score;
                    }
                }
            }
            None => {
                self.longest = self.longest.max(member.len());
                let blob = Blob::from_slice(member);
                self.member_heap += heap_size_of(&blob);
                self.ordered.insert(Scored {
                    score,
                    member: blob.clone(),
                });
                self.scores.insert_new(blob, score);
            }
        }
        old
    }
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (blob, score) = self.scores.remove_entry(member)?;
        self.member_heap -= heap_size_of(&blob);
        self.ordered.remove(&Scored {
            score,
            member: blob,
        });
        Some(score)
    }
    /// Members in order (ascending), as (member, score).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Scored> {
        self.ordered.iter()
    }
    /// 0-based rank of a member in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let probe = Scored {
            score,
            member: Blob::from_slice(member),
        };
        Some(self.ordered.range(..&probe).count())
    }
}
