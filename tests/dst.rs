//! Daylight saving time end to end: a Gitea in `Europe/Berlin` (the fake, with
//! `SimOptions::time_zone`), history across both clock changes of 2026, and the sourcer's
//! day-by-day catch-up and `backfill` over it.
//!
//! What Gitea does (shared/gitea/FACTS.md, "Time zones"): `created` carries the offset in
//! force at that instant (`+01:00` in winter, `+02:00` in summer), and `date=D` is the
//! 86,400 s from local midnight of D. So on 2026-10-25 (25 hours) the last local hour,
//! 23:00-24:00 +01:00, is returned by no `date=` query, and on 2026-03-29 (23 hours)
//! `date=2026-03-29` also returns 2026-03-30 00:00-01:00 +02:00.
//!
//! Every stream here has a one-second duplicate window, and repeats are counted per
//! identity in the stream: JetStream's de-duplication is not trusted to hide them.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use gitea_sim::chrono_tz::Europe::Berlin;
use gitea_sim::{FakeGitea, NewAction, SimOptions};
use support::{Msg, Nats, config, msg_identity, read_stream, run, sourcer, stream_count};

const STREAM: &str = "GITEA_EVENTS";
const REPOS: [&str; 3] = ["acme/widgets", "acme/gadgets", "acme/dot.files"];
const ACTORS: [&str; 3] = ["alice", "bob", "carol"];

/// Berlin local time (the earlier instant when it exists twice).
fn berlin(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<FixedOffset> {
    Berlin
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .earliest()
        .unwrap_or_else(|| panic!("{y}-{mo}-{d} {h}:{mi}:{s} does not exist in Berlin"))
        .fixed_offset()
}

/// Unix second `t` as Gitea writes it (Berlin, offset of that instant).
fn local(t: i64) -> DateTime<FixedOffset> {
    Berlin.timestamp_opt(t, 0).unwrap().fixed_offset()
}

/// One action the test made, with the `created` Gitea shows for it.
#[derive(Clone, Debug)]
struct Made {
    identity: String,
    created: DateTime<FixedOffset>,
    what: String,
}

/// The Berlin Gitea with history from `from` to `to` (UTC instants): one action in every
/// hour (by UTC, so the 25th hour of a long day gets one and the missing hour of a short
/// day none), a same-second tie now and then, and extra rows in the awkward hours.
struct History {
    g: FakeGitea,
    made: Vec<Made>,
}

impl History {
    async fn new() -> History {
        let g = FakeGitea::start(SimOptions {
            time_zone: Some(Berlin),
            ..SimOptions::default()
        })
        .await
        .expect("start fake gitea");
        g.add_org("acme");
        for u in ACTORS {
            g.add_user(u);
        }
        for r in REPOS {
            let (o, n) = r.split_once('/').expect("owner/name");
            g.add_repo(o, n);
        }
        let mut h = History {
            g,
            made: Vec::new(),
        };
        h.hourly(berlin(2026, 3, 27, 0, 0, 0), berlin(2026, 4, 1, 0, 0, 0));
        h.hourly(berlin(2026, 10, 23, 0, 0, 0), berlin(2026, 10, 28, 0, 0, 0));
        // The first hour after the 23-hour day (returned by date=03-29 and date=03-30).
        for (mi, s) in [(0, 0), (0, 1), (17, 0), (30, 0), (30, 0), (59, 59)] {
            h.push(berlin(2026, 3, 30, 0, mi, s));
        }
        // Around the gap itself: the last winter second and the first summer one.
        h.push(berlin(2026, 3, 29, 1, 59, 59));
        h.push(berlin(2026, 3, 29, 3, 0, 0));
        // The 25th hour of 2026-10-25 (returned by no date=), ties included.
        for (mi, s) in [
            (0, 0),
            (0, 0),
            (12, 0),
            (30, 0),
            (45, 30),
            (59, 59),
            (59, 59),
        ] {
            h.push(berlin(2026, 10, 25, 23, mi, s));
        }
        // 02:30 happens twice on 2026-10-25: once at +02:00, once at +01:00.
        let first = berlin(2026, 10, 25, 2, 30, 0);
        h.push(first);
        h.push(local(first.timestamp() + 3600));
        // The first second of 2026-10-26, which belongs to date=10-26 only.
        h.push(berlin(2026, 10, 26, 0, 0, 0));
        h
    }

    fn hourly(&mut self, from: DateTime<FixedOffset>, to: DateTime<FixedOffset>) {
        let mut t = from.timestamp();
        let mut i = 0u64;
        while t < to.timestamp() {
            // A minute and second that vary from hour to hour.
            let at = t + ((i * 1_237 + 11) % 3_600) as i64;
            let n = if i % 7 == 3 { 3 } else { 1 };
            for _ in 0..n {
                self.push(local(at));
            }
            t += 3_600;
            i += 1;
        }
    }

    /// One action at `at`, of a kind and repository that vary; every identity is unique.
    fn push(&mut self, at: DateTime<FixedOffset>) {
        let seq = self.made.len();
        let repo = REPOS[seq % REPOS.len()];
        let actor = ACTORS[(seq / 3) % ACTORS.len()];
        let stamp = at.to_rfc3339();
        let a = match seq % 3 {
            0 => {
                NewAction::create_issue(actor, repo, seq as i64 + 1, &format!("row {seq} {stamp}"))
            }
            1 => NewAction::push(actor, repo, "main", 1 + seq % 2),
            _ => NewAction::comment(actor, repo, 1, &format!("row {seq} {stamp}")),
        };
        // The org copy is a second late now and then, but never on another local date
        // than the original (the org feed shows the copy's `created`).
        let delay = (seq % 2) as i64;
        let delay = if local(at.timestamp() + delay).date_naive() == at.date_naive() {
            delay
        } else {
            0
        };
        let a = a.at(at).copy_delay(delay);
        let ident = a.identity();
        let what = format!("#{seq} {} {} in {repo}", at.to_rfc3339(), a.op_type);
        self.g.push_action(a);
        self.made.push(Made {
            identity: ident,
            created: at,
            what,
        });
    }

    /// The actions whose local date (as `created` shows it) is in `since..=until`.
    fn on_days(&self, since: NaiveDate, until: NaiveDate) -> Vec<&Made> {
        self.made
            .iter()
            .filter(|m| (since..=until).contains(&m.created.date_naive()))
            .collect()
    }
}

/// Per identity, how many messages of the stream carry it (probe messages left out).
fn counts(msgs: &[Msg]) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for m in msgs
        .iter()
        .filter(|m| !m.subject.starts_with("gitea.probe."))
    {
        *c.entry(msg_identity(m)).or_default() += 1;
    }
    c
}

