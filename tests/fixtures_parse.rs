//! Every real Gitea payload in `tests/fixtures/api/` (copied from `shared/gitea/fixtures`)
//! that holds a user, repository or comment parses into the sourcer's types: fields added
//! or missing must not matter.

use std::path::PathBuf;

use gitea_nats_sourcer::gitea::types::{Comment, Repository, User};
use serde_json::Value;

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/api");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 25, "fixtures are there");
    out
}

/// Every object in `v`, depth first, with the key it sits under.
fn objects<'a>(key: &str, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) => {
            out.push((key.to_string(), v));
            for (k, x) in m {
                objects(k, x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| objects(key, x, out)),
        _ => {}
    }
}

#[test]
fn every_user_repository_and_comment_in_the_fixtures_parses() {
    let (mut users, mut repos, mut comments) = (0, 0, 0);
    for (file, v) in fixtures() {
        let mut objs = Vec::new();
        objects("", &v, &mut objs);
        for (key, o) in objs {
            if o.get("login").is_some() || o.get("username").is_some() {
                let u: User = serde_json::from_value(o.clone())
                    .unwrap_or_else(|e| panic!("{file} user: {e}"));
                assert!(!u.name().is_empty(), "{file}: user has a name");
                users += 1;
            }
            if o.get("full_name").is_some() && o.get("owner").is_some() {
                let r: Repository = serde_json::from_value(o.clone())
                    .unwrap_or_else(|e| panic!("{file} repo: {e}"));
                assert!(r.full_name.contains('/'), "{file}: {}", r.full_name);
                repos += 1;
            }
            if file.starts_with("comment") && key.is_empty() && o.get("body").is_some() {
                let c: Comment = serde_json::from_value(o.clone())
                    .unwrap_or_else(|e| panic!("{file} comment: {e}"));
                assert!(c.id > 0);
                comments += 1;
            }
        }
        if file.starts_with("comments") {
            let cs: Vec<Comment> =
                serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
            comments += cs.len();
        }
    }
    assert!(
        users >= 20 && repos >= 3 && comments >= 2,
        "users {users}, repos {repos}, comments {comments}"
    );
}

#[test]
fn an_activity_with_unknown_and_missing_fields_parses() {
    use gitea_nats_sourcer::gitea::ActivityRow;
    let raw = serde_json::value::RawValue::from_string(
        r#"{"id":1,"op_type":"star_repo","created":"2026-11-28T16:25:31+08:00","brand_new":[1,2]}"#
            .into(),
    )
    .unwrap();
    let row = ActivityRow::parse(raw).unwrap();
    assert_eq!(row.activity.op_type, "star_repo");
    assert!(row.activity.repo.is_none());
}
