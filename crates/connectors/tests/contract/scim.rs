//! A SCIM 2.0 application: `scim2-server`, reached through the suite's proxy. The
//! administrator's side speaks plain HTTP to the server directly.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use writ_connectors::{Connector, ScimConnector, ScimSettings};
use writ_testkit::scim_server::{self, ScimServer};

use crate::proxy::{Proxy, Reach};
use crate::suite::Target;

pub struct Scim {
    server: ScimServer,
    pub proxy: Proxy,
    connector: ScimConnector,
    admin: reqwest::Client,
}

pub fn settings(url: &str, token: &str) -> ScimSettings {
    ScimSettings {
        url: url.to_string(),
        bearer_token: token.to_string(),
        ca_file: None,
        timeout: Duration::from_secs(30),
    }
}

impl Scim {
    pub async fn start() -> Self {
        let server = ScimServer::start();
        let proxy = Proxy::start(
            format!("127.0.0.1:{}", server.port())
                .parse()
                .expect("address"),
        )
        .await;
        let connector = ScimConnector::new(settings(
            &format!("http://127.0.0.1:{}/v2", proxy.port()),
            scim_server::TOKEN,
        ))
        .expect("connector");
        Self {
            server,
            proxy,
            connector,
            admin: reqwest::Client::new(),
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request
            .bearer_auth(scim_server::TOKEN)
            .header("Content-Type", "application/scim+json")
            .send()
            .await
            .expect("scim2-server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a resource; its id, or `None` when the server refuses it.
    pub async fn create(&self, kind: &str, body: Value) -> Option<String> {
        let (status, created) = self
            .send(
                self.admin
                    .post(format!("{}/{kind}", self.url()))
                    .json(&body),
            )
            .await;
        (status == 201).then(|| created["id"].as_str().unwrap_or_default().to_string())
    }

    /// Finds the one resource whose `attribute` is exactly `value`, by listing all.
    async fn id_of(&self, kind: &str, attribute: &str, value: &str) -> String {
        let (_, list) = self
            .send(
                self.admin
                    .get(format!("{}/{kind}", self.url()))
                    .query(&[("count", "10000")]),
            )
            .await;
        list["Resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r[attribute] == value)
            .and_then(|r| r["id"].as_str())
            .unwrap_or_else(|| panic!("no {kind} {value}"))
            .to_string()
    }

    pub async fn add_member(&self, group: &str, member_id: &str) {
        let group_id = self.id_of("Groups", "displayName", group).await;
        let (status, body) = self
            .send(
                self.admin
                    .patch(format!("{}/Groups/{group_id}", self.url()))
                    .json(&json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{ "op": "add", "path": "members", "value": [{ "value": member_id }] }]
                    })),
            )
            .await;
        assert!(status == 200 || status == 204, "{status} {body}");
    }
}

#[async_trait]
impl Target for Scim {
    fn kind(&self) -> &'static str {
        "scim"
    }

    fn connector(&self) -> &dyn Connector {
        &self.connector
    }

    async fn create_role(&self, name: &str) -> bool {
        self.create(
            "Groups",
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name }),
        )
        .await
        .is_some()
    }

    async fn create_account(&self, name: &str) -> bool {
        self.create(
            "Users",
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name }),
        )
        .await
        .is_some()
    }

    async fn grant_out_of_band(&self, role: &str, account: &str) {
        let user = self.id_of("Users", "userName", account).await;
        self.add_member(role, &user).await;
    }

    async fn set_reach(&self, reach: Reach) {
        self.proxy.set(reach);
    }
}
