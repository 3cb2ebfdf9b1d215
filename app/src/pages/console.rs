//! Console: type a command, see the reply formatted as redis-cli prints it; up/down walk the
//! history. The console is a client of the cache (its own database, MULTI, WATCH), and its
//! commands run on the runtime, never on the UI thread: a blocking command (BLPOP, XREAD
//! BLOCK...) shows its reply when it arrives, or can be cancelled as CLIENT UNBLOCK does.
//! After SUBSCRIBE or PSUBSCRIBE the console shows messages as they arrive, until Stop.

use std::sync::Arc;

use cachedesk_engine::protocol::parser;
use cachedesk_engine::{Instance, LocalClient, Reply};
use eframe::egui;
use poll_promise::Promise;
use tokio::runtime::Handle;

#[derive(Default)]
pub struct Console {
    pub input: String,
    /// What the console shows: each command and its reply.
    pub transcript: Vec<String>,
    history: Vec<String>,
    /// Where up/down is in the history (None: at the new line).
    browsing: Option<usize>,
    db: usize,
    /// The console's client, and the instance it is a client of (a restarted cache gets a new
    /// one); out in `pending` while a command runs.
    client: Option<LocalClient>,
    client_of: Option<Arc<Instance>>,
    /// The command running: its client and reply once done.
    pending: Option<Promise<(LocalClient, Reply)>>,
    /// The id of the client `pending` runs on (to unblock it).
    pending_id: Option<u64>,
    /// Subscribed: the client is out reading messages until Stop.
    listening: Option<Listening>,
}

/// The console's client reading Pub/Sub messages on the runtime.
struct Listening {
    messages: std::sync::mpsc::Receiver<Reply>,
    /// Stop: the client unsubscribes from everything and comes back through `done`.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Promise<LocalClient>,
}

impl Console {
    pub fn show(&mut self, ui: &mut egui::Ui, instance: Option<&Arc<Instance>>, runtime: &Handle) {
        self.collect(ui.ctx(), runtime);
        self.read_messages();
        let Some(instance) = instance else {
            ui.label("Start the cache to use its console.");
            return;
        };
        egui::ScrollArea::vertical()
            .max_height(ui.available_height() - 40.0)
            .stick_to_bottom(true)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                for line in &self.transcript {
                    ui.monospace(line);
                }
            });
        let mut submit = false;
        ui.horizontal(|ui| {
            let prompt = ui.monospace(format!("db{}>", self.db));
            let field = ui.add(
                egui::TextEdit::singleline(&mut self.input)
                    .font(egui::TextStyle::Monospace)
                    .desired_width(ui.available_width() - 80.0),
            );
            let field = field.labelled_by(prompt.id).on_hover_text("Command");
            if field.has_focus() {
                if ui.input(|i| i.key_pressed(egui::Key::ArrowUp)) {
                    self.walk_history(true);
                }
                if ui.input(|i| i.key_pressed(egui::Key::ArrowDown)) {
                    self.walk_history(false);
                }
            }
            if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                submit = true;
                field.request_focus();
            }
            if ui.button("Run").clicked() {
                submit = true;
            }
        });
        if submit && self.pending.is_none() && self.listening.is_none() {
            self.submit(instance, runtime);
        }
        if let Some(listening) = &mut self.listening {
            ui.horizontal(|ui| {
                ui.label("Reading messages…");
                let stopping = listening.stop.is_none();
                if ui
                    .add_enabled(!stopping, egui::Button::new("Stop reading messages"))
                    .clicked()
                {
                    if let Some(stop) = listening.stop.take() {
                        let _ = stop.send(());
                    }
                }
            });
        }
        if let Some(id) = self.pending_id {
            ui.horizontal(|ui| {
                ui.label("Waiting for the reply…");
                if ui.button("Cancel the waiting command").clicked() {
                    let instance = instance.clone();
                    runtime.spawn_blocking(move || {
                        instance.execute(0, &["CLIENT", "UNBLOCK", &id.to_string()]);
                    });
                }
            });
        }
        if self.pending.is_some() {
            ui.ctx().request_repaint();
        }
    }

    pub fn waiting(&self) -> bool {
        self.pending.is_some()
    }

    pub fn reading_messages(&self) -> bool {
        self.listening.is_some()
    }

    /// Moves the messages that arrived into the transcript; takes the client back once it
    /// has stopped reading.
    fn read_messages(&mut self) {
        let Some(listening) = &mut self.listening else {
            return;
        };
        while let Ok(message) = listening.messages.try_recv() {
            self.transcript.push(format_reply(&message, 0));
        }
        let Some(listening) = self.listening.take() else {
            return;
        };
        match listening.done.try_take() {
            Ok(client) => {
                self.db = client.db();
                self.client = Some(client);
                self.transcript.push("(stopped reading messages)".into());
            }
            Err(done) => {
                self.listening = Some(Listening { done, ..listening });
            }
        }
    }

    /// Reads the subscribed client's messages on the runtime until Stop.
    fn listen(&mut self, mut client: LocalClient, egui_ctx: &egui::Context, runtime: &Handle) {
        let (sender, messages) = std::sync::mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let (done_sender, done) = Promise::new();
        let egui_ctx = egui_ctx.clone();
        runtime.spawn(async move {
            loop {
                tokio::select! {
                    batch = client.messages() => {
                        for message in batch {
                            let _ = sender.send(message);
                        }
                        egui_ctx.request_repaint();
                    }
                    _ = &mut stopped => break,
                }
            }
            for command in ["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"] {
                client.run(&[command]).await;
            }
            done_sender.send(client);
            egui_ctx.request_repaint();
        });
        self.listening = Some(Listening {
            messages,
            stop: Some(stop),
            done,
        });
    }

    fn walk_history(&mut self, back: bool) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() - 1;
        self.browsing = match (self.browsing, back) {
            (None, true) => Some(last),
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i < last => Some(i + 1),
            (_, false) => None,
        };
        self.input = self
            .browsing
            .map_or(String::new(), |i| self.history[i].clone());
    }

    fn submit(&mut self, instance: &Arc<Instance>, runtime: &Handle) {
        let line = self.input.trim().to_string();
        self.input.clear();
        self.browsing = None;
        if line.is_empty() {
            return;
        }
        self.history.push(line.clone());
        self.transcript.push(format!("db{}> {line}", self.db));
        let args = match split_args(&line) {
            Ok(args) => args,
            Err(e) => {
                self.transcript.push(format!("(error) {e}"));
                return;
            }
        };
        let same_instance = self
            .client_of
            .as_ref()
            .is_some_and(|of| Arc::ptr_eq(of, instance));
        let mut client = match self.client.take() {
            Some(client) if same_instance => client,
            _ => {
                self.client_of = Some(instance.clone());
                instance.local_client()
            }
        };
        if !same_instance {
            // A new client starts on database 0, wherever the old one was.
            self.db = 0;
            self.transcript.pop();
            self.transcript.push(format!("db0> {line}"));
        }
        self.pending_id = Some(client.id());
        let (sender, promise) = Promise::new();
        runtime.spawn(async move {
            let reply = client.run(&args).await;
            sender.send((client, reply));
        });
        self.pending = Some(promise);
    }

    /// Takes a finished command's reply into the transcript; a client that subscribed
    /// goes on reading messages.
    fn collect(&mut self, egui_ctx: &egui::Context, runtime: &Handle) {
        let Some(promise) = self.pending.take() else {
            return;
        };
        match promise.try_take() {
            Ok((client, reply)) => {
                self.db = client.db();
                self.pending_id = None;
                self.transcript.push(format_reply(&reply, 0));
                if client.subscribed() {
                    self.transcript
                        .push("Reading messages... (press Stop to quit)".into());
                    self.listen(client, egui_ctx, runtime);
                } else {
                    self.client = Some(client);
                }
            }
            Err(promise) => self.pending = Some(promise),
        }
    }
}

