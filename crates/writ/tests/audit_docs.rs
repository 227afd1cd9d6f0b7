//! docs/audit.md lets an auditor recompute every ledger hash without reading Rust: its
//! worked example is the hash writ computes, and its Python program recomputes every
//! hash and link of a real export (text with non-ASCII, line breaks, quotes and
//! backslashes included) and reaches the head `writ audit verify` reports. And
//! docs/evidence.md's program checks an evidence document with no writ software.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::Writ;
use writ_domain::Timestamp;
use writ_domain::ledger::event_hash;

fn audit_md() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit.md"))
        .expect("docs/audit.md")
}

/// The fenced block right after `<!-- marker -->`.
fn block_after(text: &str, marker: &str) -> String {
    let after = text
        .split(&format!("<!-- {marker} -->\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no <!-- {marker} --> in the document"));
    let body = after.split_once('\n').map_or("", |(_, rest)| rest);
    body.split("\n```").next().unwrap_or_default().to_string()
}

#[test]
fn the_worked_example_is_the_hash_writ_computes() {
    let example: Value =
        serde_json::from_str(&block_after(&audit_md(), "worked-example")).expect("JSON");
    let at = Timestamp::parse_rfc3339(example["at"].as_str().expect("at")).expect("RFC 3339");
    let hash = event_hash(
        example["seq"].as_i64().expect("seq"),
        at,
        example["actor"].as_str().expect("actor"),
        example["kind"].as_str().expect("kind"),
        &example["data"].to_string(),
        example["prev_hash"].as_str().expect("prev_hash"),
    );
    assert_eq!(Some(hash.as_str()), example["hash"].as_str());
}

/// A running writ that grants every request, and alice's token.
async fn started() -> (Writ, String) {
    let mut writ = Writ::new(
        support::NOOP_CONFIG,
        &[(
            "p.cedar",
            r#"permit (principal, action == Action::"request", resource);"#,
        )],
    );
    writ.start().await;
    let alice = writ.token("alice");
    (writ, alice)
}

#[tokio::test]
async fn the_documented_program_recomputes_a_real_export() {
    let (mut writ, alice) = started().await;
    for justification in [
        "plain",
        "café — 日本語 ✓",
        "two\nlines\tand a tab",
        r#"a "quoted" word and a \ backslash"#,
        "</script> & 'single' / slash",
    ] {
        let (status, created) = writ
            .post(
                "/v1/requests",
                &alice,
                json!({ "entitlement": "t/read", "justification": justification }),
            )
            .await;
        assert_eq!(status, 201, "{created}");
    }
    writ.stop();
    let export = writ.run(&["audit", "export", "--format", "jsonl"]);
    assert!(export.status.success(), "{}", support::stderr(&export));
    let events = support::stdout(&export);
    let head = events
        .lines()
        .last()
        .and_then(|line| serde_json::from_str::<Value>(line).ok())
        .and_then(|event| event["hash"].as_str().map(str::to_string))
        .expect("a last event");

    let program = writ.path("recompute.py");
    std::fs::write(&program, block_after(&audit_md(), "recompute.py")).expect("program");
    let mut python = Command::new("python3");
    python.arg(&program);
    let (ok, said) = support::run_with_input(python, events.as_bytes());
    assert!(ok, "{said}");
    let count = events.lines().count();
    assert!(
        said.contains(&format!(
            "{count} events, every hash recomputed; head {head}"
        )),
        "{said}"
    );
    // And the program is not a rubber stamp: one changed character is found.
    let tampered = events.replacen("café", "cafe", 1);
    let mut python = Command::new("python3");
    python.arg(&program);
    let (ok, said) = support::run_with_input(python, tampered.as_bytes());
    assert!(!ok);
    assert!(said.contains("hash does not match its contents"), "{said}");
}

#[tokio::test]
async fn the_documented_program_checks_an_evidence_document_without_writ() {
    let (writ, alice) = started().await;
    let (status, created) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "t/read", "justification": "café — \"quoted\"\nand a \\ backslash" }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let grant = created["grant_id"].as_str().expect("grant").to_string();
    let document = writ.evidence(&grant);
    let text = std::fs::read_to_string(writ.path("evidence.json")).expect("document");
    let evidence_md = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/evidence.md"
    ))
    .expect("docs/evidence.md");
    let program = writ.path("verify_evidence.py");
    std::fs::write(&program, block_after(&evidence_md, "verify_evidence.py")).expect("program");
    let check = |input: &str| {
        let mut python = Command::new("python3");
        python.arg(&program);
        support::run_with_input(python, input.as_bytes())
    };
    let (ok, said) = check(&text);
    let root = document["tree_head"]["root"].as_str().expect("root");
    assert!(ok && said.contains(&format!("with root {root}")), "{said}");
    // The message it prints is the one writ signed: the signature holds over it.
    let message = said
        .lines()
        .find_map(|line| line.strip_prefix("signed message: "))
        .and_then(|text| hex::decode(text).ok())
        .expect("the signed message");
    let key: [u8; 32] = hex::decode(writ.pubkey())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .expect("the public key");
    let signature: [u8; 64] = hex::decode(
        document["tree_head"]["signature"]
            .as_str()
            .expect("signature"),
    )
    .ok()
    .and_then(|bytes| bytes.try_into().ok())
    .expect("a signature");
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .expect("key")
        .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .expect("the documented message is what writ signed");

    let mut changed = document.clone();
    changed["events"][0]["data"]["request"]["justification"] = json!("nothing");
    let (ok, said) = check(&changed.to_string());
    assert!(
        !ok && said.contains("hash does not match its contents"),
        "{said}"
    );
    let mut changed = document.clone();
    let proof = changed["events"][0]["proof"][0]
        .as_str()
        .expect("proof")
        .to_string();
    changed["events"][0]["proof"][0] = json!(proof.chars().rev().collect::<String>());
    let (ok, said) = check(&changed.to_string());
    assert!(
        !ok && said.contains("inclusion proof does not lead to the root"),
        "{said}"
    );
}
