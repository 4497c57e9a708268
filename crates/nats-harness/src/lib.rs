//! A private `nats-server -js` process on a free port with its own store directory: for the
//! demo, the tests and the benchmark. It can be stopped and restarted on the same port and
//! store, and is killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// What to run when `nats-server` is missing.
pub const INSTALL_HINT: &str = "install it with `sudo apt-get install -y nats-server` (Debian/Ubuntu) \
     or put a nats-server binary on PATH";

/// A running (or stopped) nats-server.
pub struct LocalNats {
    binary: PathBuf,
    port: u16,
    store: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

/// Finds `nats-server` on PATH or where Debian installs it.
pub fn find_binary() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nats-server"))
                .collect()
        })
        .unwrap_or_default();
    candidates.push("/usr/sbin/nats-server".into());
    candidates.push("/usr/local/bin/nats-server".into());
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| format!("nats-server not found: {INSTALL_HINT}"))
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
