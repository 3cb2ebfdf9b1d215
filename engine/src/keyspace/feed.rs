//! The write feed: every write as the command that reproduces it (as propagated), encoded as
//! RESP arrays in the keyspace's buffer while the batch that ran it still holds the keyspace
//! lock. The end of the batch (instance::batch) hands the buffer to the AOF appender, which
//! writes it before the batch's replies leave; replicas are to take the same feed.
//!
//! A SELECT goes in whenever the database changes and at the start of every incr file.
//! Transactions that propagated more than one command are wrapped in MULTI/EXEC.

/// The feed of one keyspace. Off (and free) unless something consumes it (the AOF).
#[derive(Debug, Default)]
pub struct WriteFeed {
    on: bool,
    buf: Vec<u8>,
    /// The database the log's reader is in; None forces a SELECT before the next command.
    db: Option<usize>,
    /// A transaction being fed: where its MULTI would go and how many commands it logged.
    transaction: Option<(usize, usize)>,
    /// Commands were fed since the last `take_fed` (even if a rewrite already took them).
    fed: bool,
}

impl WriteFeed {
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Starts or stops feeding; a new log starts with a SELECT.
    pub fn set_on(&mut self, on: bool) {
        self.on = on;
        self.db = None;
        if !on {
            self.buf = Vec::new();
            self.transaction = None;
            self.fed = false;
        }
    }

    /// The next command goes into a new file: it must select its database again.
    pub fn reselect(&mut self) {
        self.db = None;
    }

    /// Logs one command run against `db`.
    pub fn command<A: AsRef<[u8]>>(&mut self, db: usize, args: &[A]) {
        if !self.on {
            return;
        }
        if self.db != Some(db) {
            encode(
                &mut self.buf,
                &[b"SELECT".as_slice(), db.to_string().as_bytes()],
            );
            self.db = Some(db);
        }
        encode(&mut self.buf, args);
        self.fed = true;
        if let Some((_, count)) = self.transaction.as_mut() {
            *count += 1;
        }
    }

    /// True between `begin_transaction` and `end_transaction` (an EXEC, or a script).
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// EXEC begins: the commands it propagates may need wrapping.
    pub fn begin_transaction(&mut self) {
        if self.on {
            self.transaction = Some((self.buf.len(), 0));
        }
    }

    /// EXEC ends: wraps what it logged in MULTI/EXEC if that was more than one command.
    pub fn end_transaction(&mut self) {
        let Some((start, count)) = self.transaction.take() else {
            return;
        };
        if count > 1 {
            let mut multi = Vec::new();
            encode(&mut multi, &[b"MULTI"]);
            self.buf.splice(start..start, multi);
            encode(&mut self.buf, &[b"EXEC"]);
        }
    }

    /// True if commands wait to be written.
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty() && self.transaction.is_none()
    }

    /// Takes the bytes to write.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// True if commands were fed since the last call: the batch that ran them has writes
    /// whose fate its replies must reflect.
    pub fn take_fed(&mut self) -> bool {
        std::mem::take(&mut self.fed)
    }
}

/// Appends `args` as a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    let mut number = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(number.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        out.push(b'$');
        out.extend_from_slice(number.format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_on_db_change_and_wraps_transactions() {
        let mut feed = WriteFeed::default();
        feed.command(0, &[b"SET".as_slice(), b"k"]);
        assert!(!feed.has_pending(), "off: nothing is logged");
        feed.set_on(true);
        feed.command(0, &[b"SET".as_slice(), b"k", b"v"]);
        feed.command(0, &[b"DEL".as_slice(), b"k"]);
        feed.command(3, &[b"DEL".as_slice(), b"k"]);
        let text = String::from_utf8(feed.take()).unwrap();
        assert_eq!(
            text,
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n\
             *2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n\
             *2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"
        );
        feed.begin_transaction();
        feed.command(3, &[b"DEL".as_slice(), b"a"]);
        assert!(!feed.has_pending(), "a transaction is written whole");
        feed.command(3, &[b"DEL".as_slice(), b"b"]);
        feed.end_transaction();
        let text = String::from_utf8(feed.take()).unwrap();
        assert!(text.starts_with("*1\r\n$5\r\nMULTI\r\n"));
        assert!(text.ends_with("*1\r\n$4\r\nEXEC\r\n"));
        feed.begin_transaction();
        feed.command(3, &[b"DEL".as_slice(), b"a"]);
        feed.end_transaction();
        assert!(!String::from_utf8(feed.take()).unwrap().contains("MULTI"));
        feed.reselect();
        feed.command(3, &[b"DEL".as_slice(), b"a"]);
        assert!(String::from_utf8(feed.take()).unwrap().contains("SELECT"));
    }
}
