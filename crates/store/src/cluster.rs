//! Locks every writ node respects. On PostgreSQL they are session-level advisory locks,
//! held on a few connections this node keeps for nothing else: a node that dies (or
//! loses its database) loses its connections, and PostgreSQL releases every lock it
//! held at once, so another node takes the work over without waiting for a lease to
//! run out, and without any clock. On SQLite there is one node (the file belongs to
//! one `writ serve`), so every lock is granted at once.
//!
//! A lock is taken with `try_lock`: a node never waits inside the database for another
//! node's lock, it skips what is locked and comes back to it. Advisory locks are
//! re-entrant within one session, so a node also keeps its own in-process locks (the
//! caller's business) and a key always maps to the same session.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::Mutex;

use crate::{Backend, StoreError};

/// The connections a node holds its locks on (a key always uses the same one).
const SESSIONS: usize = 4;

/// What a lock is about; part of its key, so two kinds never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockSpace {
    /// One scheduled job, while a node works on it.
    Job = 1,
    /// One account's access on one entitlement, while a node changes or reads it.
    Account = 2,
    /// A background task that one node runs for all (reconciliation, delivery, ...).
    Task = 3,
}

/// An advisory lock key: the space in the top byte, a hash of the name below. SHA-256,
/// so every node (every release, every platform) computes the same key for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockKey(i64);

impl LockKey {
    pub fn new(space: LockSpace, name: &str) -> Self {
        let digest = Sha256::digest(name.as_bytes());
        let mut low = [0u8; 8];
        low.copy_from_slice(&digest[..8]);
        let hash = u64::from_be_bytes(low) & 0x00ff_ffff_ffff_ffff;
        let key = ((space as u64) << 56) | hash;
        Self(i64::from_be_bytes(key.to_be_bytes()))
    }

    fn session(self) -> usize {
        usize::try_from(self.0.unsigned_abs() % SESSIONS as u64).unwrap_or(0)
    }
}

/// A lock this node holds: the key and the session generation it was taken in (a lost
/// session lost its locks; releasing them again must not touch the new session's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLock {
    pub key: LockKey,
    generation: u64,
}

struct Session {
    connection: Option<sqlx::AnyConnection>,
    /// Bumped whenever the connection is lost, with every lock it held.
    generation: u64,
}

pub struct ClusterLocks {
    url: String,
    backend: Backend,
    sessions: Vec<Mutex<Session>>,
}

