//! The engine mode ([`Engine`]): the action rows mirrored into a real database table with
//! Gitea's schema and indexes, so that MariaDB, PostgreSQL or SQLite decide the order of
//! same-second rows, exactly as under a real Gitea. Below the world: it knows rows and
//! feed keys ([`FeedKey`]), not the [`World`](crate::World); the world records
//! [`TableOp`]s and the server applies them ([`Table::apply`]) before it asks the
//! table for a page ([`Table::page`]).
//!
//! Gitea sorts a feed by `created_unix` alone (go-gitea/gitea
//! models/activities/action_list.go `GetFeeds`: `Desc("`action`.created_unix")`), so the
//! order of the rows of one second is the database's. MariaDB (a filesort with a priority
//! queue) and PostgreSQL (a top-N heapsort) return them in an order that depends on `LIMIT`
//! and `OFFSET` and is the same on every re-read: a tie cut by a page boundary can show
//! one row on both pages and hide another for good.

use std::fmt::Write as _;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection, Row, SqliteConnection};

use crate::rows::FeedKey;

/// Where the simulated action table lives, hence who orders the rows of one second
/// ([`SimOptions::engine`](crate::SimOptions::engine)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Engine {
    /// No database: the rows of one second come back in a fresh random order on every
    /// request (seeded).
    #[default]
    Random,
    /// An in-memory SQLite database (one connection), embedded.
    Sqlite,
    /// A MariaDB server (`mysql://root@127.0.0.1:3306/test`, or `GITEA_SIM_MARIADB_URL`):
    /// one table per simulator, `action_<pid>_<n>_<random>` in database `test`.
    MariaDb,
    /// A PostgreSQL server (`postgres://postgres@127.0.0.1:5432/test`, or
    /// `GITEA_SIM_POSTGRES_URL`): one schema per simulator, `sim_<pid>_<n>_<random>`, with
    /// its table `action`.
    Postgres,
}

/// The environment variable [`Engine::from_env`] reads.
pub const ENGINE_ENV: &str = "GITEA_SIM_ENGINE";

impl Engine {
    /// Every engine, [`Engine::Random`] first.
    pub const ALL: [Engine; 4] = [
        Engine::Random,
        Engine::Sqlite,
        Engine::MariaDb,
        Engine::Postgres,
    ];

    /// `random`, `sqlite`, `mariadb` or `postgres`: the value of `GITEA_SIM_ENGINE`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Random => "random",
            Engine::Sqlite => "sqlite",
            Engine::MariaDb => "mariadb",
            Engine::Postgres => "postgres",
        }
    }

    /// The engine named `name` (as [`Engine::name`] writes it; case-insensitive).
    pub fn parse(name: &str) -> Option<Engine> {
        Engine::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The engine `GITEA_SIM_ENGINE` names; unset or empty is [`Engine::Random`]. This is
    /// how a test suite runs under each engine.
    ///
    /// # Panics
    ///
    /// On any other value (this crate serves tests only: a typo must not silently run
    /// the suite under another engine).
    pub fn from_env() -> Engine {
        Engine::from_value(&std::env::var(ENGINE_ENV).unwrap_or_default())
    }

    /// [`Engine::from_env`] for the value `v`.
    pub(crate) fn from_value(v: &str) -> Engine {
        if v.trim().is_empty() {
            return Engine::Random;
        }
        match Engine::parse(v) {
            Some(e) => e,
            None => {
                let valid: Vec<&str> = Engine::ALL.iter().map(|e| e.name()).collect();
                panic!(
                    "{ENGINE_ENV}={v:?} is not an engine; valid values: {} (unset or empty = random)",
                    valid.join(", ")
                )
            }
        }
    }

    /// The URL this engine connects to (`None` for [`Engine::Random`]).
    pub fn url(self) -> Option<String> {
        let env = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        match self {
            Engine::Random => None,
            Engine::Sqlite => Some("sqlite::memory:".to_string()),
            Engine::MariaDb => Some(env(
                "GITEA_SIM_MARIADB_URL",
                "mysql://root@127.0.0.1:3306/test",
            )),
            Engine::Postgres => Some(env(
                "GITEA_SIM_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            )),
        }
    }

    /// The command that starts this engine's server on this machine.
    pub fn start_command(self) -> &'static str {
        match self {
            Engine::Random | Engine::Sqlite => "(embedded: nothing to start)",
            Engine::MariaDb => "sudo service mariadb start",
            Engine::Postgres => "sudo service postgresql start",
        }
    }
}

/// One row of Gitea's `action` table (go-gitea/gitea models/activities/action.go
/// `Action`). `content` is short (the op name): the JSON is rendered by the world, the
/// table only decides membership and order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableRow {
    pub(crate) id: i64,
    pub(crate) user_id: i64,
    pub(crate) op_type: i32,
    pub(crate) act_user_id: i64,
    pub(crate) repo_id: i64,
    pub(crate) comment_id: i64,
    pub(crate) ref_name: Box<str>,
    pub(crate) is_private: bool,
    pub(crate) content: Box<str>,
    pub(crate) created_unix: i64,
}

