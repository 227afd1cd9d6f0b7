use std::collections::HashMap;

use serde::Deserialize;

use super::hash::GENESIS_HASH;
use super::{Actor, EventFields, EventKind, StoredEvent};
use crate::finding::{FindingEvent, FindingState};
use crate::lifecycle::{GrantState, RequestState};
use crate::review::{Campaign, CampaignState, ItemState, ReviewItem};
use crate::{
    Activation, ActivationId, CampaignId, DirectoryGroup, DirectoryId, DirectoryUser, Finding,
    FindingId, Grant, GrantId, Request, RequestId, ReviewItemId, Timestamp,
};

/// Why the ledger does not verify, located at the first bad event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("event {seq}: expected sequence number {expected} (an event was removed or reordered)")]
    Gap { seq: i64, expected: i64 },
    #[error("event {seq}: prev_hash does not match the hash of event {}", seq - 1)]
    BrokenLink { seq: i64 },
    #[error("event {seq}: hash does not match its contents (the event was altered)")]
    BadHash { seq: i64 },
    #[error("event {seq}: its data is not JSON (the event was altered): {problem}")]
    BadData { seq: i64, problem: String },
    #[error("event {seq}: {problem}")]
    BadReplay { seq: i64, problem: String },
    #[error(
        "the ledger ends at event {last} but its head records event {head} (events were removed from the end)"
    )]
    Truncated { last: i64, head: i64 },
    #[error("{table} row {id}: {problem}")]
    StateMismatch {
        table: &'static str,
        id: String,
        problem: String,
    },
}

impl LedgerError {
    /// The sequence number of the first bad event, when one is to blame.
    pub fn seq(&self) -> Option<i64> {
        match self {
            Self::Gap { seq, .. }
            | Self::BrokenLink { seq }
            | Self::BadHash { seq }
            | Self::BadData { seq, .. }
            | Self::BadReplay { seq, .. } => Some(*seq),
            Self::Truncated { last, .. } => Some(last + 1),
            Self::StateMismatch { .. } => None,
        }
    }
}

/// Checks the chain one event at a time and replays request/grant state from it.
#[derive(Debug)]
pub struct ChainVerifier {
    last_seq: i64,
    last_hash: String,
    pub requests: HashMap<RequestId, Request>,
    pub grants: HashMap<GrantId, Grant>,
    pub findings: HashMap<FindingId, Finding>,
    /// Bearer tokens by id (`token_id`), as issued and revoked on the ledger.
    pub tokens: HashMap<String, LedgerToken>,
    /// People and groups pushed over SCIM, as the ledger last recorded them.
    pub directory_users: HashMap<DirectoryId, DirectoryUser>,
    pub directory_groups: HashMap<DirectoryId, DirectoryGroup>,
    /// Break-glass activations, with their reviews as the ledger last recorded them.
    pub activations: HashMap<ActivationId, Activation>,
    /// Access review campaigns and their items, as the ledger last recorded them.
    pub campaigns: HashMap<CampaignId, Campaign>,
    pub review_items: HashMap<ReviewItemId, ReviewItem>,
}

/// A bearer token as the ledger knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerToken {
    pub identity: String,
    pub expires_at: Timestamp,
    pub revoked: bool,
}

/// The records an event's data carries (other fields are the event's own details).
#[derive(Debug, Deserialize)]
struct Snapshots {
    request: Option<Request>,
    grant: Option<Grant>,
    finding: Option<Finding>,
    /// Token events: which token, whose, until when.
    token_id: Option<String>,
    identity: Option<String>,
    expires_at: Option<Timestamp>,
    directory_user: Option<DirectoryUser>,
    directory_group: Option<DirectoryGroup>,
    activation: Option<Activation>,
    campaign: Option<Campaign>,
    review_item: Option<ReviewItem>,
    /// A reminder's campaign.
    campaign_id: Option<CampaignId>,
}

/// An event with the work done that needs no other event: its hash recomputed and its
/// data parsed. Verification prepares pages of events on several threads and then
/// pushes them in order (`ChainVerifier::push_prepared`).
#[derive(Debug)]
pub struct PreparedEvent {
    seq: i64,
    prev_hash: String,
    hash: String,
    hash_matches: bool,
    replay: Result<(EventKind, Snapshots), String>,
}

impl PreparedEvent {
    pub fn seq(&self) -> i64 {
        self.seq
    }

