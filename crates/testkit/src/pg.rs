//! The local PostgreSQL: a database or roles of a test's own, gone at its end.

/// The server every test uses, as its administrator.
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A name no other test (nor an earlier run) uses: `prefix`, the process, a counter
/// and the clock's nanoseconds.
pub fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

async fn admin() -> sqlx::PgPool {
    sqlx::PgPool::connect(ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432")
}

async fn run(pool: &sqlx::PgPool, statement: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(pool)
        .await
        .map(|_| ())
}

/// A PostgreSQL database of a test's own; `drop_now` removes it.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let name = unique("writ_test");
        let admin = admin().await;
        run(&admin, format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create database");
        admin.close().await;
        Self {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }

    pub async fn drop_now(&self) {
        let admin = admin().await;
        let _ = run(
            &admin,
            format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        )
        .await;
        admin.close().await;
    }
}

/// PostgreSQL roles for one test (entitlement roles and login accounts), named with a
/// prefix of its own; `cleanup` drops them.
pub struct TestRoles {
    pub prefix: String,
    admin: sqlx::PgPool,
    created: Vec<String>,
}

impl TestRoles {
    pub async fn new() -> Self {
        Self {
            prefix: unique("we2e"),
            admin: admin().await,
            created: Vec::new(),
        }
    }

    pub async fn create(&mut self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.prefix);
        run(&self.admin, format!("CREATE ROLE \"{name}\""))
            .await
            .expect("create role");
        self.created.push(name.clone());
        name
    }

    /// `GRANT` or `REVOKE` behind writ's back, as an administrator would.
    pub async fn set_by_hand(&self, role: &str, account: &str, held: bool) {
        let statement = if held {
            format!("GRANT \"{role}\" TO \"{account}\"")
        } else {
            format!("REVOKE \"{role}\" FROM \"{account}\"")
        };
        run(&self.admin, statement)
            .await
            .expect("grant or revoke by hand");
    }

    pub async fn holds(&self, role: &str, account: &str) -> bool {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles a ON a.oid = m.member WHERE r.rolname = $1 AND a.rolname = $2)",
        )
        .bind(role)
        .bind(account)
        .fetch_one(&self.admin)
        .await
        .expect("query pg_auth_members")
    }

    pub async fn cleanup(&self) {
        for name in self.created.iter().rev() {
            let _ = run(&self.admin, format!("DROP ROLE IF EXISTS \"{name}\"")).await;
        }
    }
}