/// A change of the action table that the world made and the server has not applied yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TableOp {
    /// Rows that entered the feeds (an insert, or a late action revealed).
    Insert(TableRow),
    /// `is_deleted = true` on the rows `first..=last` (a soft-deleted action and its
    /// copies).
    SoftDelete { first: i64, last: i64 },
    /// `DELETE ... WHERE created_unix < before` (go-gitea/gitea
    /// models/activities/action.go `DeleteOldActions`).
    Purge { before: i64 },
    /// `DELETE` of the rows `first..=last` (an action and its copies, hard-deleted: an
    /// issue's rows, or any deletion in Forgejo mode).
    Delete { first: i64, last: i64 },
    /// `DELETE ... WHERE repo_id = ?` (go-gitea/gitea services/repository/delete.go
    /// `DeleteRepositoryDirectly`: `db.DeleteBeans(ctx, ..., &activities_model.Action{RepoID:
    /// repoID}, ...)`).
    DeleteRepo { repo_id: i64 },
}

/// A connection to one of the engines.
enum Conn {
    My(MySqlConnection),
    Pg(PgConnection),
    Lite(SqliteConnection),
}

/// Rows per multi-row `INSERT` (11 columns: far below every engine's limits).
const INSERT_BATCH: usize = 2000;

/// Numbers the tables and schemas of this process.
static TABLES: AtomicU64 = AtomicU64::new(1);

impl Conn {
    async fn execute(&mut self, sql: String) -> Result<u64, sqlx::Error> {
        let q = sqlx::raw_sql(AssertSqlSafe(sql));
        Ok(match self {
            Conn::My(c) => q.execute(c).await?.rows_affected(),
            Conn::Pg(c) => q.execute(c).await?.rows_affected(),
            Conn::Lite(c) => q.execute(c).await?.rows_affected(),
        })
    }

    /// Column `id` of every row of `sql` (an integer), in the order the engine sent them.
    async fn ids(&mut self, sql: String) -> Result<Vec<i64>, sqlx::Error> {
        let q = sqlx::raw_sql(AssertSqlSafe(sql));
        match self {
            Conn::My(c) => q
                .fetch_all(c)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect(),
            Conn::Pg(c) => q
                .fetch_all(c)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect(),
            Conn::Lite(c) => q
                .fetch_all(c)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect(),
        }
    }

