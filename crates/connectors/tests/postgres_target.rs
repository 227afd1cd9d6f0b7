//! The postgres connector against the real PostgreSQL at 127.0.0.1:5432.

use sqlx::{Connection, PgPool};
use writ_connectors::{
    Access, CheckPlan, Connector, ConnectorError, Credential, PostgresConnector, quote_identifier,
    scram_sha256_verifier,
};

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

/// The salt inside a stored SCRAM-SHA-256 verifier (`SCRAM-SHA-256$<iter>:<salt>$...`).
fn salt_of(verifier: &str) -> Vec<u8> {
    use base64::Engine as _;
    let salt = verifier
        .split('$')
        .nth(1)
        .and_then(|part| part.split(':').nth(1))
        .expect("a SCRAM verifier");
    base64::engine::general_purpose::STANDARD
        .decode(salt)
        .expect("base64 salt")
}

async fn stored_password(admin: &PgPool, name: &str) -> String {
    sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(name)
        .fetch_one(admin)
        .await
        .expect("pg_authid")
}

#[tokio::test]
async fn the_scram_verifier_is_the_one_postgresql_computes() {
    let admin = PgPool::connect(ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    let suffix = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let name = format!("scram_check_{suffix}");
    let password = "Xy9_-correct horse battery staple";
    // PostgreSQL hashes this one itself, with a salt of its choosing.
    let mut conn = admin.acquire().await.expect("connection");
    sqlx::raw_sql("SET password_encryption = 'scram-sha-256'")
        .execute(&mut *conn)
        .await
        .expect("set");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE \"{name}\" PASSWORD '{password}'"
    )))
    .execute(&mut *conn)
    .await
    .expect("create role");
    drop(conn);
    let stored = stored_password(&admin, &name).await;
    assert_eq!(
        scram_sha256_verifier(password, &salt_of(&stored)),
        stored,
        "same password and salt, same verifier"
    );
    assert_ne!(scram_sha256_verifier("other", &salt_of(&stored)), stored);
    drop_role(&admin, &name).await;
}

#[tokio::test]
async fn a_credential_is_created_with_its_expiry_and_dropped_with_its_sessions() {
    let admin = PgPool::connect(ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    let suffix = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let role = format!("cred_role_{suffix}");
    let login = format!("writ_cred_{suffix}");
    create_role(&admin, &role).await;
    let connector = PostgresConnector::new(ADMIN_URL).expect("connector");
    let valid_until = writ_domain::Timestamp::from_unix_micros(4_102_444_800_000_000); // 2100-01-01
    let credential = Credential {
        role: &role,
        username: &login,
        password: "first-secret",
        valid_until,
        comment: "writ grant g1 for svc-report",
    };
    assert!(!connector.credential_exists(&login).await.expect("check"));
    connector.issue_credential(credential).await.expect("issue");
    assert!(connector.credential_exists(&login).await.expect("check"));
    let access = Access {
        role: &role,
        account: &login,
    };
    assert!(connector.holds(access).await.expect("member of the role"));
    let (can_login, until, comment): (bool, String, Option<String>) = sqlx::query_as(
        "SELECT rolcanlogin, to_char(rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD'), shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
    )
    .bind(&login)
    .fetch_one(&admin)
    .await
    .expect("pg_roles");
    assert!(can_login);
    assert_eq!(until, "2100-01-01");
    assert_eq!(comment.as_deref(), Some("writ grant g1 for svc-report"));
    let stored = stored_password(&admin, &login).await;
    assert!(
        stored.starts_with("SCRAM-SHA-256$"),
        "only a verifier is stored"
    );
    assert_eq!(
        scram_sha256_verifier("first-secret", &salt_of(&stored)),
        stored
    );

    // Issuing again (a retry after an unknown outcome) sets the new password.
    connector
        .issue_credential(Credential {
            password: "second-secret",
            ..credential
        })
        .await
        .expect("issue again");
    let stored = stored_password(&admin, &login).await;
    assert_eq!(
        scram_sha256_verifier("second-secret", &salt_of(&stored)),
        stored
    );

    // The login is used: a session, and a table it owns.
    let mut session =
        sqlx::PgConnection::connect(&format!("postgres://{login}@127.0.0.1:5432/test"))
            .await
            .expect("the credential can log in");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET ROLE \"{role}\"; RESET ROLE; CREATE TEMP TABLE scratch (x int)"
    )))
    .execute(&mut session)
    .await
    .expect("use the login");

    connector.drop_credential(&login).await.expect("drop");
    assert!(!connector.credential_exists(&login).await.expect("check"));
    assert!(
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&mut session)
            .await
            .is_err(),
        "the credential's session was ended"
    );
    connector
        .drop_credential(&login)
        .await
        .expect("dropping twice is harmless");
    drop_role(&admin, &role).await;
}

