//! Extended attributes: `user.NAME` is the object's metadata key `NAME`;
//! `user.pithos.*` are read-only facts of the object on the store.

use super::errno::{During, Errno, FsResult, Op};
use super::filesystem::Fs;
use super::inode::ROOT;
use super::store::Store;

/// User xattrs one file may carry (`ENOSPC` past it, as a full xattr block
/// on ext4): Pithos keeps at most 32 metadata keys on an object, and the
/// POSIX attributes take up to 10 (mode, uid, gid, host, the three times,
/// a device's rdev, a hard link's group and count).
pub const MAX_XATTRS: usize = 22;

/// On the mount's root: how many nodes the inode table holds (a number in
/// decimal), to see memory follow what the kernel holds. Not listed.
pub const NODES_XATTR: &str = "user.pithosfs.nodes";

/// The largest xattr value the kernel hands out (`XATTR_SIZE_MAX`).
const MAX_XATTR_VALUE: usize = 65536;

/// A server's time (seconds since the epoch) as ISO 8601 UTC, to the microsecond.
fn utc(at: f64) -> String {
    let t = super::time::Time::from_secs_f64(at).unwrap_or(super::time::Time::EPOCH);
    let dt = chrono::DateTime::from_timestamp(t.secs() as i64, t.nanos()).unwrap_or_default();
    dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The metadata key (as stored) of `user.pithos.public`, which publishes.
const PUBLIC_KEY: &str = "pithos.public";

impl<S: Store> Fs<S> {
    /// A user xattr, or a read-only fact of the object.
    pub async fn getxattr(&self, ino: u64, name: &str) -> FsResult<Vec<u8>> {
        if ino == ROOT && name == NODES_XATTR {
            return Ok(self.node_count().to_string().into_bytes());
        }
        if let Some(fact) = name.strip_prefix("user.pithos.") {
            // Facts of the object as the server has it now: one HEAD.
            let loc = self.locate(ino)?;
            if loc.path.is_empty() || self.pending_new(ino) {
                return Err(Errno::NODATA);
            }
            if fact == "versions" {
                return self.versions(&loc.container, &loc.path).await;
            }
            let meta = self.store.stat(&loc.container, &loc.path).await.during(Op::Xattr)?;
            let v = match fact {
                "hash" => meta.hash,
                "uuid" => meta.uuid,
                "version" => meta.version,
                "public" => meta.public,
                _ => None,
            };
            return v.map(String::into_bytes).ok_or(Errno::NODATA);
        }
        let attr = self.getattr(ino).await?;
        let v = name.strip_prefix("user.").and_then(|k| attr.meta.get(&k.to_lowercase().replace('_', "-")).cloned());
        v.map(String::into_bytes).ok_or(Errno::NODATA)
    }

    /// `user.pithos.versions`: the object's versions, oldest first, a line
    /// each: `ID TIME` (ISO 8601, UTC). Past what one xattr holds (64 KiB)
    /// the oldest are left out.
    async fn versions(&self, container: &str, name: &str) -> FsResult<Vec<u8>> {
        let Some(listed) = self.store.versions(container, name).await else { return Err(Errno::NODATA) };
        let lines: Vec<String> =
            listed.during(Op::Xattr)?.into_iter().map(|(id, at)| format!("{id} {}\n", utc(at))).collect();
        let mut out = Vec::new();
        let mut size = 0;
        for line in lines.iter().rev() {
            if size + line.len() > MAX_XATTR_VALUE {
                break;
            }
            size += line.len();
            out.push(line.as_str());
        }
        out.reverse();
        Ok(out.concat().into_bytes())
    }

    /// `user.pithos.public`: `1` (or `true`, `yes`) publishes the object,
    /// `0` (`false`, `no`) or removing the xattr withdraws its link.
    async fn set_public(&self, ino: u64, value: Option<&[u8]>) -> FsResult<()> {
        let public = match value.map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes") => true,
            Some(v) if matches!(v.as_str(), "0" | "false" | "no") => false,
            Some(_) => return Err(Errno::INVAL),
        };
        let loc = self.locate(ino)?;
        // A container, or a file not on the server yet, has no link to give.
        if loc.path.is_empty() || self.pending_new(ino) {
            return Err(Errno::NOTSUP);
        }
        match self.store.set_public(&loc.container, &loc.path, public).await {
            Some(done) => done.during(Op::Xattr),
            None => Err(Errno::NOTSUP),
        }
    }

    pub async fn listxattr(&self, ino: u64) -> FsResult<Vec<String>> {
        let attr = self.getattr(ino).await?;
        let mut names: Vec<String> = attr.meta.keys().map(|k| format!("user.{k}")).collect();
        if attr.stored && attr.hash.is_some() {
            names.extend(["user.pithos.hash", "user.pithos.uuid", "user.pithos.version"].map(String::from));
        }
        Ok(names)
    }

    /// Sets (`Some`) or removes (`None`) a user xattr.
    pub async fn setxattr(&self, ino: u64, name: &str, value: Option<&[u8]>) -> FsResult<()> {
        self.check_writable()?;
        let key = name.strip_prefix("user.").ok_or(Errno::NOTSUP)?;
        // Metadata keys are case-insensitive and travel in headers.
        if key.is_empty()
            || key.len() > 128
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(Errno::INVAL);
        }
        let key = key.to_lowercase().replace('_', "-");
        if key == PUBLIC_KEY {
            return self.set_public(ino, value).await;
        }
        // Checked on the key as stored: `user.POSIX_UID` is `posix-uid`, the
        // owner, which no xattr may set (it would be a chown without root).
        if key.starts_with("pithos.") || key.starts_with("posix-") {
            return Err(Errno::PERM);
        }
        let mut attr = self.getattr(ino).await?;
        match value {
            Some(v) => {
                let v = std::str::from_utf8(v).map_err(|_| Errno::INVAL)?;
                if v.len() > 256 {
                    return Err(Errno::RANGE);
                }
                if !attr.meta.contains_key(&key) && attr.meta.len() >= MAX_XATTRS {
                    return Err(Errno::NOSPC);
                }
                attr.meta.insert(key.clone(), v.to_string());
            }
            None => {
                if attr.meta.remove(&key).is_none() {
                    return Err(Errno::NODATA);
                }
            }
        }
        attr.changed(super::attr::now(), false);
        let loc = self.locate(ino)?;
        let mut pairs = attr.to_meta();
        if value.is_none() {
            pairs.push((key, String::new()));
        }
        self.store.set_meta(&loc.container, &loc.path, &pairs).await.during(Op::Xattr)?;
        self.inodes().learn_own(ino, attr);
        Ok(())
    }
}
