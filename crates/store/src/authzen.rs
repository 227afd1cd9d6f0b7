//! AuthZEN access request tasks: a task handle, the request it made, and what makes a
//! submission happen once (the denial's token id, the submitter's Idempotency-Key); and
//! the uses counted on leases that end after a number of them (`max_uses`).

use sqlx::Row;
use writ_domain::{GrantId, RequestId, Timestamp};

use crate::write::Arg;
use crate::{Store, StoreError, WriteTx};

/// One recorded task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzenTask {
    pub id: String,
    pub request: RequestId,
    pub jti: String,
    pub requester: String,
    pub idempotency_key: Option<String>,
    pub body_digest: String,
    pub created_at: Timestamp,
}

fn request_id(text: &str) -> Result<RequestId, StoreError> {
    text.parse()
        .map_err(|e: writ_domain::InvalidId| StoreError::Corrupt {
            what: "authzen task request",
            id: text.to_string(),
            problem: e.to_string(),
        })
}

const COLUMNS: &str = "id, request, jti, requester, idempotency_key, body_digest, created_at_us";

impl Store {
    pub async fn authzen_task(&self, id: &str) -> Result<Option<AuthzenTask>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM authzen_tasks WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(AuthzenTask {
                id: row.try_get("id")?,
                request: request_id(&row.try_get::<String, _>("request")?)?,
                jti: row.try_get("jti")?,
                requester: row.try_get("requester")?,
                idempotency_key: row.try_get("idempotency_key")?,
                body_digest: row.try_get("body_digest")?,
                created_at: Timestamp::from_unix_micros(row.try_get("created_at_us")?),
            })
        })
        .transpose()
    }

    /// How many uses lease `grant` has had (0 before its first).
    pub async fn lease_uses(&self, grant: GrantId) -> Result<u32, StoreError> {
        let used: Option<i64> =
            sqlx::query_scalar("SELECT used FROM lease_uses WHERE grant_id = $1")
                .bind(grant.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(used.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// The task `requester` made under `key`, if any.
    pub async fn authzen_task_by_key(
        &self,
        requester: &str,
        key: &str,
    ) -> Result<Option<AuthzenTask>, StoreError> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM authzen_tasks WHERE requester = $1 AND idempotency_key = $2",
        )
        .bind(requester)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => self.authzen_task(&id).await,
            None => Ok(None),
        }
    }
}

impl WriteTx<'_> {
    /// As of this transaction (so two submissions of one denial cannot both pass): the
    /// task already made from denial `jti`, or by `requester` under `key`.
    pub async fn claim_authzen_task(
        &mut self,
        jti: &str,
        requester: &str,
        key: Option<&str>,
    ) -> Result<Option<AuthzenTask>, StoreError> {
        let rows = self
            .read_texts(
                format!(
                    "SELECT {COLUMNS} FROM authzen_tasks WHERE jti = $1 OR (requester = $2 AND idempotency_key = $3)"
                ),
                vec![
                    Arg::Text(jti.to_string()),
                    Arg::Text(requester.to_string()),
                    Arg::OptionalText(key.map(str::to_string)),
                ],
                7,
            )
            .await?;
        // Under the key first: a retry is answered as the retry it is.
        let mut seen: Vec<AuthzenTask> = rows
            .into_iter()
            .map(|row| {
                let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                Ok(AuthzenTask {
                    id: text(0),
                    request: request_id(&text(1))?,
                    jti: text(2),
                    requester: text(3),
                    idempotency_key: row.get(4).cloned().flatten(),
                    body_digest: text(5),
                    created_at: Timestamp::from_unix_micros(text(6).parse().map_err(
                        |e: std::num::ParseIntError| StoreError::Corrupt {
                            what: "authzen task time",
                            id: text(0),
                            problem: e.to_string(),
                        },
                    )?),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        seen.sort_by_key(|task| task.idempotency_key.as_deref() != key || key.is_none());
        Ok(seen.into_iter().next())
    }

    /// Counts one use of lease `grant` if it has been used fewer than `max_uses` times,
    /// as one statement (so concurrent evaluations never count past the maximum): the
    /// uses so far, this one included, or `None` when none are left.
    pub async fn count_lease_use(
        &mut self,
        grant: GrantId,
        max_uses: u32,
    ) -> Result<Option<u32>, StoreError> {
        let rows = self
            .read_texts(
                "INSERT INTO lease_uses (grant_id, used) VALUES ($1, 1) ON CONFLICT (grant_id) DO UPDATE SET used = lease_uses.used + 1 WHERE lease_uses.used < $2 RETURNING used".to_string(),
                vec![
                    Arg::Text(grant.to_string()),
                    Arg::Int(i64::from(max_uses)),
                ],
                1,
            )
            .await?;
        let Some(text) = rows.first().and_then(|row| row.first().cloned().flatten()) else {
            return Ok(None);
        };
        text.parse::<u32>()
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                what: "lease uses",
                id: grant.to_string(),
                problem: e.to_string(),
            })
    }

    /// Records a task, in the transaction of the request it made.
    pub fn insert_authzen_task(&mut self, task: &AuthzenTask) {
        self.buffer_statement(
            "INSERT INTO authzen_tasks (id, request, jti, requester, idempotency_key, body_digest, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                Arg::Text(task.id.clone()),
                Arg::Text(task.request.to_string()),
                Arg::Text(task.jti.clone()),
                Arg::Text(task.requester.clone()),
                Arg::OptionalText(task.idempotency_key.clone()),
                Arg::Text(task.body_digest.clone()),
                Arg::Int(task.created_at.unix_micros()),
            ],
        );
    }
}
