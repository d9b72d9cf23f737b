//! `--output table|json` for every `invctl` command. In JSON mode stdout carries exactly one
//! JSON document, so a script can pipe it to `jq`; progress lines go to stderr instead.

use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    #[default]
    Table,
    /// One JSON document on stdout.
    Json,
}

#[derive(clap::Args, Clone, Copy, Debug)]
pub struct OutputArg {
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Same as --output json; kept for scripts written before --output existed.
    #[arg(long, hide = true)]
    json: bool,
}

impl OutputArg {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.output
        }
    }
}

impl Format {
    /// A line about work in progress: on stdout for people, on stderr when stdout is JSON.
    pub fn progress(self, line: impl std::fmt::Display) {
        match self {
            Format::Table => println!("{line}"),
            Format::Json => eprintln!("{line}"),
        }
    }

    /// Prints the command's result: as JSON, or through `table`.
    pub fn emit<T: Serialize>(self, value: &T, table: impl FnOnce(&T)) -> anyhow::Result<()> {
        match self {
            Format::Table => table(value),
            Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        }
        Ok(())
    }
}