/// docs/connectors.md tells users to reach targets over TLS with `sslmode`: a target
/// URL that requires TLS connects (the local server has TLS on), and the connection
/// really is encrypted.
#[tokio::test]
async fn a_target_reached_with_sslmode_require_is_encrypted() {
    let url = format!("{ADMIN_URL}?sslmode=require");
    let connector = PostgresConnector::new(&url).expect("connector");
    let items = connector.check(&CheckPlan::default()).await;
    assert!(
        items
            .iter()
            .any(|item| item.ok && item.subject == "connection"),
        "{items:?}"
    );
    let mut connection = sqlx::PgConnection::connect(&url)
        .await
        .expect("TLS connection");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut connection)
            .await
            .expect("pg_stat_ssl");
    assert!(encrypted);
}

/// What a credential's login created goes to a powerless orphan owner, never to writ's
/// own (superuser or CREATEROLE) role: a SECURITY DEFINER function the login wrote
/// cannot become a way to run as writ.
#[tokio::test]
async fn a_dropped_credentials_objects_go_to_a_powerless_owner() {
    let admin = PgPool::connect(ADMIN_URL).await.expect("PostgreSQL");
    let suffix = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let role = format!("orph_role_{suffix}");
    let login = format!("writ_orph_{suffix}");
    let orphan_owner = format!("orphaned_{suffix}");
    let bystander = format!("bystander_{suffix}");
    create_role(&admin, &role).await;
    // The role the credential holds may create things in a schema of its own.
    let schema = format!("orph_schema_{suffix}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {schema}; GRANT USAGE, CREATE ON SCHEMA {schema} TO \"{role}\"; GRANT USAGE ON SCHEMA {schema} TO PUBLIC"
    )))
    .execute(&admin)
    .await
    .expect("schema");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE \"{bystander}\" LOGIN"
    )))
    .execute(&admin)
    .await
    .expect("bystander");
    let connector = PostgresConnector::new(ADMIN_URL)
        .expect("connector")
        .with_orphan_owner(&orphan_owner);
    connector
        .issue_credential(Credential {
            role: &role,
            username: &login,
            password: "secret",
            valid_until: writ_domain::Timestamp::from_unix_micros(4_102_444_800_000_000),
            comment: "test",
        })
        .await
        .expect("issue");
    let function = format!("whoami_{suffix}");
    let mut session =
        sqlx::PgConnection::connect(&format!("postgres://{login}@127.0.0.1:5432/test"))
            .await
            .expect("log in");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION {schema}.{function}() RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT current_user::text'; \
         GRANT EXECUTE ON FUNCTION {schema}.{function}() TO PUBLIC"
    )))
    .execute(&mut session)
    .await
    .expect("the login writes a SECURITY DEFINER function");
    drop(session);

    connector.drop_credential(&login).await.expect("drop");
    let owner: String =
        sqlx::query_scalar("SELECT proowner::regrole::text FROM pg_proc WHERE proname = $1")
            .bind(&function)
            .fetch_one(&admin)
            .await
            .expect("the function is kept");
    assert_eq!(owner, orphan_owner, "not writ's own role");
    let (can_login, superuser, member_of): (bool, bool, i64) = sqlx::query_as(
        "SELECT rolcanlogin, rolsuper, (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) FROM pg_roles r WHERE rolname = $1",
    )
    .bind(&orphan_owner)
    .fetch_one(&admin)
    .await
    .expect("orphan owner");
    assert_eq!((can_login, superuser, member_of), (false, false, 0));
    // Anyone may still call it; it runs as the powerless owner, not as writ.
    let mut other =
        sqlx::PgConnection::connect(&format!("postgres://{bystander}@127.0.0.1:5432/test"))
            .await
            .expect("bystander logs in");
    let ran_as: String =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {schema}.{function}()")))
            .fetch_one(&mut other)
            .await
            .expect("call");
    assert_eq!(ran_as, orphan_owner);
    drop(other);

    // An orphan owner that could do something is refused, not handed objects.
    let second = format!("writ_orph2_{suffix}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE \"{orphan_owner}\" CREATEDB"
    )))
    .execute(&admin)
    .await
    .expect("alter");
    connector
        .issue_credential(Credential {
            role: &role,
            username: &second,
            password: "secret",
            valid_until: writ_domain::Timestamp::from_unix_micros(4_102_444_800_000_000),
            comment: "test",
        })
        .await
        .expect("issue");
    let refused = connector
        .drop_credential(&second)
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("has CREATEDB"), "{refused}");
    let can_login: bool = sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
        .bind(&second)
        .fetch_one(&admin)
        .await
        .expect("the login is still there");
    assert!(!can_login, "but it can no longer log in");

    for statement in [
        format!("DROP FUNCTION {schema}.{function}()"),
        format!("DROP SCHEMA {schema}"),
        format!("DROP ROLE \"{second}\""),
        format!("DROP ROLE \"{orphan_owner}\""),
        format!("DROP ROLE \"{bystander}\""),
    ] {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&admin)
            .await;
    }
    drop_role(&admin, &role).await;
}