    pub fn new(event: &StoredEvent) -> Self {
        Self::from_fields(event.fields())
    }

    /// From an event's fields as read, borrowed (no copy of its data is kept).
    pub fn from_fields(event: EventFields<'_>) -> Self {
        let replay = EventKind::parse(event.kind)
            .ok_or_else(|| format!("unknown event kind {:?}", event.kind))
            .and_then(|kind| {
                event.actor.parse::<Actor>().map_err(|e| e.to_string())?;
                // Straight into the records, not through a `Value`: replay parses every event.
                serde_json::from_str(event.data)
                    .map(|data| (kind, data))
                    .map_err(|e| format!("data is not a valid snapshot document: {e}"))
            });
        Self {
            seq: event.seq,
            prev_hash: event.prev_hash.to_string(),
            hash: event.hash.to_string(),
            hash_matches: event.hash_matches(),
            replay,
        }
    }
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            last_seq: 0,
            last_hash: GENESIS_HASH.to_string(),
            requests: HashMap::new(),
            grants: HashMap::new(),
            findings: HashMap::new(),
            tokens: HashMap::new(),
            directory_users: HashMap::new(),
            directory_groups: HashMap::new(),
            activations: HashMap::new(),
            campaigns: HashMap::new(),
            review_items: HashMap::new(),
        }
    }
}

impl ChainVerifier {
    pub fn events(&self) -> i64 {
        self.last_seq
    }

    pub fn head(&self) -> &str {
        &self.last_hash
    }

    /// The link check for an event whose hash was already recomputed elsewhere:
    /// `hash_matches` says whether it equals the stored `hash`.
    pub fn check_hashed(
        &mut self,
        seq: i64,
        prev_hash: &str,
        hash: &str,
        hash_matches: bool,
    ) -> Result<(), LedgerError> {
        self.check_joins(seq, prev_hash)?;
        if !hash_matches {
            return Err(LedgerError::BadHash { seq });
        }
        self.last_seq = seq;
        // Reuse the buffer: this runs once per event.
        self.last_hash.clear();
        self.last_hash.push_str(hash);
        Ok(())
    }

    /// Whether an event numbered `seq` that names `prev_hash` follows the last one.
    fn check_joins(&self, seq: i64, prev_hash: &str) -> Result<(), LedgerError> {
        let expected = self.last_seq + 1;
        if seq != expected {
            return Err(LedgerError::Gap { seq, expected });
        }
        if prev_hash != self.last_hash {
            return Err(LedgerError::BrokenLink { seq });
        }
        Ok(())
    }

    /// A verifier for a stretch of the chain that starts after event `last_seq` with
    /// hash `last_hash`, so stretches can be checked apart (in parallel) and joined.
    pub fn resume(last_seq: i64, last_hash: &str) -> Self {
        Self {
            last_seq,
            last_hash: last_hash.to_string(),
            ..Self::default()
        }
    }

    /// Joins a stretch checked by a `resume`d verifier: its first event (`first_seq`,
    /// naming `first_prev_hash`) must follow this verifier's last one. Afterwards this
    /// verifier stands at the stretch's end.
    pub fn join(
        &mut self,
        first_seq: i64,
        first_prev_hash: &str,
        stretch: &ChainVerifier,
    ) -> Result<(), LedgerError> {
        self.check_joins(first_seq, first_prev_hash)?;
        self.last_seq = stretch.last_seq;
        self.last_hash.clone_from(&stretch.last_hash);
        Ok(())
    }

    /// Verifies the link and replays the event's state change.
    pub fn push(&mut self, event: EventFields<'_>) -> Result<(), LedgerError> {
        self.push_prepared(PreparedEvent::from_fields(event))
    }

    /// As `push`, for an event whose hash and data were already worked out (perhaps on
    /// another thread): only the link and the state change depend on earlier events.
    pub fn push_prepared(&mut self, event: PreparedEvent) -> Result<(), LedgerError> {
        self.check_hashed(event.seq, &event.prev_hash, &event.hash, event.hash_matches)?;
        event
            .replay
            .and_then(|(kind, data)| self.replay(kind, data))
            .map_err(|problem| LedgerError::BadReplay {
                seq: event.seq,
                problem,
            })
    }

