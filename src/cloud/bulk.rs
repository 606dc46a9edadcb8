//! `pithosfs serve bulk-load`: many objects written straight into a data
//! directory's store, for benchmarks and tests of very large folders (a
//! million objects by HTTP PUT take many minutes; this takes seconds).
//!
//! Every object is made by the same function a PUT commits through
//! (`model::put_version`): versions, the live-name index, block references,
//! container and account counters come out as a PUT leaves them, so a server
//! started on the directory afterwards serves, lists, moves and collects
//! them like any other. All objects share one stored block (the store is
//! content-addressed), so the data directory grows by database rows only.
//!
//! The directory's lock is taken: a server running on it makes this fail
//! rather than write under it.

use super::blockstore::BlockStore;
use super::db::Db;
use super::fault::Fault;
use super::pithos::model::{self, NewVersion};
use super::users::{UserSpec, Users};
use super::{datadir, pithos, wire};
use crate::blocks::{Algorithm, BlockHash, DEFAULT_BLOCK_SIZE};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Objects committed per SQLite transaction: large enough that the per-commit
/// sync does not dominate, small enough that the write-ahead log stays modest.
const PER_TRANSACTION: u64 = 20_000;

/// What to load.
#[derive(Debug, Clone)]
pub struct BulkLoad {
    pub data_dir: PathBuf,
    /// The user owning the objects (made, with a token file, if new).
    pub user: String,
    /// The container (made if missing).
    pub container: String,
    /// A folder the objects go under (no leading or trailing `/` needed).
    pub prefix: String,
    pub count: u64,
    /// Objects per folder.
    pub fanout: u64,
    /// All objects in one folder, `PREFIX/fFFFFFF` (`fanout` is not used).
    pub flat: bool,
    /// Bytes of every object (at most one block of the default block size).
    pub size: u64,
}

/// What was loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub objects: u64,
    pub folders: u64,
    pub seconds: f64,
}

impl BulkLoad {
    /// The name of object `i`: `PREFIX/dDDDD/fFFFFFF` (flat: `PREFIX/fFFFFFF`),
    /// zero-padded so that names sort as their numbers do.
    pub fn name(&self, i: u64) -> String {
        let prefix = self.prefix.trim_matches('/');
        let sep = if prefix.is_empty() { "" } else { "/" };
        if self.flat {
            let fw = digits(self.count.saturating_sub(1)).max(6);
            return format!("{prefix}{sep}f{i:0fw$}");
        }
        let fanout = self.fanout.max(1);
        let folders = self.count.div_ceil(fanout).max(1);
        let dw = digits(folders - 1).max(4);
        let fw = digits(fanout - 1).max(6);
        format!("{prefix}{sep}d{:0dw$}/f{:0fw$}", i / fanout, i % fanout)
    }

    /// The content every object holds: `size` bytes of a fixed pattern.
    pub fn content(&self) -> Vec<u8> {
        b"pithosfs bulk-load\n".iter().copied().cycle().take(self.size as usize).collect()
    }

    fn check(&self) -> Result<(), String> {
        super::users::validate_name(&self.user)?;
        if self.container.is_empty() || self.container.len() > 255 || self.container.contains('/') {
            return Err(format!("{:?} is no container name", self.container));
        }
        if self.fanout == 0 {
            return Err("--fanout must be at least 1".into());
        }
        if self.size > DEFAULT_BLOCK_SIZE {
            return Err(format!("--size is at most one block ({DEFAULT_BLOCK_SIZE} bytes)"));
        }
        let longest = self.name(self.count.saturating_sub(1));
        if longest.len() > crate::fs::names::MAX_OBJECT_NAME {
            return Err("--prefix is too long for an object name".into());
        }
        Ok(())
    }

