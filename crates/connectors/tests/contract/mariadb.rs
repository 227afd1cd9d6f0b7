//! MariaDB at 127.0.0.1:3306, reached through the suite's proxy.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::MySqlPool;
use writ_connectors::{Connector, MariadbConnector};

use crate::proxy::{Proxy, Reach};
use crate::suite::Target;

pub const ADMIN_URL: &str = "mysql://root@127.0.0.1:3306/mysql";

pub struct Mariadb {
    admin: MySqlPool,
    proxy: Proxy,
    connector: MariadbConnector,
}

impl Mariadb {
    pub async fn start() -> Self {
        let admin = MySqlPool::connect(ADMIN_URL)
            .await
            .expect("MariaDB at 127.0.0.1:3306 (root, no password)");
        let proxy = Proxy::start("127.0.0.1:3306".parse().expect("address")).await;
        let url = format!("mysql://root@127.0.0.1:{}/mysql", proxy.port());
        let connector =
            MariadbConnector::new(&url, "%", Duration::from_secs(30)).expect("connector");
        Self {
            admin,
            proxy,
            connector,
        }
    }

    /// The administrator's own quoting, independent of the connector's.
    fn quote(name: &str) -> Option<String> {
        (!name.contains('\0')).then(|| format!("`{}`", name.replace('`', "``")))
    }

    async fn run(&self, sql: String) -> bool {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.admin)
            .await
            .is_ok()
    }
}

#[async_trait]
impl Target for Mariadb {
    fn kind(&self) -> &'static str {
        "mariadb"
    }

    fn connector(&self) -> &dyn Connector {
        &self.connector
    }

    async fn create_role(&self, name: &str) -> bool {
        match Self::quote(name) {
            Some(role) => self.run(format!("CREATE ROLE {role}")).await,
            None => false,
        }
    }

    async fn create_account(&self, name: &str) -> bool {
        match Self::quote(name) {
            Some(user) => self.run(format!("CREATE USER {user}@'%'")).await,
            None => false,
        }
    }

    async fn grant_out_of_band(&self, role: &str, account: &str) {
        let (role, user) = (
            Self::quote(role).expect("quotable"),
            Self::quote(account).expect("quotable"),
        );
        assert!(self.run(format!("GRANT {role} TO {user}@'%'")).await);
    }

    async fn set_reach(&self, reach: Reach) {
        self.proxy.set(reach);
    }
}
