//! Access review campaigns and their items: written with their ledger events, read for
//! reviewers (what waits for me), for progress and for the scheduler.

use sqlx::Row;
use writ_domain::{Campaign, CampaignId, CampaignState, ItemState, ReviewItem, ReviewItemId};

use crate::page::{Bind, Page, PageCursor, SortKey};
use crate::read::{page_of, page_size, where_clause};
use crate::write::{Arg, doc};
use crate::{Store, StoreError, WriteTx, decode_doc};

/// Campaigns are listed newest first.
pub const CAMPAIGN_ORDER: SortKey = SortKey::TimeThenId("created_at_us");
/// Items are listed by id (time-ordered, newest first).
pub const REVIEW_ITEM_ORDER: SortKey = SortKey::Id;

#[derive(Debug, Clone, Default)]
pub struct CampaignFilter {
    pub state: Option<CampaignState>,
    pub limit: Option<i64>,
    pub after: Option<PageCursor>,
}

#[derive(Debug, Clone, Default)]
pub struct ReviewItemFilter {
    pub campaign: Option<CampaignId>,
    pub state: Option<ItemState>,
    /// Only items this person is named a reviewer of.
    pub reviewer: Option<String>,
    /// Only items about this subject's access.
    pub subject: Option<String>,
    pub limit: Option<i64>,
    pub after: Option<PageCursor>,
}

/// How many items of a campaign stand in each state, and how many of the pending ones
/// wait for each named reviewer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignCounts {
    pub pending: i64,
    pub kept: i64,
    pub revoked: i64,
    /// Decided by the default rather than by a reviewer (among kept and revoked).
    pub by_default: i64,
}

fn campaign_from_row(row: &sqlx::any::AnyRow) -> Result<Campaign, StoreError> {
    decode_doc("review campaign", row)
}

fn item_from_row(row: &sqlx::any::AnyRow) -> Result<ReviewItem, StoreError> {
    decode_doc("review item", row)
}

impl WriteTx<'_> {
    pub async fn insert_campaign(&mut self, campaign: &Campaign) -> Result<(), StoreError> {
        self.buffer_statement(
            "INSERT INTO review_campaigns (id, name, state, created_at_us, due_at_us, doc) VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                Arg::Text(campaign.id.to_string()),
                Arg::Text(campaign.name.clone()),
                Arg::Text(campaign.state.as_str().to_string()),
                Arg::Int(campaign.created_at.unix_micros()),
                Arg::Int(campaign.due_at.unix_micros()),
                Arg::Text(doc(campaign)?),
            ],
        );
        Ok(())
    }

    pub async fn update_campaign(&mut self, campaign: &Campaign) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE review_campaigns SET state = $2, doc = $3 WHERE id = $1",
            vec![
                Arg::Text(campaign.id.to_string()),
                Arg::Text(campaign.state.as_str().to_string()),
                Arg::Text(doc(campaign)?),
            ],
        );
        Ok(())
    }

    /// An item and a row per named reviewer.
    pub async fn insert_review_item(&mut self, item: &ReviewItem) -> Result<(), StoreError> {
        self.buffer_statement(
            "INSERT INTO review_items (id, campaign, state, subject, doc) VALUES ($1, $2, $3, $4, $5)",
            vec![
                Arg::Text(item.id.to_string()),
                Arg::Text(item.campaign.to_string()),
                Arg::Text(item.state.as_str().to_string()),
                Arg::OptionalText(item.subject.as_ref().map(|s| s.to_string())),
                Arg::Text(doc(item)?),
            ],
        );
        for reviewer in &item.reviewers {
            self.buffer_statement(
                "INSERT INTO review_assignments (reviewer, item, campaign) VALUES ($1, $2, $3)",
                vec![
                    Arg::Text(reviewer.to_string()),
                    Arg::Text(item.id.to_string()),
                    Arg::Text(item.campaign.to_string()),
                ],
            );
        }
        Ok(())
    }

    pub async fn update_review_item(&mut self, item: &ReviewItem) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE review_items SET state = $2, decided_by = $3, doc = $4 WHERE id = $1",
            vec![
                Arg::Text(item.id.to_string()),
                Arg::Text(item.state.as_str().to_string()),
                Arg::OptionalText(item.decided_by.as_ref().map(|r| r.to_string())),
                Arg::Text(doc(item)?),
            ],
        );
        Ok(())
    }

    pub async fn campaign(&mut self, id: CampaignId) -> Result<Option<Campaign>, StoreError> {
        let sql = "SELECT id, doc FROM review_campaigns WHERE id = $1";
        let mut found = self
            .read_docs(
                "review campaign",
                sql.into(),
                vec![Arg::Text(id.to_string())],
            )
            .await?;
        Ok(found.pop())
    }

    pub async fn review_item(
        &mut self,
        id: ReviewItemId,
    ) -> Result<Option<ReviewItem>, StoreError> {
        let sql = "SELECT id, doc FROM review_items WHERE id = $1";
        let mut found = self
            .read_docs("review item", sql.into(), vec![Arg::Text(id.to_string())])
            .await?;
        Ok(found.pop())
    }

    /// Up to `limit` of a campaign's items still pending, as of this transaction.
    pub async fn pending_review_items(
        &mut self,
        campaign: CampaignId,
        limit: i64,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = format!(
            "SELECT id, doc FROM review_items WHERE campaign = $1 AND state = $2 ORDER BY id LIMIT {}",
            limit.max(1)
        );
        self.read_docs(
            "review item",
            sql,
            vec![
                Arg::Text(campaign.to_string()),
                Arg::Text(ItemState::Pending.as_str().to_string()),
            ],
        )
        .await
    }
}

