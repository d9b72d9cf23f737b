//! `jepsen`: see `jepsen --help` and the crate's `cli` module.

fn main() -> std::process::ExitCode {
    jepsen_tests::cli::main()
}
