//! The cluster id: 128 random bits made once, by the node that bootstraps a cluster, and kept
//! in the data dir of every member (file `cluster-id`). Nodes stamp it on every Raft and
//! node-to-node admin call (`ClusterIdentity::stamp`) and refuse calls stamped with another
//! (`ClusterIdentity::check`), so that nodes of two clusters never replicate to or vote for
//! each other. This module owns the file: load, store, validate.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

/// The file in the data dir.
pub const FILE_NAME: &str = "cluster-id";
/// The gRPC metadata key a node stamps its id on.
pub const METADATA_KEY: &str = "flashstock-cluster-id";
/// Mismatches are logged at most this often per receiving service: a peer of another cluster
/// retries every half second and would flood the log.
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterId([u8; 16]);

impl ClusterId {
    pub fn generate() -> io::Result<Self> {
        let mut bits = [0u8; 16];
        getrandom::getrandom(&mut bits).map_err(io::Error::other)?;
        Ok(Self(bits))
    }

    /// The id `invctl restore` gives a cluster restored from a backup: the first 128 bits of
    /// SHA-256 over `seed` (the snapshot file's bytes and the new membership). Every node of
    /// the new cluster is restored from the same file with the same membership, so each
    /// arrives at the same id without talking to the others; and it differs from the backed-up
    /// cluster's random one, so the two never replicate to each other.
    pub fn derive(seed: &[u8]) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(seed);
        let mut bits = [0u8; 16];
        bits.copy_from_slice(&digest[..16]);
        Self(bits)
    }

    /// 32 hex digits, either case.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{text:?} is not 32 hex digits"));
        }
        let mut bits = [0u8; 16];
        for (i, byte) in bits.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("checked hex");
        }
        Ok(Self(bits))
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The stored id; `None` when there is no file (a new node, or a data dir of an older version).
/// Anything but exactly 32 hex digits and a newline is an error naming the file: a node must
/// not guess which cluster it belongs to.
pub fn load(data_dir: &Path) -> anyhow::Result<Option<ClusterId>> {
    let path = path(data_dir);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("cannot read the cluster id file {}: {e}", path.display()),
    };
    let parsed = std::str::from_utf8(&text)
        .map_err(|_| "not text".to_string())
        .and_then(|t| {
            t.strip_suffix('\n')
                .ok_or_else(|| "no final newline (torn?)".to_string())
        })
        .and_then(ClusterId::parse);
    match parsed {
        Ok(id) => Ok(Some(id)),
        Err(why) => anyhow::bail!(
            "the cluster id file {} is corrupt ({why}); this node cannot tell which cluster it \
             belongs to. Restore the file from another member's data dir (same cluster), or \
             follow \"Recovering a wiped node\" in the README",
            path.display()
        ),
    }
}

/// The steps of `store`, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    WroteTemp,
    SyncedTemp,
    Renamed,
    SyncedDir,
}

/// Stores `id` durably: a temporary file, `fdatasync`, rename over `cluster-id`, `fsync` of
/// the dir. A crash at any point leaves either no file or a whole one.
pub fn store(data_dir: &Path, id: ClusterId) -> io::Result<()> {
    store_observed(data_dir, id, |_| {})
}

fn store_observed(data_dir: &Path, id: ClusterId, mut observe: impl FnMut(Step)) -> io::Result<()> {
    let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(format!("{id}\n").as_bytes())?;
    observe(Step::WroteTemp);
    file.sync_data()?;
    observe(Step::SyncedTemp);
    std::fs::rename(&tmp, path(data_dir))?;
    observe(Step::Renamed);
    File::open(data_dir)?.sync_all()?;
    observe(Step::SyncedDir);
    Ok(())
}

/// This node's id as the running node knows it, shared by the services, the network and the
/// bootstrap; `None` until it was created or adopted.
#[derive(Clone)]
pub struct ClusterIdentity {
    data_dir: PathBuf,
    current: Arc<RwLock<Option<ClusterId>>>,
    /// Serialises adoption and creation: two concurrent AppendEntries must not both write.
    storing: Arc<tokio::sync::Mutex<()>>,
    last_warned: Arc<Mutex<Option<Instant>>>,
}

