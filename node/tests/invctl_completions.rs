//! `invctl completions <shell>`: scripts generated from the real flag definitions.

use std::io::Write;
use std::process::{Command, Stdio};

fn completions(shell: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_invctl"))
        .args(["completions", shell])
        .output()
        .unwrap()
}

#[test]
fn bash_completion_is_valid_bash_and_knows_the_commands() {
    let out = completions("bash");
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8(out.stdout).unwrap();
    for word in ["add-node", "remove-node", "snapshot", "--output", "--nodes"] {
        assert!(script.contains(word), "{word} missing");
    }
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    bash.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let checked = bash.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn other_shells_and_unknown_ones() {
    for (shell, marker) in [
        ("zsh", "#compdef invctl"),
        ("fish", "complete -c invctl"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[invctl]"),
    ] {
        let out = completions(shell);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(marker),
            "{shell}"
        );
    }
    assert_eq!(completions("tcsh").status.code(), Some(2));
}
