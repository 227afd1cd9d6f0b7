//! An evidence document for people: the statements as a table citing events, the tree
//! head, the events, and the whole document as JSON at the end — from which `verify`
//! renders the Markdown again, so not one byte of it can change unnoticed.

use super::EvidenceDocument;

/// Where the machine-readable document begins.
const EMBEDDED: &str = "\n## Machine-readable evidence\n\n```json\n";
const FENCE_END: &str = "```\n";

fn label(topic: &str) -> &str {
    match topic {
        "requested" => "Who asked",
        "subject" => "For whom",
        "what" => "What",
        "why" => "Why",
        "ticket" => "Ticket",
        "decision" => "Policy decision",
        "approvals" => "Approved by",
        "window" => "Window",
        "scheduled_revocation" => "Scheduled revocation",
        "extensions" => "More time",
        "applied" => "Applied",
        "uses" => "Uses",
        "revocation" => "Revocation",
        "verification" => "Verified",
        other => other,
    }
}

/// Text safe in a table cell: nothing in it can end the cell or the row, or become
/// markup (a justification is whatever the requester typed).
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '`' => out.push_str("&#96;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The document as Markdown.
pub fn render(document: &EvidenceDocument) -> String {
    let mut out = format!("# Evidence: grant {}\n\n", document.grant);
    out.push_str(
        "Every answer below cites the ledger events it comes from (event number and the start of its hash). \
         Each event follows in full, with its inclusion proof against the signed tree head, in the JSON at the end; \
         `writ evidence verify FILE --pubkey KEY` checks every hash, every proof and the signature without writ's database.\n\n",
    );
    out.push_str("| | answer | events |\n|---|---|---|\n");
    for statement in &document.statements {
        let cites: Vec<String> = statement
            .cites
            .iter()
            .map(|c| format!("{} `{}`", c.seq, short(&c.hash)))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            cell(label(&statement.topic)),
            cell(&statement.text),
            cites.join(", ")
        ));
    }
    let head = &document.tree_head;
    out.push_str("\n## Signed tree head\n\n");
    out.push_str(&format!(
        "- tree size: {} events\n- root: `{}`\n- hash of event {}: `{}`\n- signed at: {}\n- key: `{}`\n- signature: `{}`\n",
        head.seq,
        cell(head.root.as_deref().unwrap_or("(none)")),
        head.seq,
        cell(&head.head),
        head.at.to_rfc3339(),
        cell(&head.key),
        cell(&head.signature)
    ));
    out.push_str("\n## Events\n\n| event | at | actor | kind | hash |\n|---|---|---|---|---|\n");
    for event in &document.events {
        out.push_str(&format!(
            "| {} | {} | {} | {} | `{}` |\n",
            event.seq,
            event.at.to_rfc3339(),
            cell(&event.actor),
            cell(&event.kind),
            cell(&event.hash)
        ));
    }
    out.push_str(EMBEDDED);
    out.push_str(&document.to_json());
    out.push_str(FENCE_END);
    out
}

/// The JSON document a Markdown document carries at its end.
pub fn embedded(text: &str) -> Result<EvidenceDocument, String> {
    let start = text
        .find(EMBEDDED)
        .ok_or("not an evidence document: no machine-readable evidence section")?
        + EMBEDDED.len();
    let json = text[start..]
        .strip_suffix(FENCE_END)
        .ok_or("the machine-readable evidence does not end the document")?;
    serde_json::from_str(json).map_err(|e| format!("the machine-readable evidence: {e}"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use writ_domain::Timestamp;

    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::evidence_doc::{FORMAT, Statement};

    fn document(text: String) -> EvidenceDocument {
        EvidenceDocument {
            format: FORMAT.to_string(),
            grant: "0193a5c2-7d1e-7f3b-9a51-1f6c2a0b9e44".parse().expect("id"),
            statements: vec![Statement {
                topic: "why".into(),
                text,
                cites: Vec::new(),
            }],
            events: Vec::new(),
            tree_head: Checkpoint {
                seq: 1,
                head: "ab".into(),
                root: Some("cd".into()),
                at: Timestamp::from_unix_micros(0),
                key: "ef".into(),
                signature: "01".into(),
            },
        }
    }

    proptest! {
        /// Whatever a requester typed stays inside its table cell, and the document the
        /// Markdown carries is the one it was rendered from.
        #[test]
        fn typed_text_never_escapes_its_cell(text in "(\\PC|[\n\r|`<>&]|```|\n## Machine-readable evidence\n\n```json\n){0,40}") {
            let rendered = render(&document(text.clone()));
            let row = rendered
                .lines()
                .find(|line| line.starts_with("| Why |"))
                .expect("the row");
            prop_assert_eq!(row.matches(" | ").count(), 2, "{}", row);
            prop_assert!(!row.replace("<br>", "").contains(['<', '>', '`']), "{}", row);
            prop_assert_eq!(
                rendered.matches(EMBEDDED).count(),
                1,
                "the section begins once"
            );
            prop_assert_eq!(embedded(&rendered), Ok(document(text)));
        }
    }
}