impl Store {
    pub async fn campaign(&self, id: CampaignId) -> Result<Option<Campaign>, StoreError> {
        let row = sqlx::query("SELECT id, doc FROM review_campaigns WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    pub async fn review_item(&self, id: ReviewItemId) -> Result<Option<ReviewItem>, StoreError> {
        let row = sqlx::query("SELECT id, doc FROM review_items WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(item_from_row).transpose()
    }

    /// Campaigns, newest first, a page at a time.
    pub async fn campaigns(&self, filter: &CampaignFilter) -> Result<Page<Campaign>, StoreError> {
        let conditions = [("state", filter.state.map(|s| s.as_str().to_string()))];
        let rows = self
            .list(
                "review_campaigns",
                &conditions,
                None,
                CAMPAIGN_ORDER,
                filter.limit,
                filter.after.as_ref(),
            )
            .await?;
        page_of(rows, filter.limit, CAMPAIGN_ORDER, campaign_from_row)
    }

    /// Review items, newest first, a page at a time.
    pub async fn review_items(
        &self,
        filter: &ReviewItemFilter,
    ) -> Result<Page<ReviewItem>, StoreError> {
        let conditions = [
            ("campaign", filter.campaign.map(|c| c.to_string())),
            ("state", filter.state.map(|s| s.as_str().to_string())),
            ("subject", filter.subject.clone()),
        ];
        let (mut clause, mut values) = where_clause(&conditions);
        if let Some(reviewer) = &filter.reviewer {
            let joiner = if clause.is_empty() { "WHERE" } else { " AND" };
            values.push(reviewer.clone());
            clause.push_str(&format!(
                "{joiner} id IN (SELECT item FROM review_assignments WHERE reviewer = ${})",
                values.len()
            ));
        }
        let binds = filter.after.as_ref().map_or_else(Vec::new, |cursor| {
            cursor.after_clause(&mut clause, values.len() + 1, REVIEW_ITEM_ORDER)
        });
        let sql = format!(
            "SELECT id, doc FROM review_items {clause} ORDER BY {} LIMIT {}",
            REVIEW_ITEM_ORDER.order(),
            page_size(filter.limit) + 1
        );
        // Only column names writ chose and numbered placeholders are interpolated.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        for bind in binds {
            query = match bind {
                Bind::Int(n) => query.bind(n),
                Bind::Text(text) => query.bind(text),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        page_of(rows, filter.limit, REVIEW_ITEM_ORDER, item_from_row)
    }

    /// Whether `reviewer` is named on any item of `campaign`.
    pub async fn reviews_in(
        &self,
        campaign: CampaignId,
        reviewer: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT item FROM review_assignments WHERE campaign = $1 AND reviewer = $2 LIMIT 1",
        )
        .bind(campaign.to_string())
        .bind(reviewer.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// A campaign's items by state.
    pub async fn campaign_counts(
        &self,
        campaign: CampaignId,
    ) -> Result<CampaignCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM review_items WHERE campaign = $1 GROUP BY state",
        )
        .bind(campaign.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut counts = CampaignCounts::default();
        for row in &rows {
            let n: i64 = row.try_get("n")?;
            match ItemState::parse(&row.try_get::<String, _>("state")?) {
                Some(ItemState::Pending) => counts.pending = n,
                Some(ItemState::Kept) => counts.kept = n,
                Some(ItemState::Revoked) => counts.revoked = n,
                None => {}
            }
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM review_items WHERE campaign = $1 AND state <> $2 AND decided_by IS NULL",
        )
        .bind(campaign.to_string())
        .bind(ItemState::Pending.as_str())
        .fetch_one(&self.pool)
        .await?;
        counts.by_default = row.try_get("n")?;
        Ok(counts)
    }

    /// Named reviewers with items of `campaign` still pending, and how many each.
    pub async fn pending_by_reviewer(
        &self,
        campaign: CampaignId,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.reviewer, COUNT(*) AS n FROM review_assignments a JOIN review_items i ON i.id = a.item WHERE a.campaign = $1 AND i.state = $2 GROUP BY a.reviewer ORDER BY a.reviewer",
        )
        .bind(campaign.to_string())
        .bind(ItemState::Pending.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("reviewer")?, row.try_get("n")?)))
            .collect()
    }
}
