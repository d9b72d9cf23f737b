//! `--version` on the gateway's binaries: operators check it before and after a rollout.

use std::process::Command;

#[test]
fn gateway_and_loadgen_print_their_version() {
    for (bin, name) in [
        (
            env!("CARGO_BIN_EXE_flashstock-gateway"),
            "flashstock-gateway",
        ),
        (env!("CARGO_BIN_EXE_loadgen"), "loadgen"),
    ] {
        let out = Command::new(bin).arg("--version").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{name} {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}