    fn replay(&mut self, kind: EventKind, data: Snapshots) -> Result<(), String> {
        if let Some(request) = data.request {
            self.replay_request(kind, request)?;
        }
        if let Some(grant) = data.grant {
            self.replay_grant(kind, grant)?;
        }
        if let Some(finding) = data.finding {
            self.replay_finding(kind, finding)?;
        }
        if let Some(activation) = data.activation {
            self.replay_activation(kind, activation)?;
        }
        if let Some(campaign) = data.campaign {
            self.replay_campaign(kind, campaign)?;
        }
        if let Some(item) = data.review_item {
            self.replay_review_item(kind, item)?;
        }
        if let Some(id) = data.campaign_id {
            self.replay_reminder(kind, id)?;
        }
        if let Some(token_id) = data.token_id {
            self.replay_token(kind, token_id, data.identity, data.expires_at)?;
        }
        if let Some(user) = data.directory_user {
            replay_directory(
                &mut self.directory_users,
                kind,
                user.id,
                user.meta.version,
                user,
                [
                    EventKind::DirectoryUserCreated,
                    EventKind::DirectoryUserUpdated,
                    EventKind::DirectoryUserDeleted,
                ],
            )?;
        }
        if let Some(group) = data.directory_group {
            replay_directory(
                &mut self.directory_groups,
                kind,
                group.id,
                group.meta.version,
                group,
                [
                    EventKind::DirectoryGroupCreated,
                    EventKind::DirectoryGroupUpdated,
                    EventKind::DirectoryGroupDeleted,
                ],
            )?;
        }
        Ok(())
    }

    fn replay_token(
        &mut self,
        kind: EventKind,
        token_id: String,
        identity: Option<String>,
        expires_at: Option<Timestamp>,
    ) -> Result<(), String> {
        match kind {
            EventKind::TokenIssued => {
                let (Some(identity), Some(expires_at)) = (identity, expires_at) else {
                    return Err(format!(
                        "token {token_id} is issued without identity or expiry"
                    ));
                };
                let token = LedgerToken {
                    identity,
                    expires_at,
                    revoked: false,
                };
                if self.tokens.insert(token_id.clone(), token).is_some() {
                    return Err(format!("token {token_id} is issued twice"));
                }
            }
            EventKind::TokenRevoked => match self.tokens.get_mut(&token_id) {
                Some(token) if !token.revoked => token.revoked = true,
                Some(_) => return Err(format!("token {token_id} is revoked twice")),
                None => return Err(format!("token {token_id} is revoked but was never issued")),
            },
            other => return Err(format!("{other} names a token")),
        }
        Ok(())
    }

    fn replay_activation(&mut self, kind: EventKind, activation: Activation) -> Result<(), String> {
        let previous = self.activations.get(&activation.id);
        let legal = match (previous, kind) {
            (None, EventKind::BreakGlassActivated) => {
                activation.is_new() && self.made_by(&activation).is_ok()
            }
            (
                Some(previous),
                EventKind::BreakGlassReviewOverdue | EventKind::BreakGlassReviewSignedOff,
            ) => {
                previous.may_become(&activation)
                    && (kind == EventKind::BreakGlassReviewOverdue)
                        == (activation.review_state == crate::ReviewState::Overdue)
            }
            _ => false,
        };
        if !legal {
            let problem = self.made_by(&activation).err().unwrap_or_default();
            return Err(format!(
                "{} moves break-glass activation {} from {} to {}, which its review does not allow{problem}",
                kind,
                activation.id,
                previous.map_or("nothing", |a| a.review_state.as_str()),
                activation.review_state
            ));
        }
        self.activations.insert(activation.id, activation);
        Ok(())
    }

    fn replay_campaign(&mut self, kind: EventKind, campaign: Campaign) -> Result<(), String> {
        let previous = self.campaigns.get(&campaign.id);
        let legal = match (previous, kind) {
            (None, EventKind::ReviewCampaignStarted) => campaign.is_new(),
            (Some(previous), EventKind::ReviewCampaignClosed) => {
                let opened = self
                    .review_items
                    .values()
                    .filter(|item| item.campaign == campaign.id);
                let (mut count, mut pending) = (0u64, 0u64);
                for item in opened {
                    count += 1;
                    pending += u64::from(item.state == ItemState::Pending);
                }
                if pending > 0 || count != campaign.items {
                    return Err(format!(
                        "{kind} closes campaign {} with {pending} item(s) undecided and {count} of its {} opened",
                        campaign.id, campaign.items
                    ));
                }
                previous.may_close_as(&campaign)
            }
            _ => false,
        };
        if !legal {
            return Err(format!(
                "{} moves review campaign {} from {} to {}, which a campaign does not allow",
                kind,
                campaign.id,
                previous.map_or("nothing", |c| c.state.as_str()),
                campaign.state
            ));
        }
        self.campaigns.insert(campaign.id, campaign);
        Ok(())
    }

