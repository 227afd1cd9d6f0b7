//! Every example in docs/configuration.md is a whole configuration that `writ` loads
//! (through `writ policy check`, which validates the file as `writ serve` does), with
//! the `${ENV}` variables it names set; and every key the configuration accepts is
//! documented there.

mod support;

use std::collections::BTreeSet;

fn configuration_md() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .expect("docs/configuration.md")
}

/// The ```toml blocks of the document.
fn toml_blocks(text: &str) -> Vec<String> {
    text.split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default().to_string())
        .collect()
}

/// The `${NAME}` variables a block uses.
fn variables(block: &str) -> BTreeSet<String> {
    block
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn every_example_loads() {
    let blocks = toml_blocks(&configuration_md());
    assert!(blocks.len() >= 8, "{} examples", blocks.len());
    for (n, block) in blocks.iter().enumerate() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("policies")).expect("policies");
        let config = dir.path().join("writ.toml");
        // Paths in examples are where a deployment keeps them; here, under the test's folder.
        let local = block
            .replace("/etc/writ/policies", "policies")
            .replace("/etc/writ/keys/", "keys/")
            .replace("/var/lib/writ/", "");
        std::fs::write(&config, &local).expect("config");
        let mut command = std::process::Command::new(support::writ_binary());
        command
            .args(["policy", "check", "--config"])
            .arg(&config)
            .env_remove("WRIT_CONFIG");
        for name in variables(block) {
            // 64 hex digits: long enough for a secret, and a valid key.
            command.env(name, "0123456789abcdef".repeat(4));
        }
        let output = command.output().expect("run writ");
        assert!(
            output.status.success(),
            "example {} does not load:\n{block}\n{}",
            n + 1,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Whether `word` occurs in `text` with no letter, digit or `_` right before or after it.
fn has_word(text: &str, word: &str) -> bool {
    let part_of_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(part_of_word) && !after.is_some_and(part_of_word)
    })
}

/// Keys the configuration accepts, as the raw structures name them, must each appear
/// in the document.
#[test]
fn every_key_is_documented() {
    let docs = configuration_md();
    let raw = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/src/raw.rs"))
        .expect("raw.rs");
    let mut missing = Vec::new();
    for line in raw.lines() {
        let Some(field) = line
            .trim()
            .strip_prefix("pub ")
            .and_then(|rest| rest.split_once(':'))
            .map(|(name, _)| name.trim())
        else {
            continue;
        };
        if field.contains(' ') || field.contains('(') {
            continue;
        }
        // Sections are named in the singular in TOML (`[[target]]` for `targets`).
        let key = match field {
            "targets" => "target",
            "entitlements" => "entitlement",
            "users" => "user",
            "services" => "service",
            "agents" => "agent",
            "itsms" => "itsm",
            "workload_issuers" => "workload_issuer",
            "scim_clients" => "scim",
            other => other,
        };
        if !has_word(&docs, key) {
            missing.push(key.to_string());
        }
    }
    assert!(missing.is_empty(), "undocumented keys: {missing:?}");
}
