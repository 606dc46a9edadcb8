//! Attributes written back: chmod, chown, utimes and truncate (`setattr`),
//! kept in the object's metadata, and what the account's quota leaves
//! (`statfs`).

use super::attr::{now, Attr, Kind, Time, META_ATIME, META_GID, META_HOST, META_UID};
use super::errno::{errno_of, During, Errno, FsResult, Op};
use super::filesystem::{Fs, Loc};
use super::namespace::DIRECTORY_TYPE;
use super::store::{Store, StoreError};
use bytes::Bytes;
use std::sync::Arc;

/// Times a setattr sets (seconds since the epoch): None leaves one as it
/// is (`UTIME_OMIT`); `UTIME_NOW` arrives as the time of the call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Times {
    pub atime: Option<Time>,
    pub mtime: Option<Time>,
}

impl Times {
    /// Only the mtime (`touch -m`).
    pub fn mtime(t: Time) -> Times {
        Times { atime: None, mtime: Some(t) }
    }

    fn any(&self) -> bool {
        self.atime.is_some() || self.mtime.is_some()
    }
}

impl<S: Store> Fs<S> {
    /// chmod, chown, utimensat and truncate. Who may do which was checked
    /// by the kernel (`default_permissions`): only the owner or root changes
    /// a mode or sets explicit times, the owner or a writer sets them to
    /// now, only root gives a file away. Here they are recorded (owners
    /// through `owners`, so a number is kept only with this machine's tag),
    /// with the ctime of the change, in the one request that writes them.
    #[allow(clippy::too_many_arguments)]
    pub async fn setattr(
        self: &Arc<Self>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        times: Times,
        fh: Option<u64>,
    ) -> FsResult<Attr> {
        self.check_writable(&self.locate(ino)?)?;
        if let Some(size) = size {
            self.truncate(ino, size, times.mtime.is_some(), fh).await?;
        }
        let mut attr = self.attr_of(ino)?;
        if mode.is_none() && uid.is_none() && gid.is_none() && !times.any() {
            return self.getattr(ino).await;
        }
        let before = (attr.mode, self.opts.owners.shown(&attr));
        if let Some(m) = mode {
            attr.mode = Some(m & 0o7777);
        }
        if uid.is_some() || gid.is_some() {
            self.opts.owners.chown(&mut attr, uid, gid);
        }
        if let Some(t) = times.mtime {
            attr.mtime = t;
        }
        if let Some(t) = times.atime {
            attr.atime = Some(t);
        }
        attr.changed(now(), false);
        let uncommitted = self.inodes().get(ino).is_some_and(|n| n.pending.is_some()) || self.pending_new(ino);
        if uncommitted {
            // The coming commit carries these.
            if let Some(n) = self.inodes().get_mut(ino) {
                n.set_attr(&attr);
            }
            return self.getattr(ino).await;
        }
        let loc = self.locate(ino)?;
        if loc.path.is_empty() {
            // The mount's root and containers keep no mode or owner: a change
            // could not outlive the next listing, so it is refused.
            let asked = (mode.map(|m| m & 0o7777).or(before.0), self.opts.owners.shown(&attr));
            let shown = |(m, o): (Option<u32>, (u32, u32)), default: u32| (m.unwrap_or(default), o);
            if shown(asked, self.opts.dir_mode) != shown(before, self.opts.dir_mode) {
                return Err(Errno::PERM);
            }
            // Their times are kept here only, as for entries made in them.
            let mut t = self.inodes();
            if let Some(n) = t.get_mut(ino) {
                n.set_attr(&attr);
                n.local_times = Some(Box::new((attr.mtime, attr.ctime)));
            }
            return Ok(attr);
        }
        self.store_meta(ino, &loc, &attr).await?;
        attr.stored = attr.stored || attr.kind == Kind::Dir;
        self.inodes().learn_own(ino, attr.clone());
        Ok(attr)
    }

    /// Writes a node's metadata: a merge into its object, or (for a folder
    /// that is only a prefix, or a file not yet committed) what makes it exist.
    async fn store_meta(&self, ino: u64, loc: &Loc, attr: &Attr) -> FsResult<()> {
        let pairs = attr.to_meta();
        // The merge keeps other keys: an owner no longer recorded (given back
        // to the account owner) is deleted by an empty value.
        let mut merge = pairs.clone();
        for key in [META_UID, META_GID, META_HOST, META_ATIME] {
            if !merge.iter().any(|(k, _)| k == key) {
                merge.push((key.to_string(), String::new()));
            }
        }
        match self.store_for(loc)?.set_meta(&loc.container, &loc.path, &merge).await {
            // A linked file's other names carry the same attributes.
            Ok(()) => self.spread_meta(attr, loc, &merge).await,
            Err(StoreError::NotFound) if attr.kind == Kind::Dir => {
                let store = self.store_for(loc)?;
                let marker = store.write_object(&loc.container, &loc.path, Bytes::new(), DIRECTORY_TYPE, &pairs);
                marker.await.during(Op::Setattr)
            }
            // An uncommitted new file: its commit carries the attributes.
            Err(StoreError::NotFound) if self.pending_new(ino) => Ok(()),
            Err(e) => Err(errno_of(Op::Setattr, &e)),
        }
    }

    /// (total bytes, free bytes) from the account quota (1 PiB when there is none).
    pub async fn statfs(&self) -> FsResult<(u64, u64)> {
        let (quota, used) = self.store.quota().await.during(Op::Statfs)?;
        let total = if quota == 0 { 1 << 50 } else { quota };
        Ok((total, total.saturating_sub(used)))
    }
}