    fn replay_review_item(&mut self, kind: EventKind, item: ReviewItem) -> Result<(), String> {
        let campaign_open = self
            .campaigns
            .get(&item.campaign)
            .is_some_and(|c| c.state == CampaignState::Open);
        let previous = self.review_items.get(&item.id);
        let legal = campaign_open
            && match (previous, kind) {
                (None, EventKind::ReviewItemOpened) => item.is_new(),
                (Some(previous), EventKind::ReviewItemDecided) => previous.may_become(&item),
                _ => false,
            };
        if !legal {
            return Err(format!(
                "{} moves review item {} from {} to {} (decided by {}), which a review does not allow{}",
                kind,
                item.id,
                previous.map_or("nothing", |i| i.state.as_str()),
                item.state,
                item.decided_by.as_ref().map_or("nobody", |r| r.as_str()),
                if campaign_open {
                    ""
                } else {
                    " (its campaign is not open)"
                }
            ));
        }
        self.review_items.insert(item.id, item);
        Ok(())
    }

    fn replay_reminder(&self, kind: EventKind, id: CampaignId) -> Result<(), String> {
        let open = self
            .campaigns
            .get(&id)
            .is_some_and(|c| c.state == CampaignState::Open);
        if kind != EventKind::ReviewReminder || !open {
            return Err(format!(
                "{kind} names review campaign {id}, which is not open"
            ));
        }
        Ok(())
    }

    /// Whether every request an activation names was recorded just before it, approved
    /// at once, for the activator, and marked as made by it.
    fn made_by(&self, activation: &Activation) -> Result<(), String> {
        for id in &activation.requests {
            let made = self.requests.get(id).is_some_and(|request| {
                request.subject == activation.activator
                    && request.break_glass.as_ref().is_some_and(|mark| {
                        mark.activation == activation.id && mark.profile == activation.profile
                    })
            });
            if !made {
                return Err(format!(
                    " (request {id} is not one it made for {})",
                    activation.activator
                ));
            }
        }
        Ok(())
    }

    fn replay_finding(&mut self, kind: EventKind, finding: Finding) -> Result<(), String> {
        let previous = self.findings.get(&finding.id).map(|f| f.state);
        let event = match kind {
            EventKind::FindingAccepted => Some(FindingEvent::Accept),
            EventKind::FindingReopened => Some(FindingEvent::Reopen),
            EventKind::FindingResolved => Some(FindingEvent::Resolve),
            _ => None,
        };
        let legal = match (previous, kind, event) {
            (None, EventKind::FindingOpened, _) => finding.state == FindingState::Open,
            (Some(from), _, Some(event)) => from.transition(event) == Ok(finding.state),
            _ => false,
        };
        if !legal {
            return Err(format!(
                "{} moves finding {} from {} to {}, which the lifecycle does not allow",
                kind,
                finding.id,
                previous.map_or("nothing", FindingState::as_str),
                finding.state
            ));
        }
        self.findings.insert(finding.id, finding);
        Ok(())
    }

    fn replay_request(&mut self, kind: EventKind, request: Request) -> Result<(), String> {
        let previous = self.requests.get(&request.id).map(|r| r.state);
        let legal = match (previous, kind) {
            // A request is born decided: denied, waiting for approvals, or approved.
            // A break-glass request is granted at once, or not made at all.
            (None, EventKind::RequestCreated) if request.break_glass.is_some() => {
                request.state == RequestState::Approved && request.approvals.is_empty()
            }
            (None, EventKind::RequestCreated) => matches!(
                request.state,
                RequestState::Denied | RequestState::PendingApproval | RequestState::Approved
            ),
            (Some(from), EventKind::RequestApprovalRecorded | EventKind::RequestApprovalVoided) => {
                from == RequestState::PendingApproval && request.state == from
            }
            (Some(from), _) => {
                use crate::lifecycle::RequestEvent as E;
                let event = match kind {
                    EventKind::RequestApproved => Some(E::Approve),
                    EventKind::RequestRejected => Some(E::Reject),
                    EventKind::RequestCancelled => Some(E::Cancel),
                    EventKind::RequestExpired => Some(E::Expire),
                    _ => None,
                };
                event.is_some_and(|event| from.transition(event) == Ok(request.state))
            }
            (None, _) => false,
        };
        if !legal {
            return Err(format!(
                "{} moves request {} from {} to {}, which the lifecycle does not allow",
                kind,
                request.id,
                previous.map_or("nothing", RequestState::as_str),
                request.state
            ));
        }
        self.requests.insert(request.id, request);
        Ok(())
    }

