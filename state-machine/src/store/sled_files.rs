//! Making what sled flushed durable. sled 0.34's flush ends in `sync_file_range` on its data
//! file (no barrier against power loss), and it writes a page too large for its log buffers
//! (a quarter of a segment, 128 KiB by default) to a file of its own under `blobs/`, never
//! synced. After a power cut such a file may be empty: sled's recovery then stops its log at
//! the record that points to it, dropping every later checkpoint, or skips the page when the
//! file is missing. Under batch load a checkpoint writes dozens of them (a leaf of 16 runs of
//! 256 orders is several hundred KiB). So a checkpoint is durable only once every blob file
//! and the blob directory are synced, and then the data file: a record durable in the log
//! never points to a blob that is not.

use super::error::StoreError;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

pub(crate) struct SledFiles {
    data: File,
    blobs: PathBuf,
    /// Blob files synced already, with the length each had then. sled never rewrites a blob
    /// (each is named by the log position it was written for and created with `create_new`),
    /// but one may still be growing when listed, written for a later flush by another thread:
    /// a length that changed is synced again.
    synced: Mutex<HashMap<OsString, u64>>,
}

impl SledFiles {
    /// The files of the sled database in `dir`. Syncs what sled wrote at creation and never
    /// synced: its `conf` file, the directory and the blobs written so far.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let files = Self {
            data: File::open(dir.join("db"))?,
            blobs: dir.join("blobs"),
            synced: Mutex::new(HashMap::new()),
        };
        sync_if_present(&dir.join("conf"))?;
        File::open(dir)?.sync_all()?;
        files.sync_blobs()?;
        Ok(files)
    }

    /// Makes durable everything sled wrote before this call: the blob files first, then the
    /// data file that points to them.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.sync_blobs()?;
        self.data.sync_all()?;
        Ok(())
    }

    /// Syncs every blob file not synced yet and, when there was one, the directory that
    /// names it. Returns how many it synced.
    pub fn sync_blobs(&self) -> Result<usize, StoreError> {
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut present = HashMap::new();
        let mut fresh = 0;
        for entry in entries {
            let name = entry?.file_name();
            let path = self.blobs.join(&name);
            let Some(len) = sync_unless(&path, synced.get(&name).copied())? else {
                continue;
            };
            if synced.get(&name) != Some(&len) {
                fresh += 1;
            }
            present.insert(name, len);
        }
        if fresh > 0 {
            File::open(&self.blobs)?.sync_all()?;
        }
        // Blobs sled collected are gone; forget them so the set stays as small as the directory.
        *synced = present;
        Ok(fresh)
    }

    #[cfg(test)]
    pub fn synced_blobs(&self) -> std::collections::HashSet<OsString> {
        self.synced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

/// `fdatasync`s `path`, unless it still has the length `synced_len` it was synced at, and
/// returns its length; `None` when it does not exist (sled may collect a blob meanwhile).
fn sync_unless(path: &Path, synced_len: Option<u64>) -> Result<Option<u64>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata()?.len();
    if synced_len != Some(len) {
        file.sync_data()?;
    }
    Ok(Some(len))
}

fn sync_if_present(path: &Path) -> Result<bool, StoreError> {
    Ok(sync_unless(path, None)?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Command, SkuId, Store};

    fn blob_names(dir: &Path) -> std::collections::HashSet<OsString> {
        std::fs::read_dir(dir.join("blobs"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect()
    }

    /// Bytes no compressor shrinks.
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    /// sled writes any value over its blob size (128 KiB) to a blob file: every one written
    /// before a checkpoint is synced before the checkpoint returns. The store's own values
    /// are packed and rarely that large, so the blob is a plain sled value beside them.
    #[test]
    fn a_checkpoint_syncs_the_blobs_sled_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let store = Store::open(&db).unwrap().sync_on_flush(dir.path()).unwrap();
        db.open_tree("test.large")
            .unwrap()
            .insert("large", noise(300_000))
            .unwrap();
        let create = Command::CreateSku {
            sku: SkuId::new("phone").unwrap(),
            stock: 10,
            per_user_limit: None,
            sale_window: None,
            request_tag: 0,
        };
        let batch = Batch {
            now_ms: 1,
            commands: vec![create],
        };
        store.apply(&[(1, &batch)], Some(b"marker")).unwrap();
        store.checkpoint().unwrap();
        let written = blob_names(dir.path());
        assert!(!written.is_empty(), "the test wrote no blob");
        let synced = store.files.as_ref().unwrap().synced_blobs();
        assert!(
            written.is_subset(&synced),
            "unsynced blobs: {:?}",
            written.difference(&synced).collect::<Vec<_>>()
        );
    }

    /// A blob that grew after it was synced is synced again; one sled removed is forgotten.
    #[test]
    fn a_grown_blob_is_synced_again_and_a_removed_one_forgotten() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        drop(sled::Config::new().path(dir.path()).open().unwrap());
        std::fs::create_dir_all(dir.path().join("blobs")).unwrap();
        let files = SledFiles::open(dir.path()).unwrap();
        let blob = dir.path().join("blobs").join("4096");
        let mut growing = std::fs::File::create(&blob).unwrap();
        growing.write_all(b"crc").unwrap();
        assert_eq!(files.sync_blobs().unwrap(), 1);
        assert_eq!(files.sync_blobs().unwrap(), 0, "nothing changed");
        growing.write_all(b"and the rest").unwrap();
        assert_eq!(files.sync_blobs().unwrap(), 1, "it grew");
        std::fs::remove_file(&blob).unwrap();
        assert_eq!(files.sync_blobs().unwrap(), 0);
        assert!(files.synced_blobs().is_empty());
    }
}
