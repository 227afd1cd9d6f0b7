//! Evidence documents: each grant's story, every statement cited to ledger events that
//! carry their inclusion proofs against a signed tree head — checked with nothing but
//! the public key, and failing, with the place named, when any byte is changed.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{NOOP_CONFIG, Writ, statement, stderr, stdout};
use writ_domain::lifecycle::GrantState;

const CONFIG: &str = r#"
[[entitlement]]
id = "t/write"
target = "t"
role = "write"
sensitivity = "high"
max_duration = "1h"

[[user]]
name = "bob"
groups = ["managers"]

[[user]]
name = "erin"
groups = ["auditors"]

[access]
auditors = ["auditors"]
"#;

const POLICY: &str = r#"
@id("read-auto")
@max_duration("30m")
permit (principal, action == Action::"request", resource == Entitlement::"t/read");

@id("write-approved")
@approvals("1")
permit (principal == User::"alice", action == Action::"request", resource == Entitlement::"t/write");

@id("managers-approve")
permit (principal in Group::"managers", action == Action::"approve", resource);
"#;

/// A running writ with this file's configuration, and a token for each of `people`.
async fn started<const N: usize>(people: [&str; N]) -> (Writ, [String; N]) {
    let mut writ = Writ::new(
        &format!("{NOOP_CONFIG}{CONFIG}"),
        &[("policy.cedar", POLICY)],
    );
    let tokens = people.map(|name| writ.token(name));
    writ.start().await;
    (writ, tokens)
}