/// Compares the stream with `want`: prints every missing, repeated and unexpected row
/// (grouped per local hour), and returns (missing, repeated, unexpected).
fn compare(label: &str, want: &[&Made], all: &[Made], msgs: &[Msg]) -> (usize, usize, usize) {
    let c = counts(msgs);
    let mut missing: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut repeated = Vec::new();
    for m in want {
        match c.get(&m.identity).copied().unwrap_or(0) {
            0 => missing
                .entry(m.created.format("%Y-%m-%d %H:00%:z").to_string())
                .or_default()
                .push(&m.what),
            1 => {}
            n => repeated.push(format!("x{n} {}", m.what)),
        }
    }
    let wanted: std::collections::HashSet<&str> =
        want.iter().map(|m| m.identity.as_str()).collect();
    let unexpected: Vec<String> = all
        .iter()
        .filter(|m| !wanted.contains(m.identity.as_str()) && c.contains_key(&m.identity))
        .map(|m| format!("x{} {}", c[&m.identity], m.what))
        .collect();
    let n_missing: usize = missing.values().map(Vec::len).sum();
    println!(
        "{label}: {} rows wanted, {} messages, {n_missing} missing, {} repeated, {} unexpected",
        want.len(),
        msgs.len(),
        repeated.len(),
        unexpected.len()
    );
    for (hour, rows) in &missing {
        println!(
            "{label}: MISSING {} rows of local hour {hour}: {}",
            rows.len(),
            rows.join("; ")
        );
    }
    for r in &repeated {
        println!("{label}: REPEATED {r}");
    }
    for r in &unexpected {
        println!("{label}: UNEXPECTED {r}");
    }
    (n_missing, repeated.len(), unexpected.len())
}

