//! Access review campaigns: an admin puts a scope of live access (active grants,
//! accepted exceptions) in front of reviewers chosen by a rule; each item is kept or
//! revoked, with a comment, by someone whose access it is not. Revoking goes through
//! the normal verified revocation. At the deadline, what nobody decided takes the
//! campaign's default; until then reviewers with items waiting are reminded (ledger
//! events, so notify sinks carry them).

use std::collections::BTreeSet;

use serde_json::json;
use writ_config::Entitlement;
use writ_domain::ledger::EventKind;
use writ_domain::lifecycle::GrantState;
use writ_domain::{
    Assignment, Campaign, CampaignId, CampaignScope, CampaignState, DriftAction, Finding,
    FindingEvent, FindingKind, FindingState, Grant, GrantId, IdentityKind, IdentityName, ItemState,
    ReviewDecision, ReviewItem, ReviewItemId, ReviewedAccess, RevokeReason, Timestamp,
};
use writ_store::{
    CampaignCounts, CampaignFilter, FindingFilter, GrantFilter, JobKind, Page, ReviewItemFilter,
    WriteTx,
};

use crate::reconcile::transition;
use crate::revocation::SCHEDULER_ACTOR;
use crate::{COMMENT_LENGTH_MAX, Caller, Engine, EngineError, ErrorCode};

/// The longest a campaign may run.
pub const CAMPAIGN_DURATION_MAX_SECONDS: i64 = 366 * 24 * 3600;
/// The shortest a campaign may run, and the shortest pause between two reminders.
pub const CAMPAIGN_DURATION_MIN_SECONDS: i64 = 1;
const CAMPAIGN_NAME_MAX: usize = 200;
/// Items the deadline decides per transaction.
const DEFAULT_BATCH: i64 = 200;
/// Rows read per page while collecting what a campaign covers.
const SCAN_PAGE: i64 = 1000;

/// A campaign as an admin asks for it.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub scope: CampaignScope,
    pub assignment: Assignment,
    pub default_decision: ReviewDecision,
    /// How long reviewers have.
    pub due_in_seconds: i64,
    pub remind_every_seconds: Option<i64>,
}

/// A campaign with its progress.
#[derive(Debug, Clone)]
pub struct CampaignProgress {
    pub campaign: Campaign,
    pub counts: CampaignCounts,
    /// Named reviewers with items still waiting for them, and how many.
    pub waiting: Vec<(String, i64)>,
}

fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::new(ErrorCode::InvalidCampaign, message)
}

fn checked_comment(comment: &str) -> Result<String, EngineError> {
    let comment = comment.trim();
    if comment.is_empty() {
        return Err(EngineError::new(
            ErrorCode::MissingComment,
            "say why: a review decision needs a comment",
        ));
    }
    if comment.len() > COMMENT_LENGTH_MAX {
        return Err(EngineError::new(
            ErrorCode::CommentTooLong,
            format!("comments are at most {COMMENT_LENGTH_MAX} bytes"),
        ));
    }
    Ok(comment.to_string())
}

/// What is about to be put under review, before reviewers are chosen.
struct Candidate {
    access: ReviewedAccess,
    entitlement: Entitlement,
    account: String,
    subject: Option<IdentityName>,
    since: Timestamp,
    excluded: Vec<IdentityName>,
    /// Whose manager reviews under the `manager` rule.
    managed: Option<IdentityName>,
}

