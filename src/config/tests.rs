use super::*;

const MIN: &str = "[gitea]\nurl = \"https://git.example.com/sub\"\n";

#[test]
fn urls_are_shown_and_published_without_their_credentials() {
    for (url, shown) in [
        (
            "https://alice:s3cret@git.example.org",
            "https://git.example.org",
        ),
        (
            "https://alice:s3cret@git.example.org/",
            "https://git.example.org/",
        ),
        (
            "https://tok@git.example.org:3000/gitea",
            "https://git.example.org:3000/gitea",
        ),
        ("https://git.example.org", "https://git.example.org"),
        (
            "nats://u:p@a:4222, nats://b:4222,tls://u2:p2@c",
            "nats://a:4222,nats://b:4222,tls://c",
        ),
        ("nats://u:p@[bad", "nats://[bad"),
    ] {
        let got = without_userinfo(url);
        assert_eq!(got, shown, "{url}");
        assert!(!got.contains("s3cret") && !got.contains(":p@"), "{got}");
    }
}

#[test]
fn unknown_key_is_named() {
    let err = Config::parse(&format!("{MIN}tokn_file = \"/x\"\n")).unwrap_err();
    assert!(err.to_string().contains("tokn_file"), "{err}");
}

#[test]
fn defaults_apply() {
    let c = Config::parse(&format!("{MIN}[[source]]\norg = \"acme\"\n")).unwrap();
    assert_eq!(c.nats.stream, "GITEA_EVENTS");
    assert_eq!(c.poll.interval, Duration::from_secs(30));
    assert_eq!(c.sources()[0].spec.to_string(), "org:acme");
    assert_eq!(c.sources()[0].start, StartAt::Now);
}

#[test]
fn stream_bounds_default_and_parse() {
    let c = Config::parse(MIN).unwrap();
    assert_eq!(c.nats.replicas, 1);
    assert_eq!(c.nats.max_age, Duration::from_secs(30 * 86400));
    assert_eq!(c.nats.max_bytes, 2 << 30);
    let c = Config::parse(&format!(
        "{MIN}[nats]\nreplicas = 3\nmax_age = \"7days\"\nmax_bytes = \"512MiB\"\n"
    ))
    .unwrap();
    assert_eq!(c.nats.replicas, 3);
    assert_eq!(c.nats.max_age, Duration::from_secs(7 * 86400));
    assert_eq!(c.nats.max_bytes, 512 << 20);
    let c = Config::parse(&format!("{MIN}[nats]\nmax_bytes = 100000000\n")).unwrap();
    assert_eq!(c.nats.max_bytes, 100_000_000);
    assert_eq!(parse_byte_size("1TB"), Some(1_000_000_000_000));
    assert_eq!(parse_byte_size("ten"), None);
}

#[test]
fn stream_bounds_too_small_are_refused_naming_the_key() {
    for (extra, key) in [
        ("max_age = \"1h\"", "nats.max_age"),
        (
            "duplicate_window = \"3h\"\nmax_age = \"2h\"",
            "nats.max_age",
        ),
        ("max_bytes = \"1MiB\"", "nats.max_bytes"),
        ("max_bytes = 1000", "nats.max_bytes"),
        ("replicas = 0", "nats.replicas"),
        ("replicas = 7", "nats.replicas"),
    ] {
        let err = Config::parse(&format!("{MIN}[nats]\n{extra}\n")).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key: k, .. } if k == key),
            "{extra}: {err}"
        );
    }
    let err = Config::parse(&format!("{MIN}[nats]\nmax_bytes = \"lots\"\n")).unwrap_err();
    assert!(err.to_string().contains("max_bytes"), "{err}");
}