    /// The count that `sql` (`SELECT count(...) ...`) answers.
    async fn count(&mut self, sql: String) -> Result<usize, sqlx::Error> {
        let q = sqlx::raw_sql(AssertSqlSafe(sql));
        let n: i64 = match self {
            Conn::My(c) => q.fetch_one(c).await?.try_get(0)?,
            Conn::Pg(c) => q.fetch_one(c).await?.try_get(0)?,
            Conn::Lite(c) => q.fetch_one(c).await?.try_get(0)?,
        };
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// The first column (text) of every row of `sql`.
    async fn strings(&mut self, sql: String) -> Result<Vec<String>, sqlx::Error> {
        let q = sqlx::raw_sql(AssertSqlSafe(sql));
        match self {
            Conn::My(c) => q
                .fetch_all(c)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect(),
            Conn::Pg(c) => q
                .fetch_all(c)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect(),
            Conn::Lite(c) => q
                .fetch_all(c)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect(),
        }
    }

    async fn close(self) {
        let _ = match self {
            Conn::My(c) => c.close().await,
            Conn::Pg(c) => c.close().await,
            Conn::Lite(c) => c.close().await,
        };
    }
}

/// The action table of one simulator, on its engine.
pub(crate) struct Table {
    engine: Engine,
    /// `None` once dropped.
    conn: Option<Conn>,
    /// The table's name in SQL: `action`, or `action_<pid>_<n>_<random>` on MariaDB.
    name: String,
    /// PostgreSQL: the schema that holds the table (the connection's `search_path`).
    schema: Option<String>,
    /// Rows in the table, and at the last `ANALYZE`; rows changed since.
    rows: i64,
    analyzed_rows: i64,
    changed: i64,
}

/// An engine error for a request or a set-up step.
fn io_err(engine: Engine, what: &str, e: &sqlx::Error) -> io::Error {
    io::Error::other(format!("gitea-sim engine {}: {what}: {e}", engine.name()))
}

impl Table {
    /// Connect and create the table; `None` for [`Engine::Random`]. An engine that
    /// cannot be reached is an error naming it, its URL and the command that starts it.
    pub(crate) async fn open(engine: Engine) -> io::Result<Option<Table>> {
        match engine.url() {
            Some(url) => Table::open_at(engine, &url).await.map(Some),
            None => Ok(None),
        }
    }

