//! The stored Merkle tree gives the same roots and proofs as the tree computed from
//! every event, at every size, as the ledger grows — and a stored subtree changed in
//! the database is found. On SQLite and on the real PostgreSQL.

use writ_domain::Timestamp;
use writ_domain::ledger::merkle::{self, Hash};
use writ_domain::ledger::{Actor, EventKind, SystemActor};
use writ_store::{Store, TREE_STORED_LEVEL};
use writ_testkit::pg::TestDatabase;

/// Appends `count` events, in transactions of up to 400.
async fn append(store: &Store, count: u64) {
    let actor = Actor::System(SystemActor::Cli);
    let mut left = count;
    while left > 0 {
        let mut tx = store.begin().await.expect("begin");
        for _ in 0..left.min(400) {
            let (seq, _) = tx.head();
            let data = serde_json::json!({"n": seq});
            tx.append(
                Timestamp::from_unix_micros(1_795_000_000_000_000 + seq),
                &actor,
                EventKind::PolicyReloaded,
                &data,
            )
            .await
            .expect("append");
        }
        tx.commit().await.expect("commit");
        left = left.saturating_sub(400);
    }
}

async fn check(store: &Store) {
    let block = 1u64 << TREE_STORED_LEVEL;
    append(store, 3 * block + 17).await;
    let size = 3 * block + 17;
    let leaves: Vec<Hash> = store.leaf_hashes(0..size).await.expect("leaves");
    // Sizes around block edges, each asked of a tree extended only as far as it.
    for n in [1, 2, 255, 256, 257, 511, 512, 700, 768, size] {
        assert_eq!(
            store.tree_root(n).await.expect("root"),
            merkle::root_of(&leaves[..n as usize]),
            "root of {n}"
        );
    }
    assert_eq!(store.tree_stored_size().await.expect("stored"), 3 * block);
    // Grows: a fourth block, then every proof against the bigger tree.
    append(store, block).await;
    let size = 4 * block + 17;
    let leaves: Vec<Hash> = store.leaf_hashes(0..size).await.expect("leaves");
    let root = store.tree_root(size).await.expect("root");
    assert_eq!(root, merkle::root_of(&leaves));
    assert_eq!(store.tree_stored_size().await.expect("stored"), 4 * block);
    for seq in [1, 2, 200, 256, 257, 600, 1000, size - 1, size] {
        let proof = store.inclusion_proof(seq, size).await.expect("proof");
        merkle::verify_inclusion(seq - 1, size, &leaves[seq as usize - 1], &proof, &root)
            .unwrap_or_else(|e| panic!("event {seq}: {e}"));
    }
    for old in [1, 3, 256, 300, 512, 513, 1024, size - 1] {
        let proof = store.consistency_proof(old, size).await.expect("proof");
        let old_root = merkle::root_of(&leaves[..old as usize]);
        merkle::verify_consistency(old, size, &old_root, &root, &proof)
            .unwrap_or_else(|e| panic!("{old} to {size}: {e}"));
    }
    let sizes = [1, 256, 700, 1024, size];
    let roots = store.tree_roots(&sizes).await.expect("roots");
    for (n, root) in sizes.iter().zip(roots) {
        assert_eq!(root, merkle::root_of(&leaves[..*n as usize]), "root of {n}");
    }
    assert_eq!(
        store.extend_tree(size).await.expect("again"),
        0,
        "nothing new"
    );
    assert_eq!(
        store.check_stored_tree(size).await.expect("check"),
        4 + 2 + 1
    );
    assert!(store.inclusion_proof(size + 1, size).await.is_err());
}

#[tokio::test]
async fn the_stored_tree_is_the_tree_of_the_events_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("w.db");
    let store = Store::open(&format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .expect("store");
    check(&store).await;
    store.close().await;
    // Someone with the database changes a stored subtree: the check names it.
    let db = rusqlite::Connection::open(&file).expect("open");
    db.execute(
        "UPDATE ledger_tree SET hash = ?1 WHERE level = 9 AND idx = 1",
        [hex::encode([7u8; 32])],
    )
    .expect("tamper");
    drop(db);
    let store = Store::open(&format!("sqlite://{}", file.display()))
        .await
        .expect("store");
    let error = store
        .check_stored_tree(4 * 256 + 17)
        .await
        .expect_err("tampered");
    assert!(error.to_string().contains("level 9 index 1"), "{error}");
    store.close().await;
}

#[tokio::test]
async fn the_stored_tree_is_the_tree_of_the_events_on_postgresql() {
    let database = TestDatabase::create().await;
    let store = Store::open(&database.url).await.expect("store");
    check(&store).await;
    store.close().await;
    database.drop_now().await;
}
