//! The rules a cache's settings follow, as the portal states them, the rule that keeps a
//! cache's folder inside the app's data folder, and the checks against this machine (free
//! ports, free memory).

use std::net::{IpAddr, TcpListener};
use std::path::{Component, Path};

/// The portal's name rule: 1–60 letters, digits and hyphens, starting and ending with a letter
/// or digit, no two hyphens in a row. None if `name` follows it, else what is wrong.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("The name is required.".into());
    }
    if name.chars().count() > 60 {
        return Some("The name can be at most 60 characters long.".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
    {
        return Some(format!(
            "The name can contain only letters, digits and hyphens ('{c}' is not allowed)."
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("The name must start and end with a letter or a digit.".into());
    }
    if name.contains("--") {
        return Some("The name can't contain two hyphens in a row.".into());
    }
    None
}

/// None if `name` can be a cache's folder: one plain path component, so joining it to the
/// data folder stays inside it. Else what is wrong.
pub fn folder_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("The name is empty.".into());
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\')) {
        return Some(format!(
            "The name contains '{c}', a path separator: it would point outside the cache's own folder."
        ));
    }
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(part)), None) if part == name => None,
        _ => Some(format!(
            "The name {name:?} is not a plain folder name: it would point outside the cache's own folder."
        )),
    }
}

/// None if `text` is a port this cache can listen on at `bind`, else what is wrong.
pub fn port_problem(text: &str, bind: &str, taken_by_caches: &[u16]) -> Option<String> {
    let Ok(port) = text.trim().parse::<u16>() else {
        return Some("The port must be a number from 1024 to 65535.".into());
    };
    if port < 1024 {
        return Some("The port must be a number from 1024 to 65535.".into());
    }
    if taken_by_caches.contains(&port) {
        return Some(format!("Port {port} is used by another cache."));
    }
    let Ok(ip) = bind.trim().parse::<IpAddr>() else {
        return Some(format!("'{bind}' is not an IP address."));
    };
    if let Err(e) = TcpListener::bind((ip, port)) {
        return Some(format!("Port {port} on {ip} is not free: {e}."));
    }
    None
}

/// None if `bind` is an address this machine has, else what is wrong.
pub fn bind_problem(bind: &str) -> Option<String> {
    let Ok(ip) = bind.trim().parse::<IpAddr>() else {
        return Some(format!("'{bind}' is not an IP address."));
    };
    match TcpListener::bind((ip, 0)) {
        Ok(_) => None,
        Err(e) => Some(format!("Cannot listen on {ip}: {e}.")),
    }
}

/// A port free on loopback right now (the wizard's default).
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map_or(6380, |a| a.port())
}

/// The machine's available memory (MemAvailable), if it can be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_portal_rules() {
        for good in ["a", "cache-1", "A1-b2-C3", &"x".repeat(60)] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        for (bad, needle) in [
            ("", "required"),
            ("-a", "start and end"),
            ("a-", "start and end"),
            ("a--b", "two hyphens"),
            ("a_b", "'_'"),
            ("caché", "'é'"),
            (&"x".repeat(61), "60"),
        ] {
            let problem = name_problem(bad).expect(bad);
            assert!(problem.contains(needle), "{bad}: {problem}");
        }
    }

    #[test]
    fn folder_names_are_one_plain_component() {
        for good in ["a", "cache-1", "a..b", ".hidden"] {
            assert_eq!(folder_name_problem(good), None, "{good}");
        }
        for (bad, needle) in [
            ("", "empty"),
            ("..", "not a plain folder name"),
            (".", "not a plain folder name"),
            ("../outside", "'/'"),
            ("a/b", "'/'"),
            ("/etc", "'/'"),
            ("a/", "'/'"),
            ("..\\outside", "'\\'"),
        ] {
            let problem = folder_name_problem(bad).expect(bad);
            assert!(problem.contains(needle), "{bad}: {problem}");
        }
    }

    #[test]
    fn ports_must_be_free_and_unprivileged() {
        assert!(port_problem("80", "127.0.0.1", &[])
            .unwrap()
            .contains("1024"));
        assert!(port_problem("x", "127.0.0.1", &[]).is_some());
        let held = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        assert!(port_problem(&port.to_string(), "127.0.0.1", &[])
            .unwrap()
            .contains("not free"));
        drop(held);
        assert_eq!(port_problem(&port.to_string(), "127.0.0.1", &[]), None);
        assert!(port_problem(&port.to_string(), "127.0.0.1", &[port])
            .unwrap()
            .contains("another cache"));
        assert!(bind_problem("nope").is_some());
        assert_eq!(bind_problem("127.0.0.1"), None);
    }
}
