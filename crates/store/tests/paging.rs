//! Paging through a list visits every row once, newest first, whatever the page size,
//! however many rows share a creation time, and whatever is written between pages —
//! on SQLite (a property test) and on the real PostgreSQL.

use proptest::prelude::*;
use writ_domain::lifecycle::RequestState;
use writ_domain::{Decision, DecisionOutcome, Request, RequestId, Timestamp};
use writ_store::{RequestFilter, Store};

use writ_testkit::pg::TestDatabase;

fn request(created_at_us: i64) -> Request {
    Request {
        id: RequestId::generate_at(Timestamp::from_unix_micros(created_at_us)),
        state: RequestState::Denied,
        requester: "alice".parse().expect("name"),
        subject: "alice".parse().expect("name"),
        entitlement: "t/read".parse().expect("entitlement"),
        justification: "paging".into(),
        ticket: None,
        on_behalf_of: None,
        actors: Vec::new(),
        on_behalf_of_holds: Vec::new(),
        requested_duration_seconds: 60,
        duration_seconds: 60,
        decision: Decision {
            outcome: DecisionOutcome::Deny,
            approvals_required: 0,
            policies: Vec::new(),
            reasons: Vec::new(),
            max_duration_seconds: None,
            policy_hash: "h".into(),
        },
        approvals: Vec::new(),
        grant_id: None,
        created_at: Timestamp::from_unix_micros(created_at_us),
        pending_expires_at: None,
        closed_by: None,
        close_comment: None,
        extends: None,
        holds: Vec::new(),
        break_glass: None,
        authzen: None,
        entitlement_facts: None,
        effective: None,
    }
}

async fn insert(store: &Store, requests: &[Request]) {
    let mut tx = store.begin().await.expect("begin");
    for request in requests {
        tx.insert_request(request).await.expect("insert");
    }
    tx.commit().await.expect("commit");
}

/// Every page of `page_size`, following `next`; after the first page, `interloper` is
/// written (newer than everything), which no later page may show.
async fn page_through(store: &Store, page_size: i64, interloper: &Request) -> Vec<Vec<RequestId>> {
    let mut pages = Vec::new();
    let mut filter = RequestFilter {
        limit: Some(page_size),
        ..RequestFilter::default()
    };
    loop {
        let page = store.requests(&filter).await.expect("page");
        assert!(page.items.len() <= usize::try_from(page_size).unwrap_or(0));
        pages.push(page.items.iter().map(|r| r.id).collect());
        if pages.len() == 1 {
            insert(store, std::slice::from_ref(interloper)).await;
        }
        match page.next {
            Some(next) => filter.after = Some(next),
            None => return pages,
        }
    }
}

/// Newest first: by creation time, then id.
fn expected_order(requests: &[Request]) -> Vec<RequestId> {
    let mut sorted: Vec<&Request> = requests.iter().collect();
    sorted.sort_by(|a, b| {
        (b.created_at.unix_micros(), b.id.to_string())
            .cmp(&(a.created_at.unix_micros(), a.id.to_string()))
    });
    sorted.iter().map(|r| r.id).collect()
}

async fn check(store: &Store, times: &[i64], page_size: i64) {
    let requests: Vec<Request> = times.iter().map(|t| request(*t)).collect();
    insert(store, &requests).await;
    let interloper = request(i64::MAX / 2);
    let pages = page_through(store, page_size, &interloper).await;
    let seen: Vec<RequestId> = pages.iter().flatten().copied().collect();
    // The interloper, newer than any page after the first, is in none of them.
    assert_eq!(
        seen,
        expected_order(&requests),
        "page size {page_size}, times {times:?}"
    );
    if let Some((last, full)) = pages.split_last() {
        for page in full {
            assert_eq!(
                page.len(),
                usize::try_from(page_size).unwrap_or(0),
                "only the last page is short"
            );
        }
        assert!(
            !last.is_empty() || pages.len() == 1,
            "no empty page after a full one"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_row_once_newest_first_on_sqlite(
        // Few distinct times, so that many rows share one and the id breaks the tie.
        times in proptest::collection::vec(0i64..6, 0..40),
        page_size in 1i64..12,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let dir = tempfile::tempdir().expect("dir");
            let store = Store::open(&format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display())).await.expect("store");
            check(&store, &times, page_size).await;
            store.close().await;
        });
    }
}

#[tokio::test]
async fn every_row_once_newest_first_on_postgresql() {
    let database = TestDatabase::create().await;
    let store = Store::open(&database.url).await.expect("store");
    let times: Vec<i64> = (0..57).map(|n| n % 7).collect();
    check(&store, &times, 10).await;
    store.close().await;
    database.drop_now().await;
}