    fn replay_grant(&mut self, kind: EventKind, grant: Grant) -> Result<(), String> {
        use crate::lifecycle::GrantEvent as E;
        let previous = self.grants.get(&grant.id).map(|g| g.state);
        let legal = match (previous, kind) {
            (None, EventKind::GrantCreated) => grant.state == GrantState::Pending,
            (Some(from), EventKind::GrantActivated) => {
                from.transition(E::Activate) == Ok(grant.state)
            }
            (Some(from), EventKind::GrantRevokeStarted) => {
                from.transition(E::BeginRevoke) == Ok(grant.state)
            }
            (Some(from), EventKind::GrantRevokeFailed) => {
                from.transition(E::RevokeFailed) == Ok(grant.state)
            }
            (Some(from), EventKind::GrantRevoked) => {
                from.transition(E::ConfirmRevoked) == Ok(grant.state)
            }
            // Only the end moves, and only of a grant that may still hold access.
            (Some(from), EventKind::GrantRescheduled) => {
                from == grant.state && from.may_hold_access()
            }
            // A use changes nothing, and only an active lease is used.
            (Some(from), EventKind::GrantUsed) => from == grant.state && from == GrantState::Active,
            _ => false,
        };
        if !legal {
            return Err(format!(
                "{} moves grant {} from {} to {}, which the lifecycle does not allow",
                kind,
                grant.id,
                previous.map_or("nothing", GrantState::as_str),
                grant.state
            ));
        }
        self.grants.insert(grant.id, grant);
        Ok(())
    }
}

/// A directory record's event: made once, then each change one version on, and
/// deleted only while it exists.
fn replay_directory<T: DirectoryRecord>(
    records: &mut HashMap<DirectoryId, T>,
    kind: EventKind,
    id: DirectoryId,
    version: u64,
    record: T,
    [created, updated, deleted]: [EventKind; 3],
) -> Result<(), String> {
    let previous = records.get(&id).map(DirectoryRecord::version);
    let legal = match previous {
        None => kind == created && version == 1,
        Some(before) => (kind == updated || kind == deleted) && version == before + 1,
    };
    if !legal {
        return Err(format!(
            "{kind} of directory record {id} at version {version} does not follow {}",
            previous.map_or("nothing".to_string(), |v| format!("version {v}"))
        ));
    }
    if kind == deleted {
        records.remove(&id);
    } else {
        records.insert(id, record);
    }
    Ok(())
}

trait DirectoryRecord {
    fn version(&self) -> u64;
}

impl DirectoryRecord for DirectoryUser {
    fn version(&self) -> u64 {
        self.meta.version
    }
}

