//! Break-glass activations: written with their ledger events, read for reviews.

use sqlx::Row;
use writ_domain::{Activation, ActivationId, ReviewState};

use crate::page::{Page, PageCursor, SortKey};
use crate::read::page_of;
use crate::write::{Arg, doc};
use crate::{Store, StoreError, WriteTx, decode_doc};

/// How the activation list is ordered (and so how its cursors read): newest first.
pub const ACTIVATION_ORDER: SortKey = SortKey::TimeThenId("activated_at_us");

#[derive(Debug, Clone, Default)]
pub struct ActivationFilter {
    pub review_state: Option<ReviewState>,
    pub profile: Option<String>,
    /// Only activations by one of these.
    pub activators: Option<Vec<String>>,
    pub limit: Option<i64>,
    /// Continue after this cursor (a previous page's `next`).
    pub after: Option<PageCursor>,
}

fn activation_from_row(row: &sqlx::any::AnyRow) -> Result<Activation, StoreError> {
    decode_doc("break-glass activation", row)
}

impl WriteTx<'_> {
    pub async fn insert_activation(&mut self, activation: &Activation) -> Result<(), StoreError> {
        self.buffer_statement(
            "INSERT INTO break_glass_activations (id, profile, activator, review_state, activated_at_us, review_due_at_us, doc) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                Arg::Text(activation.id.to_string()),
                Arg::Text(activation.profile.clone()),
                Arg::Text(activation.activator.to_string()),
                Arg::Text(activation.review_state.as_str().to_string()),
                Arg::Int(activation.activated_at.unix_micros()),
                Arg::Int(activation.review_due_at.unix_micros()),
                Arg::Text(doc(activation)?),
            ],
        );
        Ok(())
    }

    pub async fn update_activation(&mut self, activation: &Activation) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE break_glass_activations SET review_state = $2, doc = $3 WHERE id = $1",
            vec![
                Arg::Text(activation.id.to_string()),
                Arg::Text(activation.review_state.as_str().to_string()),
                Arg::Text(doc(activation)?),
            ],
        );
        Ok(())
    }

    /// The activation as of this transaction.
    pub async fn activation(&mut self, id: ActivationId) -> Result<Option<Activation>, StoreError> {
        let sql = "SELECT id, doc FROM break_glass_activations WHERE id = $1";
        let mut found = self
            .read_docs(
                "break-glass activation",
                sql.into(),
                vec![Arg::Text(id.to_string())],
            )
            .await?;
        Ok(found.pop())
    }

    /// Activations by `activator` whose review is still pending, as of this
    /// transaction (so two activations at once cannot both pass the overdue check).
    pub async fn pending_activations_of(
        &mut self,
        activator: &str,
    ) -> Result<Vec<Activation>, StoreError> {
        let sql = "SELECT id, doc FROM break_glass_activations WHERE activator = $1 AND review_state <> $2";
        self.read_docs(
            "break-glass activation",
            sql.into(),
            vec![
                Arg::Text(activator.to_string()),
                Arg::Text(ReviewState::SignedOff.as_str().to_string()),
            ],
        )
        .await
    }
}

impl Store {
    pub async fn activation(&self, id: ActivationId) -> Result<Option<Activation>, StoreError> {
        let row = sqlx::query("SELECT id, doc FROM break_glass_activations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(activation_from_row).transpose()
    }

    /// Activations, newest first, a page at a time.
    pub async fn activations(
        &self,
        filter: &ActivationFilter,
    ) -> Result<Page<Activation>, StoreError> {
        let conditions = [
            (
                "review_state",
                filter.review_state.map(|s| s.as_str().to_string()),
            ),
            ("profile", filter.profile.clone()),
        ];
        let involving = filter
            .activators
            .as_deref()
            .map(|names| (&["activator"][..], names));
        let rows = self
            .list(
                "break_glass_activations",
                &conditions,
                involving,
                ACTIVATION_ORDER,
                filter.limit,
                filter.after.as_ref(),
            )
            .await?;
        page_of(rows, filter.limit, ACTIVATION_ORDER, activation_from_row)
    }

    /// Number of activations by (profile, review state), for metrics.
    pub async fn activation_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT profile, review_state, COUNT(*) AS n FROM break_glass_activations GROUP BY profile, review_state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("profile")?,
                    row.try_get("review_state")?,
                    row.try_get("n")?,
                ))
            })
            .collect()
    }
}
