//! A person at a browser, for sign-in tests: follows redirects, keeps cookies, and
//! submits each form the OpenID provider shows (its login, consent and device-code
//! pages) with the person's login filled in, until a page without a form.

pub struct Browser {
    http: reqwest::Client,
    set_cookies: std::sync::Mutex<Vec<String>>,
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

/// The first form on `page` as a person signing in as `login` fills it: where it
/// posts, and its fields.
pub fn form_of(page: &str, login: &str) -> Option<(String, Vec<(String, String)>)> {
    let form = first_form(page)?;
    let fields = form
        .fields
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "login" => (name, login.to_string()),
            "password" => (name, "any password".to_string()),
            _ => (name, value),
        })
        .collect();
    Some((form.action, fields))
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a browser"),
            set_cookies: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The browser's client: it sends the cookies it was given (and follows no
    /// redirects by itself).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Every `Set-Cookie` header the browser was sent, in order.
    pub fn set_cookies(&self) -> Vec<String> {
        self.set_cookies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends `request`, following redirects as a browser does; the last response.
    async fn follow(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let mut response = request.send().await.expect("a response");
        for _ in 0..20 {
            for cookie in response.headers().get_all(reqwest::header::SET_COOKIE) {
                self.set_cookies
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(cookie.to_str().unwrap_or_default().to_string());
            }
            if !response.status().is_redirection() {
                return response;
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .expect("a redirect's location");
            let next = response.url().join(location).expect("a URL");
            response = self.http.get(next).send().await.expect("a response");
        }
        panic!("more than twenty redirects");
    }

    /// Opens `url` and signs in as `login`, submitting every form on the way; the URL
    /// and text of the first page without one.
    pub async fn sign_in(&self, url: &str, login: &str) -> (String, String) {
        let mut response = self.follow(self.http.get(url)).await;
        for _ in 0..10 {
            let at = response.url().clone();
            let page = response.text().await.expect("a page");
            let Some((action, fields)) = form_of(&page, login) else {
                return (at.to_string(), page);
            };
            let action = at.join(&action).expect("a form action");
            response = self.follow(self.http.post(action).form(&fields)).await;
        }
        panic!("still shown forms after ten pages");
    }
}
