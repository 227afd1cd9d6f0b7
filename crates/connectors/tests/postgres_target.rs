//! The postgres connector against the real PostgreSQL at 127.0.0.1:5432.

use sqlx::{Connection, PgPool};
use writ_connectors::{Access, Connector, ConnectorError, PostgresConnector, quote_identifier};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

async fn create_role(admin: &PgPool, name: &str) {
    let sql = format!("CREATE ROLE {}", quote_identifier(name).expect("quotable"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(admin)
        .await
        .expect("create role");
}

async fn drop_role(admin: &PgPool, name: &str) {
    let sql = format!(
        "DROP ROLE IF EXISTS {}",
        quote_identifier(name).expect("quotable")
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(admin)
        .await
        .expect("drop role");
}

async fn role_exists(admin: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(name)
        .fetch_one(admin)
        .await
        .expect("query")
}

#[tokio::test]
async fn grants_revokes_and_reads_back_hostile_names_safely() {
    let admin = PgPool::connect(ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    let suffix = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let bystander = format!("y_{suffix}");
    let role = format!("x\"; DROP ROLE {bystander}; --{suffix}");
    let account = format!("acc' OR '1'='1\"; --{suffix}");
    for name in [&bystander, &role, &account] {
        create_role(&admin, name).await;
    }

    let connector = PostgresConnector::new(ADMIN_URL).expect("connector");
    let access = Access {
        role: &role,
        account: &account,
    };
    assert!(!connector.holds(access).await.expect("check"));
    connector.grant(access).await.expect("grant");
    connector
        .grant(access)
        .await
        .expect("granting twice is harmless");
    assert!(connector.holds(access).await.expect("check"));
    connector.revoke(access).await.expect("revoke");
    connector
        .revoke(access)
        .await
        .expect("revoking twice is harmless");
    assert!(!connector.holds(access).await.expect("check"));
    assert!(
        role_exists(&admin, &bystander).await,
        "the hostile role name must not have run DROP ROLE"
    );

    let missing = Access {
        role: &role,
        account: "no_such_account_for_writ",
    };
    assert!(
        matches!(connector.grant(missing).await, Err(ConnectorError::Failed(message)) if message.contains("does not exist"))
    );
    connector
        .revoke(missing)
        .await
        .expect("revoking from a missing account leaves nothing held");

    for name in [&role, &account, &bystander] {
        drop_role(&admin, name).await;
    }
}

#[tokio::test]
async fn an_unreachable_target_is_a_failure_not_a_hang() {
    let connector =
        PostgresConnector::new("postgres://postgres@127.0.0.1:1/test").expect("connector");
    let result = connector
        .grant(Access {
            role: "r",
            account: "a",
        })
        .await;
    assert!(result.is_err(), "{result:?}");
}

/// Deep revocation: a session that took the role on with `SET ROLE` would keep it after
/// `REVOKE`; revoking ends the account's open sessions and waits until they are gone.
#[tokio::test]
async fn revoking_ends_the_accounts_open_sessions() {
    let admin = PgPool::connect(ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    let suffix = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let role = format!("deep_role_{suffix}");
    let account = format!("deep_account_{suffix}");
    create_role(&admin, &role).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE \"{account}\" LOGIN"
    )))
    .execute(&admin)
    .await
    .expect("login role");
    let connector = PostgresConnector::new(ADMIN_URL).expect("connector");
    let access = Access {
        role: &role,
        account: &account,
    };
    connector.grant(access).await.expect("grant");

    // The subject connects and takes the role on for the session.
    let mut session =
        sqlx::PgConnection::connect(&format!("postgres://{account}@127.0.0.1:5432/test"))
            .await
            .expect("the account can log in");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET ROLE \"{role}\"")))
        .execute(&mut session)
        .await
        .expect("set role");
    let acting_as: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut session)
        .await
        .expect("query");
    assert_eq!(acting_as, role);

    connector.revoke(access).await.expect("revoke");
    assert!(!connector.holds(access).await.expect("check"));
    let after = sqlx::query_scalar::<_, String>("SELECT current_user::text")
        .fetch_one(&mut session)
        .await;
    assert!(
        after.is_err(),
        "the session that held the role was ended: {after:?}"
    );
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE usename = $1")
        .bind(&account)
        .fetch_one(&admin)
        .await
        .expect("query");
    assert_eq!(open, 0);

    // Revoking again (nothing held, nothing open) is harmless.
    connector.revoke(access).await.expect("revoke twice");
    drop_role(&admin, &account).await;
    drop_role(&admin, &role).await;
}