#[test]
fn ha_defaults_and_bounds_are_enforced_naming_the_key() {
    let c = Config::parse(MIN).unwrap();
    assert!(!c.ha.enabled);
    assert_eq!(c.ha.lease_ttl, Duration::from_secs(10));
    assert_eq!(c.ha.lease_bucket, "gitea_leases");
    let name = c.ha.instance_name();
    assert!(
        name.ends_with(&format!("-{}", std::process::id())),
        "HOST-PID: {name}"
    );
    let c = Config::parse(&format!(
        "{MIN}[ha]\nenabled = true\ninstance = \" sourcer-1 \"\nlease_ttl = \"2s\"\n"
    ))
    .unwrap();
    assert_eq!(c.ha.instance_name(), "sourcer-1");
    for (extra, key) in [
        ("lease_ttl = \"1s\"", "ha.lease_ttl"),
        ("lease_ttl = \"6min\"", "ha.lease_ttl"),
        ("lease_ttl = \"2500ms\"", "ha.lease_ttl"),
        ("lease_bucket = \"gitea_cursors\"", "ha.lease_bucket"),
        ("lease_bucket = \"a.b\"", "ha.lease_bucket"),
        ("instance = \"  \"", "ha.instance"),
    ] {
        let err = Config::parse(&format!("{MIN}[ha]\n{extra}\n")).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key: k, .. } if k == key),
            "{extra}: {err}"
        );
    }
    let err = Config::parse(&format!("{MIN}[ha]\nlease = \"10s\"\n")).unwrap_err();
    assert!(
        err.to_string().contains("lease"),
        "unknown key named: {err}"
    );
}

#[test]
fn all_goes_alone_once_and_expands_into_the_sources_found() {
    let c = Config::parse(&format!(
        "{MIN}[[source]]\nall = true\ninterval = \"5s\"\nenrich = true\n\
         [[source]]\norg = \"acme\"\ninterval = \"1s\"\n"
    ))
    .unwrap();
    assert!(c.discovery().is_some());
    assert_eq!(
        c.sources().len(),
        1,
        "until something is found, the named ones"
    );
    let found = [
        SourceSpec::org("acme").unwrap(),
        SourceSpec::org("globex").unwrap(),
        SourceSpec::repo("alice", "dot.files").unwrap(),
    ];
    let e = c.with_discovered(&found);
    assert!(e.discovery().is_none());
    let s = e.sources();
    assert_eq!(s.len(), 3);
    let by = |n: &str| s.iter().find(|x| x.spec.to_string() == n).unwrap().clone();
    assert_eq!(
        by("org:acme").interval,
        Duration::from_secs(1),
        "its own table wins"
    );
    assert_eq!(by("org:globex").interval, Duration::from_secs(5));
    assert!(by("repo:alice/dot.files").enrich);
    for (extra, key) in [
        ("[[source]]\nall = true\norg = \"acme\"\n", "source[0].all"),
        (
            "[[source]]\nall = true\n[[source]]\nall = true\n",
            "source[1].all",
        ),
        (
            "[[source]]\nall = true\nkinds = [\"issues\"]\n",
            "source[0].kinds",
        ),
    ] {
        let err = Config::parse(&format!("{MIN}{extra}")).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key: k, .. } if k == key),
            "{extra}: {err}"
        );
    }
}

#[test]
fn source_needs_exactly_one_kind() {
    let err = Config::parse(&format!("{MIN}[[source]]\norg = \"a\"\nuser = \"b\"\n")).unwrap_err();
    assert!(err.to_string().contains("source[0]"), "{err}");
}

#[test]
fn bad_duration_and_start_name_the_key() {
    let err = Config::parse(&format!("{MIN}[poll]\ninterval = \"soon\"\n")).unwrap_err();
    assert!(err.to_string().contains("interval"), "{err}");
    let err = Config::parse(&format!("{MIN}[poll]\nstart = \"yesterday\"\n")).unwrap_err();
    assert!(err.to_string().contains("start"), "{err}");
    let c = Config::parse(&format!("{MIN}[poll]\nstart = \"2026-01-02\"\n")).unwrap();
    assert_eq!(c.poll.start.to_string(), "2026-01-02");
}

#[test]
fn webhooks_default_from_poll_and_a_source_overrides_them() {
    let c = Config::parse(&format!(
        "{MIN}[poll]\nwebhooks = true\n[[source]]\nrepo = \"a/b\"\n[[source]]\nrepo = \"a/c\"\nwebhooks = false\n[[source]]\nrepo = \"a/d\"\npush_files = true\n"
    ))
    .expect("valid");
    let s = c.sources();
    assert_eq!(
        s.iter()
            .map(|s| (s.webhooks, s.push_files))
            .collect::<Vec<_>>(),
        [(true, false), (false, false), (true, true)]
    );
    let off = Config::parse(&format!("{MIN}[[source]]\nrepo = \"a/b\"\n")).expect("valid");
    assert!(!off.sources()[0].webhooks, "off unless asked for");
    assert!(
        Config::parse(&format!(
            "{MIN}[[source]]\nrepo = \"a/b\"\nwebhook = true\n"
        ))
        .is_err()
    );
}

