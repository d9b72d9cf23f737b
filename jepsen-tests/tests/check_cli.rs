//! `jepsen check` as a user runs it: the built binary on log files, judged by its exit code.

use std::path::Path;
use std::process::{Command, Output};

const GOOD: &str = "\
INFO  jepsen.util - 0\t:invoke\t:write\t1
INFO  jepsen.util - 0\t:ok\t:write\t1
INFO  jepsen.util - :nemesis\t:info\t:start\tnil
INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2]
INFO  jepsen.util - 1\t:ok\t:cas\t[1 2]
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:read\t2
";

/// The read at line 7 sees the value the completed cas replaced.
const STALE: &str = "\
INFO  jepsen.util - 0\t:invoke\t:write\t1
INFO  jepsen.util - 0\t:ok\t:write\t1
INFO  jepsen.util - :nemesis\t:info\t:start\tnil
INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2]
INFO  jepsen.util - 1\t:ok\t:cas\t[1 2]
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:read\t1
";

fn jepsen_check(dir: &Path, log: &str, extra: &[&str]) -> Output {
    let file = dir.join("jepsen.log");
    std::fs::write(&file, log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_jepsen"))
        .args(["check", "--model", "cas-register", "--format", "jepsen-log"])
        .args(extra)
        .arg(&file)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn exit_codes_tell_the_three_answers_and_a_bad_log_apart() {
    let dir = tempfile::tempdir().unwrap();

    let good = jepsen_check(dir.path(), GOOD, &[]);
    assert_eq!(good.status.code(), Some(0), "{good:?}");
    assert_eq!(stdout(&good).lines().next(), Some("linearizable"));

    let stale = jepsen_check(dir.path(), STALE, &[]);
    assert_eq!(stale.status.code(), Some(1), "{stale:?}");
    let text = stdout(&stale);
    assert_eq!(text.lines().next(), Some("not-linearizable"), "{text}");
    assert!(
        text.contains("> process 1 cas [1 2]: invoked line 4, ok line 5")
            && text.contains("> process 0 read: invoked line 6, ok 1 line 7"),
        "{text}"
    );

    let unknown = jepsen_check(dir.path(), GOOD, &["--check-budget", "0"]);
    assert_eq!(unknown.status.code(), Some(3), "{unknown:?}");
    assert!(stdout(&unknown).starts_with("unknown: "), "{unknown:?}");

    let orphan = jepsen_check(dir.path(), "INFO  jepsen.util - 1\t:ok\t:read\tnil\n", &[]);
    assert_eq!(orphan.status.code(), Some(2), "{orphan:?}");
    assert!(
        String::from_utf8_lossy(&orphan.stderr).contains("line 1: "),
        "{orphan:?}"
    );
}

#[test]
fn version_and_help_answer() {
    let version = Command::new(env!("CARGO_BIN_EXE_jepsen"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(version.status.success());
    assert!(stdout(&version).starts_with("jepsen "), "{version:?}");
    let help = Command::new(env!("CARGO_BIN_EXE_jepsen"))
        .args(["check", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(stdout(&help).contains("exit 3"), "{help:?}");
}
