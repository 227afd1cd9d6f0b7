//! Credentials never reach a message: every `scheme://user:password@` and every
//! `password=…` in a text (an error, a log line, a URL) is shown as `***`.

/// Query or connection-string keys whose values are secrets.
const SECRET_KEYS: [&str; 3] = ["password=", "passwd=", "sslpassword="];

/// What ends a URL's authority (user:password@host:port) in running text.
const AUTHORITY_ENDS: [char; 9] = ['/', '"', '\'', '`', ' ', '\n', '\t', '?', '#'];
/// What ends a `password=` value.
const VALUE_ENDS: [char; 7] = ['&', '"', '\'', ' ', '\n', '\t', ';'];

/// `text` with the passwords of any URLs in it, and `password=` values, hidden.
pub fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        // The authority ends where a path, a quote or a space begins.
        let authority_len = after.find(AUTHORITY_ENDS).unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:***{}", &authority[at..])),
                    None => out.push_str(authority),
                }
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    redact_secret_keys(&out)
}

fn redact_secret_keys(text: &str) -> String {
    let mut out = text.to_string();
    for key in SECRET_KEYS {
        let mut from = 0;
        while let Some(found) = out[from..].to_ascii_lowercase().find(key) {
            let value_start = from + found + key.len();
            let value_len = out[value_start..]
                .find(VALUE_ENDS)
                .unwrap_or(out.len() - value_start);
            out.replace_range(value_start..value_start + value_len, "***");
            from = value_start + 3;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::redact_credentials;

    #[test]
    fn passwords_in_urls_and_keys_are_hidden() {
        for (text, shown) in [
            (
                "postgres://writ:s3cret@db:5432/writ",
                "postgres://writ:***@db:5432/writ",
            ),
            ("postgres://writ@db/writ", "postgres://writ@db/writ"),
            (
                "\"postgresx://u:p@ss@h/x\" is not a postgres:// URL",
                "\"postgresx://u:***@h/x\" is not a postgres:// URL",
            ),
            (
                "url = \"postgres://a:b@h/x\nnext",
                "url = \"postgres://a:***@h/x\nnext",
            ),
            (
                "postgres://h/db?user=a&password=hunter2&x=1",
                "postgres://h/db?user=a&password=***&x=1",
            ),
            (
                "host=h PASSWORD=hunter2 dbname=x",
                "host=h PASSWORD=*** dbname=x",
            ),
            ("no urls here", "no urls here"),
        ] {
            assert_eq!(redact_credentials(text), shown, "{text}");
        }
    }

    proptest! {
        #[test]
        fn a_password_never_survives(user in "[a-z]{1,8}", password in "[A-Za-z0-9!$%^*()_+=-]{6,16}", around in "[ a-z\"=]{0,8}") {
            let text = format!("{around}postgres://{user}:{password}@db:5432/x{around}");
            let shown = redact_credentials(&text);
            prop_assert!(!shown.contains(&format!(":{password}@")), "{}", shown);
        }

        #[test]
        fn never_panics(text in "\\PC{0,64}") {
            let _ = redact_credentials(&text);
        }
    }
}