    /// [`Table::open`] at `url`.
    pub(crate) async fn open_at(engine: Engine, url: &str) -> io::Result<Table> {
        let unreachable = |e: &dyn std::fmt::Display| {
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!(
                    "gitea-sim engine {} is unreachable at {url}: {e}; start it with `{}` \
                     (or pick another engine with {ENGINE_ENV}=random|sqlite|mariadb|postgres)",
                    engine.name(),
                    engine.start_command()
                ),
            )
        };
        let connect = async {
            Ok::<_, sqlx::Error>(match engine {
                Engine::MariaDb => Conn::My(MySqlConnection::connect(url).await?),
                Engine::Postgres => Conn::Pg(PgConnection::connect(url).await?),
                Engine::Sqlite | Engine::Random => {
                    Conn::Lite(SqliteConnection::connect(url).await?)
                }
            })
        };
        let mut conn = match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(unreachable(&e)),
            Err(_) => return Err(unreachable(&"no answer within 10 s")),
        };
        let n = TABLES.fetch_add(1, Ordering::Relaxed);
        let unique = format!("{}_{n}_{:08x}", std::process::id(), rand::random::<u32>());
        sweep(&mut conn, engine).await;
        let (name, schema) = match engine {
            Engine::MariaDb => (format!("action_{unique}"), None),
            Engine::Postgres => {
                let schema = format!("sim_{unique}");
                let create = format!("CREATE SCHEMA {schema}");
                conn.execute(create)
                    .await
                    .map_err(|e| io_err(engine, "create schema", &e))?;
                conn.execute(format!("SET search_path TO {schema}"))
                    .await
                    .map_err(|e| io_err(engine, "set search_path", &e))?;
                ("action".to_string(), Some(schema))
            }
            Engine::Sqlite | Engine::Random => ("action".to_string(), None),
        };
        for sql in create_table(engine, &name) {
            conn.execute(sql)
                .await
                .map_err(|e| io_err(engine, "create the action table", &e))?;
        }
        Ok(Table {
            engine,
            conn: Some(conn),
            name,
            schema,
            rows: 0,
            analyzed_rows: 0,
            changed: 0,
        })
    }

    pub(crate) fn engine(&self) -> Engine {
        self.engine
    }

    fn conn(&mut self) -> Result<&mut Conn, sqlx::Error> {
        self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Apply `ops` in order, in one transaction: consecutive inserts as multi-row
    /// `INSERT`s. An error means nothing was applied (rolled back), so the same `ops` can
    /// be applied again. Then refresh the planner's statistics when a tenth of the table
    /// changed since the last time, as InnoDB's `innodb_stats_auto_recalc` and
    /// PostgreSQL's autovacuum do in the background (here synchronously, so that the plan
    /// of a query only changes with the data and a re-read is answered in the same order).
    pub(crate) async fn apply(&mut self, ops: &[TableOp]) -> Result<(), sqlx::Error> {
        if ops.is_empty() {
            return Ok(());
        }
        let statements = self.statements(ops);
        let conn = self.conn()?;
        conn.execute("BEGIN".to_string()).await?;
        let mut inserted = 0i64;
        let mut changed = 0i64;
        for (sql, kind) in statements {
            match conn.execute(sql).await {
                Ok(n) => {
                    let n = i64::try_from(n).unwrap_or(i64::MAX);
                    changed = changed.saturating_add(n);
                    match kind {
                        Stmt::Insert => inserted = inserted.saturating_add(n),
                        Stmt::Delete => inserted = inserted.saturating_sub(n),
                        Stmt::Update => {}
                    }
                }
                Err(e) => {
                    let _ = conn.execute("ROLLBACK".to_string()).await;
                    return Err(e);
                }
            }
        }
        conn.execute("COMMIT".to_string()).await?;
        self.rows = self.rows.saturating_add(inserted).max(0);
        self.changed = self.changed.saturating_add(changed);
        if self.engine != Engine::Sqlite && self.changed * 10 >= self.analyzed_rows.max(1) {
            // Gitea never analyzes; InnoDB and PostgreSQL do it on their own after about
            // 10% of the rows changed. SQLite has no automatic statistics: none here either.
            let sql = match self.engine {
                Engine::MariaDb => format!("ANALYZE TABLE {}", self.name),
                _ => format!("ANALYZE {}", self.name),
            };
            if let Err(e) = self.conn()?.execute(sql).await {
                tracing::warn!(engine = self.engine.name(), error = %e, "ANALYZE failed");
            }
            self.analyzed_rows = self.rows;
            self.changed = 0;
        }
        Ok(())
    }

    fn statements(&self, ops: &[TableOp]) -> Vec<(String, Stmt)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            match &ops[i] {
                TableOp::Insert(_) => {
                    let mut sql = format!(
                        "INSERT INTO {} (id, user_id, op_type, act_user_id, repo_id, comment_id, \
                         is_deleted, ref_name, is_private, content, created_unix) VALUES ",
                        self.name
                    );
                    let mut n = 0;
                    while let Some(TableOp::Insert(r)) = ops.get(i) {
                        if n == INSERT_BATCH {
                            break;
                        }
                        if n > 0 {
                            sql.push(',');
                        }
                        // `write!` to a `String` cannot fail.
                        let _ = write!(
                            sql,
                            "({},{},{},{},{},{},false,{},{},{},{})",
                            r.id,
                            r.user_id,
                            r.op_type,
                            r.act_user_id,
                            r.repo_id,
                            r.comment_id,
                            literal(self.engine, &r.ref_name),
                            if r.is_private { "true" } else { "false" },
                            literal(self.engine, &r.content),
                            r.created_unix
                        );
                        n += 1;
                        i += 1;
                    }
                    out.push((sql, Stmt::Insert));
                }
                TableOp::SoftDelete { first, last } => {
                    // Gitea marks the rows of a deleted action with `is_deleted`; the feeds
                    // select `is_deleted = false` (models/activities/action.go
                    // `ActivityQueryCondition`, action_list.go `GetFeeds`).
                    out.push((
                        format!(
                            "UPDATE {} SET is_deleted = true WHERE id >= {first} AND id <= {last}",
                            self.name
                        ),
                        Stmt::Update,
                    ));
                    i += 1;
                }
                TableOp::Delete { first, last } => {
                    // go-gitea/gitea models/activities/action.go `DeleteIssueActions` deletes
                    // by `comment_id IN (...)` and by `repo_id`, `op_type` and `content LIKE
                    // 'INDEX|%'`; the table's `content` is the op name, so the world names
                    // the rows those conditions select, by id.
                    out.push((
                        format!(
                            "DELETE FROM {} WHERE id >= {first} AND id <= {last}",
                            self.name
                        ),
                        Stmt::Delete,
                    ));
                    i += 1;
                }
                TableOp::DeleteRepo { repo_id } => {
                    out.push((
                        format!("DELETE FROM {} WHERE repo_id = {repo_id}", self.name),
                        Stmt::Delete,
                    ));
                    i += 1;
                }
                TableOp::Purge { before } => {
                    // go-gitea/gitea models/activities/action.go `DeleteOldActions`:
                    // `Where("created_unix < ?", cutoff).Delete(&Action{})`.
                    out.push((
                        format!("DELETE FROM {} WHERE created_unix < {before}", self.name),
                        Stmt::Delete,
                    ));
                    i += 1;
                }
            }
        }
        out
    }

    /// One page of a feed as Gitea's `GetFeeds` reads it (go-gitea/gitea
    /// models/activities/action_list.go): for `page < 10` `SELECT * ... ORDER BY
    /// created_unix DESC LIMIT L OFFSET K` and a separate `count(*)`; from page 10 on the
    /// ids first, the count, then `SELECT * ... WHERE id IN (...) ORDER BY created_unix
    /// DESC`. Returns the row ids in the order the engine sent them, and the count.
    /// `hidden`: the actors the reader may not see (see [`feed_cond`]).
    pub(crate) async fn page(
        &mut self,
        key: FeedKey,
        range: Option<(i64, i64)>,
        hidden: &[i64],
        page: usize,
        limit: usize,
    ) -> Result<(Vec<i64>, usize), sqlx::Error> {
        let cond = feed_cond(key, range, hidden);
        let name = self.name.clone();
        let offset = page.saturating_sub(1).saturating_mul(limit);
        let conn = self.conn()?;
        let (ids, count) = if page < 10 {
            // `sess.Desc("`action`.created_unix").FindAndCount(&actions)`: the find, then
            // the count without order and limit.
            let ids = conn
                .ids(format!(
                    "SELECT * FROM {name} WHERE {cond} ORDER BY created_unix DESC \
                     LIMIT {limit} OFFSET {offset}"
                ))
                .await?;
            let count = conn
                .count(format!("SELECT count(*) FROM {name} WHERE {cond}"))
                .await?;
            (ids, count)
        } else {
            // "First, only query which IDs are necessary, and only then query all actions
            // to speed up the overall query."
            let page_ids = conn
                .ids(format!(
                    "SELECT id FROM {name} WHERE {cond} ORDER BY created_unix DESC \
                     LIMIT {limit} OFFSET {offset}"
                ))
                .await?;
            let count = conn
                .count(format!("SELECT count(id) FROM {name} WHERE {cond}"))
                .await?;
            let ids = if page_ids.is_empty() {
                // xorm's `In("id", [])` is `0=1`: no rows, so no query is needed.
                Vec::new()
            } else {
                let list: Vec<String> = page_ids.iter().map(i64::to_string).collect();
                conn.ids(format!(
                    "SELECT * FROM {name} WHERE id IN ({}) ORDER BY created_unix DESC",
                    list.join(",")
                ))
                .await?
            };
            (ids, count)
        };
        Ok((ids, count))
    }

    /// Drop the table (MariaDB) or schema (PostgreSQL) and close the connection; best
    /// effort, idempotent.
    pub(crate) async fn drop_table(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let sql = match (&self.schema, self.engine) {
            (Some(schema), _) => Some(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")),
            (None, Engine::MariaDb) => Some(format!("DROP TABLE IF EXISTS {}", self.name)),
            _ => None,
        };
        if let Some(sql) = sql
            && let Err(e) = conn.execute(sql).await
        {
            tracing::warn!(engine = self.engine.name(), error = %e, "could not drop the action table");
        }
        conn.close().await;
    }
}

