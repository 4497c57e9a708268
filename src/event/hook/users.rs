//! User objects as Gitea's webhooks show them. A token reads users as its user may see them:
//! an admin's token gets every e-mail address and the admin-only fields (`is_admin`,
//! `login_name`, `last_login`, ...), a signed-in user's the addresses not kept private.
//! Gitea's own webhooks render every user for nobody (services/webhook/notifier.go
//! `convert.ToUser(ctx, doer, nil)`; services/convert/user.go `toUser` with `signed` and
//! `authed` false): the e-mail is the placeholder `{lower name}@{NO_REPLY_ADDRESS}`
//! (`GetPlaceholderEmail`) and the admin-only fields keep their zero values. Every published
//! event (activity, repository change, webhook body) shows users that way.

use serde_json::Value;

/// Gitea's zero `time.Time` as JSON (`last_login` for a viewer who may not see it).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The fields `toUser` fills only for an admin or the user themselves, with the zero
/// value it leaves otherwise.
fn admin_only() -> [(&'static str, Value); 7] {
    [
        ("is_admin", Value::Bool(false)),
        ("login_name", Value::String(String::new())),
        ("source_id", Value::from(0)),
        ("last_login", Value::String(ZERO_TIME.to_string())),
        ("language", Value::String(String::new())),
        ("active", Value::Bool(false)),
        ("prohibit_login", Value::Bool(false)),
    ]
}

/// `payload` (JSON) with every user object shown as Gitea's webhooks show it, `no_reply`
/// being the server's `NO_REPLY_ADDRESS`; `None` when nothing had to change (or it is not
/// JSON: it is published as it is).
pub fn as_webhooks_show(payload: &[u8], no_reply: &str) -> Option<Vec<u8>> {
    // A user object has a `login`: nothing to read in a payload without one.
    if !payload.windows(8).any(|w| w == b"\"login\":") {
        return None;
    }
    let mut v: Value = serde_json::from_slice(payload).ok()?;
    if !walk(&mut v, no_reply) {
        return None;
    }
    serde_json::to_vec(&v).ok()
}

/// Rewrites the users below `v`; true when one changed.
fn walk(v: &mut Value, no_reply: &str) -> bool {
    match v {
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, i| walk(i, no_reply) | changed),
        Value::Object(m) => {
            let mut changed = false;
            // Gitea's `User` (also a repository's owner, an org shown as a user): `login`
            // and `email`; a commit's `PayloadUser` (`name`, `email`, `username`) has no
            // `login` and keeps the commit's address, as Gitea's.
            let login = m
                .get("login")
                .and_then(Value::as_str)
                .filter(|_| m.contains_key("email"))
                .map(str::to_lowercase);
            if let Some(login) = login {
                let placeholder = Value::String(format!("{login}@{no_reply}"));
                if m.get("email") != Some(&placeholder) {
                    m.insert("email".into(), placeholder);
                    changed = true;
                }
                for (k, zero) in admin_only() {
                    if let Some(old) = m.get_mut(k)
                        && *old != zero
                    {
                        *old = zero;
                        changed = true;
                    }
                }
            }
            for child in m.values_mut() {
                changed |= walk(child, no_reply);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_admins_view_of_a_user_becomes_the_view_gitea_s_webhooks_have() {
        let admin_view = json!({
            "data": { "activity": {
                "act_user": {
                    "id": 3, "login": "Alice", "email": "alice@private.example",
                    "is_admin": true, "login_name": "alice@ldap", "source_id": 2,
                    "last_login": "2026-12-01T10:00:00Z", "language": "de-DE",
                    "active": true, "prohibit_login": false, "full_name": "Alice A.",
                },
                "repo": { "owner": { "id": 9, "login": "acme", "email": "ops@acme.example" } },
                "content": "{\"HeadCommit\":{\"AuthorEmail\":\"alice@private.example\"}}",
            } },
            "commit": { "author": { "name": "Alice", "email": "alice@work.example", "username": "alice" } },
        });
        let out = as_webhooks_show(admin_view.to_string().as_bytes(), "noreply.git.example")
            .expect("changed");
        let v: Value = serde_json::from_slice(&out).unwrap();
        let u = &v["data"]["activity"]["act_user"];
        assert_eq!(u["email"], "alice@noreply.git.example");
        assert_eq!(
            (&u["is_admin"], &u["login_name"], &u["source_id"]),
            (&json!(false), &json!(""), &json!(0))
        );
        assert_eq!(u["last_login"], ZERO_TIME);
        assert_eq!((&u["language"], &u["active"]), (&json!(""), &json!(false)));
        assert_eq!(u["full_name"], "Alice A.", "public fields stay");
        assert_eq!(
            v["data"]["activity"]["repo"]["owner"]["email"],
            "acme@noreply.git.example"
        );
        // A commit's author is the commit's, as in Gitea's push payload.
        assert_eq!(v["commit"]["author"]["email"], "alice@work.example");
        // Shown once, nothing more to change.
        assert_eq!(as_webhooks_show(&out, "noreply.git.example"), None);
        assert_eq!(as_webhooks_show(b"{\"no\":\"users\"}", "x"), None);
        assert_eq!(as_webhooks_show(b"not json \"login\":", "x"), None);
    }
}