/// Splits a command line as redis-cli does (the engine's inline-command rules: words,
/// "double quoted" with \n \t \xNN escapes, or 'single quoted').
pub fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    parser::split_args(line.as_bytes()).ok_or_else(|| "Invalid argument(s)".to_string())
}

/// A reply as redis-cli prints it to a terminal.
pub fn format_reply(reply: &Reply, indent: usize) -> String {
    match reply {
        Reply::Status(s) => s.to_string(),
        Reply::StatusOwned(s) => s.clone(),
        Reply::Error(e) => format!("(error) {e}"),
        Reply::Int(n) => format!("(integer) {n}"),
        Reply::Bulk(b) => quoted(b),
        Reply::Null | Reply::NullArray => "(nil)".into(),
        Reply::Double(d) => format!("(double) {d}"),
        Reply::DoubleText(text) => format!("(double) {text}"),
        Reply::Bool(b) => format!("({b})"),
        Reply::BigNumber(n) => format!("(big number) {n}"),
        Reply::Verbatim(text) => text.clone(),
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
            list(items.iter().collect(), indent)
        }
        Reply::Map(pairs) => list(pairs.iter().flat_map(|(k, v)| [k, v]).collect(), indent),
        // `Instance::execute` decodes these already; a reply kept encoded prints decoded.
        Reply::Encoded(_) | Reply::Pushes(_) => format_reply(&reply.clone().into_tree(), indent),
    }
}

fn list(items: Vec<&Reply>, indent: usize) -> String {
    let count = items.len();
    if count == 0 {
        return "(empty array)".into();
    }
    let width = count.to_string().len();
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
        }
        let prefix = format!("{:>width$}) ", i + 1);
        out.push_str(&prefix);
        out.push_str(&format_reply(item, indent + prefix.len()));
    }
    out
}

/// A bulk string in double quotes, with redis-cli's escapes for what isn't printable.
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_print_as_redis_cli_prints_them() {
        assert_eq!(format_reply(&Reply::OK, 0), "OK");
        assert_eq!(format_reply(&Reply::Int(3), 0), "(integer) 3");
        assert_eq!(format_reply(&Reply::Null, 0), "(nil)");
        assert_eq!(
            format_reply(&Reply::bulk("a\"b\n\x01"), 0),
            "\"a\\\"b\\n\\x01\""
        );
        assert_eq!(format_reply(&Reply::Array(vec![]), 0), "(empty array)");
        let nested = Reply::Array(vec![
            Reply::bulk("k"),
            Reply::Array(vec![Reply::Int(1), Reply::Int(2)]),
        ]);
        assert_eq!(
            format_reply(&nested, 0),
            "1) \"k\"\n2) 1) (integer) 1\n   2) (integer) 2"
        );
        assert_eq!(format_reply(&Reply::error("ERR x"), 0), "(error) ERR x");
    }

    #[test]
    fn lines_split_as_redis_cli_splits_them() {
        assert_eq!(
            split_args(r#"SET "a b" 'c d' e\x "\x41\n""#).unwrap(),
            [&b"SET"[..], b"a b", b"c d", b"e\\x", b"A\n"]
        );
        assert!(split_args("GET \"open").is_err());
        assert!(split_args("   ").unwrap().is_empty());
    }
}
