//! The services a soak starts, stops and watches: each binary with its
//! log, the three wired together with tokens, and their memory as
//! `/proc` reports it.

use super::*;

/// One service binary, started with its log in a file; killed if still
/// running when dropped.
pub(super) struct Service {
    pub(super) name: &'static str,
    pub(super) child: Child,
    pub(super) log: PathBuf,
}

impl Service {
    pub(super) fn spawn(
        bin_dir: &Path,
        dir: &Path,
        name: &'static str,
        args: Vec<OsString>,
    ) -> anyhow::Result<Self> {
        let exe = bin_dir.join(name);
        anyhow::ensure!(
            exe.is_file(),
            "{} not found: build the services first (cargo build --workspace --bins)",
            exe.display()
        );
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let mut command = Command::new(&exe);
        command
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            // Freed memory goes back to the OS at once, so that each single
            // request's RSS growth is measured from a settled baseline (by
            // default mimalloc keeps it a while and the next request reuses
            // it unseen).
            .env("MIMALLOC_PURGE_DELAY", "0")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        // Only what this command sets: no TRIAD_* or OTEL_* from outside.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("TRIAD_") || key.starts_with("OTEL_") {
                command.env_remove(key.as_ref());
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        Ok(Self { name, child, log })
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then up to 30 s for it to exit.
    pub(super) fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        anyhow::bail!("still running 30 s after SIGTERM: killed")
    }

    pub(super) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The three services, wired together with tokens.
pub(super) struct Fleet {
    pub(super) preprocess: Service,
    pub(super) score: Service,
    pub(super) monitor: Service,
    pub(super) preprocess_grpc: SocketAddr,
    pub(super) score_grpc: SocketAddr,
    pub(super) score_http: SocketAddr,
    pub(super) monitor_grpc: SocketAddr,
    pub(super) monitor_http: SocketAddr,
    pub(super) database: PathBuf,
    /// The scorer's service token (what its callers present).
    pub(super) score_token: String,
    /// The read-only token of the scorer and the monitor.
    pub(super) read_token: String,
}

impl Fleet {
    pub(super) fn start(
        bin_dir: &Path,
        dir: &Path,
        models_dir: &Path,
        max_request_bytes: Option<u64>,
    ) -> anyhow::Result<Self> {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens)?;
        let token = |name: &str| -> anyhow::Result<(String, OsString)> {
            let value = crate::certs::token();
            let path = tokens.join(name);
            std::fs::write(&path, format!("{value}\n"))?;
            Ok((value, path.into_os_string()))
        };
        let (_, preprocess_token) = token("preprocess")?;
        let (score_token, score_token_file) = token("score")?;
        let (_, monitor_token_file) = token("monitor")?;
        let (read_token, read_token_file) = token("read")?;
        let [
            preprocess_grpc,
            score_grpc,
            score_http,
            monitor_grpc,
            monitor_http,
        ] = free_ports()?;
        let database = dir.join("monitor.db");
        let models = models_dir.as_os_str().to_owned();
        let args = |list: &[&dyn AsRef<std::ffi::OsStr>]| -> Vec<OsString> {
            list.iter().map(|a| a.as_ref().to_owned()).collect()
        };
        let preprocess = Service::spawn(
            bin_dir,
            dir,
            "triad-preprocess",
            args(&[
                &"--addr",
                &preprocess_grpc.to_string(),
                &"--http-addr",
                &"off",
                &"--token-file",
                &preprocess_token,
            ]),
        )?;
        let monitor = Service::spawn(
            bin_dir,
            dir,
            "triad-monitor",
            args(&[
                &"--addr",
                &monitor_grpc.to_string(),
                &"--http-addr",
                &monitor_http.to_string(),
                &"--database-url",
                &format!("sqlite://{}", database.display()),
                &"--models-dir",
                &models,
                &"--token-file",
                &monitor_token_file,
                &"--read-token-file",
                &read_token_file,
            ]),
        )?;
        let mut score_args = max_request_bytes
            .map(|max| vec!["--max-request-bytes".into(), max.to_string().into()])
            .unwrap_or_default();
        score_args.extend(args(&[
            &"--addr",
            &score_grpc.to_string(),
            &"--http-addr",
            &score_http.to_string(),
            &"--preprocess",
            &format!("http://{preprocess_grpc}"),
            &"--preprocess-token-file",
            &preprocess_token,
            &"--monitor",
            &format!("http://{monitor_grpc}"),
            &"--monitor-token-file",
            &monitor_token_file,
            &"--models-dir",
            &models,
            &"--spool-dir",
            &dir.join("spool"),
            &"--token-file",
            &score_token_file,
            &"--read-token-file",
            &read_token_file,
        ]));
        let score = Service::spawn(bin_dir, dir, "triad-score", score_args)?;
        Ok(Self {
            preprocess,
            score,
            monitor,
            preprocess_grpc,
            score_grpc,
            score_http,
            monitor_grpc,
            monitor_http,
            database,
            score_token,
            read_token,
        })
    }