async fn ask(writ: &Writ, token: &str, entitlement: &str, seconds: i64) -> (String, Value) {
    let (status, request) = writ
        .post(
            "/v1/requests",
            token,
            json!({"entitlement": entitlement, "duration_seconds": seconds, "justification": "rotate the | keys\nfor OPS-7"}),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    (
        request["grant_id"].as_str().unwrap_or_default().to_string(),
        request,
    )
}

/// A t/write grant `asker` asked for and `approver` approved with `comment`.
async fn approved(writ: &Writ, asker: &str, approver: &str, comment: &str) -> String {
    let (_, pending) = ask(writ, asker, "t/write", 600).await;
    let request = pending["id"].as_str().expect("id");
    let (status, approved) = writ
        .post(
            &format!("/v1/requests/{request}/approve"),
            approver,
            json!({ "comment": comment }),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    approved["grant_id"].as_str().expect("grant").to_string()
}

async fn settled(writ: &Writ, grant: &str, token: &str, state: GrantState) {
    writ.wait_for_grant_state(
        grant.parse().expect("grant id"),
        token,
        Duration::from_secs(10),
        state,
    )
    .await;
}

fn verify_text(writ: &Writ, text: &str, name: &str) -> (bool, String) {
    let file = writ.path(name);
    std::fs::write(&file, text).expect("write");
    let output = writ.run(&[
        "evidence",
        "verify",
        file.to_str().expect("path"),
        "--pubkey",
        &writ.pubkey(),
    ]);
    (
        output.status.success(),
        format!("{}{}", stdout(&output), stderr(&output)),
    )
}

#[tokio::test]
async fn each_way_a_grant_ends_has_a_document_that_proves_itself() {
    let (writ, [alice, bob, erin]) = started(["alice", "bob", "erin"]).await;

    // Granted at once, capped by policy, ended early by its holder.
    let (early, asked) = ask(&writ, &alice, "t/read", 3600).await;
    assert_eq!(asked["state"], "approved", "{asked}");
    settled(&writ, &early, &alice, GrantState::Active).await;
    let (status, _) = writ
        .post(
            &format!("/v1/grants/{early}/revoke"),
            &alice,
            json!({"reason": "done early"}),
        )
        .await;
    assert_eq!(status, 200);
    settled(&writ, &early, &alice, GrantState::Revoked).await;

    // Approved by someone else, with a comment; then ended early with a twin lease
    // still in force, which keeps the access.
    let approved_grant = approved(&writ, &alice, &bob, "ok for OPS-7").await;
    settled(&writ, &approved_grant, &alice, GrantState::Active).await;
    let (twin, _) = ask(&writ, &alice, "t/read", 1200).await;
    let (kept, _) = ask(&writ, &alice, "t/read", 1200).await;
    settled(&writ, &kept, &alice, GrantState::Active).await;
    settled(&writ, &twin, &alice, GrantState::Active).await;
    writ.post(
        &format!("/v1/grants/{twin}/revoke"),
        &alice,
        json!({"reason": "one is enough"}),
    )
    .await;
    settled(&writ, &twin, &alice, GrantState::Revoked).await;

    // More time on the lease that was kept, decided as a request of its own.
    let (status, extended) = writ
        .post(
            &format!("/v1/grants/{kept}/extend"),
            &alice,
            json!({"duration_seconds": 300, "justification": "one more run"}),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {extended}");

    // Expired.
    let (expired, _) = ask(&writ, &alice, "t/read", 1).await;
    settled(&writ, &expired, &alice, GrantState::Revoked).await;

    let document = writ.evidence(&early);
    assert!(statement(&document, "requested").starts_with("alice asked at "));
    assert_eq!(
        statement(&document, "what"),
        "entitlement t/read: role read on target t, sensitivity low"
    );
    assert_eq!(
        statement(&document, "why"),
        "“rotate the | keys\nfor OPS-7”"
    );
    assert_eq!(statement(&document, "ticket"), "no ticket");
    assert!(
        statement(&document, "decision")
            .starts_with("granted without approval by policies read-auto; policy set ")
            && statement(&document, "decision")
                .ends_with("; policy capped it at 30m (@max_duration)"),
        "{document:#}"
    );
    assert_eq!(
        statement(&document, "approvals"),
        "none needed: policy granted it"
    );
    assert_eq!(
        statement(&document, "window"),
        "asked for 1h, granted 30m: capped by policy's @max_duration"
    );
    assert!(statement(&document, "revocation").starts_with("by alice at "));
    assert!(statement(&document, "revocation").ends_with(": done early"));
    assert!(
        statement(&document, "verification")
            .ends_with("read back from the target without the access"),
        "{document:#}"
    );
    // Every statement cites events the document holds, each with a proof.
    let held: Vec<(i64, String)> = document["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["seq"].as_i64().unwrap_or(0),
                e["hash"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for s in document["statements"].as_array().expect("statements") {
        for cite in s["cites"].as_array().expect("cites") {
            let cited = (
                cite["seq"].as_i64().unwrap_or(0),
                cite["hash"].as_str().unwrap_or("").to_string(),
            );
            assert!(held.contains(&cited), "{s}");
        }
    }

    let document = writ.evidence(&approved_grant);
    let approvals = statement(&document, "approvals");
    assert!(
        approvals.starts_with("bob at ")
            && approvals.ends_with(" through writ's API or CLI: “ok for OPS-7”"),
        "{approvals}"
    );
    assert!(statement(&document, "decision").starts_with(
        "permitted with 1 approval(s) required (@approvals) by policies write-approved"
    ));

    let document = writ.evidence(&twin);
    let verification = statement(&document, "verification");
    assert!(
        verification.contains(&format!(
            "the account keeps the role through overlapping grant {kept}"
        )),
        "{verification}"
    );

    let document = writ.evidence(&kept);
    let more = statement(&document, "extensions");
    assert!(
        more.starts_with("alice asked for 5m more at ")
            && more.contains(": “one more run”; granted 5m without approval"),
        "{more}"
    );

    let document = writ.evidence(&expired);
    assert!(
        statement(&document, "revocation").starts_with("by writ:scheduler at ")
            && statement(&document, "revocation").ends_with(": expired"),
        "{document:#}"
    );

    // The same document over HTTP, for those who may read the grant: its holder, an
    // auditor; to others it does not exist.
    let (status, over_http) = writ
        .get(&format!("/v1/grants/{early}/evidence"), &erin)
        .await;
    assert_eq!(status, 200, "{over_http}");
    assert_eq!(over_http["grant"], early.as_str());
    let (status, _) = writ
        .get(&format!("/v1/grants/{early}/evidence"), &alice)
        .await;
    assert_eq!(status, 200);
    let (status, _) = writ
        .get(&format!("/v1/grants/{early}/evidence"), &bob)
        .await;
    assert_eq!(status, 404);
    let markdown = reqwest::Client::new()
        .get(format!(
            "{}/v1/grants/{early}/evidence?format=markdown",
            writ.base()
        ))
        .bearer_auth(&erin)
        .send()
        .await
        .expect("answer");
    assert_eq!(
        markdown.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    let text = markdown.text().await.expect("text");
    let (ok, said) = verify_text(&writ, &text, "http.md");
    assert!(ok, "{said}");
}

#[tokio::test]
async fn any_changed_byte_fails_verification_and_says_where() {
    let (writ, [alice, bob]) = started(["alice", "bob"]).await;
    let grant = approved(&writ, &alice, &bob, "ok").await;
    settled(&writ, &grant, &alice, GrantState::Active).await;
    let document = writ.evidence(&grant);
    let json_text = std::fs::read_to_string(writ.path("evidence.json")).expect("json");
    let markdown = std::fs::read_to_string(writ.path("evidence.md")).expect("markdown");
    let first = &document["events"][0];
    let seq = first["seq"].as_i64().expect("seq");

    // A statement said otherwise (and the events left alone).
    let mut forged = document.clone();
    let approvals = forged["statements"]
        .as_array_mut()
        .expect("statements")
        .iter_mut()
        .find(|s| s["topic"] == "approvals")
        .expect("approvals");
    approvals["text"] = json!("carol at 2026-12-01T10:00:00Z through writ's API or CLI: “ok”");
    let text = format!("{}\n", serde_json::to_string_pretty(&forged).expect("json"));
    let (ok, said) = verify_text(&writ, &text, "forged.json");
    assert!(
        !ok && said.contains("statement approvals: it does not follow from the events"),
        "{said}"
    );

    // An event's data changed.
    let mut forged = document.clone();
    forged["events"][0]["data"]["request"]["justification"] = json!("nothing to see");
    let text = format!("{}\n", serde_json::to_string_pretty(&forged).expect("json"));
    let (ok, said) = verify_text(&writ, &text, "forged.json");
    assert!(
        !ok && said.contains(&format!(
            "event {seq}: its hash does not match its contents"
        )),
        "{said}"
    );

    // A proof hash changed.
    let mut forged = document.clone();
    let last = document["events"].as_array().expect("events").len() - 1;
    let proof = forged["events"][last]["proof"][0]
        .as_str()
        .expect("a proof")
        .to_string();
    let flipped = format!(
        "{}{}",
        if proof.starts_with('0') { "1" } else { "0" },
        &proof[1..]
    );
    forged["events"][last]["proof"][0] = json!(flipped);
    let text = format!("{}\n", serde_json::to_string_pretty(&forged).expect("json"));
    let (ok, said) = verify_text(&writ, &text, "forged.json");
    let last_seq = document["events"][last]["seq"].as_i64().expect("seq");
    assert!(
        !ok && said.contains(&format!(
            "event {last_seq}: its inclusion proof does not hold"
        )),
        "{said}"
    );

    // The tree head's root, or its signature.
    for field in ["root", "signature"] {
        let mut forged = document.clone();
        let value = forged["tree_head"][field]
            .as_str()
            .expect("field")
            .to_string();
        forged["tree_head"][field] = json!(value.replacen(
            &value[..2],
            if &value[..2] == "ab" { "cd" } else { "ab" },
            1
        ));
        let text = format!("{}\n", serde_json::to_string_pretty(&forged).expect("json"));
        let (ok, said) = verify_text(&writ, &text, "forged.json");
        assert!(
            !ok && said.contains("tree head: checkpoint of event")
                && said.contains("the signature is not the given key's"),
            "{field}: {said}"
        );
    }

    // Another key.
    let file = writ.path("evidence.json");
    let output = writ.run(&[
        "evidence",
        "verify",
        file.to_str().expect("path"),
        "--pubkey",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("the signature is not the given key's"));

    // Any single byte of the Markdown or JSON, even where nothing is parsed from it.
    for (text, name) in [(&markdown, "changed.md"), (&json_text, "changed.json")] {
        let bytes = text.as_bytes();
        let mut failed = 0;
        let step = (bytes.len() / 60).max(1);
        for at in (0..bytes.len()).step_by(step) {
            let mut changed = bytes.to_vec();
            changed[at] = if changed[at] == b'x' { b'y' } else { b'x' };
            let Ok(changed) = String::from_utf8(changed) else {
                continue;
            };
            let (ok, said) = verify_text(&writ, &changed, name);
            assert!(!ok, "byte {at} of {name} changed, and it still verified");
            assert!(said.contains("verification FAILED"), "{said}");
            failed += 1;
        }
        assert!(failed > 50, "{name}: {failed}");
    }
    // The Markdown names the line that was changed.
    let changed = markdown.replacen("| Why |", "| Reason |", 1);
    let line = markdown
        .lines()
        .position(|l| l.starts_with("| Why |"))
        .expect("why")
        + 1;
    let (ok, said) = verify_text(&writ, &changed, "changed.md");
    assert!(
        !ok && said.contains(&format!(
            "document: line {line} is not what the proven events say"
        )),
        "{said}"
    );
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn samples_write_a_document_per_grant_and_the_seed_draws_them_again() {
    let (mut writ, [alice, bob]) = started(["alice", "bob"]).await;
    for _ in 0..6 {
        ask(&writ, &alice, "t/read", 600).await;
    }
    let (bobs, _) = ask(&writ, &bob, "t/read", 600).await;
    writ.stop();
    let pubkey = writ.pubkey();
    let out = |name: &str| writ.path(name).to_str().expect("path").to_string();

    // Everything of one subject.
    let output = writ.run(&["evidence", "--subject", "alice", "--out", &out("alice")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("all 6 grants that match"),
        "{}",
        stdout(&output)
    );
    let names = files_in(&writ.path("alice"));
    assert_eq!(names.len(), 7, "{names:?}");
    assert!(names.contains(&"index.md".to_string()));
    // The whole folder checked in one command; one changed document fails it, named.
    let documents: Vec<String> = names
        .iter()
        .filter(|n| n.ends_with(".md") && *n != "index.md")
        .map(|n| {
            writ.path("alice")
                .join(n)
                .to_str()
                .expect("path")
                .to_string()
        })
        .collect();
    let mut args = vec!["evidence", "verify", "--pubkey", pubkey.as_str()];
    args.extend(documents.iter().map(String::as_str));
    let output = writ.run(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).matches(": verified").count(), 6);
    let changed = std::fs::read_to_string(&documents[2])
        .expect("document")
        .replacen("| Why |", "| Reason |", 1);
    std::fs::write(&documents[2], changed).expect("write");
    let output = writ.run(&args);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output).matches(": verified").count(), 5);
    assert!(
        stderr(&output).contains(&format!("{}: verification FAILED", documents[2])),
        "{}",
        stderr(&output)
    );
    let index = std::fs::read_to_string(writ.path("alice").join("index.md")).expect("index");
    assert!(!index.contains(&bobs), "{index}");

    // A random sample, drawn again from its seed.
    let output = writ.run(&[
        "evidence",
        "--entitlement",
        "t/read",
        "--sample",
        "3",
        "--json",
        "--out",
        &out("sample"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stdout(&output);
    let seed = said
        .split("seed ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the seed is printed")
        .to_string();
    assert!(
        said.contains("a random sample of 3 of the 7 grants that match"),
        "{said}"
    );
    let output = writ.run(&[
        "evidence",
        "--entitlement",
        "t/read",
        "--sample",
        "3",
        "--seed",
        &seed,
        "--json",
        "--out",
        &out("again"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let drawn = files_in(&writ.path("sample"));
    assert_eq!(drawn.len(), 4, "{drawn:?}");
    assert!(
        drawn
            .iter()
            .all(|n| n == "index.md" || n.ends_with(".json"))
    );
    assert_eq!(
        drawn,
        files_in(&writ.path("again")),
        "the same seed, the same grants"
    );

    // Since a time, of another subject.
    let output = writ.run(&[
        "evidence",
        "--subject",
        "bob",
        "--since",
        "1h",
        "--out",
        &out("bob"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        files_in(&writ.path("bob")),
        vec![format!("{bobs}.md"), "index.md".to_string()]
    );

    // Bad selections say so, and write nothing.
    for (args, code, says) in [
        (vec!["evidence"], 2, "name a grant"),
        (vec!["evidence", "--subject", "alice"], 2, "--out DIR"),
        (
            vec!["evidence", "--ticket", "OPS-1", "--out", "x"],
            2,
            "SYSTEM:KEY",
        ),
        (
            vec!["evidence", "--since", "yesterday", "--out", "x"],
            2,
            "--since",
        ),
        (
            vec!["evidence", "--subject", "nobody", "--out", "x"],
            4,
            "no grant matches",
        ),
        (vec!["evidence", "grt_00000000", "--json"], 4, "no grant"),
    ] {
        let output = writ.run(&args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(!writ.path("x").exists());
}
