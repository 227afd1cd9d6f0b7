//! A lease's uses are counted up to its maximum and never past it, however many
//! transactions count at once — on SQLite and on the real PostgreSQL.

use writ_domain::{GrantId, Timestamp};
use writ_store::Store;
use writ_testkit::pg::TestDatabase;

/// Counts `attempts` uses of one lease allowed `max_uses`, each in its own transaction
/// and all at once: how many were counted.
async fn count_at_once(store: &Store, max_uses: u32, attempts: usize) -> Vec<u32> {
    let grant = GrantId::generate_at(Timestamp::from_unix_micros(1_795_000_000_000_000));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..attempts {
        let store = store.clone();
        tasks.spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            let counted = tx.count_lease_use(grant, max_uses).await.expect("count");
            tx.commit().await.expect("commit");
            counted
        });
    }
    let mut counted: Vec<u32> = tasks.join_all().await.into_iter().flatten().collect();
    counted.sort_unstable();
    counted
}

async fn check(store: &Store) {
    assert_eq!(count_at_once(store, 1, 12).await, [1]);
    assert_eq!(count_at_once(store, 3, 12).await, [1, 2, 3]);
    assert_eq!(count_at_once(store, 20, 5).await, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn uses_stop_at_the_maximum_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    let store = Store::open(&url).await.expect("store");
    check(&store).await;
    store.close().await;
}

#[tokio::test]
async fn uses_stop_at_the_maximum_on_postgresql() {
    let database = TestDatabase::create().await;
    let store = Store::open(&database.url).await.expect("store");
    check(&store).await;
    store.close().await;
    database.drop_now().await;
}