    /// Loads the objects. Blocking (run it off any async runtime).
    pub fn run(&self) -> Result<Loaded, String> {
        self.check()?;
        let started = Instant::now();
        let dir = datadir::open(&self.data_dir).map_err(|e| format!("{}: {e}", self.data_dir.display()))?;
        let lock = datadir::private_file(&dir.join("lock")).map_err(|e| format!("{}: {e}", dir.display()))?;
        if lock.try_lock().is_err() {
            return Err(format!("{} is in use by a running pithosfs serve: stop it first", dir.display()));
        }
        let meta = dir.join("meta.sqlite");
        let at = super::recorded_blocks(&dir);
        let meta_at = super::recorded_meta(&dir);
        if meta_at != "sqlite" {
            return Err(format!(
                "the metadata of {} is at `{meta_at}`: bulk loading writes the embedded SQLite database",
                dir.display()
            ));
        }
        if at != "dir" {
            return Err(format!(
                "the blocks of {} are at `{at}`: bulk loading writes a block directory",
                dir.display()
            ));
        }
        drop(datadir::private_file(&meta).map_err(|e| format!("{}: {e}", meta.display()))?);
        let db = Db::open(&meta).map_err(|e| format!("cannot open the database: {e}"))?;
        let blocks = Arc::new(
            BlockStore::open(&dir.join("blocks"), DEFAULT_BLOCK_SIZE, Algorithm::Sha256)
                .map_err(|e| format!("cannot open the block store: {e}"))?,
        );
        let spec = UserSpec { name: self.user.clone(), token: None };
        let (users, news) = Users::ensure(&db, &dir, &[spec]).map_err(|f| f.message)?;
        for (name, file, _) in &news.generated {
            eprintln!("user {name}: token written to {}", file.display());
        }
        let account = users.by_name(&self.user).ok_or("the user was not created")?.uuid.clone();
        let (hashmap, checksum) = self.store_block(&blocks)?;
        let mut done = 0;
        while done < self.count {
            let end = (done + PER_TRANSACTION).min(self.count);
            self.load_range(&db, &account, done..end, &hashmap, &checksum).map_err(|f| f.message)?;
            done = end;
        }
        drop(lock);
        let folders = match self.count {
            0 => 0,
            _ if self.flat => 1,
            n => n.div_ceil(self.fanout),
        };
        Ok(Loaded { objects: self.count, folders, seconds: started.elapsed().as_secs_f64() })
    }

    /// Stores the shared block durably; its hashmap and MD5.
    fn store_block(&self, blocks: &Arc<BlockStore>) -> Result<(Vec<BlockHash>, String), String> {
        use md5::Digest;
        let content = self.content();
        let checksum = hex::encode(md5::Md5::digest(&content));
        if content.is_empty() {
            return Ok((Vec::new(), checksum));
        }
        let pins = blocks.pinned();
        let hash = pins.put(&content).map_err(|e| format!("cannot store the block: {e}"))?;
        // Referenced by the objects committed next: no suspect for the collector.
        pins.keep();
        Ok((vec![hash], checksum))
    }

    /// Objects `range`, in one transaction.
    fn load_range(
        &self,
        db: &Db,
        account: &str,
        range: std::ops::Range<u64>,
        hashmap: &[BlockHash],
        checksum: &str,
    ) -> Result<(), Fault> {
        // The write may run on the group committer's thread: it owns what it uses.
        let names: Vec<String> = range.map(|i| self.name(i)).collect();
        let (container, account, size) = (self.container.clone(), account.to_string(), self.size);
        let (hashmap, checksum) = (hashmap.to_vec(), checksum.to_string());
        db.write_blocking(move |tx| {
            let now = wire::now();
            let c = match model::container(tx, &account, &container)? {
                Some(c) => c,
                None => model::create_container(tx, &pithos::new_container(&account, &container, now))?,
            };
            for name in &names {
                let new = NewVersion {
                    uuid: uuid::Uuid::new_v4().to_string(),
                    bytes: size,
                    hashmap: hashmap.clone(),
                    content_type: "application/octet-stream".into(),
                    checksum: checksum.clone(),
                    meta: model::Meta::new(),
                    modified_by: account.clone(),
                };
                // No account quota: the loader is the operator's own tool.
                model::put_version(tx, &c, name, new, 0, now)?;
            }
            Ok(())
        })
    }
}

/// Decimal digits of `n`.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(count: u64, fanout: u64) -> BulkLoad {
        BulkLoad {
            data_dir: PathBuf::new(),
            user: "u".into(),
            container: "c".into(),
            prefix: "big/".into(),
            count,
            fanout,
            flat: false,
            size: 5,
        }
    }

    #[test]
    fn names_are_padded_to_sort_as_numbers() {
        let l = load(1_000_000, 1000);
        assert_eq!(l.name(0), "big/d0000/f000000");
        assert_eq!(l.name(42_123), "big/d0042/f000123");
        assert_eq!(l.name(999_999), "big/d0999/f000999");
        let l = load(20_000_000, 1);
        assert_eq!(l.name(19_999_999), "big/d19999999/f000000");
        assert_eq!(load(3, 2).content(), b"pitho".to_vec());
        let flat = BulkLoad { flat: true, ..load(1_000_000, 1000) };
        assert_eq!((flat.name(0), flat.name(999_999)), ("big/f000000".into(), "big/f999999".into()));
        let flat = BulkLoad { flat: true, ..load(10_000_001, 1000) };
        assert_eq!(flat.name(42), "big/f00000042");
    }
}