impl DirectoryRecord for DirectoryGroup {
    fn version(&self) -> u64 {
        self.meta.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::*;

    fn person(version: u64) -> crate::DirectoryUser {
        crate::DirectoryUser {
            id: "01a22634-7402-70a7-8637-0000000000aa".parse().expect("id"),
            user_name: "alice".parse().expect("name"),
            external_id: None,
            active: true,
            manager_id: None,
            valid_until: None,
            resource: serde_json::json!({"userName": "alice"}),
            meta: crate::DirectoryMeta {
                created: crate::Timestamp::from_unix_micros(0),
                last_modified: crate::Timestamp::from_unix_micros(0),
                version,
                client: "okta".into(),
            },
        }
    }

    /// A directory record is made once at version 1, then changed or deleted one
    /// version on; anything else does not replay.
    #[test]
    fn directory_records_replay_only_in_version_order() {
        let kinds = [
            EventKind::DirectoryUserCreated,
            EventKind::DirectoryUserUpdated,
            EventKind::DirectoryUserDeleted,
        ];
        let replay = |records: &mut HashMap<DirectoryId, DirectoryUser>, kind, version| {
            let user = person(version);
            replay_directory(records, kind, user.id, version, user, kinds)
        };
        let mut records = HashMap::new();
        assert!(replay(&mut records, EventKind::DirectoryUserUpdated, 1).is_err());
        assert!(replay(&mut records, EventKind::DirectoryUserCreated, 2).is_err());
        replay(&mut records, EventKind::DirectoryUserCreated, 1).expect("created");
        assert!(replay(&mut records, EventKind::DirectoryUserCreated, 2).is_err());
        assert!(replay(&mut records, EventKind::DirectoryUserUpdated, 3).is_err());
        replay(&mut records, EventKind::DirectoryUserUpdated, 2).expect("updated");
        replay(&mut records, EventKind::DirectoryUserDeleted, 3).expect("deleted");
        assert!(records.is_empty());
        assert!(replay(&mut records, EventKind::DirectoryUserUpdated, 4).is_err());
    }

    fn actor(text: &str) -> Actor {
        text.parse().expect("an actor")
    }
    use proptest::prelude::*;

    fn chain(payloads: &[(String, String)]) -> Vec<RawEvent> {
        let mut events: Vec<RawEvent> = Vec::new();
        for (index, (actor_name, text)) in payloads.iter().enumerate() {
            let (seq, hash) = events
                .last()
                .map_or((0, GENESIS_HASH.to_string()), |e| (e.seq, e.hash.clone()));
            let at = Timestamp::from_unix_micros(
                1_700_000_000_000_000 + i64::try_from(index).unwrap_or(0),
            );
            events.push(
                seal(
                    seq,
                    &hash,
                    at,
                    &actor(actor_name),
                    EventKind::TokenIssued,
                    &serde_json::json!({ "note": text }),
                )
                .to_raw(),
            );
        }
        events
    }

    #[test]
    fn a_digest_matches_exactly_its_own_hex() {
        let at = Timestamp::from_unix_micros(1_700_000_000_000_000);
        let digest = event_digest(1, at, "alice", "request.created", "{}", GENESIS_HASH);
        let hash = event_hash(1, at, "alice", "request.created", "{}", GENESIS_HASH);
        assert!(digest_matches(&digest, &hash));
        assert!(
            !digest_matches(&digest, &hash.to_uppercase()),
            "hashes are lowercase hex"
        );
        assert!(!digest_matches(&digest, &hash[1..]));
        let other = event_digest(1, at, "alice", "request.created", "{ }", GENESIS_HASH);
        assert!(!digest_matches(&other, &hash));
    }

    #[test]
    fn a_hashed_event_whose_actor_is_not_writs_fails_the_replay() {
        let at = Timestamp::from_unix_micros(1_700_000_000_000_000);
        for forged in ["writ:root", "", "alice bob", "a:b"] {
            let mut event = seal(
                0,
                GENESIS_HASH,
                at,
                &actor("alice"),
                EventKind::TokenIssued,
                &serde_json::json!({}),
            )
            .to_raw();
            event.actor = forged.to_string();
            // Rehashed, so only the actor can be objected to.
            event.hash = event_hash(1, at, forged, &event.kind, &event.data, GENESIS_HASH);
            let error = verify(std::slice::from_ref(&event)).expect_err(forged);
            assert!(
                matches!(&error, LedgerError::BadReplay { seq: 1, problem } if problem.contains("system actors")),
                "{forged}: {error}"
            );
            assert!(
                event.fields().to_stored().is_err(),
                "{forged} is read as an error"
            );
        }
    }

    #[test]
    fn a_sealed_event_whose_snapshot_is_not_a_record_fails_the_replay() {
        let at = Timestamp::from_unix_micros(1_700_000_000_000_000);
        for data in [
            serde_json::json!({ "request": { "id": "not a request" } }),
            serde_json::json!({ "grant": 7 }),
            serde_json::json!("not an object"),
        ] {
            // Correctly hashed, so only the replay can object.
            let event = seal(
                0,
                GENESIS_HASH,
                at,
                &actor("mallory"),
                EventKind::RequestCreated,
                &data,
            );
            let error = verify(&[event.to_raw()]).expect_err("refused");
            assert!(
                matches!(&error, LedgerError::BadReplay { seq: 1, problem } if problem.contains("snapshot")),
                "{data}: {error}"
            );
        }
        let note = seal(
            0,
            GENESIS_HASH,
            at,
            &actor("a"),
            EventKind::TokenIssued,
            &serde_json::json!({ "note": 1 }),
        );
        assert!(
            verify(&[note.to_raw()]).is_ok(),
            "an event that carries no record replays as nothing"
        );
    }

    #[test]
    fn tokens_replay_as_issued_and_revoked_once() {
        let at = Timestamp::from_unix_micros(1_700_000_000_000_000);
        let issued = serde_json::json!({ "identity": "alice", "token_id": "0123456789abcdef", "expires_at": at });
        let revoked = serde_json::json!({ "identity": "alice", "token_id": "0123456789abcdef" });
        let chain = |kinds: &[(EventKind, &serde_json::Value)]| {
            let mut events: Vec<StoredEvent> = Vec::new();
            for (kind, data) in kinds {
                let (seq, prev) = events
                    .last()
                    .map_or((0, GENESIS_HASH.to_string()), |e| (e.seq, e.hash.clone()));
                events.push(seal(seq, &prev, at, &actor("a"), *kind, data));
            }
            events
        };
        let mut verifier = ChainVerifier::default();
        for event in chain(&[
            (EventKind::TokenIssued, &issued),
            (EventKind::TokenRevoked, &revoked),
        ]) {
            verifier.push(event.fields()).expect("replays");
        }
        assert_eq!(
            verifier.tokens.get("0123456789abcdef"),
            Some(&LedgerToken {
                identity: "alice".into(),
                expires_at: at,
                revoked: true
            })
        );
        for (what, kinds) in [
            (
                "revoked twice",
                vec![
                    (EventKind::TokenIssued, &issued),
                    (EventKind::TokenRevoked, &revoked),
                    (EventKind::TokenRevoked, &revoked),
                ],
            ),
            ("never issued", vec![(EventKind::TokenRevoked, &revoked)]),
            (
                "issued twice",
                vec![
                    (EventKind::TokenIssued, &issued),
                    (EventKind::TokenIssued, &issued),
                ],
            ),
            (
                "without identity or expiry",
                vec![(EventKind::TokenIssued, &revoked)],
            ),
        ] {
            let error = verify(
                &chain(&kinds)
                    .iter()
                    .map(StoredEvent::to_raw)
                    .collect::<Vec<_>>(),
            )
            .expect_err(what);
            assert!(error.to_string().contains(what), "{what}: {error}");
        }
    }

    fn verify(events: &[RawEvent]) -> Result<(), LedgerError> {
        let mut verifier = ChainVerifier::default();
        events
            .iter()
            .try_for_each(|event| verifier.push(event.fields()))
    }

    proptest! {
        #[test]
        fn an_untouched_chain_verifies(payloads in prop::collection::vec(("[a-z]{1,8}", ".{0,20}"), 1..40)) {
            prop_assert!(verify(&chain(&payloads)).is_ok());
        }

        #[test]
        fn any_edit_is_caught_at_the_edited_event(
            payloads in prop::collection::vec(("[a-z]{1,8}", "[a-z]{0,20}"), 1..40),
            pick in any::<prop::sample::Index>(),
            field in 0..5usize,
        ) {
            let mut events = chain(&payloads);
            let victim = pick.index(events.len());
            let event = &mut events[victim];
            match field {
                0 => event.actor.push('x'),
                1 => event.kind = "grant.revoked".into(),
                2 => event.data = serde_json::json!({ "note": "forged" }).to_string(),
                3 => event.at = event.at.plus_seconds(1),
                _ => event.prev_hash = GENESIS_HASH.replace('0', "1"),
            }
            let error = verify(&events).err();
            prop_assert!(error.is_some());
            prop_assert_eq!(error.and_then(|e| e.seq()), Some(events[victim].seq));
        }

        #[test]
        fn removing_or_swapping_an_event_is_caught(
            payloads in prop::collection::vec(("[a-z]{1,8}", "[a-z]{0,20}"), 3..40),
            pick in any::<prop::sample::Index>(),
        ) {
            let mut events = chain(&payloads);
            let victim = pick.index(events.len() - 1);
            let mut removed = events.clone();
            removed.remove(victim);
            prop_assert_eq!(verify(&removed).err().and_then(|e| e.seq()), Some(events[victim + 1].seq));
            events.swap(victim, victim + 1);
            prop_assert!(verify(&events).is_err());
        }
    }
}
