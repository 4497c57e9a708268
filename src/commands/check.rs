//! `check`: prove a config works before a deploy, one line per check.

use std::path::Path;

use super::Reported;
use crate::config::Config;
use crate::gitea::GiteaClient;
use crate::nats;
use crate::telemetry::Telemetry;

struct Report {
    failed: usize,
}

impl Report {
    fn line(&mut self, ok: bool, what: &str, detail: impl std::fmt::Display) {
        if !ok {
            self.failed += 1;
        }
        crate::say!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
    }
}

/// Every check, one line each on stdout; a failed one makes the command fail (exit 1) without
/// more on stderr: its line said why.
pub async fn check(path: &Path, cfg: &Config) -> anyhow::Result<()> {
    let mut r = Report { failed: 0 };
    r.line(
        true,
        "config",
        format!("{} ({} sources)", path.display(), cfg.sources.len()),
    );
    if let Some(w) = cfg.inline_token_warning(path) {
        crate::say!("warn config: {w}");
    }
    if cfg.sources.iter().any(|s| s.all) {
        crate::say!(
            "warn config: a source has all = true: every org and repository the token sees is followed, private ones included, now and as they appear"
        );
    }
    // The command's own metrics and health: nothing serves them, the happenings still log.
    let telemetry = Telemetry::new();
    check_gitea(cfg, &telemetry, &mut r).await;
    check_nats(cfg, &telemetry, &mut r).await;
    match r.failed {
        0 => Ok(()),
        n => Err(Reported(format!("{n} checks failed")).into()),
    }
}

async fn check_gitea(cfg: &Config, telemetry: &Telemetry, r: &mut Report) {
    let token = match cfg.gitea.token() {
        Ok(t) => t,
        Err(e) => return r.line(false, "gitea token", e),
    };
    let mut gcfg = cfg.gitea.clone();
    gcfg.max_retries = 1;
    let client = match GiteaClient::new(&gcfg, token, telemetry.clone()) {
        Ok(c) => c,
        Err(e) => return r.line(false, "gitea", e),
    };
    if let Some(ca) = &cfg.gitea.tls_ca_file {
        r.line(
            true,
            "gitea tls",
            format!("verified against {} and the system roots", ca.display()),
        );
    }
    if cfg.gitea.tls_insecure_skip_verify {
        crate::say!(
            "warn gitea tls: certificate verification is OFF (gitea.tls_insecure_skip_verify)"
        );
    }
    match client.version().await {
        Ok(v) => r.line(
            true,
            "gitea",
            format!(
                "{} answers, version {v}",
                crate::config::without_userinfo(&cfg.gitea.url)
            ),
        ),
        Err(e) => return r.line(false, "gitea", e),
    }
    if client.has_token() {
        match client.current_user().await {
            Ok(u) if u.is_admin => {
                r.line(
                    true,
                    "gitea token",
                    format!(
                        "belongs to {}, a site admin: every feed row is visible",
                        u.name()
                    ),
                );
                crate::say!(
                    "warn gitea token: a site admin's token reads every repository of the instance, private ones included: whoever reads the stream (or a relay receiver) reads what only their members may; prefer a read-only user that is a member of the orgs it follows (docs/least-privilege.md)"
                );
            }
            Ok(u) => {
                r.line(
                    true,
                    "gitea token",
                    format!("belongs to {}, not a site admin", u.name()),
                );
                crate::say!(
                    "warn gitea token: not an admin's, so no feed but {}'s own shows rows made by the Gitea Actions bot (pushes and tags made with a workflow's token) or by users and orgs with private visibility or hidden activity (Gitea's ActivityQueryCondition); kinds = [\"refs\"] publishes their pushes from the branches and tags; see docs/least-privilege.md",
                    u.name()
                );
            }
            Err(e) => r.line(false, "gitea token", e),
        }
    } else {
        r.line(
            true,
            "gitea token",
            "none: anonymous access sees public activity only",
        );
    }
    match client.learn_page_limit().await {
        Ok(n) => r.line(true, "gitea page size", format!("{n} rows per request")),
        Err(e) => r.line(false, "gitea page size", e),
    }
    for source in cfg.sources() {
        match client.check_visible(&source.spec).await {
            Ok(()) => r.line(
                true,
                &format!("source {}", source.spec),
                format!(
                    "visible, every {}",
                    humantime::format_duration(source.interval)
                ),
            ),
            Err(e) => {
                r.line(false, &format!("source {}", source.spec), e);
                continue;
            }
        }
        match client.feed_page_sized(&source.spec, 1, 1, None).await {
            Ok(p) => r.line(
                true,
                &format!("feed {}", source.spec),
                match (p.total, p.linked) {
                    (Some(t), true) => format!("{t} rows (X-Total-Count), with a Link header"),
                    (Some(t), false) => format!(
                        "{t} rows (X-Total-Count), no Link header (as Gitea's feeds): paged by the total"
                    ),
                    (None, true) => "no X-Total-Count, a Link header: paged by Link".to_string(),
                    (None, false) => {
                        "neither X-Total-Count nor Link: paged while pages come full".to_string()
                    }
                },
            ),
            Err(e) => r.line(false, &format!("feed {}", source.spec), e),
        }
    }
}

