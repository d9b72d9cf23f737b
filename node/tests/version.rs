//! `--version` on the node's binaries: operators check it before and after a rollout.

use std::process::Command;

#[test]
fn node_and_invctl_print_their_version() {
    for (bin, name) in [
        (env!("CARGO_BIN_EXE_flashstock-node"), "flashstock-node"),
        (env!("CARGO_BIN_EXE_invctl"), "invctl"),
    ] {
        let out = Command::new(bin).arg("--version").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{name} {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}
