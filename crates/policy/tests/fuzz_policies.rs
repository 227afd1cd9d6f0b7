//! Fuzzing Cedar policy loading: any text, and real policies with pieces dropped,
//! repeated or spliced in. Loading answers with a policy set or diagnostics that name
//! the file, never a panic. Cases: `WRIT_FUZZ_CASES` (default 300; see SECURITY.md).

use std::path::Path;

use proptest::prelude::*;
use writ_config::Config;
use writ_policy::PolicyEngine;

const CONFIG: &str = include_str!("../../../examples/quickstart/writ.toml");
const POLICIES: [&str; 2] = [
    include_str!("../../../examples/quickstart/policies/request.cedar"),
    include_str!("../../../examples/quickstart/policies/approve.cedar"),
];

fn cases() -> u32 {
    std::env::var("WRIT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .map_or(300, |n: u32| (n / 3).max(50))
}

/// Pieces of the policy language, so edits make near-policies, not only noise.
const PIECES: &[&str] = &[
    "permit",
    "forbid",
    "(",
    ")",
    "{",
    "}",
    ";",
    ",",
    "when",
    "unless",
    "principal",
    "action",
    "resource",
    "==",
    "in",
    "is",
    "has",
    "&&",
    "||",
    "!",
    "like",
    "\"*\"",
    "Group::\"engineers\"",
    "User::\"alice\"",
    "Action::\"request\"",
    "Action::\"approve\"",
    "context.ticket_verified",
    "context.duration_seconds",
    "resource.sensitivity",
    "@approvals(\"2\")",
    "@approvals(\"x\")",
    "@max_duration(\"1h\")",
    "@max_duration(\"\")",
    "@reason(\"r\")",
    "@id(\"p\")",
    "if",
    "then",
    "else",
    "[",
    "]",
    "<",
    "1",
    "-9223372036854775808",
    "ip(\"10.0.0.1\")",
    "decimal(\"1.5\")",
    "datetime(\"2026-01-01\")",
    "\u{0}",
    "é",
];

#[derive(Debug, Clone)]
enum Edit {
    Cut(usize, usize),
    Insert(usize, usize),
    Repeat(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..2000usize, 1..40usize).prop_map(|(at, len)| Edit::Cut(at, len)),
        (0..2000usize, 0..PIECES.len()).prop_map(|(at, piece)| Edit::Insert(at, piece)),
        (0..2000usize, 1..80usize).prop_map(|(at, len)| Edit::Repeat(at, len)),
    ]
}

fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut text = text.to_string();
    for edit in edits {
        match *edit {
            Edit::Cut(at, len) => {
                let start = boundary(&text, at);
                let end = boundary(&text, start + len).max(start);
                text.replace_range(start..end, "");
            }
            Edit::Insert(at, piece) => {
                let at = boundary(&text, at);
                text.insert_str(at, &format!(" {} ", PIECES[piece]));
            }
            Edit::Repeat(at, len) => {
                let start = boundary(&text, at);
                let end = boundary(&text, start + len).max(start);
                let piece = text[start..end].to_string();
                text.insert_str(end, &piece);
            }
        }
    }
    text
}

fn load(texts: &[String]) -> Result<(), TestCaseError> {
    let config = Config::from_toml(Path::new("writ.toml"), CONFIG).expect("the quickstart config");
    let files: Vec<(String, String)> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| (format!("p{i}.cedar"), text.clone()))
        .collect();
    if let Err(error) = PolicyEngine::from_sources(&files, &config) {
        let message = error.to_string();
        prop_assert!(
            message.contains(".cedar") || message.contains("no policies"),
            "{message}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_text_loads_or_is_diagnosed(text in "\\PC{0,300}") {
        load(&[text])?;
    }

    #[test]
    fn edited_policies_load_or_are_diagnosed(
        which in 0..POLICIES.len(),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        load(&[apply(POLICIES[which], &edits), POLICIES[1 - which].to_string()])?;
    }
}