async fn check_nats(cfg: &Config, telemetry: &Telemetry, r: &mut Report) {
    let n = &cfg.nats;
    let auth = if let Some(p) = &n.creds_file {
        format!("credentials file {}", p.display())
    } else if let Some(p) = &n.nkey_file {
        format!("nkey from {}", p.display())
    } else if let Some(p) = &n.token_file {
        format!("token from {}", p.display())
    } else if let Some(u) = &n.user {
        format!("user {u}, password from a file")
    } else {
        "none".to_string()
    };
    let tls = match (&n.tls_ca_file, &n.tls_cert_file) {
        (Some(ca), Some(cert)) => format!(
            "required, CA {}, client certificate {}",
            ca.display(),
            cert.display()
        ),
        (Some(ca), None) => format!("required, CA {}", ca.display()),
        (None, Some(cert)) => format!(
            "required, system roots, client certificate {}",
            cert.display()
        ),
        (None, None) => "as the server asks (system roots)".to_string(),
    };
    crate::say!("info nats auth: {auth}; tls: {tls}");
    let client = match nats::connect(&cfg.nats, telemetry).await {
        Ok(c) => c,
        Err(e) => return r.line(false, "nats", e),
    };
    let info = client.server_info();
    r.line(
        true,
        "nats",
        format!(
            "{} answers (server {} version {}, supported: 2.10 or newer)",
            crate::config::without_userinfo(&cfg.nats.url),
            info.server_name,
            info.version
        ),
    );
    let js = nats::jetstream(client);
    match js.query_account().await {
        Ok(a) => r.line(
            true,
            "jetstream",
            format!("on ({} streams in the account)", a.streams),
        ),
        Err(e) => return r.line(false, "jetstream", format!("not usable: {e}")),
    }
    for which in nats::event_streams(&cfg.nats) {
        check_stream(&js, cfg, &which, r).await;
    }
    check_bucket(&js, cfg, r).await;
    if cfg.ha.enabled {
        check_leases(&js, cfg, r).await;
    }
}

