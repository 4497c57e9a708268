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

/// `payload` (JSON) with every user object shown as Gitea's webhooks show it, `no_reply`
/// being the server's `NO_REPLY_ADDRESS`; `None` when nothing had to change (or it is not
/// JSON: it is published as it is).
///
/// One pass over the bytes finds the user objects and what of them must change; the rest
/// is copied as it is, byte for byte: keys keep their order and Gitea's escapes stay
/// Gitea's (the 4 KB `content` of a push row is skipped, never decoded).
pub fn as_webhooks_show(payload: &[u8], no_reply: &str) -> Option<Vec<u8>> {
    // A user object has a `login`: nothing to read in a payload without one.
    memchr::memmem::find(payload, b"\"login\":")?;
    let mut scan = Scan {
        json: payload,
        at: 0,
        no_reply,
        edits: Vec::new(),
    };
    scan.value(0)?;
    scan.space();
    if scan.at != payload.len() || scan.edits.is_empty() {
        return None;
    }
    // Objects are closed after their children: their edits come later in the list.
    scan.edits.sort_by_key(|e| e.0.start);
    let mut out = Vec::with_capacity(payload.len() + 64 * scan.edits.len());
    let mut copied = 0;
    for (span, new) in &scan.edits {
        out.extend_from_slice(payload.get(copied..span.start)?);
        out.extend_from_slice(new);
        copied = span.end;
    }
    out.extend_from_slice(payload.get(copied..)?);
    Some(out)
}

/// Deeper than this is not a payload of ours (serde_json's own limit is 128).
const MAX_DEPTH: usize = 128;

/// The scan behind [`as_webhooks_show`]: a JSON reader that only finds where values are
/// (`None`: not JSON as far as it can tell), collecting the changes to make.
struct Scan<'a> {
    json: &'a [u8],
    at: usize,
    no_reply: &'a str,
    /// A value's bytes and what replaces them.
    edits: Vec<(std::ops::Range<usize>, Vec<u8>)>,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.json.get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.space();
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// One value from here; its span.
    fn value(&mut self, depth: usize) -> Option<std::ops::Range<usize>> {
        self.space();
        let start = self.at;
        match self.peek()? {
            b'{' if depth < MAX_DEPTH => self.object(depth + 1)?,
            b'[' if depth < MAX_DEPTH => {
                self.at += 1;
                self.space();
                if self.peek()? == b']' {
                    self.at += 1;
                } else {
                    loop {
                        self.value(depth + 1)?;
                        self.space();
                        match self.peek()? {
                            b',' => self.at += 1,
                            b']' => {
                                self.at += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
            }
            b'"' => self.string()?,
            b'{' | b'[' => return None,
            _ => {
                // A number, true, false or null.
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.at += 1;
                }
                if self.at == start {
                    return None;
                }
            }
        }
        Some(start..self.at)
    }

    /// A string from its opening quote to past its closing one.
    fn string(&mut self) -> Option<()> {
        self.at += 1;
        loop {
            let rest = self.json.get(self.at..)?;
            let i = memchr::memchr2(b'"', b'\\', rest)?;
            self.at += i + 1;
            if rest[i] == b'"' {
                return Some(());
            }
            // An escape: the byte after the backslash is not the end.
            self.at += 1;
        }
    }

    /// An object from `{` to past `}`. Gitea's `User` (also a repository's owner, an org
    /// shown as a user) has a `login` and an `email`: its e-mail becomes the placeholder
    /// and its admin-only fields their zero values. A commit's `PayloadUser` (`name`,
    /// `email`, `username`) has no `login` and keeps the commit's address, as Gitea's.
    fn object(&mut self, depth: usize) -> Option<()> {
        self.at += 1;
        let mut login = None;
        // The e-mail (`None`) and the admin-only fields (their zero values) of the object.
        let mut fields: Vec<(Option<Zero>, std::ops::Range<usize>)> = Vec::new();
        self.space();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.space();
            if self.peek()? != b'"' {
                return None;
            }
            let key_start = self.at;
            self.string()?;
            let key = self.json.get(key_start + 1..self.at - 1)?;
            self.eat(b':')?;
            let span = self.value(depth)?;
            if key == b"login" {
                login = Some(span);
            } else if key == b"email" {
                fields.push((None, span));
            } else if let Some((_, zero)) = ADMIN_ONLY.iter().find(|(k, _)| k.as_bytes() == key) {
                fields.push((Some(*zero), span));
            }
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    break;
                }
                _ => return None,
            }
        }
        let Some(login) = login else { return Some(()) };
        let Ok(Value::String(login)) = serde_json::from_slice(self.json.get(login)?) else {
            return Some(());
        };
        if !fields.iter().any(|(zero, _)| zero.is_none()) {
            return Some(());
        }
        for (zero, span) in fields {
            let new = match zero {
                None => Value::String(format!("{}@{}", login.to_lowercase(), self.no_reply)),
                Some(zero) => zero.value(),
            };
            let old: Value = serde_json::from_slice(self.json.get(span.clone())?).ok()?;
            if old != new {
                self.edits.push((span, serde_json::to_vec(&new).ok()?));
            }
        }
        Some(())
    }
}

