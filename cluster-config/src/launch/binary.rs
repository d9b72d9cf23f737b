//! Where the binaries of this workspace are when one of them (or a test) needs another.
//!
//! A binary sits in `<target>/<profile>/`, an integration test in `<target>/<profile>/deps/`;
//! both find their siblings in `<target>/<profile>/`. A package's tests only get its own
//! binaries built by Cargo, so a missing one is built in the same target dir and profile with
//! the cargo that ran us (Cargo sets `CARGO` for `cargo run` and `cargo test`).

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// `<target>/<profile>` of the running executable.
pub fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the running binary")?;
    let dir = exe
        .parent()
        .context("the running binary has no parent directory")?;
    Ok(if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

/// The binary `name` of workspace package `package` next to the running executable, built
/// on demand when missing.
pub fn sibling(package: &str, name: &str) -> anyhow::Result<PathBuf> {
    // Concurrent tests asking for the same missing binary would start one cargo each.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_build = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = profile_dir()?;
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        return Ok(path);
    }
    if let Ok(cargo) = std::env::var("CARGO") {
        build(&cargo, &dir, package, name)?;
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "`cargo build` succeeded but {} is still missing",
            path.display()
        );
    }
    bail!(
        "{} is missing: build it with `cargo build -p {package} --bin {name}` (add --release \
         for a release build)",
        path.display()
    )
}

fn build(cargo: &str, profile_dir: &Path, package: &str, name: &str) -> anyhow::Result<()> {
    let mut command = Command::new(cargo);
    command.args(["build", "-p", package, "--bin", name]);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(other) => {
            command.args(["--profile", other]);
        }
    }
    if let Some(target) = profile_dir.parent() {
        command.env("CARGO_TARGET_DIR", target);
    }
    if let Ok(manifest_dir) = std::env::var("CARGO_MANIFEST_DIR") {
        command.current_dir(manifest_dir);
    }
    eprintln!("{name} is missing; building it: {command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot run `{command:?}`"))?;
    if !status.success() {
        bail!("`{command:?}` failed ({status})");
    }
    Ok(())
}
