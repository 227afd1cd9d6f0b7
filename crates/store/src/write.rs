//! The write path: one transaction, the ledger head held from the first statement,
//! state changes and their events committed together or not at all.

use sqlx::{Any, Row, Transaction};
use tokio::sync::MutexGuard;
use writ_domain::ledger::{self, EventKind, StoredEvent};
use writ_domain::lifecycle::GrantState;
use writ_domain::{Grant, GrantId, Request, RequestId, Timestamp};

use crate::{Job, JobKind, Store, StoreError, grant_from_row, request_from_row};

pub struct WriteTx<'s> {
    tx: Transaction<'static, Any>,
    seq: i64,
    hash: String,
    appended: bool,
    _writer: MutexGuard<'s, ()>,
}

fn doc(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what: "record",
        id: String::new(),
        problem: e.to_string(),
    })
}

impl<'s> WriteTx<'s> {
    pub(crate) async fn begin(store: &'s Store) -> Result<Self, StoreError> {
        let writer = store.writer.lock().await;
        let mut tx = store.pool.begin().await?;
        // Take the write lock first (row lock on PostgreSQL, RESERVED on SQLite), so
        // the head read next cannot be overtaken by another writer.
        let head = sqlx::query("UPDATE ledger_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *tx)
            .await?;
        Ok(Self {
            seq: head.try_get("seq")?,
            hash: head.try_get("hash")?,
            tx,
            appended: false,
            _writer: writer,
        })
    }

    /// Appends an event to the chain, in this transaction.
    pub async fn append(
        &mut self,
        at: Timestamp,
        actor: &str,
        kind: EventKind,
        data: &serde_json::Value,
    ) -> Result<StoredEvent, StoreError> {
        let event = ledger::seal(self.seq, &self.hash, at, actor, kind, data);
        sqlx::query("INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(event.seq)
            .bind(event.at.unix_micros())
            .bind(&event.actor)
            .bind(&event.kind)
            .bind(&event.data)
            .bind(&event.prev_hash)
            .bind(&event.hash)
            .execute(&mut *self.tx)
            .await?;
        self.seq = event.seq;
        self.hash.clone_from(&event.hash);
        self.appended = true;
        Ok(event)
    }

    pub async fn commit(mut self) -> Result<(), StoreError> {
        if self.appended {
            sqlx::query("UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1")
                .bind(self.seq)
                .bind(&self.hash)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn insert_request(&mut self, request: &Request) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO requests (id, state, requester, subject, entitlement, created_at_us, doc) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(request.id.to_string())
            .bind(request.state.as_str())
            .bind(request.requester.as_str())
            .bind(request.subject.as_str())
            .bind(request.entitlement.as_str())
            .bind(request.created_at.unix_micros())
            .bind(doc(request)?)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn update_request(&mut self, request: &Request) -> Result<(), StoreError> {
        sqlx::query("UPDATE requests SET state = $2, doc = $3 WHERE id = $1")
            .bind(request.id.to_string())
            .bind(request.state.as_str())
            .bind(doc(request)?)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn insert_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(grant.id.to_string())
            .bind(grant.request_id.to_string())
            .bind(grant.subject.as_str())
            .bind(grant.entitlement.as_str())
            .bind(&grant.account)
            .bind(grant.state.as_str())
            .bind(grant.expires_at.unix_micros())
            .bind(doc(grant)?)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn update_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        sqlx::query("UPDATE grants SET state = $2, doc = $3 WHERE id = $1")
            .bind(grant.id.to_string())
            .bind(grant.state.as_str())
            .bind(doc(grant)?)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The request as of this transaction (writers are serialised, so this is the latest).
    pub async fn request(&mut self, id: RequestId) -> Result<Option<Request>, StoreError> {
        let row = sqlx::query("SELECT id, doc FROM requests WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    pub async fn grant(&mut self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query("SELECT id, doc FROM grants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// Another lease that may still give `account` this entitlement on the target.
    pub async fn other_live_grant(&mut self, grant: &Grant) -> Result<Option<GrantId>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM grants WHERE entitlement = $1 AND account = $2 AND id <> $3 AND state IN ($4, $5) ORDER BY expires_at_us DESC LIMIT 1",
        )
        .bind(grant.entitlement.as_str())
        .bind(&grant.account)
        .bind(grant.id.to_string())
        .bind(GrantState::Pending.as_str())
        .bind(GrantState::Active.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get("id")?;
        id.parse()
            .map(Some)
            .map_err(|e: writ_domain::InvalidId| StoreError::Corrupt {
                what: "grant",
                id,
                problem: e.to_string(),
            })
    }

    /// Schedules (or reschedules) the one job an object has.
    pub async fn set_job(
        &mut self,
        object_id: &str,
        kind: JobKind,
        due_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO jobs (object_id, kind, due_at_us, attempts, last_error) VALUES ($1, $2, $3, 0, NULL) \
             ON CONFLICT (object_id) DO UPDATE SET kind = excluded.kind, due_at_us = excluded.due_at_us, attempts = 0, last_error = NULL",
        )
            .bind(object_id)
            .bind(kind.as_str())
            .bind(due_at.unix_micros())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    pub async fn retry_job(
        &mut self,
        job: &Job,
        due_at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET due_at_us = $2, attempts = attempts + 1, last_error = $3 WHERE object_id = $1")
            .bind(&job.object_id)
            .bind(due_at.unix_micros())
            .bind(error)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn delete_job(&mut self, object_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM jobs WHERE object_id = $1")
            .bind(object_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn insert_token(
        &mut self,
        hash: &str,
        identity: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO tokens (hash, identity, created_at_us, expires_at_us) VALUES ($1, $2, $3, $4)")
            .bind(hash)
            .bind(identity)
            .bind(created_at.unix_micros())
            .bind(expires_at.unix_micros())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