/// What a statement of [`Table::apply`] does to the row count.
enum Stmt {
    Insert,
    Update,
    Delete,
}

/// The `WHERE` of a feed, as Gitea builds it for a signed-in site admin, plus the
/// visibility of actors for other readers (the simulator's reader can read every
/// repository, private ones included: repository permissions are not played):
///
/// * user and org feeds: go-gitea/gitea models/activities/action_list.go `GetFeeds`
///   skips `ActivityQueryCondition` for an admin: `user_id = ? AND is_deleted = false`
///   and the date;
/// * `only-performed-by`: models/activities/action.go `ActivityQueryCondition` adds
///   `act_user_id = ?` (`OnlyPerformedBy`);
/// * repository feed: `ActivityQueryCondition` with `RequestedRepo`: `repo_id = ? AND
///   user_id = act_user_id` (only the original rows, "repo's actions could have duplicate
///   items"); `IncludePrivate` is set by routers/api/v1/repo/repo.go
///   `ListRepoActivityFeeds`, so there is no `is_private` condition;
/// * `date=`: models/activities/action.go `FeedDateCond`: `created_unix >= dateLow AND
///   created_unix <= dateLow + 86399`;
/// * a reader who is not a site admin (or anonymous): `ActivityQueryCondition`'s
///   `act_user_id IN (SELECT id FROM user WHERE ...)` ("check activity visibility for
///   actor"), played as `act_user_id NOT IN (hidden)` with the hidden actors computed from
///   the world at query time (`World::hidden_actors`: the Actions bot, which has no `user`
///   row, users and orgs with private visibility, users who keep their activity private;
///   limited ones too for an anonymous reader). The same rows; only when someone is
///   hidden, so that a world without hidden actors is queried exactly as an admin's
///   (Gitea's subquery is always there for a non-admin, and may change the plan).
fn feed_cond(key: FeedKey, range: Option<(i64, i64)>, hidden: &[i64]) -> String {
    let mut cond = match key {
        FeedKey::Repo(id) => {
            format!("repo_id = {id} AND user_id = act_user_id AND is_deleted = false")
        }
        FeedKey::Recv(id) => format!("user_id = {id} AND is_deleted = false"),
        FeedKey::Actor(id) => {
            format!("user_id = {id} AND act_user_id = {id} AND is_deleted = false")
        }
    };
    if let Some((lo, end)) = range {
        let hi = end - 1;
        // `write!` to a `String` cannot fail.
        let _ = write!(cond, " AND created_unix >= {lo} AND created_unix <= {hi}");
    }
    if !hidden.is_empty() {
        let list: Vec<String> = hidden.iter().map(i64::to_string).collect();
        // `write!` to a `String` cannot fail.
        let _ = write!(cond, " AND act_user_id NOT IN ({})", list.join(","));
    }
    cond
}

