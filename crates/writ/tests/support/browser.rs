//! A person at a browser, for sign-in tests: follows redirects, keeps cookies, and
//! submits each form the OpenID provider shows (its login, consent and device-code
//! pages) with the person's login filled in, until a page without a form.

pub struct Browser {
    http: reqwest::Client,
}

/// A form on a page: where it posts, and its fields as the page fills them.
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

/// The value of `name="…"` in one tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#x2F;", "/"),
    )
}

fn first_form(page: &str) -> Option<Form> {
    let start = page.find("<form")?;
    let end = page[start..].find("</form>")? + start;
    let form = &page[start..end];
    let action = attribute(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(at) = rest.find("<input") {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
        let tag = &rest[at..tag_end];
        if let Some(name) = attribute(tag, "name") {
            fields.push((name, attribute(tag, "value").unwrap_or_default()));
        }
        rest = &rest[tag_end..];
    }
    Some(Form { action, fields })
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("a browser"),
        }
    }

    /// Opens `url` and signs in as `login`, submitting every form on the way; the text
    /// of the first page without one.
    pub async fn sign_in(&self, url: &str, login: &str) -> String {
        let mut response = self.http.get(url).send().await.expect("open the page");
        for _ in 0..10 {
            let at = response.url().clone();
            let page = response.text().await.expect("a page");
            let Some(form) = first_form(&page) else {
                return page;
            };
            let fields: Vec<(String, String)> = form
                .fields
                .into_iter()
                .map(|(name, value)| match name.as_str() {
                    "login" => (name, login.to_string()),
                    "password" => (name, "any password".to_string()),
                    _ => (name, value),
                })
                .collect();
            let action = at.join(&form.action).expect("a form action");
            response = self
                .http
                .post(action)
                .form(&fields)
                .send()
                .await
                .expect("submit the form");
        }
        panic!("still shown forms after ten pages");
    }
}
