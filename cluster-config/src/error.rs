use std::path::PathBuf;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The text is not valid TOML or does not match the schema (unknown or
    /// missing field, wrong type). toml's message carries line and column.
    #[error("cannot parse config{}: {source}", in_file(path))]
    Parse {
        path: Option<PathBuf>,
        #[source]
        source: toml::de::Error,
    },

    /// The config parsed but a value is unusable.
    #[error("invalid config: {field}: {message}")]
    Invalid { field: String, message: String },
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field an `Invalid` error is about, for callers and tests that
    /// want to react to a specific setting.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

fn in_file(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" file {}", p.display()),
        None => String::new(),
    }
}

pub(crate) fn read_file(path: &std::path::Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses TOML into `T`, naming `path` (when there is one) in the error.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: Option<&std::path::Path>,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|source| ConfigError::Parse {
        path: path.map(|p| p.to_path_buf()),
        source,
    })
}
