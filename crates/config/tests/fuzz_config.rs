//! Fuzzing `writ.toml`: any text, and the quickstart configuration with lines dropped,
//! repeated or rewritten. Loading answers with the configuration or an error naming the
//! file, never a panic, and an error never shows the ITSM password. Cases:
//! `WRIT_FUZZ_CASES` (default 1,000 per property; see SECURITY.md).

use std::path::Path;

use proptest::prelude::*;
use writ_config::Config;

const QUICKSTART: &str = include_str!("../../../examples/quickstart/writ.toml");
const PASSWORD: &str = "s3cret-api-token";

fn cases() -> u32 {
    std::env::var("WRIT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

/// The quickstart with a ticketing system whose password must never be shown.
fn base() -> String {
    format!(
        "{QUICKSTART}\n[[itsm]]\nname = \"jira\"\nkind = \"jira\"\nurl = \"https://jira.example\"\nuser = \"writ@example.com\"\npassword = \"{PASSWORD}\"\nwebhook_secret = \"0123456789abcdef0123\"\nrequest_states = [\"Approved\"]\nfields = {{ entitlement = \"customfield_10050\" }}\n"
    )
}

#[derive(Debug, Clone)]
enum Edit {
    Drop(usize),
    Repeat(usize),
    /// Replaces the value after `=` on a line.
    Value(usize, String),
    /// Inserts a line.
    Insert(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let line = 0..200usize;
    let value = prop_oneof![
        ".{0,30}",
        "\"[a-z/_.:${}]{0,20}\"",
        any::<i64>().prop_map(|n| n.to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("\"off\"".to_string()),
        Just("\"0s\"".to_string()),
        Just("\"${WRIT_FUZZ_UNSET}\"".to_string()),
    ];
    prop_oneof![
        line.clone().prop_map(Edit::Drop),
        line.clone().prop_map(Edit::Repeat),
        (line.clone(), value).prop_map(|(n, v)| Edit::Value(n, v)),
        (line, prop_oneof![".{0,40}", "\\[[a-z_\\[\\]]{1,12}\\]"])
            .prop_map(|(n, l)| Edit::Insert(n, l)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for edit in edits {
        let n = lines.len().max(1);
        match edit {
            Edit::Drop(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Edit::Repeat(i) if !lines.is_empty() => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Edit::Value(i, value) if !lines.is_empty() => {
                let line = &mut lines[i % n];
                // Never the password's own line: moving the secret elsewhere is not a leak.
                if let Some((key, _)) = line.split_once('=').filter(|_| !line.contains(PASSWORD)) {
                    *line = format!("{key}= {value}");
                }
            }
            Edit::Insert(i, new) => lines.insert(i % (lines.len() + 1), new.clone()),
            _ => {}
        }
    }
    lines.join("\n")
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let path = Path::new("/etc/writ/writ.toml");
    if let Err(error) = Config::from_toml(path, text) {
        let message = error.to_string();
        prop_assert!(message.starts_with("/etc/writ/writ.toml"), "{message}");
        prop_assert!(!message.contains(PASSWORD), "the password shows: {message}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_text_loads_or_is_refused_by_name(text in ".{0,400}") {
        check(&text)?;
    }

    #[test]
    fn an_edited_configuration_loads_or_is_refused_by_name(edits in prop::collection::vec(edit(), 1..6)) {
        check(&apply(&base(), &edits))?;
    }
}

/// Found by fuzzing: TOML's own message quoted the line of a repeated key, password and
/// all.
#[test]
fn a_repeated_password_line_is_not_quoted() {
    let line = format!("password = \"{PASSWORD}\"");
    let text = base().replace(&line, &format!("{line}\n{line}"));
    let error =
        Config::from_toml(Path::new("/etc/writ/writ.toml"), &text).expect_err("duplicate key");
    let message = error.to_string();
    assert!(!message.contains(PASSWORD), "{message}");
    assert!(message.contains("duplicate key"), "{message}");
}

#[test]
fn the_unedited_base_loads() {
    Config::from_toml(Path::new("/etc/writ/writ.toml"), &base()).expect("the base loads");
}