    pub(super) fn services(&self) -> [&Service; 3] {
        [&self.preprocess, &self.score, &self.monitor]
    }

    /// Every service SERVING and the scorer's models loaded, within 60 s.
    pub(super) async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let checks = [
            (
                &self.preprocess,
                self.preprocess_grpc,
                triad_preprocess::SERVICE_NAME,
            ),
            (
                &self.monitor,
                self.monitor_grpc,
                triad_monitor::SERVICE_NAME,
            ),
            (&self.score, self.score_grpc, triad_score::SERVICE_NAME),
        ];
        for (service, addr, name) in checks {
            loop {
                let endpoint = format!("http://{addr}");
                match triad_server::healthcheck(&endpoint, name, Duration::from_secs(2)).await {
                    Ok(()) => break,
                    Err(error) if Instant::now() > deadline => anyhow::bail!(
                        "{} not healthy within 60 s: {error}\n{}",
                        service.name,
                        service.log_tail()
                    ),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        loop {
            let mut connection = HttpConnection::open(self.score_http).await?;
            if connection.send("GET", "/health", &[], b"").await? == 200 {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the scorer loaded no model within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the scorer first (it drains its spool to the monitor), then
    /// the others; each one's exit.
    pub(super) fn stop(&mut self) -> Vec<(&'static str, anyhow::Result<std::process::ExitStatus>)> {
        let mut exits = Vec::new();
        for service in [&mut self.score, &mut self.preprocess, &mut self.monitor] {
            exits.push((service.name, service.terminate()));
        }
        exits
    }
}

/// `N` distinct free loopback ports.
pub(super) fn free_ports<const N: usize>() -> anyhow::Result<[SocketAddr; N]> {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(std::net::TcpListener::local_addr)
        .collect::<Result<_, _>>()?;
    addrs
        .try_into()
        .map_err(|_| anyhow::anyhow!("not {N} addresses"))
}

/// A field of `/proc/<pid>/status`, in KiB (`VmRSS`, `VmHWM`).
pub(super) fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Resets the peak RSS (`VmHWM`) of `pid` to its current RSS.
pub(super) fn reset_peak(pid: u32) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("cannot reset the peak RSS of process {pid}"))
}

/// Samples a process's peak RSS every 50 ms (a reset of the peak loses at
/// most one sample's worth).
pub(super) struct RssSampler {
    pub(super) stop: tokio::sync::watch::Sender<bool>,
    pub(super) task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    pub(super) fn start(pid: u32) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut peak = 0;
            loop {
                peak = peak.max(proc_status_kib(pid, "VmHWM").unwrap_or(0));
                tokio::select! {
                    _ = stopped.changed() => return peak,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        });
        Self { stop, task }
    }

    /// The highest peak RSS seen, in KiB.
    pub(super) async fn stop(self) -> u64 {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or(0)
    }
}
