//! Names: lookup and attributes, what the kernel holds and forgets, and the
//! calls that make, remove and move names (create, mknod, link, mkdir,
//! unlink, rmdir, rename, symlink, readlink).

use super::attr::{now, Attr, Kind, Time, SYMLINK_MAX, SYMLINK_TYPE};
use super::errno::{errno_of, During, Errno, FsResult, Op};
use super::filesystem::{lock, Fs, Loc};
use super::handle::OpenFile;
use super::inode::{Listed, Listing, ROOT};
use super::listed::ListedAttr;
use super::listing::{shorten, DirEntry};
use super::scope::Scope;
use super::store::{Store, StoreError};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

impl<S: Store> Fs<S> {
    /// A lookup answered from a fresh listing without waiting on anything
    /// (None: it needs the network, call `lookup`). A found entry counts as
    /// one the kernel holds.
    pub fn cached_lookup(&self, parent: u64, name: &str) -> Option<FsResult<(u64, Attr)>> {
        if self.is_view_lookup(parent, name) {
            return None;
        }
        if let Err(e) = self.child_loc(parent, name) {
            return Some(Err(e));
        }
        match self.listing_fresh(parent) {
            Ok(true) => Some(self.lookup_listed(parent, name, true)),
            _ => None,
        }
    }

    /// The kernel's lookup: the entry counts as one it holds (until `forget`).
    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<(u64, Attr)> {
        if self.is_view_lookup(parent, name) {
            return self.lookup_view(parent, name).await;
        }
        self.child_loc(parent, name)?;
        self.ensure_listing(parent).await?;
        self.lookup_listed(parent, name, true)
    }

    /// A lookup for the filesystem's own use (the kernel is not told):
    /// callers `release` the node when done with it.
    async fn find(&self, parent: u64, name: &str) -> FsResult<(u64, Attr)> {
        self.child_loc(parent, name)?;
        self.ensure_listing(parent).await?;
        self.lookup_listed(parent, name, false)
    }

    /// The node of `name` in `parent`'s listing (made now if it has none).
    fn lookup_listed(&self, parent: u64, name: &str, for_kernel: bool) -> FsResult<(u64, Attr)> {
        let mut t = self.inodes();
        let ino = t.bind_from_listing(parent, name).ok_or(Errno::NOENT)?;
        if for_kernel {
            t.remember(ino, 1);
        }
        let attr = t.get(ino).map(|n| n.attr()).ok_or(Errno::NOENT)?;
        Ok((ino, attr))
    }

    /// The node of a readdirplus entry and its attributes: the kernel holds
    /// one more of it. None: the name went since the folder was opened (a
    /// listing since, or a change made here), and is not given.
    pub fn bind_entry(&self, parent: u64, e: &DirEntry) -> Option<(u64, Attr)> {
        let mut t = self.inodes();
        let ino = match t.child(parent, &e.name) {
            Some(bound) => bound,
            None => t.bind_from_listing(parent, &e.name)?,
        };
        t.remember(ino, 1);
        let attr = t.get(ino)?.attr();
        Some((ino, attr))
    }

    /// The kernel forgot `n` entries of `ino`: the node goes when nothing
    /// else holds it (an open handle, uncommitted changes, children).
    pub fn forget(&self, ino: u64, n: u64) {
        if self.inodes().forget(ino, n) > 0 {
            lock(&self.opened_versions).remove(&ino);
        }
    }

    /// Nodes held now (the root, what the kernel holds, and what open
    /// handles, uncommitted changes and their folders keep).
    pub fn nodes_held(&self) -> usize {
        self.inodes().len()
    }

    /// Drops a node found for the filesystem's own use if nothing holds it.
    fn release_node(&self, ino: u64) {
        self.inodes().release(ino);
    }

    /// Attributes answered without waiting on anything (None: they are
    /// stale, call `getattr`).
    pub fn cached_attr(&self, ino: u64) -> Option<FsResult<Attr>> {
        let t = self.inodes();
        let Some(n) = t.get(ino) else { return Some(Err(Errno::NOENT)) };
        // Uncommitted changes (or a file created here) are known only here.
        if let Some(size) = n.pending {
            return Some(Ok(Attr { size, ..n.attr() }));
        }
        let local_only = n.open > 0 && n.unsent && n.kind() == Kind::File;
        let fresh = local_only || n.attr_at.elapsed() < self.opts.attr_ttl;
        (fresh || !n.stored() || ino == ROOT).then(|| Ok(n.attr()))
    }