/// A zero value of an admin-only field.
#[derive(Clone, Copy)]
enum Zero {
    False,
    Empty,
    Nought,
    Time,
}

impl Zero {
    fn value(self) -> Value {
        match self {
            Zero::False => Value::Bool(false),
            Zero::Empty => Value::String(String::new()),
            Zero::Nought => Value::from(0),
            Zero::Time => Value::String(ZERO_TIME.to_string()),
        }
    }
}

/// The fields `toUser` fills only for an admin or the user themselves, with the zero
/// value it leaves otherwise.
const ADMIN_ONLY: [(&str, Zero); 7] = [
    ("is_admin", Zero::False),
    ("login_name", Zero::Empty),
    ("source_id", Zero::Nought),
    ("last_login", Zero::Time),
    ("language", Zero::Empty),
    ("active", Zero::False),
    ("prohibit_login", Zero::False),
];

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

    /// What the one-pass scan makes of a payload is what rewriting the parsed value (the
    /// way it was done before) made of it, on users nested in objects and arrays, escaped
    /// names, spaces and values that are not users.
    #[test]
    fn the_scan_shows_users_as_rewriting_the_parsed_value_does() {
        fn walk(v: &mut Value, no_reply: &str) -> bool {
            match v {
                Value::Array(items) => items
                    .iter_mut()
                    .fold(false, |changed, i| walk(i, no_reply) | changed),
                Value::Object(m) => {
                    let mut changed = false;
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
                        for (k, zero) in ADMIN_ONLY {
                            if let Some(old) = m.get_mut(k)
                                && *old != zero.value()
                            {
                                *old = zero.value();
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
        let user = |login: &str, extra: Value| {
            let mut u = json!({"id": 1, "login": login, "email": "x@y", "full_name": "F \"q\""});
            if let (Value::Object(u), Value::Object(e)) = (&mut u, extra) {
                u.extend(e);
            }
            u
        };
        let payloads = [
            json!({"a": [user("A", json!({"is_admin": true})), 3, "s", null, [user("b", json!({}))]]}),
            json!({"data": {"activity": {"act_user": user("Zoë", json!({"last_login": "2026-01-01T00:00:00Z", "source_id": 4})),
                "repo": {"owner": user("org", json!({"visibility": "public"})), "parent": {"owner": user("p", json!({"active": true}))}},
                "content": "{\"login\":\"not a user\",\"email\":\"e\"}"}}}),
            json!({"login": 5, "email": "not a user: login is no string"}),
            json!({"login": "ok", "email": "ok@n", "is_admin": false}),
            json!([{"login": "no email"}, {"email": "no login"}, {}, []]),
        ];
        for p in payloads {
            for text in [p.to_string(), serde_json::to_string_pretty(&p).unwrap()] {
                let mut expected = p.clone();
                let changed = walk(&mut expected, "n");
                let got = as_webhooks_show(text.as_bytes(), "n");
                assert_eq!(got.is_some(), changed, "{text}");
                if let Some(got) = got {
                    let got: Value = serde_json::from_slice(&got).expect("JSON");
                    assert_eq!(got, expected, "{text}");
                }
            }
        }
        for broken in [
            &b"{\"login\":\"a\",\"email\":\"b\""[..],
            b"{\"login\":\"a\" \"email\":1}",
            b"[\"login\":]",
        ] {
            assert_eq!(as_webhooks_show(broken, "n"), None);
        }
        let deep = format!(
            "{}{{\"login\":\"a\",\"email\":\"b\"}}{}",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(
            as_webhooks_show(deep.as_bytes(), "n"),
            None,
            "deeper than any payload"
        );
    }

    /// Only the users change: the keys keep Gitea's order and every other byte (escapes,
    /// numbers as written) is copied as it came.
    #[test]
    fn what_is_not_a_user_is_copied_byte_for_byte_in_its_order() {
        let payload = concat!(
            r#"{"z":1.50,"content":"{\"Commits\":[],\"X\":\"\u003c\"}","#,
            r#""act_user":{"login":"Bo","id":2,"email":"bo@x","is_admin":true},"#,
            r#""list":[{"login":"c\u0041","email":"c@x"},{"login":"d","email":"d@n"}],"a":null}"#
        );
        let out = as_webhooks_show(payload.as_bytes(), "n").expect("changed");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            concat!(
                r#"{"z":1.50,"content":"{\"Commits\":[],\"X\":\"\u003c\"}","#,
                r#""act_user":{"login":"Bo","id":2,"email":"bo@n","is_admin":false},"#,
                r#""list":[{"login":"c\u0041","email":"ca@n"},{"login":"d","email":"d@n"}],"a":null}"#
            )
        );
    }
}
