//! Extended attributes: `user.NAME` is the object's metadata key `NAME`;
//! `user.pithos.*` are read-only facts of the object on the store.

use super::attr::Kind;
use super::errno::{During, Errno, FsResult, Op};
use super::filesystem::{Fs, Loc};
use super::inode::ROOT;
use super::namespace::DIRECTORY_TYPE;
use super::store::{Sharing, Store, StoreError};
use bytes::Bytes;

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

/// The metadata key (as stored) of `user.pithos.sharing`, which shares.
const SHARING_KEY: &str = "pithos.sharing";

/// The most users and groups one sharing value names (the server's header
/// must stay within its limits).
const MAX_SHARING_ENTRIES: usize = 256;

/// `read=alice,bob;write=carol` as (readers, writers), as written: names,
/// UUIDs, `name:group` or `*`. Either part may be missing; an empty value
/// is no sharing. None for anything else.
fn parse_sharing(v: &str) -> Option<Sharing> {
    let mut s = Sharing::default();
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, list) = part.split_once('=')?;
        let list: Vec<String> = list.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_string).collect();
        let valid = |e: &String| e.len() <= 256 && !e.contains(|c: char| c.is_control() || c == '=' || c == ';');
        if !list.iter().all(valid) {
            return None;
        }
        match kind.trim().to_ascii_lowercase().as_str() {
            "read" => s.read.extend(list),
            "write" => s.write.extend(list),
            _ => return None,
        }
    }
    (s.read.len() + s.write.len() <= MAX_SHARING_ENTRIES).then_some(s)
}

/// A sharing as `user.pithos.sharing` shows it (empty parts left out).
fn format_sharing(s: &Sharing) -> String {
    let mut parts = Vec::new();
    if !s.read.is_empty() {
        parts.push(format!("read={}", s.read.join(",")));
    }
    if !s.write.is_empty() {
        parts.push(format!("write={}", s.write.join(",")));
    }
    parts.join(";")
}

