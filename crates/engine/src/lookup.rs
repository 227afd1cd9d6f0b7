//! Ids as people type them: a whole UUID, or an abbreviation that names exactly one
//! request, grant or finding (the short form tables show, or the start of the id).

use std::str::FromStr;

use writ_domain::{
    ActivationId, CampaignId, FindingId, GrantId, IdRef, InvalidId, RequestId, ReviewItemId,
};
use writ_store::IdTable;

use crate::{Engine, EngineError, ErrorCode};

impl Engine {
    pub async fn resolve_request(&self, text: &str) -> Result<RequestId, EngineError> {
        self.resolve_id(
            text,
            RequestId::reference(text),
            IdTable::Requests,
            "request",
            |id: &RequestId| id.short(),
        )
        .await
    }

    pub async fn resolve_grant(&self, text: &str) -> Result<GrantId, EngineError> {
        self.resolve_id(
            text,
            GrantId::reference(text),
            IdTable::Grants,
            "grant",
            |id: &GrantId| id.short(),
        )
        .await
    }

    pub async fn resolve_finding(&self, text: &str) -> Result<FindingId, EngineError> {
        self.resolve_id(
            text,
            FindingId::reference(text),
            IdTable::Findings,
            "finding",
            |id: &FindingId| id.short(),
        )
        .await
    }

    pub async fn resolve_activation(&self, text: &str) -> Result<ActivationId, EngineError> {
        self.resolve_id(
            text,
            ActivationId::reference(text),
            IdTable::Activations,
            "break-glass activation",
            |id: &ActivationId| id.short(),
        )
        .await
    }

    pub async fn resolve_campaign(&self, text: &str) -> Result<CampaignId, EngineError> {
        self.resolve_id(
            text,
            CampaignId::reference(text),
            IdTable::Campaigns,
            "review campaign",
            |id: &CampaignId| id.short(),
        )
        .await
    }

    pub async fn resolve_review_item(&self, text: &str) -> Result<ReviewItemId, EngineError> {
        self.resolve_id(
            text,
            ReviewItemId::reference(text),
            IdTable::ReviewItems,
            "review item",
            |id: &ReviewItemId| id.short(),
        )
        .await
    }

    async fn resolve_id<T: FromStr + Copy>(
        &self,
        text: &str,
        reference: Result<IdRef<T>, InvalidId>,
        table: IdTable,
        what: &str,
        short: impl Fn(&T) -> String,
    ) -> Result<T, EngineError> {
        let fragment = match reference {
            Ok(IdRef::Full(id)) => return Ok(id),
            Ok(IdRef::Fragment(fragment)) => fragment,
            // Not an id of this kind at all: nothing can have it.
            Err(invalid) => {
                return Err(EngineError::new(
                    ErrorCode::NotFound,
                    format!("no {what} {text}: {}", invalid.problem),
                ));
            }
        };
        let matches: Vec<T> = self
            .store
            .ids_matching(table, &fragment)
            .await?
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect();
        match matches.as_slice() {
            [] => Err(EngineError::not_found(what, text)),
            [one] => Ok(*one),
            many => Err(EngineError::new(
                ErrorCode::AmbiguousId,
                format!(
                    "{text} names more than one {what} ({}{}); give more of the id",
                    many.iter().map(&short).collect::<Vec<_>>().join(", "),
                    if many.len() as i64 >= writ_store::ID_MATCHES_MAX {
                        ", …"
                    } else {
                        ""
                    }
                ),
            )),
        }
    }
}
