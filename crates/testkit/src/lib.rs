//! writ's test kit, shared by every crate's tests: throwaway PostgreSQL databases and
//! roles on the local server (127.0.0.1:5432, trust authentication), a throwaway
//! OpenLDAP `slapd` and SCIM server, test certificates, and
//! [`on_both_backends!`], which runs one engine or store test on SQLite and on
//! PostgreSQL. The end-to-end harness that starts a real `writ` lives beside the
//! binary's tests (`crates/writ/tests/support`), which alone can name the binary.

pub mod certs;
pub mod pg;
pub mod scim_server;
pub mod slapd;

/// Where a test keeps writ's own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` as two tests, `NAME::on_sqlite` and
/// `NAME::on_postgres`, so no test is written twice. The test attribute defaults to
/// `#[tokio::test]`; give another first, e.g.
/// `on_both_backends!(#[tokio::test(flavor = "multi_thread")] name)`.
#[macro_export]
macro_rules! on_both_backends {
    (#[$attr:meta] $($test:ident),+ $(,)?) => {$(
        mod $test {
            #[$attr]
            async fn on_sqlite() {
                super::$test($crate::Backend::Sqlite).await;
            }

            #[$attr]
            async fn on_postgres() {
                super::$test($crate::Backend::Postgres).await;
            }
        }
    )+};
    ($($test:ident),+ $(,)?) => {
        $crate::on_both_backends!(#[tokio::test] $($test),+);
    };
}
