//! What the SCIM connector does beyond the contract, against a real `scim2-server`:
//! 429 answers waited out by `Retry-After`, a refused token explained, and
//! reconciliation of a group larger than one page of users.

#[path = "contract/proxy.rs"]
#[allow(dead_code)]
mod proxy;
#[path = "contract/scim.rs"]
#[allow(dead_code)]
mod scim;
#[path = "contract/suite.rs"]
#[allow(dead_code)]
mod suite;

use std::time::{Duration, Instant};

use serde_json::json;
use writ_connectors::{Access, Connector, ConnectorError, ScimConnector};
use writ_testkit::scim_server;

use crate::suite::Target as _;

fn access<'a>(role: &'a str, account: &'a str) -> Access<'a> {
    Access { role, account }
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_a_refused_token_is_explained() {
    let app = scim::Scim::start().await;
    assert!(app.create_role("ops").await);
    assert!(app.create_account("alice").await);

    // Three 429s with Retry-After: 1, then the real answer: the grant goes through.
    let through_proxy = format!("http://127.0.0.1:{}/v2", app.proxy.port());
    let connector =
        ScimConnector::new(scim::settings(&through_proxy, scim_server::TOKEN)).expect("connector");
    app.proxy.throttle(3);
    let started = Instant::now();
    connector
        .grant(access("ops", "alice"))
        .await
        .expect("grant after the waits");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "Retry-After was honoured: {:?}",
        started.elapsed()
    );
    assert!(
        connector
            .holds(access("ops", "alice"))
            .await
            .expect("check")
    );

    let wrong = ScimConnector::new(scim::settings(&app.url(), "not-the-token")).expect("connector");
    let refused = wrong
        .grant(access("ops", "alice"))
        .await
        .expect_err("a wrong token");
    assert!(
        matches!(&refused, ConnectorError::Failed(message) if message.contains("refused writ's token") && message.contains("401")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn reconciliation_names_every_member_across_pages() {
    let app = scim::Scim::start().await;
    assert!(app.create_role("everyone").await);
    let mut expected = Vec::new();
    for i in 0..450 {
        let name = format!("user{i:03}");
        let id = app
            .create(
                "Users",
                json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name }),
            )
            .await
            .expect("user");
        if i % 3 == 0 {
            app.add_member("everyone", &id).await;
            expected.push(name);
        }
    }
    // A member that is not a user (a nested group) is listed by its id.
    let nested = app
        .create(
            "Groups",
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "contractors" }),
        )
        .await
        .expect("group");
    app.add_member("everyone", &nested).await;
    expected.push(nested);
    expected.sort();
    let connector =
        ScimConnector::new(scim::settings(&app.url(), scim_server::TOKEN)).expect("connector");
    let mut members = connector.members("everyone").await.expect("members");
    members.sort();
    assert_eq!(members, expected);
}
