//! Signed checkpoints anchor the ledger outside its database: someone who rewrites the
//! whole chain consistently (every hash and the head recomputed) passes a plain
//! `audit verify`, but not one against the checkpoints and the public key kept apart.

mod support;

use std::time::{Duration, Instant};

use support::Writ;
use writ_domain::Timestamp;
use writ_domain::ledger::{GENESIS_HASH, event_hash};

const CONFIG: &str = r#"
[audit]
checkpoint_every = "1s"

[[user]]
name = "alice"
groups = ["engineers"]
"#;

fn checkpoint_lines(writ: &Writ) -> Vec<String> {
    std::fs::read_to_string(writ.path("ledger-checkpoints.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Recomputes every hash from `from` on, and the head row: what someone with the
/// database and writ's source can do.
fn rechain(db: &rusqlite::Connection, from: i64) {
    let mut prev: String = if from == 1 {
        GENESIS_HASH.to_string()
    } else {
        db.query_row("SELECT hash FROM events WHERE seq = ?1", [from - 1], |r| {
            r.get(0)
        })
        .expect("previous")
    };
    let rows: Vec<(i64, i64, String, String, String)> = {
        let mut statement = db
            .prepare(
                "SELECT seq, at_us, actor, kind, data FROM events WHERE seq >= ?1 ORDER BY seq",
            )
            .expect("prepare");
        statement
            .query_map([from], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    for (seq, at, actor, kind, data) in rows {
        let hash = event_hash(
            seq,
            Timestamp::from_unix_micros(at),
            &actor,
            &kind,
            &data,
            &prev,
        );
        db.execute(
            "UPDATE events SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![prev, hash, seq],
        )
        .expect("rehash");
        prev = hash;
    }
    let last: i64 = db
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
        .expect("last");
    db.execute(
        "UPDATE ledger_head SET seq = ?1, hash = ?2",
        rusqlite::params![last, prev],
    )
    .expect("head");
}

fn verify(writ: &Writ, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["audit", "verify", "--chain-only"];
    args.extend_from_slice(extra);
    let output = writ.run(&args);
    (
        output.status.success(),
        format!("{}{}", support::stdout(&output), support::stderr(&output)),
    )
}

#[tokio::test]
async fn a_rewritten_or_truncated_ledger_fails_against_its_checkpoints() {
    let mut writ = Writ::new(CONFIG, &[]);
    writ.start().await;
    let admin = writ.admin_token();
    let _ = writ.token("alice");

    // The server signs one on its own once the ledger changed, and puts it on the ledger.
    let deadline = Instant::now() + Duration::from_secs(10);
    while checkpoint_lines(&writ).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no periodic checkpoint: {}",
            writ.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, audit) = writ.get("/v1/audit?limit=1000", &admin).await;
    assert!(
        audit["events"]
            .as_array()
            .is_some_and(|all| all.iter().any(|e| e["kind"] == "ledger.checkpoint")),
        "{audit}"
    );
    // Nothing changed since: no second one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        checkpoint_lines(&writ).len(),
        1,
        "only when something changed"
    );
    writ.stop();

    // More history, and a checkpoint on demand.
    let _ = writ.token("alice");
    let output = writ.run(&["audit", "checkpoint"]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let taken: serde_json::Value =
        serde_json::from_str(support::stdout(&output).trim()).expect("JSON");
    let lines = checkpoint_lines(&writ);
    assert_eq!(lines.len(), 2);
    let last_seq = taken["seq"].as_i64().expect("seq");
    let output = writ.run(&["audit", "pubkey"]);
    let pubkey = support::stdout(&output).trim().to_string();
    assert_eq!(pubkey.len(), 64, "{pubkey}");
    assert_eq!(taken["key"], pubkey.as_str());
    let file = writ.path("ledger-checkpoints.jsonl");
    let file = file.to_str().expect("path");
    let against = ["--checkpoint", file, "--pubkey", &pubkey];

    let (ok, text) = verify(&writ, &against);
    assert!(ok && text.contains("extends all 2 checkpoints"), "{text}");
    let output = writ.run(&["audit", "verify", "--checkpoint", file, "--pubkey", &pubkey]);
    assert!(
        output.status.success(),
        "the full check too: {}",
        support::stderr(&output)
    );

    // Bad input: another key, a key that is not one.
    let other = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
    let (ok, text) = verify(&writ, &["--checkpoint", file, "--pubkey", other]);
    assert!(!ok && text.contains("not the given key's"), "{text}");
    let output = writ.run(&["audit", "verify", "--checkpoint", file, "--pubkey", "nope"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        support::stderr(&output)
    );

    let db = rusqlite::Connection::open(writ.path("writ.db")).expect("the database");
    // Truncation: the tail from the last checkpointed event on is gone, the head fixed up.
    let saved: Vec<(i64, i64, String, String, String, String, String)> = {
        let mut statement = db
            .prepare(
                "SELECT seq, at_us, actor, kind, data, prev_hash, hash FROM events WHERE seq >= ?1",
            )
            .expect("prepare");
        statement
            .query_map([last_seq], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    db.execute("DELETE FROM events WHERE seq >= ?1", [last_seq])
        .expect("truncate");
    rechain(&db, last_seq);
    let (ok, text) = verify(&writ, &[]);
    assert!(ok, "a plain check cannot tell: {text}");
    let (ok, text) = verify(&writ, &against);
    assert!(!ok && text.contains("truncated"), "{text}");
    for (seq, at, actor, kind, data, prev, hash) in saved {
        db.execute(
            "INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![seq, at, actor, kind, data, prev, hash],
        )
        .expect("restore");
    }
    rechain(&db, last_seq);
    let (ok, text) = verify(&writ, &against);
    assert!(ok, "restored: {text}");

    // Rewriting: the first event now names someone else; every hash and the head are
    // recomputed.
    db.execute("UPDATE events SET actor = 'mallory' WHERE seq = 1", [])
        .expect("rewrite");
    rechain(&db, 1);
    let (ok, text) = verify(&writ, &[]);
    assert!(ok, "a plain check cannot tell: {text}");
    let (ok, text) = verify(&writ, &against);
    assert!(!ok && text.contains("rewritten"), "{text}");
}

fn checkpoint_now(writ: &Writ, name: &str) -> String {
    let output = writ.run(&["audit", "checkpoint"]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let file = writ.path(name);
    std::fs::write(&file, support::stdout(&output)).expect("write");
    file.to_str().expect("path").to_string()
}

fn consistency(writ: &Writ, args: &[&str]) -> (bool, String) {
    let mut all = vec!["audit", "consistency"];
    all.extend_from_slice(args);
    let output = writ.run(&all);
    (
        output.status.success(),
        format!("{}{}", support::stdout(&output), support::stderr(&output)),
    )
}

#[tokio::test]
async fn tree_heads_prove_the_ledger_only_grew_and_catch_a_rebuilt_one() {
    let writ = Writ::new(CONFIG, &[]);
    for _ in 0..3 {
        let _ = writ.token("alice");
    }
    let old = checkpoint_now(&writ, "old.json");
    let old_head: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&old).expect("old")).expect("JSON");
    assert_eq!(
        old_head["root"].as_str().map(str::len),
        Some(64),
        "{old_head}"
    );
    for _ in 0..5 {
        let _ = writ.token("alice");
    }
    let new = checkpoint_now(&writ, "new.json");
    let pubkey = support::stdout(&writ.run(&["audit", "pubkey"]))
        .trim()
        .to_string();

    let (ok, text) = consistency(&writ, &[&old, &new, "--pubkey", &pubkey]);
    assert!(ok && text.contains("consistent"), "{text}");
    // The proof, for someone without the database.
    let (ok, proof) = consistency(&writ, &[&old, &new, "--pubkey", &pubkey, "--json"]);
    assert!(ok, "{proof}");
    let proof_file = writ.path("proof.json");
    std::fs::write(&proof_file, &proof).expect("write");
    let proof_file = proof_file.to_str().expect("path");
    let offline = ["--pubkey", pubkey.as_str(), "--proof", proof_file];
    let (ok, text) = consistency(
        &writ,
        &[&[old.as_str(), new.as_str()][..], &offline].concat(),
    );
    assert!(ok, "{text}");
    // Backwards, or under another key: refused.
    let (ok, text) = consistency(&writ, &[&new, &old, "--pubkey", &pubkey]);
    assert!(!ok && text.contains("cannot extend"), "{text}");
    let other = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
    let (ok, text) = consistency(&writ, &[&old, &new, "--pubkey", other]);
    assert!(!ok && text.contains("not the given key's"), "{text}");

    // Someone with the database and the key truncates the ledger before the old head's
    // last event, rebuilds it with another history, and signs a head over that.
    let db = rusqlite::Connection::open(writ.path("writ.db")).expect("the database");
    let cut = old_head["seq"].as_i64().expect("seq") - 1;
    db.execute("DELETE FROM events WHERE seq >= ?1", [cut])
        .expect("truncate");
    db.execute("DELETE FROM ledger_tree", []).expect("tree");
    rechain(&db, cut);
    drop(db);
    for _ in 0..12 {
        let _ = writ.token("alice");
    }
    let rebuilt = checkpoint_now(&writ, "rebuilt.json");
    let (ok, text) = verify(&writ, &[]);
    assert!(ok, "the chain alone cannot tell: {text}");
    let (ok, text) = consistency(&writ, &[&old, &rebuilt, "--pubkey", &pubkey]);
    assert!(
        !ok && text.contains("does not extend the one of"),
        "a rebuilt history against the earlier head: {text}"
    );
    let (ok, text) = consistency(&writ, &[&old, &new, "--pubkey", &pubkey]);
    assert!(
        !ok && text.contains("not the history NEW was signed over"),
        "{text}"
    );
    // What was proven before still holds without the database: the heads were signed
    // over the history as it was.
    let (ok, text) = consistency(
        &writ,
        &[&[old.as_str(), new.as_str()][..], &offline].concat(),
    );
    assert!(ok, "{text}");
}