impl Engine {
    fn check_new_campaign(&self, new: &NewCampaign) -> Result<(), EngineError> {
        let name = new.name.trim();
        if name.is_empty() || name.len() > CAMPAIGN_NAME_MAX {
            return Err(invalid(format!(
                "a campaign needs a name of 1 to {CAMPAIGN_NAME_MAX} bytes"
            )));
        }
        if !(CAMPAIGN_DURATION_MIN_SECONDS..=CAMPAIGN_DURATION_MAX_SECONDS)
            .contains(&new.due_in_seconds)
        {
            return Err(invalid(format!(
                "the deadline must be {CAMPAIGN_DURATION_MIN_SECONDS} s to {} days away",
                CAMPAIGN_DURATION_MAX_SECONDS / 86_400
            )));
        }
        if let Some(every) = new.remind_every_seconds
            && !(CAMPAIGN_DURATION_MIN_SECONDS..new.due_in_seconds).contains(&every)
        {
            return Err(invalid(format!(
                "reminders must come at least every {CAMPAIGN_DURATION_MIN_SECONDS} s and more often than the deadline"
            )));
        }
        let scope = &new.scope;
        if !scope.grants && !scope.exceptions {
            return Err(invalid(
                "a campaign reviews grants, exceptions or both: include at least one",
            ));
        }
        if let Some(target) = &scope.target
            && !self.config.targets.contains_key(target)
        {
            return Err(invalid(format!("no target {target:?} is configured")));
        }
        if let Some(entitlement) = &scope.entitlement {
            let known = self
                .config
                .entitlement(entitlement.as_str())
                .ok_or_else(|| invalid(format!("no entitlement {entitlement} is configured")))?;
            if scope.target.as_ref().is_some_and(|t| *t != known.target) {
                return Err(invalid(format!(
                    "{entitlement} is on target {}, not {}",
                    known.target,
                    scope.target.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    /// Whether an entitlement, and access held since `since`, is in scope.
    fn in_scope(
        scope: &CampaignScope,
        entitlement: &Entitlement,
        since: Timestamp,
        now: Timestamp,
    ) -> bool {
        scope
            .target
            .as_ref()
            .is_none_or(|t| *t == entitlement.target)
            && scope
                .entitlement
                .as_ref()
                .is_none_or(|e| *e == entitlement.id)
            && scope
                .sensitivity
                .is_none_or(|s| entitlement.sensitivity >= s)
            && scope
                .older_than_days
                .is_none_or(|days| now.millis_since(since) >= i64::from(days) * 86_400 * 1000)
    }

    /// Those a grant concerns: its subject, the subject's owner, the user an agent
    /// acted for.
    async fn grant_parties(&self, grant: &Grant) -> Result<Vec<IdentityName>, EngineError> {
        let mut parties = vec![grant.subject.clone()];
        if let Some(owner) = self
            .identity(grant.subject.as_str())
            .and_then(|i| i.owner.clone())
        {
            parties.push(owner);
        }
        if let Some(user) = self
            .store
            .request(grant.request_id)
            .await?
            .and_then(|r| r.on_behalf_of)
        {
            parties.push(user);
        }
        parties.dedup();
        Ok(parties)
    }

    /// Those an exception concerns: whoever holds the account (or owns who does), and
    /// the user who answers for it.
    fn exception_parties(&self, finding: &Finding, owner: &IdentityName) -> Vec<IdentityName> {
        let mut parties: BTreeSet<IdentityName> = self
            .identities()
            .iter()
            .filter(|identity| identity.account_on(&finding.target) == finding.account)
            .flat_map(|identity| {
                std::iter::once(identity.name.clone()).chain(identity.owner.clone())
            })
            .collect();
        parties.insert(owner.clone());
        parties.into_iter().collect()
    }

    async fn collect_candidates(
        &self,
        scope: &CampaignScope,
        now: Timestamp,
    ) -> Result<Vec<Candidate>, EngineError> {
        let mut found = Vec::new();
        if scope.grants {
            let mut after = None;
            loop {
                let page = self
                    .store
                    .grants(&GrantFilter {
                        state: Some(GrantState::Active),
                        entitlement: scope.entitlement.as_ref().map(|e| e.to_string()),
                        limit: Some(SCAN_PAGE),
                        after,
                        ..GrantFilter::default()
                    })
                    .await?;
                for grant in page.items {
                    let Some(entitlement) = self.config.entitlement(grant.entitlement.as_str())
                    else {
                        continue;
                    };
                    let since = grant.granted_at.unwrap_or(grant.expires_at);
                    if !Self::in_scope(scope, entitlement, since, now) {
                        continue;
                    }
                    let excluded = self.grant_parties(&grant).await?;
                    let managed = self.managed_for(&grant.subject);
                    found.push(Candidate {
                        access: ReviewedAccess::Grant {
                            grant: grant.id,
                            request: grant.request_id,
                        },
                        entitlement: entitlement.clone(),
                        account: grant.account.clone(),
                        subject: Some(grant.subject.clone()),
                        since,
                        excluded,
                        managed,
                    });
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        if scope.exceptions {
            let mut after = None;
            loop {
                let page = self
                    .store
                    .findings(&FindingFilter {
                        state: Some(FindingState::Accepted),
                        target: scope.target.clone(),
                        entitlements: scope.entitlement.as_ref().map(|e| vec![e.to_string()]),
                        limit: Some(SCAN_PAGE),
                        after,
                        ..FindingFilter::default()
                    })
                    .await?;
                for report in page.items {
                    let finding = report.finding;
                    let (Some(entitlement), Some(exception)) = (
                        self.config.entitlement(finding.entitlement.as_str()),
                        finding.exception.clone(),
                    ) else {
                        continue;
                    };
                    if !Self::in_scope(scope, entitlement, finding.first_seen_at, now) {
                        continue;
                    }
                    found.push(Candidate {
                        excluded: self.exception_parties(&finding, &exception.owner),
                        access: ReviewedAccess::Exception {
                            finding: finding.id,
                            owner: exception.owner.clone(),
                            expires_at: exception.expires_at,
                        },
                        entitlement: entitlement.clone(),
                        account: finding.account.clone(),
                        subject: None,
                        since: finding.first_seen_at,
                        managed: Some(exception.owner),
                    });
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(found)
    }

    /// Whose manager reviews a subject's access: the subject's own, or for a service
    /// or agent its owner's.
    fn managed_for(&self, subject: &IdentityName) -> Option<IdentityName> {
        let identity = self.identity(subject.as_str())?;
        match identity.kind {
            IdentityKind::User => Some(subject.clone()),
            _ => identity.owner.clone(),
        }
    }

    fn owners_of(&self, entitlement: &Entitlement) -> Vec<IdentityName> {
        let Some(group) = entitlement.owners.as_deref() else {
            return Vec::new();
        };
        self.identities()
            .iter()
            .filter(|i| {
                i.kind == IdentityKind::User && !i.disabled && i.groups.iter().any(|g| g == group)
            })
            .map(|i| i.name.clone())
            .collect()
    }

    /// The reviewers a rule names for a candidate, never one it concerns. Empty under
    /// `approvers` for a grant (the policy decides at decision time).
    fn reviewers_for(
        &self,
        assignment: Assignment,
        candidate: &Candidate,
    ) -> (Assignment, Vec<IdentityName>) {
        let is_grant = matches!(candidate.access, ReviewedAccess::Grant { .. });
        let assignment = match assignment {
            Assignment::Approvers if !is_grant => Assignment::Owners,
            other => other,
        };
        let named = match assignment {
            Assignment::Approvers => return (assignment, Vec::new()),
            Assignment::Owners => self.owners_of(&candidate.entitlement),
            Assignment::Manager => candidate
                .managed
                .as_ref()
                .and_then(|m| self.identity(m.as_str()))
                .and_then(|i| i.manager.clone())
                .filter(|m| self.identity(m.as_str()).is_some_and(|i| !i.disabled))
                .into_iter()
                .collect(),
        };
        let reviewers = named
            .into_iter()
            .filter(|r| !candidate.excluded.contains(r))
            .collect();
        (assignment, reviewers)
    }

    /// Starts a campaign: one item per active grant or accepted exception in scope,
    /// each with its reviewers; all on the ledger in one transaction.
    pub async fn start_campaign(
        &self,
        caller: &Caller,
        new: NewCampaign,
    ) -> Result<CampaignProgress, EngineError> {
        self.require_admin(caller, "start access reviews")?;
        self.check_new_campaign(&new)?;
        let now = self.clock.now();
        let candidates = self.collect_candidates(&new.scope, now).await?;
        if candidates.is_empty() {
            return Err(invalid(
                "nothing is in scope: no active grant or accepted exception matches",
            ));
        }
        let campaign = Campaign {
            id: CampaignId::generate_at(now),
            name: new.name.trim().to_string(),
            scope: new.scope,
            assignment: new.assignment,
            default_decision: new.default_decision,
            remind_every_seconds: new.remind_every_seconds,
            created_by: caller.name.clone(),
            created_at: now,
            due_at: now.plus_seconds(new.due_in_seconds),
            state: CampaignState::Open,
            items: u64::try_from(candidates.len()).unwrap_or(u64::MAX),
            closed_at: None,
        };
        let items: Vec<ReviewItem> = candidates
            .into_iter()
            .map(|candidate| {
                let (assignment, reviewers) = self.reviewers_for(campaign.assignment, &candidate);
                ReviewItem {
                    id: ReviewItemId::generate_at(now),
                    campaign: campaign.id,
                    access: candidate.access,
                    entitlement: candidate.entitlement.id,
                    target: candidate.entitlement.target,
                    account: candidate.account,
                    subject: candidate.subject,
                    since: candidate.since,
                    assignment,
                    reviewers,
                    excluded: candidate.excluded,
                    state: ItemState::Pending,
                    decided_by: None,
                    decided_at: None,
                    comment: None,
                    by_default: false,
                }
            })
            .collect();
        let actor = caller.actor();
        let mut tx = self.store.begin().await?;
        tx.insert_campaign(&campaign).await?;
        tx.append(
            now,
            &actor,
            EventKind::ReviewCampaignStarted,
            &json!({ "campaign": campaign }),
        )
        .await?;
        for item in &items {
            tx.insert_review_item(item).await?;
            tx.append(
                now,
                &actor,
                EventKind::ReviewItemOpened,
                &json!({ "review_item": item }),
            )
            .await?;
        }
        let next = Self::next_step(&campaign, now);
        tx.set_job(&campaign.id.to_string(), JobKind::ReviewCampaignDue, next)
            .await?;
        tx.commit().await?;
        self.evidence_committed();
        self.hint_due(next);
        tracing::info!(campaign = %campaign.id, name = %campaign.name, items = items.len(), due_at = %campaign.due_at, "access review started");
        self.campaign_progress(campaign).await
    }

    /// When the campaign next needs the scheduler: its next reminder, or its deadline.
    fn next_step(campaign: &Campaign, now: Timestamp) -> Timestamp {
        campaign
            .remind_every_seconds
            .map(|every| now.plus_seconds(every))
            .filter(|at| *at < campaign.due_at)
            .unwrap_or(campaign.due_at)
    }

    async fn campaign_progress(&self, campaign: Campaign) -> Result<CampaignProgress, EngineError> {
        let counts = self.store.campaign_counts(campaign.id).await?;
        let waiting = self.store.pending_by_reviewer(campaign.id).await?;
        Ok(CampaignProgress {
            campaign,
            counts,
            waiting,
        })
    }

    /// Whether the caller may see a campaign: auditors, its named reviewers, and under
    /// the `approvers` rule anyone (the policy says at each item who may decide).
    async fn may_see_campaign(
        &self,
        caller: &Caller,
        campaign: &Campaign,
    ) -> Result<bool, EngineError> {
        Ok(self.is_auditor(caller)
            || campaign.assignment == Assignment::Approvers
            || self
                .store
                .reviews_in(campaign.id, caller.name.as_str())
                .await?)
    }

    pub async fn visible_campaign(
        &self,
        caller: &Caller,
        id: CampaignId,
    ) -> Result<CampaignProgress, EngineError> {
        let campaign = self
            .store
            .campaign(id)
            .await?
            .ok_or_else(|| EngineError::not_found("review campaign", id))?;
        if !self.may_see_campaign(caller, &campaign).await? {
            return Err(EngineError::not_found("review campaign", id));
        }
        self.campaign_progress(campaign).await
    }

    /// Campaigns the caller may see, newest first.
    pub async fn visible_campaigns(
        &self,
        caller: &Caller,
        filter: CampaignFilter,
    ) -> Result<Page<Campaign>, EngineError> {
        let mut page = self.store.campaigns(&filter).await?;
        if !self.is_auditor(caller) {
            let mut kept = Vec::with_capacity(page.items.len());
            for campaign in page.items {
                if self.may_see_campaign(caller, &campaign).await? {
                    kept.push(campaign);
                }
            }
            page.items = kept;
        }
        Ok(page)
    }

    /// Why the caller may not decide `item` now, if they may not.
    async fn check_item_reviewer(
        &self,
        caller: &Caller,
        item: &ReviewItem,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let own = self.own_names(caller);
        let concerns = item
            .excluded
            .iter()
            .chain(&item.subject)
            .any(|party| party == &caller.name || own.iter().any(|o| o == party.as_str()));
        if concerns {
            return Err(EngineError::new(
                ErrorCode::SelfReview,
                format!(
                    "this is {}'s own access (or of an identity they own or act for): someone else reviews it",
                    caller.name
                ),
            ));
        }
        match self.identity(caller.name.as_str()) {
            Some(identity) if !identity.disabled => {}
            _ => {
                return Err(EngineError::new(
                    ErrorCode::NotAReviewer,
                    format!("{} is not an enabled identity", caller.name),
                ));
            }
        }
        match (&item.access, item.assignment) {
            (ReviewedAccess::Grant { request, .. }, Assignment::Approvers) => {
                let request = self.request(*request).await?;
                self.check_approver(caller, &request, now).map_err(|e| {
                    EngineError::new(
                        ErrorCode::NotAReviewer,
                        format!(
                            "items of this campaign are reviewed by whoever may approve the access; {}",
                            e.message
                        ),
                    )
                })
            }
            _ if item.reviewers.contains(&caller.name) => Ok(()),
            _ => Err(EngineError::new(
                ErrorCode::NotAReviewer,
                if item.reviewers.is_empty() {
                    "nobody but those it concerns could review this item; the campaign's default decides it".to_string()
                } else {
                    format!(
                        "{} is not a reviewer of this item (its reviewers: {})",
                        caller.name,
                        item.reviewers
                            .iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            )),
        }
    }

    /// Items the caller may see: everything for auditors; otherwise those they are
    /// named on, those about their own access, and (with `reviewable_by_me` under the
    /// `approvers` rule) pending items the policy lets them decide.
    pub async fn visible_review_items(
        &self,
        caller: &Caller,
        mut filter: ReviewItemFilter,
        reviewable_by_me: bool,
    ) -> Result<Page<ReviewItem>, EngineError> {
        if reviewable_by_me {
            filter.state = Some(ItemState::Pending);
        }
        let by_policy = match filter.campaign {
            Some(id) => self
                .store
                .campaign(id)
                .await?
                .is_some_and(|c| c.assignment == Assignment::Approvers),
            None => false,
        };
        if !by_policy && (reviewable_by_me || !self.is_auditor(caller)) {
            filter.reviewer = Some(caller.name.to_string());
        }
        let mut page = self.store.review_items(&filter).await?;
        if by_policy && (reviewable_by_me || !self.is_auditor(caller)) {
            let now = self.clock.now();
            let mut kept = Vec::with_capacity(page.items.len());
            for item in page.items {
                let decided_by_me = item.decided_by.as_ref() == Some(&caller.name);
                let may_decide = item.state == ItemState::Pending
                    && self.check_item_reviewer(caller, &item, now).await.is_ok();
                if may_decide || (!reviewable_by_me && decided_by_me) {
                    kept.push(item);
                }
            }
            page.items = kept;
        }
        Ok(page)
    }

    pub async fn visible_review_item(
        &self,
        caller: &Caller,
        id: ReviewItemId,
    ) -> Result<ReviewItem, EngineError> {
        let item = self
            .store
            .review_item(id)
            .await?
            .ok_or_else(|| EngineError::not_found("review item", id))?;
        let own = self.own_names(caller);
        let visible = self.is_auditor(caller)
            || item.reviewers.contains(&caller.name)
            || item.decided_by.as_ref() == Some(&caller.name)
            || item
                .subject
                .as_ref()
                .is_some_and(|s| own.iter().any(|o| o == s.as_str()))
            || (item.state == ItemState::Pending
                && self
                    .check_item_reviewer(caller, &item, self.clock.now())
                    .await
                    .is_ok());
        if visible {
            Ok(item)
        } else {
            Err(EngineError::not_found("review item", id))
        }
    }

    /// Keeps or revokes an item, with a comment. Revoking ends the grant through the
    /// normal verified revocation (or withdraws the exception and removes its access).
    pub async fn decide_review_item(
        &self,
        caller: &Caller,
        id: ReviewItemId,
        decision: ReviewDecision,
        comment: String,
    ) -> Result<ReviewItem, EngineError> {
        let comment = checked_comment(&comment)?;
        let now = self.clock.now();
        let seen = self
            .store
            .review_item(id)
            .await?
            .ok_or_else(|| EngineError::not_found("review item", id))?;
        // As for an approval, whoever may not decide is told why (ids are not guessable).
        self.check_item_reviewer(caller, &seen, now).await?;
        let mut tx = self.store.begin().await?;
        let mut item = tx
            .review_item(id)
            .await?
            .ok_or_else(|| EngineError::not_found("review item", id))?;
        let campaign = tx
            .campaign(item.campaign)
            .await?
            .ok_or_else(|| EngineError::not_found("review campaign", item.campaign))?;
        if campaign.state != CampaignState::Open || now >= campaign.due_at {
            return Err(EngineError::new(
                ErrorCode::CampaignClosed,
                format!(
                    "campaign {} ended at {}: items nobody decided took its default ({})",
                    campaign.name,
                    campaign.due_at,
                    decision_word(campaign.default_decision)
                ),
            ));
        }
        if item.state != ItemState::Pending {
            return Err(EngineError::new(
                ErrorCode::AlreadyDecided,
                format!(
                    "item {id} was {} by {} at {}",
                    item.state,
                    item.decided_by
                        .as_ref()
                        .map_or("the campaign's default", |r| r.as_str()),
                    item.decided_at.map_or_else(String::new, |t| t.to_string())
                ),
            ));
        }
        item.state = item
            .state
            .transition(decision)
            .map_err(|e| EngineError::new(ErrorCode::IllegalTransition, e.to_string()))?;
        item.decided_by = Some(caller.name.clone());
        item.decided_at = Some(now);
        item.comment = Some(comment.clone());
        let actor = caller.actor();
        let revoking = self
            .record_decision(&mut tx, &campaign, &item, &actor, now, &comment)
            .await?;
        tx.commit().await?;
        self.evidence_committed();
        tracing::info!(item = %id, campaign = %campaign.id, reviewer = %caller.name, decision = %item.state, "review item decided");
        self.carry_out(revoking).await;
        Ok(item)
    }

    /// Records a decided item and, for a revoke, begins taking the access away in the
    /// same transaction. Returns what to finish on the target after commit.
    async fn record_decision(
        &self,
        tx: &mut WriteTx<'_>,
        campaign: &Campaign,
        item: &ReviewItem,
        actor: &writ_domain::ledger::Actor,
        now: Timestamp,
        why: &str,
    ) -> Result<Option<Revoking>, EngineError> {
        tx.update_review_item(item).await?;
        tx.append(
            now,
            actor,
            EventKind::ReviewItemDecided,
            &json!({ "review_item": item }),
        )
        .await?;
        if item.state != ItemState::Revoked {
            return Ok(None);
        }
        let reason = format!("access review {:?}: {why}", campaign.name);
        match &item.access {
            ReviewedAccess::Grant { grant, .. } => {
                let Some(grant) = tx
                    .grant(*grant)
                    .await?
                    .filter(|g| g.state.may_hold_access())
                else {
                    // Ended meanwhile: nothing left to take away.
                    return Ok(None);
                };
                self.begin_revoke_in(tx, &grant, actor, RevokeReason::Stated(reason), now)
                    .await?;
                Ok(Some(Revoking::Grant(grant.id)))
            }
            ReviewedAccess::Exception { finding, .. } => {
                let Some(mut finding) = tx
                    .finding(*finding)
                    .await?
                    .filter(|f| f.state == FindingState::Accepted)
                else {
                    return Ok(None);
                };
                // The exception is withdrawn: the finding is open again, and what
                // reconciliation does about it is now to take the access away.
                finding.state = transition(finding.state, FindingEvent::Reopen)?;
                let removes_access = matches!(
                    finding.kind,
                    FindingKind::Unmanaged | FindingKind::Lingering
                );
                if removes_access {
                    finding.action = DriftAction::Revoke;
                }
                tx.update_finding(&finding).await?;
                tx.delete_job(&finding.id.to_string()).await?;
                tx.append(
                    now,
                    actor,
                    EventKind::FindingReopened,
                    &json!({ "finding": finding, "reason": reason }),
                )
                .await?;
                // A missing or no-longer-permitted grant's exception: the grant ends.
                if let Some(grant) = finding.grant_id
                    && let Some(grant) =
                        tx.grant(grant).await?.filter(|g| g.state.may_hold_access())
                {
                    self.begin_revoke_in(tx, &grant, actor, RevokeReason::Stated(reason), now)
                        .await?;
                    return Ok(Some(Revoking::Grant(grant.id)));
                }
                Ok(removes_access.then(|| Revoking::Finding(Box::new(finding))))
            }
        }
    }

    /// Finishes a revoke decision on the target, once it is on the ledger. A failure
    /// here is retried: by the revocation job, or by reconciliation.
    async fn carry_out(&self, revoking: Option<Revoking>) {
        match revoking {
            Some(Revoking::Grant(id)) => {
                if let Err(error) = self.execute_revoke(id).await {
                    tracing::error!(grant = %id, %error, "revocation will be retried");
                }
            }
            Some(Revoking::Finding(finding)) => {
                let id = finding.id;
                if let Err(error) = self.remove_reviewed_access(*finding).await {
                    tracing::error!(finding = %id, %error, "removal will be retried by reconciliation");
                }
            }
            None => {}
        }
    }

    /// The scheduler's: reminds reviewers before the deadline; at it, applies the
    /// default to every undecided item and closes the campaign.
    pub(crate) async fn campaign_due(&self, id: CampaignId) -> Result<(), EngineError> {
        let now = self.clock.now();
        let Some(campaign) = self.store.campaign(id).await? else {
            let mut tx = self.store.begin().await?;
            tx.delete_job(&id.to_string()).await?;
            return Ok(tx.commit().await?);
        };
        if campaign.state == CampaignState::Closed {
            let mut tx = self.store.begin().await?;
            tx.delete_job(&id.to_string()).await?;
            return Ok(tx.commit().await?);
        }
        if now < campaign.due_at {
            return self.remind(&campaign, now).await;
        }
        loop {
            let mut tx = self.store.begin().await?;
            let pending = tx.pending_review_items(id, DEFAULT_BATCH).await?;
            if pending.is_empty() {
                let mut closed = campaign.clone();
                closed.state = CampaignState::Closed;
                closed.closed_at = Some(now);
                tx.update_campaign(&closed).await?;
                tx.delete_job(&id.to_string()).await?;
                tx.append(
                    now,
                    &SCHEDULER_ACTOR,
                    EventKind::ReviewCampaignClosed,
                    &json!({ "campaign": closed }),
                )
                .await?;
                tx.commit().await?;
                self.evidence_committed();
                tracing::info!(campaign = %id, name = %campaign.name, "access review closed");
                return Ok(());
            }
            let why = format!(
                "nobody decided by the deadline ({}); the campaign's default applies",
                campaign.due_at
            );
            let mut revoking = Vec::new();
            for mut item in pending {
                item.state = item
                    .state
                    .transition(campaign.default_decision)
                    .map_err(|e| EngineError::new(ErrorCode::IllegalTransition, e.to_string()))?;
                item.by_default = true;
                item.decided_at = Some(now);
                item.comment = Some(why.clone());
                revoking.extend(
                    self.record_decision(&mut tx, &campaign, &item, &SCHEDULER_ACTOR, now, &why)
                        .await?,
                );
            }
            tx.commit().await?;
            self.evidence_committed();
            // Grants are taken by their revocation jobs (due now); exceptions' access here.
            self.hint_due(now);
            for step in revoking {
                if let Revoking::Finding(finding) = step {
                    self.carry_out(Some(Revoking::Finding(finding))).await;
                }
            }
        }
    }

    /// One `review.reminder` per reviewer with items waiting (and one for items any
    /// permitted approver may decide), then the next step is scheduled.
    async fn remind(&self, campaign: &Campaign, now: Timestamp) -> Result<(), EngineError> {
        // Without reminders this is only an early wake-up (another node's clock ahead).
        let (waiting, pending) = if campaign.remind_every_seconds.is_some() {
            (
                self.store.pending_by_reviewer(campaign.id).await?,
                self.store.campaign_counts(campaign.id).await?.pending,
            )
        } else {
            (Vec::new(), 0)
        };
        let mut tx = self.store.begin().await?;
        for (reviewer, pending) in &waiting {
            tx.append(
                now,
                &SCHEDULER_ACTOR,
                EventKind::ReviewReminder,
                &json!({
                    "campaign_id": campaign.id,
                    "name": campaign.name,
                    "reviewer": reviewer,
                    "pending": pending,
                    "due_at": campaign.due_at,
                }),
            )
            .await?;
        }
        if campaign.assignment == Assignment::Approvers && pending > 0 {
            tx.append(
                now,
                &SCHEDULER_ACTOR,
                EventKind::ReviewReminder,
                &json!({
                    "campaign_id": campaign.id,
                    "name": campaign.name,
                    "reviewer": null,
                    "pending": pending,
                    "due_at": campaign.due_at,
                }),
            )
            .await?;
        }
        let next = Self::next_step(campaign, now);
        tx.set_job(&campaign.id.to_string(), JobKind::ReviewCampaignDue, next)
            .await?;
        tx.commit().await?;
        self.evidence_committed();
        self.hint_due(next);
        Ok(())
    }
}

/// What a revoke decision still has to do on the target after it commits.
enum Revoking {
    Grant(GrantId),
    Finding(Box<Finding>),
}

pub(crate) fn decision_word(decision: ReviewDecision) -> &'static str {
    match decision {
        ReviewDecision::Keep => "keep",
        ReviewDecision::Revoke => "revoke",
    }
}