#[test]
fn repository_kinds_are_checked() {
    let c = Config::parse(&format!(
        "{MIN}[[source]]\nrepo = \"a/b\"\nkinds = [\"issues\", \"statuses\"]\n"
    ))
    .unwrap();
    assert_eq!(c.sources()[0].kinds.len(), 2);
    let err = Config::parse(&format!(
        "{MIN}[[source]]\nrepo = \"a/b\"\nkinds = [\"labels\"]\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("labels"), "{err}");
    let err = Config::parse(&format!(
        "{MIN}[[source]]\norg = \"a\"\nkinds = [\"issues\"]\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("repos = true"), "{err}");
}

#[test]
fn the_example_config_is_valid() {
    let c = Config::parse(include_str!("../../config.example.toml")).unwrap();
    assert_eq!(c.sources().len(), 3);
}

#[test]
fn nats_url_must_be_a_list_of_server_urls() {
    for good in [
        "nats://127.0.0.1:4222",
        "nats://a:4222, tls://b:4222",
        "127.0.0.1:4222",
    ] {
        Config::parse(&format!("{MIN}[nats]\nurl = \"{good}\"\n"))
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in ["not a url", "http://x:4222", "nats://a:4222,"] {
        let err = Config::parse(&format!("{MIN}[nats]\nurl = \"{bad}\"\n")).unwrap_err();
        assert!(err.to_string().contains("nats.url"), "{bad}: {err}");
    }
}

#[test]
fn a_lookback_below_the_minimum_is_refused_and_a_short_one_warned() {
    let err = Config::parse(&format!("{MIN}[poll]\nlookback = \"0s\"\n")).unwrap_err();
    assert!(err.to_string().contains("poll.lookback"), "{err}");
    let c = Config::parse(&format!("{MIN}[poll]\nlookback = \"20s\"\n")).unwrap();
    assert!(
        c.warnings().iter().any(|w| w.contains("poll.lookback")),
        "{:?}",
        c.warnings()
    );
    let c = Config::parse(MIN).unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}

#[test]
fn secret_is_not_printed() {
    let s = Secret::new("hunter2-token");
    assert!(!format!("{s:?} {s}").contains("hunter2"));
}

/// An inline `gitea.token` is a `Secret` too: a config printed with `{:?}` (a panic, a
/// debug log) does not show it.
#[test]
fn an_inline_token_is_not_in_the_config_s_debug_output() {
    let c = Config::parse(
        "[gitea]\nurl = \"https://git.example.com\"\ntoken = \"hunter2-token\"\n\n\
         [[source]]\norg = \"acme\"\n",
    )
    .expect("config");
    assert_eq!(
        c.gitea
            .token()
            .expect("token")
            .map(|t| t.expose().to_string()),
        Some("hunter2-token".to_string())
    );
    assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
}

/// One reader for every secret file: missing names the key and the path, an empty first
/// line is refused (the NATS files too, which were read without that check).
#[test]
fn every_secret_file_is_read_once_the_same_way() {
    let dir = tempfile::tempdir().expect("dir");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n  \nsecond line\n").expect("write");
    let good = dir.path().join("good");
    std::fs::write(&good, "  s3cret \nignored\n").expect("write");
    let missing = dir.path().join("missing");
    assert_eq!(
        Secret::read_file("nats.password_file", &good)
            .expect("read")
            .expose(),
        "s3cret"
    );
    let err = Secret::read_file("nats.password_file", &empty).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "nats.password_file"),
        "{err}"
    );
    let err = Secret::read_file("receiver[0].secret_file", &missing).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Secret { key, path, .. }
            if key == "receiver[0].secret_file" && *path == missing),
        "{err}"
    );
    let c = Config::parse(&format!(
        "{MIN}[nats]\nuser = \"u\"\npassword_file = {:?}\n",
        empty.display().to_string()
    ))
    .expect("valid");
    let err = c.check_secrets().unwrap_err();
    assert!(err.to_string().contains("nats.password_file"), "{err}");
    assert!(err.to_string().contains("is empty"), "{err}");
}
