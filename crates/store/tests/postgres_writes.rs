//! Buffered writes on the real PostgreSQL: several changes of one row in one
//! transaction all take effect (PostgreSQL's data-modifying CTEs, which carry buffered
//! writes in one round trip, would keep only one of them).

use writ_domain::Timestamp;
use writ_store::Store;

use writ_testkit::pg::TestDatabase;

#[tokio::test]
async fn every_change_of_one_notify_cursor_in_one_transaction_is_kept() {
    let database = TestDatabase::create().await;
    let store = Store::open(&database.url).await.expect("store");
    let now = Timestamp::from_unix_micros(1_800_000_000_000_000);
    let mut tx = store.begin().await.expect("begin");
    tx.start_cursor("pager", 0, now).await.expect("start");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    tx.cursor_failed("pager", now, "first").await.expect("fail");
    tx.cursor_failed("siem-unknown", now, "other row")
        .await
        .expect("fail");
    tx.cursor_failed("pager", now.plus_seconds(5), "second")
        .await
        .expect("fail");
    tx.commit().await.expect("commit");

    let cursors = store.notify_cursors().await.expect("cursors");
    let pager = cursors.iter().find(|c| c.sink == "pager").expect("pager");
    assert_eq!(pager.attempts, 2, "{pager:?}");
    assert_eq!(pager.last_error.as_deref(), Some("second"));
    store.close().await;
    database.drop_now().await;
}