/// A string literal for `engine`: quotes doubled; MariaDB also treats `\` as an escape
/// (its default `sql_mode`). NUL characters, which PostgreSQL refuses in text, are dropped.
fn literal(engine: Engine, s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if engine == Engine::MariaDb => out.push_str("\\\\"),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Gitea's `action` table and its indexes (go-gitea/gitea models/activities/action.go:
/// the `Action` struct's columns, `INDEX` on `user_id` and `comment_id`, and
/// `Action.TableIndices`), with xorm's index names (`IDX_<table>_<name>`).
fn create_table(engine: Engine, name: &str) -> Vec<String> {
    let (bool_t, tail) = match engine {
        // xorm's MySQL dialect: InnoDB, utf8mb4, dynamic rows. No background statistics
        // recalculation: `Table::apply` recalculates them when the data changed.
        Engine::MariaDb => (
            "BOOL",
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC STATS_AUTO_RECALC=0",
        ),
        // Likewise no autovacuum analyze on its own schedule.
        Engine::Postgres => ("BOOL", " WITH (autovacuum_enabled = false)"),
        Engine::Sqlite | Engine::Random => ("INTEGER", ""),
    };
    let mut out = vec![format!(
        "CREATE TABLE {name} (id BIGINT PRIMARY KEY NOT NULL, user_id BIGINT, op_type INTEGER, \
         act_user_id BIGINT, repo_id BIGINT, comment_id BIGINT, \
         is_deleted {bool_t} NOT NULL DEFAULT false, ref_name VARCHAR(255), \
         is_private {bool_t} NOT NULL DEFAULT false, content TEXT, created_unix BIGINT){tail}"
    )];
    let indexes: [(&str, &str); 7] = [
        ("user_id", "user_id"),
        ("comment_id", "comment_id"),
        (
            "au_r_c_u_d",
            "act_user_id, repo_id, created_unix, user_id, is_deleted",
        ),
        ("r_u_d", "repo_id, user_id, is_deleted"),
        ("c_u_d", "created_unix, user_id, is_deleted"),
        ("c_u", "user_id, is_deleted"),
        ("au_c_u", "act_user_id, created_unix, user_id"),
    ];
    for (idx, cols) in indexes {
        out.push(format!("CREATE INDEX IDX_action_{idx} ON {name} ({cols})"));
    }
    out
}

/// Drop the tables (MariaDB) or schemas (PostgreSQL) of simulators whose process is gone;
/// best effort (a failure is logged and ignored).
async fn sweep(conn: &mut Conn, engine: Engine) {
    let (list, prefix) = match engine {
        Engine::MariaDb => (
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name LIKE 'action%'",
            "action_",
        ),
        Engine::Postgres => (
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'sim%'",
            "sim_",
        ),
        Engine::Sqlite | Engine::Random => return,
    };
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let names = match conn.strings(list.to_string()).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(engine = engine.name(), error = %e, "could not list old action tables");
            return;
        }
    };
    for name in names {
        let Some(pid) = owner_pid(&name, prefix) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let sql = match engine {
            Engine::MariaDb => format!("DROP TABLE IF EXISTS {name}"),
            _ => format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
        };
        if let Err(e) = conn.execute(sql).await {
            tracing::warn!(engine = engine.name(), error = %e, name, "could not drop an old action table");
        }
    }
}

