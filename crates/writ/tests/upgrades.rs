//! Upgrades: a database written by the previous release (schema version 9; see
//! `fixtures/previous-release/make.sh`), on SQLite and on PostgreSQL, opened by this
//! binary. It verifies as it was written, migrates, and carries on the old release's
//! grants: the lease left active is revoked and verified, the approved one too, and new
//! requests work beside them. And on PostgreSQL, which several nodes may share, the
//! schema changes only when an operator says so.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{TestDatabase, Writ, stderr, stdout};

/// The schema version the previous release wrote.
const PREVIOUS_SCHEMA: i64 = 9;

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/previous-release"
    ))
}

/// A copy of the previous release's folder (config, policies, connector, state) to
/// run in, with `storage` as its database and its own port.
fn previous_release(storage: Option<&str>) -> Writ {
    let text = std::fs::read_to_string(fixture().join("writ.toml")).expect("fixture config");
    // The harness writes `[server]`; the rest of the file is the old release's.
    let body = text
        .split_once("[storage]")
        .map(|(_, rest)| format!("[storage]{rest}"))
        .expect("a [storage] table");
    let body = match storage {
        Some(url) => body.replace("sqlite://state/writ.db", url),
        None => body,
    };
    let policy = std::fs::read_to_string(fixture().join("policies/request.cedar")).expect("policy");
    let writ = Writ::new(&body, &[("request.cedar", &policy)]);
    std::fs::create_dir_all(writ.path("state")).expect("state");
    // The target: the quickstart's connector script, with the memberships it left.
    std::fs::copy(
        fixture().join("../../../../../examples/quickstart/memberships.sh"),
        writ.path("memberships.sh"),
    )
    .expect("connector script");
    std::fs::copy(
        fixture().join("state/memberships.txt"),
        writ.path("state/memberships.txt"),
    )
    .expect("memberships");
    if storage.is_none() {
        std::fs::copy(fixture().join("state/writ.db"), writ.path("state/writ.db")).expect("db");
    }
    writ
}

fn memberships(writ: &Writ) -> String {
    std::fs::read_to_string(writ.path("state/memberships.txt")).unwrap_or_default()
}

/// The previous release's database, carried on by this one.
async fn carried_on(mut writ: Writ) {
    let migrated = writ.command_as_is(&["migrate"]).output().expect("migrate");
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let said = stdout(&migrated);
    assert!(
        said.contains(&format!("from version {PREVIOUS_SCHEMA} to"))
            || said.contains(&format!("already at version {PREVIOUS_SCHEMA}")),
        "{said}"
    );
    let verified = writ.run(&["audit", "verify"]);
    assert!(
        verified.status.success(),
        "the old ledger verifies: {}",
        stderr(&verified)
    );

    // Both old leases are long expired: revoked and verified gone from the target.
    writ.start().await;
    let admin = writ.admin_token();
    let deadline = Instant::now() + Duration::from_secs(30);
    let grants = loop {
        let (status, list) = writ.get("/v1/grants?limit=100", &admin).await;
        assert_eq!(status, 200, "{list}");
        let grants = list["grants"].as_array().cloned().unwrap_or_default();
        if grants.iter().all(|g| g["state"] == "revoked") || Instant::now() > deadline {
            break grants;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        grants.len(),
        3,
        "the old release's three grants: {grants:?}"
    );
    assert!(
        grants
            .iter()
            .all(|g| g["state"] == "revoked" && g["verified_at"].is_string()),
        "{grants:?}\n{}",
        writ.log()
    );
    assert_eq!(memberships(&writ).trim(), "", "nothing left on the target");

    // New work beside the old.
    let alice = writ.token("alice");
    let (status, request) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "files/reports_read", "duration_seconds": 600, "justification": "after the upgrade"}),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["state"], "approved", "{request}");
    let grant = request["grant_id"].as_str().expect("grant").to_string();
    writ.wait_for_grant(&grant, &alice, Duration::from_secs(10), |g| {
        g["state"] == "active"
    })
    .await;
    assert!(memberships(&writ).contains("reports_read alice"));
    writ.stop();
    let verified = writ.run(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", stderr(&verified));
}

