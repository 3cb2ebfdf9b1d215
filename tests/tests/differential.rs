//! Differential tests: every script under tests/scripts/*.redis runs line by line against
//! redis-server 7.0 and against cachedesk-server, and every reply must be identical.
//!
//! Script lines use redis-cli's quoting. Prefixes: `!sort` compares with array elements
//! sorted (Redis's order is unspecified there), `!pairs` sorts a flat field/value array by
//! field, `!kind` compares only the kind of reply (random results), `!run` sends to both
//! without comparing. Adding a case is adding a line.

use cachedesk_engine::protocol::parser::split_args;
use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::{require_redis_server, ServerProcess};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Compare {
    Exact,
    Sorted,
    Pairs,
    Kind,
    Nothing,
}

fn parse_line(line: &str) -> Option<(Compare, Vec<Vec<u8>>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (mode, rest) = match line.split_once(' ') {
        Some(("!sort", rest)) => (Compare::Sorted, rest),
        Some(("!pairs", rest)) => (Compare::Pairs, rest),
        Some(("!kind", rest)) => (Compare::Kind, rest),
        Some(("!run", rest)) => (Compare::Nothing, rest),
        _ => (Compare::Exact, line),
    };
    let args = split_args(rest.as_bytes())
        .unwrap_or_else(|| panic!("unbalanced quotes in script line {line:?}"));
    Some((mode, args))
}

fn normalise(reply: Resp, mode: Compare) -> Resp {
    match mode {
        Compare::Sorted => reply.sorted(),
        Compare::Pairs => reply.sorted_pairs(),
        _ => reply,
    }
}

async fn run_script(
    name: &str,
    text: &str,
    redis: &ServerProcess,
    ours: &ServerProcess,
) -> Vec<String> {
    let mut a = RawClient::connect(redis.addr)
        .await
        .expect("connect to redis-server");
    let mut b = RawClient::connect(ours.addr)
        .await
        .expect("connect to cachedesk-server");
    for client in [&mut a, &mut b] {
        client.command(&["FLUSHALL"]).await.expect("FLUSHALL");
    }
    let mut failures = Vec::new();
    let mut slowest = (std::time::Duration::ZERO, 0);
    for (number, line) in text.lines().enumerate() {
        let Some((mode, args)) = parse_line(line) else {
            continue;
        };
        let started = std::time::Instant::now();
        let expected = a
            .command(&args)
            .await
            .unwrap_or_else(|e| panic!("{name}:{}: redis-server: {e}", number + 1));
        let got = b
            .command(&args)
            .await
            .unwrap_or_else(|e| panic!("{name}:{}: cachedesk: {e}", number + 1));
        let same = match mode {
            Compare::Nothing => true,
            Compare::Kind => expected.kind() == got.kind(),
            _ => normalise(expected.clone(), mode) == normalise(got.clone(), mode),
        };
        slowest = slowest.max((started.elapsed(), number + 1));
        if !same {
            failures.push(format!(
                "{name}:{}: {}\n    redis:     {expected}\n    cachedesk: {got}",
                number + 1,
                line.trim()
            ));
        }
    }
    eprintln!("{name}: slowest line {} took {:?}", slowest.1, slowest.0);
    failures
}

#[tokio::test]
async fn scripts_match_redis() {
    if !require_redis_server("scripts_match_redis") {
        return;
    }
    let redis = ServerProcess::redis(&[]);
    let ours = ServerProcess::cachedesk(&[]);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/scripts")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "redis"))
        .collect();
    scripts.sort();
    assert!(
        scripts.len() >= 5,
        "expected the script files in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    let mut commands = 0;
    for path in &scripts {
        let text = std::fs::read_to_string(path).expect("read script");
        commands += text.lines().filter(|l| parse_line(l).is_some()).count();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        failures.extend(run_script(&name, &text, &redis, &ours).await);
    }
    assert!(commands >= 300, "only {commands} commands in the scripts");
    assert!(
        failures.is_empty(),
        "{} of {commands} replies differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