/// The pid in `<prefix><pid>_<n>_<hex>`, when `name` is exactly of that form.
fn owner_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    let mut parts = rest.split('_');
    let pid = parts.next()?.parse::<u32>().ok()?;
    parts.next()?.parse::<u64>().ok()?;
    let hex = parts.next()?;
    let ok = hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && parts.next().is_none();
    ok.then_some(pid)
}

#[cfg(test)]
mod unit {
    use crate::engine::*;

    #[test]
    fn names_and_conditions() {
        for e in Engine::ALL {
            assert_eq!(Engine::parse(e.name()), Some(e));
        }
        assert_eq!(Engine::parse("MariaDB"), Some(Engine::MariaDb));
        assert_eq!(Engine::parse("oracle"), None);
        assert_eq!(owner_pid("action_12_3_0000abcd", "action_"), Some(12));
        assert_eq!(owner_pid("action_12_3_0000abcd_x", "action_"), None);
        assert_eq!(owner_pid("action", "action_"), None);
        assert_eq!(owner_pid("sim_7_1_ffffffff", "sim_"), Some(7));
        assert_eq!(
            feed_cond(FeedKey::Recv(3), Some((100, 86_500)), &[]),
            "user_id = 3 AND is_deleted = false AND created_unix >= 100 AND created_unix <= 86499"
        );
        assert_eq!(
            feed_cond(FeedKey::Repo(4), None, &[-2, 7]),
            "repo_id = 4 AND user_id = act_user_id AND is_deleted = false \
             AND act_user_id NOT IN (-2,7)"
        );
        assert_eq!(literal(Engine::MariaDb, "a'b\\c\0"), "'a''b\\\\c'");
        assert_eq!(literal(Engine::Postgres, "a'b\\c"), "'a''b\\c'");
    }
}