/// Why `ClusterIdentity::adopt` did not take the offered id.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error("cannot store the cluster id: {0}")]
    Store(#[from] io::Error),
    #[error("this node belongs to cluster {mine}, not {offered}")]
    Mismatch { mine: ClusterId, offered: ClusterId },
}

impl ClusterIdentity {
    /// Loads the id from `data_dir` (which must exist).
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            current: Arc::new(RwLock::new(load(data_dir)?)),
            storing: Default::default(),
            last_warned: Default::default(),
        })
    }

    pub fn get(&self) -> Option<ClusterId> {
        *self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `offered` as this node's id, stored durably before it returns; a no-op when it
    /// already is.
    pub async fn adopt(&self, offered: ClusterId) -> Result<(), AdoptError> {
        let _one = self.storing.lock().await;
        match self.get() {
            Some(mine) if mine == offered => return Ok(()),
            Some(mine) => return Err(AdoptError::Mismatch { mine, offered }),
            None => {}
        }
        let dir = self.data_dir.clone();
        tokio::task::spawn_blocking(move || store(&dir, offered))
            .await
            .map_err(io::Error::other)??;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(offered);
        Ok(())
    }

    /// This node's id, made and stored now if it has none.
    pub async fn get_or_create(&self) -> io::Result<ClusterId> {
        if let Some(id) = self.get() {
            return Ok(id);
        }
        let id = ClusterId::generate()?;
        match self.adopt(id).await {
            Ok(()) => Ok(id),
            // Someone adopted another id meanwhile: that one stands.
            Err(AdoptError::Mismatch { mine, .. }) => Ok(mine),
            Err(AdoptError::Store(e)) => Err(e),
        }
    }

    /// Adds this node's id to an outgoing call, if it has one.
    pub fn stamp<T>(&self, mut request: Request<T>) -> Request<T> {
        if let Some(id) = self.get() {
            let value = MetadataValue::try_from(id.to_string()).expect("hex is valid metadata");
            request.metadata_mut().insert(METADATA_KEY, value);
        }
        request
    }

    /// Refuses a call stamped with another cluster's id. Calls with no stamp (outside
    /// clients, nodes without an id yet) pass; a node that has no id yet lets every call
    /// through (the Raft service decides what it adopts).
    pub fn check(&self, service: &str, request: &Request<()>) -> Result<(), Status> {
        let Some(theirs) = offered(request.metadata())? else {
            return Ok(());
        };
        match self.get() {
            Some(mine) if mine != theirs => {
                self.warn_mismatch(service, mine, theirs);
                Err(mismatch(mine, theirs))
            }
            _ => Ok(()),
        }
    }

    fn warn_mismatch(&self, service: &str, mine: ClusterId, theirs: ClusterId) {
        let mut last = self.last_warned.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                service,
                mine = %mine,
                theirs = %theirs,
                "refused a call from another cluster (logged at most every {WARN_EVERY:?})"
            );
        }
    }
}

/// The id a call is stamped with, if any; a stamp that is no id is refused.
pub fn offered(metadata: &tonic::metadata::MetadataMap) -> Result<Option<ClusterId>, Status> {
    let Some(value) = metadata.get(METADATA_KEY) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| Status::invalid_argument(format!("{METADATA_KEY} is not text")))?;
    ClusterId::parse(text)
        .map(Some)
        .map_err(|e| Status::invalid_argument(format!("{METADATA_KEY}: {e}")))
}

pub fn mismatch(mine: ClusterId, theirs: ClusterId) -> Status {
    Status::failed_precondition(format!(
        "cluster id mismatch: this node belongs to cluster {mine}, the caller to cluster {theirs}"
    ))
}

/// Whether a refusal from a peer is `check`'s: the caller treats that peer as unreachable.
pub fn is_mismatch(status: &Status) -> bool {
    status.code() == tonic::Code::FailedPrecondition
        && status.message().starts_with("cluster id mismatch")
}

/// The client-side interceptor: every call through it carries this node's id.
#[derive(Clone)]
pub struct Stamp(pub ClusterIdentity);

impl tonic::service::Interceptor for Stamp {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        Ok(self.0.stamp(request))
    }
}

/// The server-side interceptor: refuses calls of another cluster.
#[derive(Clone)]
pub struct Check {
    pub identity: ClusterIdentity,
    pub service: &'static str,
}

