//! Buffered statements made into one query: placeholders renumbered, and on PostgreSQL
//! data-modifying CTEs split wherever two would change one row.

use crate::Backend;

/// A value bound to a buffered statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
    OptionalText(Option<String>),
    OptionalInt(Option<i64>),
}

/// A statement whose placeholders are numbered `$1..$n` for its own arguments.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) sql: &'static str,
    pub(crate) args: Vec<Arg>,
}

/// `sql` with every `$N` placeholder shifted by `offset`.
pub(crate) fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

/// The row a buffered statement may change, when it may change one that another
/// statement also changes: `(table, key)`, the key being its first argument (writ's
/// statements are keyed by `$1`) or `*` for one not keyed by it. A plain `INSERT`
/// makes a new row (a duplicate fails loudly), so it has none.
pub(crate) fn row_written(statement: &Pending) -> Option<(&'static str, String)> {
    let sql = statement.sql.trim_start();
    let table_after = |prefix: &str| -> Option<&'static str> {
        let rest = statement.sql.trim_start().strip_prefix(prefix)?;
        rest.split_whitespace().next()
    };
    let table = if sql.starts_with("INSERT INTO ") {
        if !sql.contains("ON CONFLICT") {
            return None;
        }
        table_after("INSERT INTO ")?
    } else if sql.starts_with("UPDATE ") {
        table_after("UPDATE ")?
    } else if sql.starts_with("DELETE FROM ") {
        table_after("DELETE FROM ")?
    } else {
        return Some(("*", "*".into()));
    };
    // Keyed by `$1` when the WHERE clause starts `column = $1` (an upsert's key is
    // its first value).
    let keyed = sql.starts_with("INSERT INTO ")
        || sql.split_once(" WHERE ").is_some_and(|(_, condition)| {
            let mut words = condition.split_whitespace();
            words.next().is_some()
                && words.next() == Some("=")
                && words.next().is_some_and(|value| {
                    value
                        .strip_prefix("$1")
                        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
                })
        });
    let key = match (keyed, statement.args.first()) {
        (true, Some(Arg::Text(text))) => text.clone(),
        (true, Some(Arg::Int(value))) => value.to_string(),
        _ => "*".into(),
    };
    Some((table, key))
}

/// Splits buffered statements into runs that can share one PostgreSQL statement of
/// data-modifying CTEs: those all run on one snapshot, so two that change the same row
/// would silently keep only one change. A statement that may change a row an earlier
/// one in the run changes starts a new run.
pub(crate) fn runs(pending: &[Pending]) -> Vec<&[Pending]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut written: Vec<(&'static str, String)> = Vec::new();
    for (i, statement) in pending.iter().enumerate() {
        if let Some((table, key)) = row_written(statement) {
            let clashes = written.iter().any(|(t, k)| {
                (*t == table || *t == "*" || table == "*") && (k == &key || k == "*" || key == "*")
            });
            if clashes {
                runs.push(&pending[start..i]);
                start = i;
                written.clear();
            }
            written.push((table, key));
        }
    }
    runs.push(&pending[start..]);
    runs.retain(|run| !run.is_empty());
    runs
}

/// The buffered statements as one query for `backend`, and their arguments in order.
pub(crate) fn combine(backend: Backend, pending: &[Pending]) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    let mut parts = Vec::with_capacity(pending.len());
    for statement in pending {
        parts.push(renumber(statement.sql, args.len()));
        args.extend(statement.args.iter().cloned());
    }
    let sql = match (backend, parts.len()) {
        (_, 1) => parts.remove(0),
        (Backend::Sqlite, _) => parts.join(";\n"),
        (Backend::Postgres, _) => {
            let ctes: Vec<String> = parts
                .iter()
                .enumerate()
                .map(|(i, part)| format!("w{i} AS ({part})"))
                .collect();
            format!("WITH {} SELECT 1", ctes.join(", "))
        }
    };
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_shifted_past_earlier_statements() {
        assert_eq!(
            renumber("UPDATE t SET a = $2 WHERE id = $1 AND b = $10", 7),
            "UPDATE t SET a = $9 WHERE id = $8 AND b = $17"
        );
        assert_eq!(renumber("SELECT 1", 3), "SELECT 1");
    }

    fn statement(sql: &'static str, key: &str) -> Pending {
        Pending {
            sql,
            args: vec![Arg::Text(key.into()), Arg::Int(1)],
        }
    }

    /// Writes to different rows share a run; a second write to a row starts a new one
    /// (PostgreSQL's CTEs would keep only one of the two).
    #[test]
    fn a_second_change_of_one_row_starts_a_new_statement() {
        let cursor_failed = "UPDATE notify_cursors SET attempts = attempts + 1, next_attempt_at_us = $2, last_error = $3 WHERE sink = $1";
        let grant = "UPDATE grants SET state = $2, doc = $3 WHERE id = $1";
        let event = "INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let head = "UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1";
        let pending = [
            statement(grant, "g1"),
            statement(event, "1"),
            statement(grant, "g2"),
            statement(event, "2"),
            statement(cursor_failed, "pager"),
            statement(cursor_failed, "siem"),
            statement(cursor_failed, "pager"),
            statement(head, "3"),
            statement(head, "4"),
        ];
        let sizes: Vec<usize> = runs(&pending).iter().map(|run| run.len()).collect();
        assert_eq!(sizes, [6, 2, 1]);
        let upsert = "INSERT INTO jobs (object_id, kind, due_at_us, attempts, last_error) VALUES ($1, $2, $3, 0, NULL) ON CONFLICT (object_id) DO UPDATE SET kind = $2";
        let delete = "DELETE FROM jobs WHERE object_id = $1";
        let pending = [
            statement(delete, "a"),
            statement(upsert, "a"),
            statement(upsert, "b"),
        ];
        let sizes: Vec<usize> = runs(&pending).iter().map(|run| run.len()).collect();
        assert_eq!(sizes, [1, 2]);
    }

    #[test]
    fn statements_combine_per_backend() {
        let pending = [
            Pending {
                sql: "DELETE FROM jobs WHERE object_id = $1",
                args: vec![Arg::Text("a".into())],
            },
            Pending {
                sql: "UPDATE jobs SET due_at_us = $2 WHERE object_id = $1",
                args: vec![Arg::Text("b".into()), Arg::Int(5)],
            },
        ];
        let (sqlite, args) = combine(Backend::Sqlite, &pending);
        assert_eq!(
            sqlite,
            "DELETE FROM jobs WHERE object_id = $1;\nUPDATE jobs SET due_at_us = $3 WHERE object_id = $2"
        );
        assert_eq!(args.len(), 3);
        let (postgres, _) = combine(Backend::Postgres, &pending);
        assert_eq!(
            postgres,
            "WITH w0 AS (DELETE FROM jobs WHERE object_id = $1), w1 AS (UPDATE jobs SET due_at_us = $3 WHERE object_id = $2) SELECT 1"
        );
    }
}