    pub async fn getattr(&self, ino: u64) -> FsResult<Attr> {
        if let Some(known) = self.cached_attr(ino) {
            return known;
        }
        let attr = self.attr_of(ino)?;
        // A folder once listed is refreshed by listing it again: one request
        // for all its children, rather than a HEAD for each.
        let parent = self.inodes().get(ino).map(|n| (n.parent, n.name.clone())).filter(|(p, _)| *p != ino);
        if let Some((p, name)) = parent {
            if self.inodes().get(p).is_some_and(|n| n.listing.is_some()) {
                self.ensure_listing(p).await?;
                let t = self.inodes();
                let listed =
                    t.get(p).and_then(|n| n.listing.as_ref()).is_some_and(|l| l.entries.contains_key(name.as_str()));
                return match t.get(ino) {
                    Some(n) if listed && t.child(p, &name) == Some(ino) => Ok(n.attr()),
                    _ => Err(Errno::NOENT),
                };
            }
        }
        let loc = self.locate(ino)?;
        if loc.path.is_empty() {
            return Ok(attr);
        }
        match self.store_for(&loc)?.stat(&loc.container, &loc.path).await {
            Ok(meta) => {
                let mut t = self.inodes();
                t.learn(ino, ListedAttr::new(&Attr::from_object(&meta)));
                t.get(ino).map(|n| n.attr()).ok_or(Errno::NOENT)
            }
            Err(StoreError::NotFound) if attr.kind == Kind::Dir => Ok(attr),
            Err(e) => Err(errno_of(Op::Getattr, &e)),
        }
    }

    /// The link count shown: a folder's is 2 and one per subfolder (from
    /// its listing; 2 while it was never listed), a file's the names of its
    /// link group (1 unlinked), or 0 once its last name is removed while it
    /// is still open.
    pub fn nlink(&self, ino: u64, attr: &Attr) -> u32 {
        let t = self.inodes();
        let Some(n) = t.get(ino) else { return attr.nlink.max(1) };
        if attr.kind == Kind::Dir {
            let subdirs = n.listing.as_ref().map_or(0, |l| {
                let kind = |e: &Listed| match &e.attr {
                    Some(a) => Some(a.kind),
                    None => t.get(e.ino).map(|n| n.kind()),
                };
                l.entries.values().filter(|e| kind(e) == Some(Kind::Dir)).count()
            });
            return 2u32.saturating_add(u32::try_from(subdirs).unwrap_or(u32::MAX));
        }
        if n.unlinked {
            return 0;
        }
        attr.nlink.max(1)
    }

    /// Whether `ino` no longer has a name (removed, or replaced by a
    /// rename, while still open).
    pub(super) fn is_unlinked(&self, ino: u64) -> bool {
        self.inodes().get(ino).is_some_and(|n| n.unlinked)
    }

    /// Binds a name made here (and lists it in its folder's listing): the
    /// kernel is given the entry, so it holds one.
    pub(super) fn bind(&self, parent: u64, name: &str, attr: Attr) -> u64 {
        let mut t = self.inodes();
        let ino = t.upsert(parent, name, attr.clone());
        t.list(parent, name, ino, attr);
        t.remember(ino, 1);
        ino
    }

    /// A new file, open for writing, owned by the caller `uid`/`gid`.
    pub async fn create(&self, parent: u64, name: &str, mode: u32, uid: u32, gid: u32) -> FsResult<(u64, u64, Attr)> {
        let loc = self.writable_child(parent, name)?;
        if self.is_account_root(parent) {
            return Err(Errno::PERM);
        }
        if loc.scope != Scope::Now {
            self.check_grant(&self.locate(parent)?).await?;
        }
        let geometry = self.geometry(&loc, Op::Create).await?;
        let mut attr = Attr::new_file(now());
        attr.mode = Some(mode & 0o7777);
        self.opts.owners.record(&mut attr, uid, gid);
        attr.stored = true;
        let ino = self.bind(parent, name, attr.clone());
        if let Some(n) = self.inodes().get_mut(ino) {
            n.unsent = true;
        }
        self.entries_changed(&[parent], attr.mtime);
        self.note_open(ino, 1);
        self.note_pending(ino, Some(0));
        let fh = self.add_handle(OpenFile::created(ino, &geometry));
        Ok((ino, fh, attr))
    }