/// A comment with quotes and backslashes is stored as written even on a server whose
/// `standard_conforming_strings` is off (where `'a\'` would escape the quote).
#[tokio::test]
async fn literals_mean_the_same_whatever_standard_conforming_strings_says() {
    let admin = PgPool::connect(ADMIN_URL).await.expect("PostgreSQL");
    let suffix = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let role = format!("scs_role_{suffix}");
    let login = format!("writ_scs_{suffix}");
    create_role(&admin, &role).await;
    let url = format!("{ADMIN_URL}?options=-c%20standard_conforming_strings%3Doff");
    let connector = PostgresConnector::new(&url).expect("connector");
    let comment = r"grant for O'Brien \' ); DROP ROLE postgres; -- \\";
    connector
        .issue_credential(Credential {
            role: &role,
            username: &login,
            password: "secret",
            valid_until: writ_domain::Timestamp::from_unix_micros(4_102_444_800_000_000),
            comment,
        })
        .await
        .expect("issue");
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
    )
    .bind(&login)
    .fetch_one(&admin)
    .await
    .expect("comment");
    assert_eq!(stored.as_deref(), Some(comment));
    let mut check = sqlx::PgConnection::connect(&url).await.expect("connect");
    let setting: String = sqlx::query_scalar("SHOW standard_conforming_strings")
        .fetch_one(&mut check)
        .await
        .expect("show");
    assert_eq!(setting, "off", "the test really ran with it off");
    connector.drop_credential(&login).await.expect("drop");
    let _ = sqlx::raw_sql("DROP ROLE IF EXISTS writ_orphaned")
        .execute(&admin)
        .await;
    drop_role(&admin, &role).await;
}

#[tokio::test]
async fn effective_access_follows_memberships_to_privileges_and_superuser() {
    let admin = PgPool::connect(ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    let s = uuid::Uuid::now_v7().simple().to_string()[24..].to_string();
    let (role, middle, top, table) = (
        format!("eff_role_{s}"),
        format!("eff_mid_{s}"),
        format!("eff_top_{s}"),
        format!("eff_orders_{s}"),
    );
    for sql in [
        format!("CREATE ROLE {role} NOLOGIN"),
        format!("CREATE ROLE {middle} NOLOGIN"),
        format!("CREATE ROLE {top} NOLOGIN"),
        format!("CREATE TABLE public.{table} (id int)"),
        format!("GRANT SELECT ON public.{table} TO {middle}"),
        format!("GRANT {middle} TO {role}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .expect("set up");
    }
    let connector = PostgresConnector::new(ADMIN_URL).expect("connector");
    let approved = connector
        .effective_access(&role)
        .await
        .expect("read")
        .expect("postgres tells");
    assert_eq!(approved.roles.iter().collect::<Vec<_>>(), [&middle]);
    assert!(
        approved
            .privileges
            .contains(&format!("SELECT ON TABLE public.{table}")),
        "{approved:?}"
    );
    assert!(!approved.superuser && !approved.is_critical());

    // Behind writ's back: the middle role is nested in a superuser and given
    // pg_write_all_data. The entitlement's role was never touched.
    for sql in [
        format!("ALTER ROLE {top} SUPERUSER"),
        format!("GRANT {top} TO {middle}"),
        format!("GRANT pg_write_all_data TO {middle}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .expect("change");
    }
    let now = connector
        .effective_access(&role)
        .await
        .expect("read")
        .expect("postgres tells");
    assert!(now.superuser && now.powers.contains("pg_write_all_data") && now.is_critical());
    let change = approved.change_to(&now).expect("changed");
    assert_eq!(change.roles_added, std::slice::from_ref(&top));
    assert_eq!(change.superuser, Some(true));

    let missing = connector
        .effective_access("no_such_role_for_writ")
        .await
        .expect_err("no such role");
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    for sql in [
        format!("DROP TABLE public.{table}"),
        format!("DROP ROLE {role}"),
        format!("DROP ROLE {middle}"),
        format!("DROP ROLE {top}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .expect("clean up");
    }
}