impl std::fmt::Debug for ClusterLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLocks")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl ClusterLocks {
    pub(crate) fn new(url: &str, backend: Backend) -> Self {
        Self {
            url: url.to_string(),
            backend,
            sessions: (0..SESSIONS)
                .map(|_| {
                    Mutex::new(Session {
                        connection: None,
                        generation: 0,
                    })
                })
                .collect(),
        }
    }

    /// Whether these locks mean anything beyond this process (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Takes whichever of `keys` no other node holds, at once; returns those taken.
    pub async fn try_lock(&self, keys: &[LockKey]) -> Result<Vec<HeldLock>, StoreError> {
        if !self.shared() {
            return Ok(keys
                .iter()
                .map(|&key| HeldLock { key, generation: 0 })
                .collect());
        }
        let mut held = Vec::with_capacity(keys.len());
        for (index, slot) in self.sessions.iter().enumerate() {
            let mine: Vec<LockKey> = keys
                .iter()
                .copied()
                .filter(|k| k.session() == index)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut session = slot.lock().await;
            let generation = session.generation;
            let taken = self.on_session(&mut session, &try_lock_sql(&mine)).await?;
            held.extend(taken.into_iter().map(|key| HeldLock { key, generation }));
        }
        Ok(held)
    }

    /// Releases locks taken by `try_lock`. Locks of a session since lost are gone
    /// already; releasing is best-effort (a failure loses the session, and with it
    /// the locks).
    pub async fn unlock(&self, locks: &[HeldLock]) {
        if !self.shared() || locks.is_empty() {
            return;
        }
        for (index, slot) in self.sessions.iter().enumerate() {
            let mut session = slot.lock().await;
            let mine: Vec<LockKey> = locks
                .iter()
                .filter(|l| l.key.session() == index && l.generation == session.generation)
                .map(|l| l.key)
                .collect();
            if mine.is_empty() || session.connection.is_none() {
                continue;
            }
            if let Err(error) = self.on_session(&mut session, &unlock_sql(&mine)).await {
                tracing::warn!(%error, "releasing cluster locks failed; their session was closed");
            }
        }
    }

    /// Whether a lock taken earlier is still held (its session was not lost since).
    pub async fn still_held(&self, lock: &HeldLock) -> bool {
        if !self.shared() {
            return true;
        }
        let session = self.sessions[lock.key.session()].lock().await;
        session.generation == lock.generation && session.connection.is_some()
    }

    /// Checks every lock session is alive (a round trip on each that has a
    /// connection); a lost one is reported and its locks counted as gone.
    pub async fn check(&self) -> Result<(), StoreError> {
        if !self.shared() {
            return Ok(());
        }
        for slot in &self.sessions {
            let mut session = slot.lock().await;
            if session.connection.is_some() {
                self.on_session(&mut session, "SELECT 1 AS k WHERE false")
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs `sql` (which selects the keys it locked or unlocked as `k`) on the session,
    /// connecting first if needed; a failure closes the session, losing its locks.
    async fn on_session(
        &self,
        session: &mut Session,
        sql: &str,
    ) -> Result<Vec<LockKey>, StoreError> {
        if session.connection.is_none() {
            let connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.url).await?;
            session.connection = Some(connection);
        }
        let Some(connection) = session.connection.as_mut() else {
            return Ok(Vec::new());
        };
        match sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(&mut *connection)
            .await
        {
            Ok(rows) => rows
                .iter()
                .map(|row| Ok(LockKey(row.try_get::<i64, _>("k")?)))
                .collect(),
            Err(error) => {
                // Whatever it held is, as far as anyone can tell, released: never act
                // as if still holding it.
                session.connection = None;
                session.generation += 1;
                Err(error.into())
            }
        }
    }
}

/// The keys as a `VALUES` list; they are writ's own integers.
fn values(keys: &[LockKey]) -> String {
    let mut values = String::new();
    for (i, key) in keys.iter().enumerate() {
        let comma = if i == 0 { "" } else { ", " };
        let _ = write!(values, "{comma}({}::bigint)", key.0);
    }
    values
}

/// Selects (as `k`) the keys it could lock.
fn try_lock_sql(keys: &[LockKey]) -> String {
    format!(
        "SELECT k FROM (VALUES {}) AS t(k) WHERE pg_try_advisory_lock(k)",
        values(keys)
    )
}

/// Releases every key (the select list is evaluated for every row).
fn unlock_sql(keys: &[LockKey]) -> String {
    format!(
        "SELECT k, pg_advisory_unlock(k) AS released FROM (VALUES {}) AS t(k)",
        values(keys)
    )
}

#[cfg(test)]
mod tests {
    use super::{ClusterLocks, HeldLock, LockKey, LockSpace};
    use crate::Backend;

    #[test]
    fn keys_are_stable_and_spaces_apart() {
        let job = LockKey::new(LockSpace::Job, "x");
        assert_eq!(job, LockKey::new(LockSpace::Job, "x"));
        assert_ne!(job, LockKey::new(LockSpace::Account, "x"));
        assert_eq!(job.0 >> 56, 1);
        assert_eq!(LockKey::new(LockSpace::Task, "y").0 >> 56, 3);
    }

    /// Two nodes: what one holds the other cannot take, until it is released or the
    /// holder's session ends (a node that dies).
    #[tokio::test]
    async fn a_lock_is_held_by_one_node_until_released_or_its_session_ends() {
        let database = writ_testkit::pg::TestDatabase::create().await;
        let first = ClusterLocks::new(&database.url, Backend::Postgres);
        let second = ClusterLocks::new(&database.url, Backend::Postgres);
        let keys: Vec<LockKey> = (0..20)
            .map(|i| LockKey::new(LockSpace::Account, &format!("account-{i}")))
            .collect();
        let held = first.try_lock(&keys[..10]).await.expect("first");
        assert_eq!(held.len(), 10);
        let taken = second.try_lock(&keys).await.expect("second");
        let taken_keys: Vec<LockKey> = taken.iter().map(|l| l.key).collect();
        assert_eq!(taken_keys.len(), 10, "only the ten nobody holds");
        assert!(taken_keys.iter().all(|k| keys[10..].contains(k)));
        let first_key: Vec<HeldLock> = held.iter().filter(|l| l.key == keys[0]).copied().collect();
        // The same node takes its own again (re-entrant), and releases both.
        assert_eq!(first.try_lock(&keys[..1]).await.expect("again").len(), 1);
        first.unlock(&first_key).await;
        assert!(
            second
                .try_lock(&keys[..1])
                .await
                .expect("still held")
                .is_empty()
        );
        first.unlock(&first_key).await;
        assert_eq!(
            second.try_lock(&keys[..1]).await.expect("released").len(),
            1
        );
        // A node that dies: its sessions end, its locks go with them.
        drop(first);
        let mut all = Vec::new();
        for _ in 0..50 {
            all = second.try_lock(&keys[1..10]).await.expect("after death");
            if all.len() == 9 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(all.len(), 9);
        second.unlock(&all).await;
        drop(second);
        database.drop_now().await;
    }

    #[tokio::test]
    async fn on_sqlite_every_lock_is_granted() {
        let locks = ClusterLocks::new("sqlite::memory:", Backend::Sqlite);
        let key = LockKey::new(LockSpace::Task, "reconciler");
        assert_eq!(locks.try_lock(&[key, key]).await.expect("sqlite").len(), 2);
        assert!(!locks.shared());
    }
}