    /// mknod: a regular file is created (and committed empty) as by
    /// `create`; a FIFO, socket or device node is an empty object of its own
    /// content type, with its mode, owner and `rdev` in metadata (one PUT).
    #[allow(clippy::too_many_arguments)]
    pub async fn mknod(
        self: &Arc<Self>,
        parent: u64,
        name: &str,
        mode: u32,
        rdev: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<(u64, Attr)> {
        let loc = self.writable_child(parent, name)?;
        let kind = Kind::of_mode(mode).ok_or(Errno::INVAL)?;
        let Some(content_type) = kind.special_type() else {
            let (ino, fh, _) = self.create(parent, name, mode, uid, gid).await?;
            self.release(fh).await?;
            return Ok((ino, self.attr_of(ino)?));
        };
        if self.is_account_root(parent) {
            return Err(Errno::PERM); // only containers live at the account root
        }
        let mut attr = Attr::new_file(now());
        attr.kind = kind;
        attr.mode = Some(mode & 0o7777);
        if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
            attr.rdev = rdev;
        }
        self.opts.owners.record(&mut attr, uid, gid);
        attr.stored = true;
        let meta = attr.to_meta();
        let store = self.store_for(&loc)?;
        let made = store.write_object(&loc.container, &loc.path, Bytes::new(), content_type, &meta);
        made.await.during(Op::Create)?;
        self.entries_changed(&[parent], attr.mtime);
        Ok((self.bind(parent, name, attr.clone()), attr))
    }

    /// A new folder owned by the caller (a container at the account root:
    /// containers keep no owner or mode).
    pub async fn mkdir(&self, parent: u64, name: &str, mode: u32, uid: u32, gid: u32) -> FsResult<(u64, Attr)> {
        let loc = self.writable_child(parent, name)?;
        if self.list_dir(parent).await?.iter().any(|e| &*e.name == name) {
            return Err(Errno::EXIST);
        }
        let mut attr = Attr::dir(now());
        if self.is_account_root(parent) {
            self.store_for(&loc)?.create_container(name).await.during(Op::Mkdir)?;
        } else {
            attr.mode = Some(mode & 0o7777);
            self.opts.owners.record(&mut attr, uid, gid);
            attr.stored = true;
            let meta = attr.to_meta();
            let store = self.store_for(&loc)?;
            let marker = store.write_object(&loc.container, &loc.path, Bytes::new(), DIRECTORY_TYPE, &meta);
            marker.await.during(Op::Mkdir)?;
        }
        let ino = self.bind(parent, name, attr.clone());
        // A folder made here holds nothing yet: known without listing it.
        if let Some(n) = self.inodes().get_mut(ino) {
            n.listing.get_or_insert_with(|| Box::new(Listing { at: Instant::now(), entries: Default::default() }));
        }
        self.entries_changed(&[parent], attr.mtime);
        Ok((ino, attr))
    }

    /// Entries were made, removed or moved in these folders at `at`: their
    /// mtime and ctime move, in the mount only (see SEMANTICS, "Times"), so
    /// that a `cp -r` pays no request per file for its folders' times.
    pub(super) fn entries_changed(&self, folders: &[u64], at: Time) {
        let mut t = self.inodes();
        for &f in folders {
            t.touch(f, at, true);
        }
    }

