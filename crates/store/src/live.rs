//! The live grants (pending, active) with their requests, page by page: what is decided
//! again when policy or an identity changes.
//!
//! On SQLite a page is read by a plain read-only connection on a blocking thread, rows
//! decoded where SQLite holds them: sqlx would hand each row from its worker thread to
//! the caller's, and for 100k grants those hand-offs, not the reading, were most of the
//! cost. It also lets a caller decide one page while the next is read.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use sqlx::Row;
use writ_domain::lifecycle::GrantState;
use writ_domain::{Grant, GrantId, Request};

use crate::{LIST_LIMIT_MAX, SQLITE_BUSY_TIMEOUT, Store, StoreError, decode_doc_text};

/// The page query: one index-ordered page per state (`grants_by_state`), merged.
/// `state IN (..)` with `ORDER BY id` would read and sort every remaining live grant
/// for each page; requests are joined to the page only. `placeholder(n)` spells the
/// n-th parameter: 1 and 2 the states, then the subject and the cursor when given.
fn page_sql(subject: bool, after: bool, limit: i64, placeholder: fn(usize) -> String) -> String {
    let mut filter = String::new();
    let mut next = 3;
    if subject {
        filter.push_str(&format!(" AND subject = {}", placeholder(next)));
        next += 1;
    }
    if after {
        filter.push_str(&format!(" AND id > {}", placeholder(next)));
    }
    let one_state = |state: usize, alias: &str| {
        format!(
            "SELECT * FROM (SELECT id, request_id, doc FROM grants WHERE state = {}{filter} \
             ORDER BY id LIMIT {limit}) AS {alias}",
            placeholder(state)
        )
    };
    format!(
        "SELECT g.id AS id, g.doc AS doc, r.doc AS request_doc FROM ({} UNION ALL {}) AS g \
         JOIN requests r ON r.id = g.request_id ORDER BY g.id LIMIT {limit}",
        one_state(1, "pending"),
        one_state(2, "active"),
    )
}

fn decode(id: &str, doc: &str, request_doc: &str) -> Result<(Grant, Request), StoreError> {
    let grant: Grant = decode_doc_text("grant", id, doc)?;
    let request = decode_doc_text("request", &grant.request_id.to_string(), request_doc)?;
    Ok((grant, request))
}

impl Store {
    /// Grants that hold access or are about to (pending, active), each with the
    /// request it came from, in id order after `after`, at most `limit`. Only
    /// `subject`'s, when given.
    pub async fn live_grants_with_requests(
        &self,
        subject: Option<&str>,
        after: Option<GrantId>,
        limit: i64,
    ) -> Result<Vec<(Grant, Request)>, StoreError> {
        let limit = limit.clamp(1, LIST_LIMIT_MAX);
        let after = after.map(|id| id.to_string());
        if let Some(file) = &self.sqlite_file {
            let (file, subject) = (file.clone(), subject.map(str::to_string));
            return tokio::task::spawn_blocking(move || {
                sqlite_page(&file, subject.as_deref(), after.as_deref(), limit)
            })
            .await
            .map_err(|e| StoreError::ReadThread(e.to_string()))?;
        }
        let sql = page_sql(subject.is_some(), after.is_some(), limit, |n| {
            format!("${n}")
        });
        // Only placeholders and a number writ chose are interpolated.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(GrantState::Pending.as_str())
            .bind(GrantState::Active.as_str());
        if let Some(subject) = subject {
            query = query.bind(subject.to_string());
        }
        if let Some(after) = after {
            query = query.bind(after);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                decode(
                    row.try_get("id")?,
                    row.try_get("doc")?,
                    row.try_get("request_doc")?,
                )
            })
            .collect()
    }
}

fn sqlite_page(
    file: &Path,
    subject: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(Grant, Request)>, StoreError> {
    let connection = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
    let sql = page_sql(subject.is_some(), after.is_some(), limit, |n| {
        format!("?{n}")
    });
    let mut statement = connection.prepare(&sql)?;
    let mut parameters: Vec<&str> = vec![GrantState::Pending.as_str(), GrantState::Active.as_str()];
    parameters.extend(subject);
    parameters.extend(after);
    let mut rows = statement.query(rusqlite::params_from_iter(parameters))?;
    let mut page = Vec::new();
    while let Some(row) = rows.next()? {
        let text = |column: usize| -> Result<&str, StoreError> {
            row.get_ref(column)?
                .as_str()
                .map_err(|e| StoreError::Corrupt {
                    what: "grant",
                    id: String::new(),
                    problem: e.to_string(),
                })
        };
        page.push(decode(text(0)?, text(1)?, text(2)?)?);
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::page_sql;

    #[test]
    fn each_state_is_paged_by_its_index_then_merged() {
        let sql = page_sql(true, true, 500, |n| format!("${n}"));
        assert!(
            sql.contains("WHERE state = $1 AND subject = $3 AND id > $4 ORDER BY id LIMIT 500")
        );
        assert!(
            sql.contains("WHERE state = $2 AND subject = $3 AND id > $4 ORDER BY id LIMIT 500")
        );
        assert!(sql.ends_with("ORDER BY g.id LIMIT 500"));
        let sql = page_sql(false, true, 10, |n| format!("?{n}"));
        assert!(sql.contains("WHERE state = ?1 AND id > ?3 ORDER BY id"));
    }
}