impl tonic::service::Interceptor for Check {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.identity.check(self.service, &request)?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ClusterId {
        ClusterId([n; 16])
    }

    #[test]
    fn text_round_trip_and_bad_text() {
        let a = ClusterId::generate().unwrap();
        assert_eq!(a.to_string().len(), 32);
        assert_eq!(ClusterId::parse(&a.to_string()).unwrap(), a);
        assert_eq!(ClusterId::parse(&a.to_string().to_uppercase()).unwrap(), a);
        assert_ne!(a, ClusterId::generate().unwrap());
        for bad in ["", "abc", &"g".repeat(32), &"a".repeat(33), &"é".repeat(16)] {
            assert!(ClusterId::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        store(dir.path(), id(7)).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(id(7)));
        store(dir.path(), id(9)).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(id(9)));
        assert_eq!(
            std::fs::read_to_string(path(dir.path())).unwrap(),
            format!("{}\n", "09".repeat(16))
        );
    }

    #[test]
    fn torn_or_corrupt_file_stops_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let whole = format!("{}\n", id(3));
        let torn = &whole[..20];
        let flipped = whole.replace('3', "x");
        for bad in [torn, "", &whole[..32], flipped.as_str(), "\u{0}\u{1}"] {
            std::fs::write(path(dir.path()), bad).unwrap();
            let err = load(dir.path()).unwrap_err().to_string();
            assert!(
                err.contains(&path(dir.path()).display().to_string()),
                "{err}"
            );
            assert!(err.contains("corrupt"), "{err}");
        }
    }

    #[test]
    fn file_appears_only_whole_and_synced() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), id(1)).unwrap();
        let mut steps = Vec::new();
        store_observed(dir.path(), id(2), |step| {
            // Until the rename the old id stands; from it on the new one, never a mix.
            let seen = load(dir.path()).unwrap();
            let expected = if steps.contains(&Step::Renamed) || step == Step::Renamed {
                id(2)
            } else {
                id(1)
            };
            assert_eq!(seen, Some(expected), "after {step:?}");
            steps.push(step);
        })
        .unwrap();
        assert_eq!(
            steps,
            [
                Step::WroteTemp,
                Step::SyncedTemp,
                Step::Renamed,
                Step::SyncedDir
            ]
        );
        // A temp file left by a crash before the rename is not the id.
        std::fs::write(dir.path().join(format!("{FILE_NAME}.tmp")), "junk").unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(id(2)));
    }

    #[tokio::test]
    async fn adopts_once_and_refuses_another() {
        let dir = tempfile::tempdir().unwrap();
        let identity = ClusterIdentity::open(dir.path()).unwrap();
        assert_eq!(identity.get(), None);
        identity.adopt(id(4)).await.unwrap();
        identity.adopt(id(4)).await.unwrap();
        assert!(matches!(
            identity.adopt(id(5)).await,
            Err(AdoptError::Mismatch { .. })
        ));
        // Stored before `adopt` returned: a restart sees it.
        assert_eq!(
            ClusterIdentity::open(dir.path()).unwrap().get(),
            Some(id(4))
        );
        assert_eq!(identity.get_or_create().await.unwrap(), id(4));
    }

    #[test]
    fn check_refuses_only_another_id() {
        let dir = tempfile::tempdir().unwrap();
        let identity = ClusterIdentity::open(dir.path()).unwrap();
        let stamped = |other: &ClusterIdentity| other.stamp(Request::new(()));
        let sender_dir = tempfile::tempdir().unwrap();
        store(sender_dir.path(), id(8)).unwrap();
        let sender = ClusterIdentity::open(sender_dir.path()).unwrap();
        // No id here yet: everything passes.
        assert!(identity.check("raft", &stamped(&sender)).is_ok());
        store(dir.path(), id(6)).unwrap();
        let identity = ClusterIdentity::open(dir.path()).unwrap();
        let err = identity.check("raft", &stamped(&sender)).unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(err.message().contains(&id(6).to_string()));
        assert!(err.message().contains(&id(8).to_string()));
        assert!(is_mismatch(&err));
        // Unstamped (an outside client) and same-cluster calls pass.
        assert!(identity.check("admin", &Request::new(())).is_ok());
        assert!(identity.check("raft", &stamped(&identity)).is_ok());
    }
}
