//! A headless Chromium for the browser tests, driven over WebDriver: Debian's `chromedriver`
//! started on a free port, one session with the flags a root user in a container needs.
//!
//! Chromium is not something every machine has. Without `chromedriver` on `PATH` a test
//! skips (prints why and passes), unless `FLASHSTOCK_REQUIRE_BROWSER=1` says this machine
//! must run it (CI), where a missing driver fails the test.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Map, Value};

pub const REQUIRE_BROWSER: &str = "FLASHSTOCK_REQUIRE_BROWSER";
const DRIVER: &str = "chromedriver";
const DRIVER_START: Duration = Duration::from_secs(20);

/// The chromedriver on `PATH`, or `None` after printing why the test skips. Panics when the
/// environment requires the browser and there is none.
pub fn chromedriver_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(path) = find_on_path(DRIVER) {
        return Some(path);
    }
    let required = std::env::var(REQUIRE_BROWSER).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{REQUIRE_BROWSER}=1 but no {DRIVER} on PATH: install Debian's chromium and \
         chromium-driver (apt-get install --no-install-recommends chromium chromium-driver \
         fonts-liberation)"
    );
    println!("{test}: skipped: no chromedriver on PATH (set {REQUIRE_BROWSER}=1 to fail instead)");
    None
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A running chromedriver, in a process group of its own: the browsers it starts are in
/// that group too, and killing the driver alone would leave them running.
pub struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    pub fn start(binary: &Path) -> Chromedriver {
        let mut child = Command::new(binary)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps reading after the port line: a driver whose stdout pipe fills up blocks.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = port_of(&line) {
                    let _ = tx.send(port);
                }
            }
        });
        let mut driver = Chromedriver { child, port: 0 };
        driver.port = rx.recv_timeout(DRIVER_START).unwrap_or_else(|_| {
            panic!("{DRIVER} did not say which port it listens on within {DRIVER_START:?}")
        });
        driver
    }

    /// A new headless session.
    pub async fn session(&self, width: u32, height: u32) -> Client {
        let args = [
            // As root, Chromium refuses to start inside its sandbox.
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            // Containers often give /dev/shm only 64 MB.
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            format!("--window-size={width},{height}"),
        ];
        let mut capabilities = Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), json!({ "args": args }));
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("cannot open a browser session: {e}"))
    }
}

/// chromedriver prints `ChromeDriver was started successfully on port 40231.`
fn port_of(line: &str) -> Option<u16> {
    let rest = line.split("started successfully on port ").nth(1)?;
    rest.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// Polls `script` (a JavaScript function body returning JSON) until `accept` takes its
/// result or `timeout` passes; returns the last result and whether it was accepted.
pub async fn poll_script(
    client: &Client,
    script: &str,
    timeout: Duration,
    mut accept: impl FnMut(&Value) -> bool,
) -> (Value, bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let value = client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"));
        if accept(&value) {
            return (value, true);
        }
        if tokio::time::Instant::now() >= deadline {
            return (value, false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn reads_the_port_line() {
    assert_eq!(
        port_of("ChromeDriver was started successfully on port 40231."),
        Some(40231)
    );
    assert_eq!(port_of("Starting ChromeDriver 156.0 on port 0"), None);
}