    pub async fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        self.writable_child(parent, name)?;
        let (ino, attr) = self.find(parent, name).await?;
        let done = async {
            if attr.kind == Kind::Dir {
                return Err(Errno::ISDIR);
            }
            // This name's object (a linked file has one per name).
            let loc = self.child_loc(parent, name)?;
            match self.store_for(&loc)?.delete(&loc.container, &loc.path).await {
                Ok(()) => {}
                // Created here and never committed; or gone already, as asked
                // (a retried delete whose first attempt landed, its reply lost).
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(errno_of(Op::Unlink, &e)),
            }
            {
                // A file still open after its last name went is no file any
                // more: never written back, and fstat says nlink 0.
                let mut t = self.inodes();
                t.unlink(parent, name);
                let at = now();
                t.touch(parent, at, true);
                t.touch(ino, at, false);
            }
            self.unlinked(ino, &attr, &loc).await
        }
        .await;
        self.release_node(ino);
        done
    }

    pub async fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        self.writable_child(parent, name)?;
        let (ino, attr) = self.find(parent, name).await?;
        let done = async {
            if attr.kind != Kind::Dir {
                return Err(Errno::NOTDIR);
            }
            let loc = self.locate(ino)?;
            if self.is_account_root(parent) {
                self.store_for(&loc)?.delete_container(&loc.container).await.during(Op::Rmdir)?;
            } else {
                if self
                    .store_for(&loc)?
                    .holds_anything(&loc.container, &format!("{}/", loc.path))
                    .await
                    .during(Op::Rmdir)?
                {
                    return Err(Errno::NOTEMPTY);
                }
                match self.store_for(&loc)?.delete(&loc.container, &loc.path).await {
                    Ok(()) | Err(StoreError::NotFound) => {}
                    Err(e) => return Err(errno_of(Op::Rmdir, &e)),
                }
            }
            self.inodes().unbind(parent, name);
            self.entries_changed(&[parent], now());
            Ok(())
        }
        .await;
        self.release_node(ino);
        done
    }

    pub async fn rename(&self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> FsResult<()> {
        let from = self.writable_child(parent, name)?;
        let to = self.writable_child(new_parent, new_name)?;
        if from.scope != to.scope {
            return Err(Errno::XDEV); // another account: no move between them
        }
        if self.is_account_root(parent) || self.is_account_root(new_parent) {
            return Err(Errno::PERM); // containers cannot be renamed
        }
        let (ino, attr) = self.find(parent, name).await?;
        let done = async {
            // This name's object (a linked file has one per name).
            let from = self.child_loc(parent, name)?;
            // What the target is must be known: a failed lookup is no answer
            // (it would skip the checks below, and the file to take away).
            let target = match self.find(new_parent, new_name).await {
                Ok(found) => Some(found),
                Err(Errno::NOENT) => None,
                Err(e) => return Err(e),
            };
            let mut replaced = None;
            if let Some((existing_ino, existing)) = target {
                self.release_node(existing_ino);
                if existing_ino == ino {
                    // Two names of one file: POSIX says succeed and do nothing.
                    return Ok(());
                }
                replaced = Some((existing_ino, existing.clone()));
                match (attr.kind == Kind::Dir, existing.kind == Kind::Dir) {
                    (false, true) => return Err(Errno::ISDIR),
                    (true, false) => return Err(Errno::NOTDIR),
                    (true, true) => {
                        let under = format!("{}/", to.path);
                        if self.store_for(&to)?.holds_anything(&to.container, &under).await.during(Op::Rename)? {
                            return Err(Errno::NOTEMPTY);
                        }
                    }
                    (false, false) => {}
                }
            }
            if attr.kind == Kind::Dir {
                let store = self.store_for(&from)?;
                let moved = store.rename_folder(&from.container, &from.path, &to.container, &to.path);
                match moved.await {
                    Ok(()) => {}
                    // A retried move whose first attempt landed (its reply was lost).
                    Err(StoreError::NotFound) if self.folder_moved_already(&from, &to).await => {}
                    // More objects than the server moves at once, nothing
                    // moved: EXDEV, as between filesystems, so `mv` copies
                    // the tree and removes the original instead.
                    Err(StoreError::TooLarge) => return Err(Errno::XDEV),
                    Err(e) => return Err(errno_of(Op::Rename, &e)),
                }
            } else if self.pending_new(ino) {
                // Not committed yet: the commit will write at the new name,
                // as a new object; the file it replaces goes now, as a move
                // over it would take it (else that commit finds it there and
                // makes a conflict copy).
                // A commit of it whose reply was lost may have put it at the
                // old name: it moves too (not there: never landed).
                if self.inodes().get(ino).is_some_and(|n| n.maybe_sent) {
                    match self.store_for(&from)?.rename(&from.container, &from.path, &to.container, &to.path).await {
                        Ok(()) | Err(StoreError::NotFound) => {}
                        Err(e) => return Err(errno_of(Op::Rename, &e)),
                    }
                } else if replaced.as_ref().is_some_and(|(_, existing)| existing.kind != Kind::Dir) {
                    match self.store_for(&to)?.delete(&to.container, &to.path).await {
                        Ok(()) | Err(StoreError::NotFound) => {}
                        Err(e) => return Err(errno_of(Op::Rename, &e)),
                    }
                }
            } else {
                match self.store_for(&from)?.rename(&from.container, &from.path, &to.container, &to.path).await {
                    Ok(()) => {}
                    // A retried move whose first attempt landed (its reply was
                    // lost) finds no source: the object is at the new name.
                    Err(StoreError::NotFound) if self.moved_already(&attr, &to).await => {}
                    Err(e) => return Err(errno_of(Op::Rename, &e)),
                }
            }
            {
                let mut t = self.inodes();
                t.rename(parent, name, new_parent, new_name);
                if let Some(n) = t.get_mut(ino) {
                    n.listing = None;
                }
                // Both folders changed; the node itself changed (its ctime).
                let at = now();
                t.touch(parent, at, true);
                t.touch(new_parent, at, true);
                t.touch(ino, at, false);
            }
            self.link_moved(&attr, &from, &to);
            // A linked name replaced: its group has one name fewer.
            match replaced {
                Some((r, existing)) => self.unlinked(r, &existing, &to).await,
                _ => Ok(()),
            }
        }
        .await;
        self.release_node(ino);
        done
    }

    /// Whether the object `attr` describes now lies at `to`: the same UUID
    /// (a Pithos move keeps it) or, for one not known here by UUID (made
    /// here), the same content tag and size.
    async fn moved_already(&self, attr: &Attr, to: &Loc) -> bool {
        let known = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        let Ok(store) = self.store_for(to) else { return false };
        let Ok(there) = store.stat(&to.container, &to.path).await else { return false };
        match (known(&attr.uuid), known(&attr.hash)) {
            (Some(uuid), _) => there.uuid == Some(uuid),
            (None, Some(hash)) => {
                (there.hash == Some(hash.clone()) || there.tag == Some(hash)) && there.bytes == attr.size
            }
            (None, None) => false,
        }
    }

    /// Whether the folder at `from` now lies at `to`: nothing is left at the
    /// old name (no marker, nothing under it) and the new one holds a folder.
    async fn folder_moved_already(&self, from: &Loc, to: &Loc) -> bool {
        // One account: a move across accounts is refused before it starts.
        let Ok(store) = self.store_for(from) else { return false };
        let marker_gone = matches!(store.stat(&from.container, &from.path).await, Err(StoreError::NotFound));
        let emptied = matches!(store.holds_anything(&from.container, &format!("{}/", from.path)).await, Ok(false));
        if !marker_gone || !emptied {
            return false;
        }
        match store.stat(&to.container, &to.path).await {
            Ok(there) => crate::clients::storage::is_directory_type(&there.content_type),
            Err(StoreError::NotFound) => {
                matches!(store.holds_anything(&to.container, &format!("{}/", to.path)).await, Ok(true))
            }
            Err(_) => false,
        }
    }

    /// A symlink owned by the caller.
    pub async fn symlink(&self, parent: u64, name: &str, target: &str, uid: u32, gid: u32) -> FsResult<(u64, Attr)> {
        let loc = self.writable_child(parent, name)?;
        if self.is_account_root(parent) {
            return Err(Errno::PERM); // only containers live at the account root
        }
        let mut attr = Attr::new_file(now());
        attr.kind = Kind::Symlink;
        attr.size = target.len() as u64;
        self.opts.owners.record(&mut attr, uid, gid);
        attr.stored = true;
        let data = Bytes::copy_from_slice(target.as_bytes());
        let meta = attr.to_meta();
        self.store_for(&loc)?
            .write_object(&loc.container, &loc.path, data, SYMLINK_TYPE, &meta)
            .await
            .during(Op::Symlink)?;
        let ino = self.bind(parent, name, attr.clone());
        if let Some(n) = self.inodes().get_mut(ino) {
            n.target = Some(target.into());
        }
        self.entries_changed(&[parent], attr.mtime);
        Ok((ino, attr))
    }

    pub async fn readlink(&self, ino: u64) -> FsResult<String> {
        if let Some(t) = self.inodes().get(ino).and_then(|n| n.target.as_deref().map(str::to_string)) {
            return Ok(t);
        }
        let loc = self.locate(ino)?;
        let size = self.attr_of(ino)?.size;
        // A target is at most what the kernel takes: a longer reply is refused, not read.
        let data = self
            .store_for(&loc)?
            .read_object(&loc.container, &loc.path, SYMLINK_MAX as u64)
            .await
            .during(Op::Readlink)?;
        // The target is the whole object: a reply shorter or longer than the
        // object's size is refused, never cached (a cut one would name another path).
        if data.len() as u64 != size {
            tracing::warn!("{}: {} bytes of a {size}-byte symlink target read", shorten(&loc.path), data.len());
            return Err(Errno::IO);
        }
        let target = match String::from_utf8(data.to_vec()) {
            Ok(t) if !t.is_empty() && !t.contains('\0') => t,
            _ => {
                tracing::warn!("{}: the symlink's target is empty, not UTF-8 or holds NUL", shorten(&loc.path));
                return Err(Errno::IO);
            }
        };
        if let Some(n) = self.inodes().get_mut(ino) {
            n.target = Some(target.as_str().into());
        }
        Ok(target)
    }
}

/// The content type of a folder's marker object.
pub(super) const DIRECTORY_TYPE: &str = "application/directory";