/// `[ha]`: the lease bucket, the instances alive and who holds which source since when.
async fn check_leases(js: &async_nats::jetstream::Context, cfg: &Config, r: &mut Report) {
    use crate::ha::lease::LeaseBucket;
    let what = format!("lease bucket {}", cfg.ha.lease_bucket);
    let bucket = match LeaseBucket::find(js, &cfg.ha).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return r.line(
                true,
                &what,
                "missing: `run` creates it (per-key TTL on 2.11+, max_age on 2.10)",
            );
        }
        Err(e) => return r.line(false, &what, e),
    };
    let view = match bucket.view(std::time::Duration::from_secs(5)).await {
        Ok(v) => v,
        Err(e) => return r.line(false, &what, e),
    };
    r.line(
        true,
        &what,
        format!(
            "keys expire after {} ({}); {} instance(s) alive: {}",
            humantime::format_duration(cfg.ha.lease_ttl),
            if bucket.per_key_ttl() {
                "per-key TTL"
            } else {
                "the bucket's max_age"
            },
            view.instances.len(),
            view.instances
                .values()
                .map(|e| format!(
                    "{} (up since {})",
                    e.holder.instance,
                    e.holder.since.to_rfc3339()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    for source in cfg.sources() {
        match view.leases.get(&source.spec) {
            Some(e) => crate::say!(
                "info lease {}: held by {} since {}",
                source.spec,
                e.holder.instance,
                e.holder.since.to_rfc3339()
            ),
            None => crate::say!(
                "info lease {}: not held (no instance polls it now)",
                source.spec
            ),
        }
    }
}

/// An events' stream as it is, never created or changed here.
async fn check_stream(
    js: &async_nats::jetstream::Context,
    cfg: &Config,
    which: &nats::EventStream<'_>,
    r: &mut Report,
) {
    let n = &cfg.nats;
    let what = format!("stream {}", which.name);
    let info = match nats::inspect_stream(js, which).await {
        Ok(nats::Found::Exists(info)) => info,
        Ok(nats::Found::Missing) => {
            return r.line(
                true,
                &what,
                format!(
                    "missing: run will create it ({} repositories' events: subjects [\"{}.>\"], \
                     R{}, max age {}, max {} bytes, duplicate window {})",
                    which.visibility.as_str(),
                    which.prefix,
                    n.replicas,
                    humantime::format_duration(n.max_age),
                    n.max_bytes,
                    humantime::format_duration(n.duplicate_window)
                ),
            );
        }
        Err(e) => return r.line(false, &what, e),
    };
    if let Err(e) = nats::takes_our_subjects(&info, which) {
        return r.line(false, &what, e);
    }
    let c = &info.config;
    let bounds = if nats::unbounded(c) {
        "unbounded".to_string()
    } else {
        format!(
            "max age {}, max bytes {}, max messages {}",
            if c.max_age.is_zero() {
                "none".to_string()
            } else {
                humantime::format_duration(c.max_age).to_string()
            },
            if c.max_bytes < 0 {
                "none".to_string()
            } else {
                c.max_bytes.to_string()
            },
            if c.max_messages < 0 {
                "none".to_string()
            } else {
                c.max_messages.to_string()
            },
        )
    };
    r.line(
        true,
        &what,
        format!(
            "subjects {:?}, duplicate window {}, {bounds}, {} messages, {} bytes",
            c.subjects,
            humantime::format_duration(c.duplicate_window),
            info.state.messages,
            info.state.bytes
        ),
    );
    crate::say!("info {what} placement: {}", nats::placement(&info));
    if nats::unbounded(c) {
        crate::say!(
            "warn {what}: unbounded (no max age, bytes or messages): it grows until the \
             server's disk is full; set limits on it (the sourcer uses an existing stream as it is)"
        );
    }
    if c.num_replicas != n.replicas {
        crate::say!(
            "warn {what}: has {} replicas, nats.replicas says {} (an existing stream is used as it is)",
            c.num_replicas,
            n.replicas
        );
    }
}

/// The bucket as it is, never created here; its cursors and lost history.
async fn check_bucket(js: &async_nats::jetstream::Context, cfg: &Config, r: &mut Report) {
    let n = &cfg.nats;
    let what = format!("bucket {}", n.cursor_bucket);
    let info = match nats::inspect_bucket(js, n).await {
        Ok(nats::Found::Exists(info)) => info,
        Ok(nats::Found::Missing) => {
            return r.line(
                true,
                &what,
                format!(
                    "missing: run will create it (R{}); no cursors yet",
                    n.replicas
                ),
            );
        }
        Err(e) => return r.line(false, &what, e),
    };
    let kv = match js.get_key_value(&n.cursor_bucket).await {
        Ok(kv) => kv,
        Err(e) => return r.line(false, &what, e),
    };
    let store = crate::store::CursorStore::new(kv);
    match store.list().await {
        Ok(list) => {
            r.line(true, &what, format!("{} cursors", list.len()));
            crate::say!("info {what} placement: {}", nats::placement(&info));
            for (spec, stored) in list {
                if let Some(gap) = &stored.cursor.gap {
                    crate::say!(
                        "warn history {spec}: lost between {} and {}: Gitea deleted it before it was read",
                        super::cursors::fmt_time(gap.from),
                        super::cursors::fmt_time(gap.to)
                    );
                }
                if let Some(p) = super::cursors::pinned_note(&stored.cursor) {
                    crate::say!(
                        "warn cursor {spec}: {p}: a second of the feed it could not prove whole; newer rows are published, the position waits (the log says why)"
                    );
                }
            }
        }
        Err(e) => r.line(false, &what, e),
    }
}
