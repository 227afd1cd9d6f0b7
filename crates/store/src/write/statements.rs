//! The statements writ writes with: one method per change, each buffered on the
//! transaction (`WriteTx::buffer`) and sent with the others.

use writ_domain::{Grant, GrantId, Request, RequestId, Timestamp};

use super::combine::Arg;
use super::{WriteTx, doc};
use crate::{Job, JobKind, StoreError};

impl WriteTx<'_> {
    pub async fn insert_request(&mut self, request: &Request) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO requests (id, state, requester, subject, entitlement, created_at_us, doc) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                Arg::Text(request.id.to_string()),
                Arg::Text(request.state.as_str().to_string()),
                Arg::Text(request.requester.to_string()),
                Arg::Text(request.subject.to_string()),
                Arg::Text(request.entitlement.to_string()),
                Arg::Int(request.created_at.unix_micros()),
                Arg::Text(doc(request)?),
            ],
        );
        Ok(())
    }

    pub async fn update_request(&mut self, request: &Request) -> Result<(), StoreError> {
        self.buffer(
            "UPDATE requests SET state = $2, doc = $3 WHERE id = $1",
            vec![
                Arg::Text(request.id.to_string()),
                Arg::Text(request.state.as_str().to_string()),
                Arg::Text(doc(request)?),
            ],
        );
        Ok(())
    }

    pub async fn insert_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                Arg::Text(grant.id.to_string()),
                Arg::Text(grant.request_id.to_string()),
                Arg::Text(grant.subject.to_string()),
                Arg::Text(grant.entitlement.to_string()),
                Arg::Text(grant.account.clone()),
                Arg::Text(grant.state.as_str().to_string()),
                Arg::Int(grant.expires_at.unix_micros()),
                Arg::Text(doc(grant)?),
            ],
        );
        Ok(())
    }

    pub async fn update_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        self.buffer(
            "UPDATE grants SET state = $2, doc = $3, expires_at_us = $4 WHERE id = $1",
            vec![
                Arg::Text(grant.id.to_string()),
                Arg::Text(grant.state.as_str().to_string()),
                Arg::Text(doc(grant)?),
                Arg::Int(grant.expires_at.unix_micros()),
            ],
        );
        Ok(())
    }

    /// The request as of this transaction (writers are serialised, so this is the latest).
    pub async fn request(&mut self, id: RequestId) -> Result<Option<Request>, StoreError> {
        let sql = "SELECT id, doc FROM requests WHERE id = $1";
        let mut found = self
            .read_docs("request", sql.into(), vec![Arg::Text(id.to_string())])
            .await?;
        Ok(found.pop())
    }

    pub async fn grant(&mut self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        let sql = "SELECT id, doc FROM grants WHERE id = $1";
        let mut found = self
            .read_docs("grant", sql.into(), vec![Arg::Text(id.to_string())])
            .await?;
        Ok(found.pop())
    }

    /// These grants as of this transaction (those that exist), in no particular order.
    pub async fn grants_by_ids(&mut self, ids: &[GrantId]) -> Result<Vec<Grant>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let args = ids.iter().map(|id| Arg::Text(id.to_string())).collect();
        self.read_docs("grant", crate::read::grants_by_ids_sql(ids.len()), args)
            .await
    }

    /// Records that `ticket_key` in `system` (checked there) backs `request`; the
    /// ticket must not back another (see `ticket_request`).
    pub async fn link_ticket(
        &mut self,
        system: &str,
        ticket_key: &str,
        request: RequestId,
    ) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO ticket_links (system, ticket_key, request_id) VALUES ($1, $2, $3)",
            vec![
                Arg::Text(system.to_string()),
                Arg::Text(ticket_key.to_string()),
                Arg::Text(request.to_string()),
            ],
        );
        Ok(())
    }

    /// The request this ticket backs, as of this transaction.
    pub async fn ticket_request(
        &mut self,
        system: &str,
        ticket_key: &str,
    ) -> Result<Option<RequestId>, StoreError> {
        let rows = self
            .read_texts(
                "SELECT request_id FROM ticket_links WHERE system = $1 AND ticket_key = $2".into(),
                vec![
                    Arg::Text(system.to_string()),
                    Arg::Text(ticket_key.to_string()),
                ],
                1,
            )
            .await?;
        rows.into_iter()
            .next()
            .map(|row| {
                let id = row.into_iter().next().flatten().unwrap_or_default();
                id.parse()
                    .map_err(|e: writ_domain::InvalidId| StoreError::Corrupt {
                        what: "ticket link",
                        id,
                        problem: e.to_string(),
                    })
            })
            .transpose()
    }

    /// Records a webhook delivery as acted on. Returns false if it already was (then
    /// nothing is written).
    pub async fn record_delivery(
        &mut self,
        system: &str,
        delivery_id: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let seen = self
            .read_texts(
                "SELECT 1 AS seen FROM itsm_deliveries WHERE system = $1 AND delivery_id = $2"
                    .into(),
                vec![
                    Arg::Text(system.to_string()),
                    Arg::Text(delivery_id.to_string()),
                ],
                1,
            )
            .await?
            .pop();
        if seen.is_some() {
            return Ok(false);
        }
        self.buffer(
            "INSERT INTO itsm_deliveries (system, delivery_id, received_at_us) VALUES ($1, $2, $3)",
            vec![
                Arg::Text(system.to_string()),
                Arg::Text(delivery_id.to_string()),
                Arg::Int(at.unix_micros()),
            ],
        );
        Ok(true)
    }

    /// Schedules (or reschedules) the one job an object has.
    pub async fn set_job(
        &mut self,
        object_id: &str,
        kind: JobKind,
        due_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO jobs (object_id, kind, due_at_us, attempts, last_error) VALUES ($1, $2, $3, 0, NULL) \
             ON CONFLICT (object_id) DO UPDATE SET kind = excluded.kind, due_at_us = excluded.due_at_us, attempts = 0, last_error = NULL, escalated_at_us = NULL",
            vec![Arg::Text(object_id.to_string()), Arg::Text(kind.as_str().to_string()), Arg::Int(due_at.unix_micros())],
        );
        Ok(())
    }

    /// Records a failed attempt and when to try again; `escalated_at` marks the job as
    /// escalated (kept once set). One statement: PostgreSQL's data-modifying CTEs must
    /// not update the same row twice.
    pub async fn retry_job(
        &mut self,
        job: &Job,
        due_at: Timestamp,
        error: &str,
        escalated_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.buffer(
            "UPDATE jobs SET due_at_us = $2, attempts = attempts + 1, last_error = $3, escalated_at_us = COALESCE(escalated_at_us, $4) WHERE object_id = $1",
            vec![Arg::Text(job.object_id.clone()), Arg::Int(due_at.unix_micros()), Arg::OptionalText(Some(error.to_string())),
                Arg::OptionalInt(escalated_at.map(Timestamp::unix_micros))],
        );
        Ok(())
    }

    /// Records the basis the live grants were just decided on as a whole.
    pub async fn set_decision_basis(
        &mut self,
        basis: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO decision_basis (id, basis, decided_at_us) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET basis = excluded.basis, decided_at_us = excluded.decided_at_us",
            vec![Arg::Text(basis.to_string()), Arg::Int(at.unix_micros())],
        );
        Ok(())
    }

    pub async fn delete_job(&mut self, object_id: &str) -> Result<(), StoreError> {
        self.buffer(
            "DELETE FROM jobs WHERE object_id = $1",
            vec![Arg::Text(object_id.to_string())],
        );
        Ok(())
    }

    pub async fn insert_token(
        &mut self,
        hash: &str,
        identity: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO tokens (hash, identity, created_at_us, expires_at_us, keyed) VALUES ($1, $2, $3, $4, 1)",
            vec![Arg::Text(hash.to_string()), Arg::Text(identity.to_string()), Arg::Int(created_at.unix_micros()), Arg::Int(expires_at.unix_micros())],
        );
        Ok(())
    }
}

impl WriteTx<'_> {
    /// The hashes and identities of the tokens whose id (hash prefix) is `id`, not yet
    /// revoked, as of this transaction.
    pub async fn live_tokens_by_id(
        &mut self,
        id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .read_texts(
                "SELECT hash, identity FROM tokens WHERE substr(hash, 1, 16) = $1 AND revoked_at_us IS NULL".into(),
                vec![Arg::Text(id.to_string())],
                2,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut columns = row.into_iter().map(Option::unwrap_or_default);
                (
                    columns.next().unwrap_or_default(),
                    columns.next().unwrap_or_default(),
                )
            })
            .collect())
    }

    pub async fn revoke_token(&mut self, hash: &str, at: Timestamp) -> Result<(), StoreError> {
        self.buffer(
            "UPDATE tokens SET revoked_at_us = $2 WHERE hash = $1",
            vec![Arg::Text(hash.to_string()), Arg::Int(at.unix_micros())],
        );
        Ok(())
    }
}
