//! A person using writ's web UI over plain HTTP (no JavaScript): keeps cookies,
//! follows no redirects by itself, reads forms' hidden fields from pages.

/// A writ for UI tests: a noop target with a low, a high (one approval) and a
/// critical (needs a ticket) entitlement; alice and bob (engineers, alice's manager is
/// dave), dave (a manager), and an agent acting for alice; a break-glass profile
/// engineers may break.
pub const CONFIG: &str = r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "t"
kind = "noop"

[[entitlement]]
id = "t/read"
target = "t"
role = "read"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "t/admin"
target = "t"
role = "admin"
sensitivity = "high"
max_duration = "4h"

[[entitlement]]
id = "t/root"
target = "t"
role = "root"
sensitivity = "critical"
max_duration = "1h"

[[break_glass]]
name = "outage"
entitlements = ["t/admin"]
max_duration = "1h"
review_within = "1d"

[[user]]
name = "alice"
groups = ["engineers"]
manager = "dave"

[[user]]
name = "bob"
groups = ["engineers"]

[[user]]
name = "dave"
groups = ["managers"]

[[agent]]
name = "helper"
owner = "alice"
delegates = ["alice"]
"#;

pub const POLICIES: &[(&str, &str)] = &[
    (
        "request.cedar",
        r#"
@id("low-auto")
@max_duration("30m")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "low" };

@id("high-needs-manager")
@approvals("1")
@max_duration("2h")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "high" };

@id("approve-engineers")
permit (principal in Group::"managers", action == Action::"approve", resource);

@id("approve-any-engineer")
permit (principal in Group::"engineers", action == Action::"approve", resource);

@id("engineers-break-glass")
permit (principal in Group::"engineers", action == Action::"break_glass", resource);
"#,
    ),
    (
        "forbid.cedar",
        r#"
@id("critical-needs-ticket")
@reason("critical access needs a ticket")
forbid (principal, action == Action::"request", resource)
when { resource.sensitivity == "critical" && !(context has ticket) };
"#,
    ),
];

pub struct UiClient {
    pub http: reqwest::Client,
    pub base: String,
}

/// A page as the browser got it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// The value of the first `<input … name="NAME" value="…">` on a page.
pub fn input_value(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\""))?;
    let tag_start = page[..at].rfind('<')?;
    let tag_end = page[at..].find('>')? + at;
    let tag = &page[tag_start..tag_end];
    let start = tag.find("value=\"")? + 7;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&amp;", "&").replace("&#x2f;", "/"))
}

impl UiClient {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a browser"),
            base: base.to_string(),
        }
    }

    async fn page(response: reqwest::Response) -> Page {
        Page {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_string),
            headers: response.headers().clone(),
            body: response.text().await.expect("a page"),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::page(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        Self::page(
            self.http
                .post(format!("{}{path}", self.base))
                .form(fields)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// Signs in with a writ token on the sign-in page; the page signed in to.
    pub async fn sign_in_with_token(&self, token: &str) -> Page {
        let form = self.get("/ui/signin").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let signin_csrf = input_value(&form.body, "signin_csrf").expect("the form's CSRF token");
        self.post(
            "/ui/signin",
            &[
                ("token", token),
                ("signin_csrf", &signin_csrf),
                ("return_to", "/ui"),
            ],
        )
        .await
    }

    /// The CSRF token the signed-in pages' forms carry.
    pub async fn csrf(&self) -> String {
        let page = self.get("/ui").await;
        input_value(&page.body, "csrf_token").expect("a signed-in page carries its CSRF token")
    }
}