#[tokio::test]
async fn a_sqlite_database_of_the_previous_release_is_carried_on() {
    let writ = previous_release(None);
    let schema = rusqlite::Connection::open(writ.path("state/writ.db"))
        .expect("open")
        .query_row("SELECT MAX(version) FROM writ_schema", [], |row| {
            row.get::<_, i64>(0)
        })
        .expect("version");
    assert_eq!(
        schema, PREVIOUS_SCHEMA,
        "the fixture is the previous release's"
    );
    carried_on(writ).await;
}

/// Restores the previous release's PostgreSQL database (a `pg_dump`) into `database`.
async fn restore_previous_release(database: &TestDatabase) {
    let dump = std::fs::read_to_string(fixture().join("postgres.sql")).expect("dump");
    let pool = sqlx::PgPool::connect(&database.url).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(dump))
        .execute(&pool)
        .await
        .expect("restore the dump");
    pool.close().await;
}

#[tokio::test]
async fn a_postgres_database_of_the_previous_release_is_carried_on() {
    let database = TestDatabase::create().await;
    restore_previous_release(&database).await;
    let writ = previous_release(Some(&database.url));
    carried_on(writ).await;
    database.drop_now().await;
}

/// On PostgreSQL only `writ migrate` or `writ serve --migrate` change the schema:
/// every other command, and a plain `serve`, refuses an old one, names the versions
/// and the command, and changes nothing.
#[tokio::test]
async fn a_postgres_schema_changes_only_when_an_operator_says_so() {
    let database = TestDatabase::create().await;
    let writ = Writ::new(&format!("[storage]\nurl = \"{}\"\n", database.url), &[]);
    let refused = writ
        .command_as_is(&["token", "issue", "test-admin"])
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let message = stderr(&refused);
    assert!(message.contains("schema is version 0"), "{message}");
    assert!(message.contains("writ migrate"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    let pool = sqlx::PgPool::connect(&database.url).await.expect("connect");
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(tables, 0, "nothing was created");

    // `serve` without --migrate exits, saying why.
    let serve = writ
        .command_as_is(&["serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("serve");
    assert!(!serve.status.success());
    assert!(
        stderr(&serve).contains("writ migrate"),
        "{}",
        stderr(&serve)
    );

    // `writ migrate` upgrades it, and says so; again, it has nothing to do.
    let migrated = writ.command_as_is(&["migrate"]).output().expect("migrate");
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert_eq!(
        stdout(&migrated).trim(),
        format!(
            "schema upgraded from version 0 to {}",
            writ_store::SCHEMA_VERSION
        )
    );
    let again = writ.command_as_is(&["migrate"]).output().expect("migrate");
    assert_eq!(
        stdout(&again).trim(),
        format!(
            "schema already at version {}; nothing to do",
            writ_store::SCHEMA_VERSION
        )
    );
    pool.close().await;
    database.drop_now().await;
}

/// `serve --migrate` upgrades a new PostgreSQL database and serves.
#[tokio::test]
async fn serve_migrate_upgrades_and_serves() {
    let database = TestDatabase::create().await;
    let mut writ = Writ::new(&format!("[storage]\nurl = \"{}\"\n", database.url), &[]);
    // Not through the harness's own `writ migrate`: `serve --migrate` does it.
    writ.spawn_with_args(&["serve", "--migrate"]);
    writ.wait_until_ready().await;
    assert!(
        writ.log().contains("database schema upgraded"),
        "{}",
        writ.log()
    );
    let token = writ.admin_token();
    let (status, _) = writ.get("/v1/grants", &token).await;
    assert_eq!(status, 200);
    writ.stop();
    database.drop_now().await;
}