/// Whether an entry is already what the store keeps (`*`, or a UUID).
fn is_uuid(e: &str) -> bool {
    e.len() == 36 && e.chars().all(|c| c.is_ascii_hexdigit() || c == '-') && e.matches('-').count() == 4
}

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
            match fact {
                "versions" => return self.versions(&loc).await,
                "sharing" => return self.sharing(&loc).await,
                _ => {}
            }
            let meta = self.store_for(&loc)?.stat(&loc.container, &loc.path).await.during(Op::Xattr)?;
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
    async fn versions(&self, loc: &Loc) -> FsResult<Vec<u8>> {
        let store = self.store_for(loc)?;
        let Some(listed) = store.versions(&loc.container, &loc.path).await else { return Err(Errno::NODATA) };
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
        match self.store_for(&loc)?.set_public(&loc.container, &loc.path, public).await {
            Some(done) => done.during(Op::Xattr),
            None => Err(Errno::NOTSUP),
        }
    }

    /// `user.pithos.sharing`: who the object (or folder) is shared with,
    /// users by name. `ENODATA` when it is shared with no one.
    async fn sharing(&self, loc: &Loc) -> FsResult<Vec<u8>> {
        let store = self.store_for(loc)?;
        let Some(got) = store.sharing(&loc.container, &loc.path).await else { return Err(Errno::NODATA) };
        let kept = match got {
            Ok(s) => s,
            // A folder without a marker object holds no sharing.
            Err(StoreError::NotFound) => return Err(Errno::NODATA),
            Err(e) => return Err(e).during(Op::Xattr),
        };
        if kept.is_empty() {
            return Err(Errno::NODATA);
        }
        let uuids: Vec<String> = kept.read.iter().chain(&kept.write).map(|e| user_part(e).to_string()).collect();
        let names = self.store.user_names(&uuids).await.unwrap_or_default();
        let named = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|e| {
                    let (user, group) = e.split_once(':').map_or((e.as_str(), None), |(u, g)| (u, Some(g)));
                    let user = names.get(user).map_or(user, String::as_str);
                    group.map_or_else(|| user.to_string(), |g| format!("{user}:{g}"))
                })
                .collect()
        };
        let shown = Sharing { read: named(&kept.read), write: named(&kept.write) };
        Ok(format_sharing(&shown).into_bytes())
    }

    /// Sets `user.pithos.sharing` (`read=alice,bob;write=carol`; names or
    /// UUIDs); an empty value or removing the xattr shares with no one. A
    /// folder's sharing covers everything under it (its marker object is
    /// made if it has none). An unknown user is `EINVAL`, nothing changed.
    async fn set_sharing(&self, ino: u64, value: Option<&[u8]>) -> FsResult<()> {
        let wanted = match value {
            None => Sharing::default(),
            Some(v) => parse_sharing(std::str::from_utf8(v).map_err(|_| Errno::INVAL)?).ok_or(Errno::INVAL)?,
        };
        let loc = self.locate(ino)?;
        if loc.path.is_empty() || self.pending_new(ino) {
            return Err(Errno::NOTSUP);
        }
        let names: Vec<String> = wanted
            .read
            .iter()
            .chain(&wanted.write)
            .map(|e| user_part(e).to_string())
            .filter(|u| u != "*" && !is_uuid(u))
            .collect();
        let uuids = if names.is_empty() {
            Default::default()
        } else {
            self.store.user_uuids(&names).await.during(Op::Xattr)?
        };
        let resolve = |list: &[String]| -> FsResult<Vec<String>> {
            list.iter()
                .map(|e| {
                    let (user, group) = e.split_once(':').map_or((e.as_str(), None), |(u, g)| (u, Some(g)));
                    let uuid = if user == "*" || is_uuid(user) {
                        user.to_string()
                    } else {
                        uuids.get(user).cloned().ok_or_else(|| {
                            tracing::warn!("user.pithos.sharing: no user {user:?} is known to the identity service");
                            Errno::INVAL
                        })?
                    };
                    Ok(group.map_or_else(|| uuid.clone(), |g| format!("{uuid}:{g}")))
                })
                .collect()
        };
        let sharing = Sharing { read: resolve(&wanted.read)?, write: resolve(&wanted.write)? };
        let store = self.store_for(&loc)?;
        let Some(done) = store.set_sharing(&loc.container, &loc.path, &sharing).await else {
            return Err(Errno::NOTSUP);
        };
        match done {
            // A folder known only as a prefix: its marker carries the sharing.
            Err(StoreError::NotFound) if self.attr_of(ino)?.kind == Kind::Dir => {
                let meta = self.attr_of(ino)?.to_meta();
                let marker = store.write_object(&loc.container, &loc.path, Bytes::new(), DIRECTORY_TYPE, &meta);
                marker.await.during(Op::Xattr)?;
                match store.set_sharing(&loc.container, &loc.path, &sharing).await {
                    Some(done) => done.during(Op::Xattr),
                    None => Err(Errno::NOTSUP),
                }
            }
            other => other.during(Op::Xattr),
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
        self.check_writable(&self.locate(ino)?)?;
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
        if key == SHARING_KEY {
            return self.set_sharing(ino, value).await;
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
        self.store_for(&loc)?.set_meta(&loc.container, &loc.path, &pairs).await.during(Op::Xattr)?;
        self.inodes().learn_own(ino, attr);
        Ok(())
    }
}

/// The user of a sharing entry (`uuid` of `uuid:group`).
fn user_part(e: &str) -> &str {
    e.split_once(':').map_or(e, |(u, _)| u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_values_as_written() {
        let s = parse_sharing("read=alice, bob;write=carol").unwrap();
        assert_eq!(
            (s.read.as_slice(), s.write.as_slice()),
            (&["alice".to_string(), "bob".into()][..], &["carol".to_string()][..])
        );
        assert_eq!(format_sharing(&s), "read=alice,bob;write=carol");
        assert_eq!(parse_sharing(""), Some(Sharing::default()));
        assert_eq!(parse_sharing(" WRITE=*; "), Some(Sharing { read: vec![], write: vec!["*".into()] }));
        for bad in ["alice", "read", "delete=bob", "read=a=b", "read=a\nb"] {
            let bad = bad.replace("\\n", "\n");
            assert_eq!(parse_sharing(&bad), None, "{bad:?}");
        }
        let many = format!("read={}", vec!["u"; MAX_SHARING_ENTRIES + 1].join(","));
        assert_eq!(parse_sharing(&many), None);
        assert!(is_uuid("6b9a4b6a-3f5e-4a51-9d3b-1f2e3d4c5b6a") && !is_uuid("alice"));
    }
}