/// Waits until the stream holds `n` messages, or until it has stopped growing while the
/// sourcer went on polling live (`polls` more feed requests without `date=` after the last
/// growth: the day-by-day walk, which may cross many empty days, uses `date=`); at most
/// `secs`. Returns the count.
async fn settle(g: &FakeGitea, url: &str, n: u64, polls: usize, secs: u64) -> u64 {
    let feed_requests = || {
        g.requests()
            .iter()
            .filter(|r| r.path.contains("/activities/feeds") && !r.query.contains("date="))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = (stream_count(url, STREAM).await, feed_requests());
    loop {
        let count = stream_count(url, STREAM).await;
        if count >= n || Instant::now() >= deadline {
            return count;
        }
        let requests = feed_requests();
        if count != last.0 {
            last = (count, requests);
        } else if count > 0 && requests >= last.1 + polls {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_across_both_dst_changes_publishes_every_row_once() {
    let nats = Nats::start().await;
    let h = History::new().await;
    let want: Vec<&Made> = h.made.iter().collect();
    assert_eq!(h.g.action_count(), want.len());
    let mut cfg = config(
        &h.g.url(),
        &nats.url(),
        "start = \"beginning\"\nlive_pages = 2",
        "[[source]]\norg = \"acme\"",
    );
    cfg.nats.duplicate_window = Duration::from_secs(1);
    let started = Instant::now();
    let running = run(cfg);
    // The whole history, or the stream stops growing while the sourcer goes on polling
    // (a catch-up that lost rows never gets them later).
    let got = settle(&h.g, &nats.url(), want.len() as u64, 10, 60).await;
    // A few more polls after that, so that a late repeat would show.
    let before = h.g.requests().len();
    support::wait_for(20, "a few more polls", || {
        let n = h.g.requests().len();
        async move { n >= before + 6 }
    })
    .await;
    running.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    let days: Vec<String> =
        h.g.requests()
            .iter()
            .filter_map(|r| {
                r.query
                    .split('&')
                    .find_map(|p| p.strip_prefix("date="))
                    .map(str::to_string)
            })
            .collect();
    println!(
        "catch-up: {got} published of {} in {:?}, {} requests with date= (first {:?}, last {:?})",
        want.len(),
        started.elapsed(),
        days.len(),
        days.first(),
        days.last()
    );
    let (missing, repeated, unexpected) = compare("catch-up", &want, &h.made, &msgs);
    assert_eq!(
        (missing, repeated, unexpected),
        (0, 0, 0),
        "catch-up across both DST changes: (missing, repeated, unexpected) rows"
    );
}

/// A config file for the binary: the org, a one-second duplicate window.
fn write_config(dir: &std::path::Path, gitea: &str, nats: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[gitea]\nurl = \"{gitea}\"\nrequests_per_second = 200\nburst = 50\n\
             [nats]\nurl = \"{nats}\"\nduplicate_window = \"1s\"\n\
             [poll]\ninterval = \"200ms\"\nstart = \"beginning\"\nlive_pages = 2\n\
             [[source]]\norg = \"acme\"\n"
        ),
    )
    .expect("write config");
    path
}

async fn backfill(config: &std::path::Path, since: &str, until: &str) -> String {
    let (code, out, err) = sourcer(config, &["backfill", "--since", since, "--until", until]).await;
    let summary = out.lines().last().unwrap_or("").to_string();
    println!("backfill --since {since} --until {until}: exit {code:?}: {summary}");
    assert_eq!(code, Some(0), "backfill {since}..{until}:\n{out}\n{err}");
    summary
}

/// Waits until a one-second duplicate window has provably passed since the call: on a
/// probe stream of its own with the same window (so the events' stream holds no probe),
/// the same probe id is accepted twice. After that, a second publish of an event id to
/// the events' stream is stored, not dropped.
async fn duplicate_window_passed(nats: &Nats) {
    let js = async_nats::jetstream::new(nats.client().await);
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "DST_PROBE".to_string(),
        subjects: vec!["dstprobe.>".to_string()],
        duplicate_window: Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .expect("probe stream");
    let probe = || async {
        js.send_publish(
            "dstprobe.x",
            async_nats::jetstream::message::PublishMessage::build()
                .payload("p".into())
                .message_id("probe"),
        )
        .await
        .expect("publish probe")
        .await
        .expect("probe ack")
        .duplicate
    };
    assert!(!probe().await, "the first probe is new");
    support::wait_for(10, "the duplicate window to pass", || async {
        !probe().await
    })
    .await;
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_across_both_dst_changes_publishes_every_row_once() {
    let nats = Nats::start().await;
    let h = History::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = write_config(dir.path(), &h.g.url(), &nats.url());
    // Two backfills that meet at the 23-hour day, with the duplicate window passed
    // between them: a row published by both would be in the stream twice.
    backfill(&cfg, "2026-03-27", "2026-03-29").await;
    duplicate_window_passed(&nats).await;
    backfill(&cfg, "2026-03-30", "2026-10-27").await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    let want = h.on_days(day("2026-03-27"), day("2026-10-27"));
    assert_eq!(want.len(), h.made.len());
    let (missing, repeated, unexpected) = compare("backfill", &want, &h.made, &msgs);
    assert_eq!(
        (missing, repeated, unexpected),
        (0, 0, 0),
        "backfill across both DST changes: (missing, repeated, unexpected) rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_the_25_hour_day_publishes_exactly_its_local_day() {
    let nats = Nats::start().await;
    let h = History::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = write_config(dir.path(), &h.g.url(), &nats.url());
    backfill(&cfg, "2026-10-25", "2026-10-25").await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    let want = h.on_days(day("2026-10-25"), day("2026-10-25"));
    let last_hour = want
        .iter()
        .filter(|m| m.created.format("%H %:z").to_string() == "23 +01:00")
        .count();
    assert!(
        last_hour >= 8,
        "the history has rows in the 25th hour: {last_hour}"
    );
    let (missing, repeated, unexpected) = compare("backfill 10-25", &want, &h.made, &msgs);
    assert_eq!(
        (missing, repeated, unexpected),
        (0, 0, 0),
        "backfill of 2026-10-25 (25 hours): (missing, repeated, unexpected) rows"
    );
}
