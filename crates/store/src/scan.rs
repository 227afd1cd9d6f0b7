//! The ledger's chain check on SQLite, read in place.
//!
//! sqlx runs each SQLite connection on a worker thread and copies every value it hands
//! back; for a scan of the whole ledger those copies and hand-offs, not hashing, were
//! most of the cost. Here each stretch of the chain is read by a plain, read-only,
//! synchronous connection on a thread of its own, every row borrowed where SQLite
//! holds it and hashed in place; the caller joins the stretches in order.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use writ_domain::Timestamp;
use writ_domain::ledger::EventFields;

use crate::verify::{Stretch, StretchCheck};
use crate::{SQLITE_BUSY_TIMEOUT, StoreError};

/// Checks the events with `after < seq <= up_to` as one stretch of the chain.
pub(crate) fn check_range(
    path: &Path,
    after: i64,
    up_to: i64,
) -> Result<Option<Stretch>, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
    let mut statement = connection.prepare(
        "SELECT seq, at_us, actor, kind, data, prev_hash, hash FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
    )?;
    let mut rows = statement.query((after, up_to))?;
    let mut check = StretchCheck::default();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let text = |column: usize| -> Result<&str, StoreError> {
            row.get_ref(column)?
                .as_str()
                .map_err(|e| StoreError::Corrupt {
                    what: "event",
                    id: seq.to_string(),
                    problem: e.to_string(),
                })
        };
        let event = EventFields {
            seq,
            at: Timestamp::from_unix_micros(row.get(1)?),
            actor: text(2)?,
            kind: text(3)?,
            data: text(4)?,
            prev_hash: text(5)?,
            hash: text(6)?,
        };
        if !check.push(&event) {
            break;
        }
    }
    Ok(check.finish())
}
