//! One contract every connector passes (docs/connectors.md, "Writing a connector"):
//! each target below runs the same suite against the real system.

mod command;
mod ldap;
mod mariadb;
mod postgres;
mod proxy;
mod scim;
mod suite;

#[tokio::test]
async fn postgres_passes_the_contract() {
    suite::run(&postgres::Postgres::start().await).await;
}

#[tokio::test]
async fn mariadb_passes_the_contract() {
    suite::run(&mariadb::Mariadb::start().await).await;
}

#[tokio::test]
async fn command_passes_the_contract() {
    suite::run(&command::Command::start()).await;
}

#[tokio::test]
async fn ldap_passes_the_contract() {
    suite::run(&ldap::Ldap::start().await).await;
}

#[tokio::test]
async fn scim_passes_the_contract() {
    suite::run(&scim::Scim::start().await).await;
}
