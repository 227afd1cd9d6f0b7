//! `writ review`: access review campaigns and their items.

use reqwest::Method;
use serde_json::json;
use writ_domain::parse_duration_seconds;

use super::Client;
use crate::cli::ReviewCommand;
use crate::{Failure, output};

fn seconds(flag: &str, text: &str) -> Result<i64, Failure> {
    parse_duration_seconds(text)
        .map_err(|problem| Failure::usage(format!("{flag} {text:?}: {problem}")))
}

impl Client {
    pub async fn review(&self, action: ReviewCommand) -> Result<(), Failure> {
        match action {
            ReviewCommand::Start {
                name,
                target,
                entitlement,
                sensitivity,
                older_than_days,
                exceptions,
                no_grants,
                assign,
                default_decision,
                due,
                remind_every,
            } => {
                let remind_every_seconds = remind_every
                    .map(|every| seconds("--remind-every", &every))
                    .transpose()?;
                let body = json!({
                    "name": name,
                    "target": target,
                    "entitlement": entitlement,
                    "sensitivity": sensitivity,
                    "older_than_days": older_than_days,
                    "grants": !no_grants,
                    "exceptions": exceptions,
                    "assign": assign,
                    "default_decision": default_decision,
                    "due_in_seconds": seconds("--due", &due)?,
                    "remind_every_seconds": remind_every_seconds,
                });
                let started = self
                    .call(Method::POST, "/v1/reviews", &[], Some(body))
                    .await?;
                self.print(&started, output::campaign);
            }
            ReviewCommand::List { state, limit } => {
                let query = state.map(|s| ("state", s)).into_iter().collect();
                let list = self.pages("/v1/reviews", query, "campaigns", limit).await?;
                self.print(&list, output::campaign_list);
            }
            ReviewCommand::Show { id } => {
                let path = format!("/v1/reviews/{}", Self::segment(&id)?);
                let campaign = self.call(Method::GET, &path, &[], None).await?;
                self.print(&campaign, output::campaign);
            }
            ReviewCommand::Items {
                campaign,
                state,
                inbox,
                limit,
            } => {
                let path = match &campaign {
                    Some(id) => format!("/v1/reviews/{}/items", Self::segment(id)?),
                    None => "/v1/review-items".to_string(),
                };
                let mut query: Vec<(&str, String)> =
                    state.map(|s| ("state", s)).into_iter().collect();
                if inbox {
                    query.push(("reviewable_by_me", "true".to_string()));
                }
                let list = self.pages(&path, query, "items", limit).await?;
                self.print(&list, output::review_items);
            }
            ReviewCommand::Keep { item, comment } => {
                self.decide_item(&item, "keep", comment).await?
            }
            ReviewCommand::Revoke { item, comment } => {
                self.decide_item(&item, "revoke", comment).await?;
            }
        }
        Ok(())
    }

    async fn decide_item(
        &self,
        item: &str,
        decision: &str,
        comment: String,
    ) -> Result<(), Failure> {
        let path = format!("/v1/review-items/{}/decide", Self::segment(item)?);
        let decided = self
            .call(
                Method::POST,
                &path,
                &[],
                Some(json!({ "decision": decision, "comment": comment })),
            )
            .await?;
        self.print(&decided, output::review_item);
        Ok(())
    }
}
