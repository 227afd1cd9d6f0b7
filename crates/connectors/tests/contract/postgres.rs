//! PostgreSQL at 127.0.0.1:5432, reached through the suite's proxy.

use async_trait::async_trait;
use sqlx::PgPool;
use writ_connectors::{Connector, PostgresConnector};

use crate::proxy::{Proxy, Reach};
use crate::suite::Target;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct Postgres {
    admin: PgPool,
    proxy: Proxy,
    connector: PostgresConnector,
}

impl Postgres {
    pub async fn start() -> Self {
        let admin = PgPool::connect(ADMIN_URL)
            .await
            .expect("PostgreSQL at 127.0.0.1:5432");
        let proxy = Proxy::start("127.0.0.1:5432".parse().expect("address")).await;
        let url = format!("postgres://postgres@127.0.0.1:{}/test", proxy.port());
        let connector = PostgresConnector::new(&url).expect("connector");
        Self {
            admin,
            proxy,
            connector,
        }
    }

    /// The administrator's own quoting, independent of the connector's.
    fn quote(name: &str) -> Option<String> {
        (!name.contains('\0')).then(|| format!("\"{}\"", name.replace('"', "\"\"")))
    }

    async fn run(&self, sql: String) -> bool {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.admin)
            .await
            .is_ok()
    }
}

#[async_trait]
impl Target for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn connector(&self) -> &dyn Connector {
        &self.connector
    }

    async fn create_role(&self, name: &str) -> bool {
        match Self::quote(name) {
            Some(role) => self.run(format!("CREATE ROLE {role} NOLOGIN")).await,
            None => false,
        }
    }

    async fn create_account(&self, name: &str) -> bool {
        match Self::quote(name) {
            Some(role) => self.run(format!("CREATE ROLE {role} LOGIN")).await,
            None => false,
        }
    }

    async fn grant_out_of_band(&self, role: &str, account: &str) {
        let (role, account) = (
            Self::quote(role).expect("quotable"),
            Self::quote(account).expect("quotable"),
        );
        assert!(self.run(format!("GRANT {role} TO {account}")).await);
    }

    async fn set_reach(&self, reach: Reach) {
        self.proxy.set(reach);
    }
}
