//! Where the engine refuses rather than assumes: approvals that arrive after a
//! request's deadline, even before the scheduler has recorded the expiry.

mod harness;

use harness::{Harness, Storage, caller};
use writ_domain::lifecycle::RequestState;
use writ_engine::ErrorCode;
use writ_engine::NewRequest;

#[tokio::test]
async fn an_approval_after_the_pending_deadline_is_refused_before_the_scheduler_runs() {
    let h = Harness::new(Storage::Sqlite).await;
    let request = h
        .engine
        .create_request(
            &caller("alice"),
            NewRequest {
                entitlement: "t/high".into(),
                justification: "test".into(),
                ..NewRequest::default()
            },
        )
        .await
        .expect("request");
    assert_eq!(request.state, RequestState::PendingApproval);
    // pending_ttl is 1h; the clock moves past it, the scheduler does not run.
    h.clock.advance_seconds(3600);
    let refused = h
        .engine
        .approve(&caller("dave"), request.id, String::new())
        .await
        .expect_err("too late");
    assert_eq!(refused.code, ErrorCode::Expired, "{refused}");
    assert!(
        h.engine
            .request(request.id)
            .await
            .expect("request")
            .grant_id
            .is_none()
    );
    // The scheduler then records the expiry as usual.
    h.advance(1).await;
    assert_eq!(
        h.engine.request(request.id).await.expect("request").state,
        RequestState::Expired
    );
    h.finish().await;
}
