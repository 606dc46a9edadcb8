//! Links fuser's callbacks to `Fs`: each request is handed, with its reply,
//! to the tokio runtime and answered from there, so no FUSE thread ever waits
//! on the network. Nothing here decides anything: it translates.

use super::filesystem::Fs;
use super::fuse_reply::{done, entry, errno, file_attr, file_type, name_of, to_epoch};
use super::metadata::Times;
use super::store::Store;
use fuser::{
    CopyFileRangeFlags, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig,
    LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// The largest read request wanted from the kernel (1 MiB): fuser derives
/// the handshake's `max_pages` from it and `max_write`. The kernel offers
/// its default read-ahead (128 KiB) in the handshake and keeps it; the mount
/// raises the read-ahead afterwards (`cli::session::raise_read_ahead`).
pub const READ_AHEAD: u32 = 1 << 20;

pub struct FuseAdapter<S: Store> {
    fs: Arc<Fs<S>>,
    rt: tokio::runtime::Handle,
}

impl<S: Store> FuseAdapter<S> {
    pub fn new(fs: Arc<Fs<S>>, rt: tokio::runtime::Handle) -> FuseAdapter<S> {
        FuseAdapter { fs, rt }
    }

    fn spawn<F>(&self, f: impl FnOnce(Arc<Fs<S>>) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.rt.spawn(f(self.fs.clone()));
    }
}

impl<S: Store> Filesystem for FuseAdapter<S> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.add_capabilities(
            InitFlags::FUSE_DO_READDIRPLUS
                | InitFlags::FUSE_READDIRPLUS_AUTO
                | InitFlags::FUSE_PARALLEL_DIROPS
                | InitFlags::FUSE_ATOMIC_O_TRUNC
                | InitFlags::FUSE_CACHE_SYMLINKS,
        );
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(READ_AHEAD);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn destroy(&mut self) {
        let fs = self.fs.clone();
        // Whatever is still open and changed is committed before the mount goes.
        self.rt.block_on(async move { fs.commit_all().await });
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = match name_of(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        // Answered here when the listing is fresh: no task, no wait (ls -l of
        // a large folder makes thousands of these).
        match self.fs.cached_lookup(parent.0, &name) {
            Some(Ok((ino, a))) => {
                return reply.entry(&self.fs.opts.attr_ttl, &file_attr(&self.fs, ino, &a), Generation(0))
            }
            Some(Err(e)) => return reply.error(errno(e)),
            None => {}
        }
        self.spawn(|fs| async move { entry(&fs, reply, fs.lookup(parent.0, &name).await) });
    }

    /// The kernel dropped `nlookup` of the entries it was given for `ino`.
    /// (fuser's `batch_forget` calls this for each node of a batch; its
    /// `ForgetOne` is not public in 0.18, so it cannot be overridden.)
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.cached_attr(ino.0) {
            Some(Ok(a)) => return reply.attr(&self.fs.opts.attr_ttl, &file_attr(&self.fs, ino.0, &a)),
            Some(Err(e)) => return reply.error(errno(e)),
            None => {}
        }
        self.spawn(|fs| async move {
            match fs.getattr(ino.0).await {
                Ok(a) => reply.attr(&fs.opts.attr_ttl, &file_attr(&fs, ino.0, &a)),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.spawn(|fs| async move {
            let times = Times { atime: atime.map(to_epoch), mtime: mtime.map(to_epoch) };
            let r = fs.setattr(ino.0, mode, uid, gid, size, times, fh.map(|f| f.0)).await;
            match r {
                Ok(a) => reply.attr(&fs.opts.attr_ttl, &file_attr(&fs, ino.0, &a)),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.spawn(|fs| async move {
            match fs.readlink(ino.0).await {
                Ok(t) => reply.data(t.as_bytes()),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let name = match name_of(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let (uid, gid) = (req.uid(), req.gid());
        self.spawn(|fs| async move { entry(&fs, reply, fs.mkdir(parent.0, &name, mode & !umask, uid, gid).await) });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match name_of(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.spawn(|fs| async move { done(reply, fs.unlink(parent.0, &name).await) });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match name_of(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.spawn(|fs| async move { done(reply, fs.rmdir(parent.0, &name).await) });
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let (name, target) = match (name_of(link_name), target.to_str()) {
            (Ok(n), Some(t)) => (n, t.to_string()),
            _ => return reply.error(fuser::Errno::EINVAL),
        };
        let (uid, gid) = (req.uid(), req.gid());
        self.spawn(|fs| async move { entry(&fs, reply, fs.symlink(parent.0, &name, &target, uid, gid).await) });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(fuser::Errno::EINVAL); // RENAME_EXCHANGE / NOREPLACE
        }
        let (name, newname) = match (name_of(name), name_of(newname)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return reply.error(fuser::Errno::EINVAL),
        };
        self.spawn(|fs| async move { done(reply, fs.rename(parent.0, &name, newparent.0, &newname).await) });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY);
        let truncate = flags.0 & libc::O_TRUNC != 0;
        self.spawn(|fs| async move {
            match fs.open(ino.0, write, truncate).await {
                Ok((fh, keep)) => {
                    let f = if keep { FopenFlags::FOPEN_KEEP_CACHE } else { FopenFlags::empty() };
                    reply.opened(FileHandle(fh), f)
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let now = {
            let _runtime = self.rt.enter();
            self.fs.read_now(fh.0, offset, size)
        };
        if let Some(data) = now {
            return reply.data(&data);
        }
        self.spawn(|fs| async move {
            match fs.read(fh.0, offset, size).await {
                Ok(d) => reply.data(&d),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        self.spawn(|fs| async move {
            match fs.write(fh.0, offset, &data).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        self.spawn(|fs| async move { done(reply, fs.flush(fh.0).await) });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn(|fs| async move { done(reply, fs.release(fh.0).await) });
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.spawn(|fs| async move { done(reply, fs.flush(fh.0).await) });
    }

    /// `cp` inside the mount: blocks move by their hashes (see `copy`).
    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        self.spawn(|fs| async move {
            match fs.copy_range(fh_in.0, offset_in, fh_out.0, offset_out, len).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.spawn(|fs| async move {
            match fs.opendir(ino.0).await {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        self.spawn(|fs| async move {
            let entries = match fs.dir_entries(ino.0, fh.0).await {
                Ok(e) => e,
                Err(e) => return reply.error(errno(e)),
            };
            // Straight to the page asked for: a folder of 100,000 is read in
            // a thousand calls, and skipping what came before must cost nothing.
            for i in (offset as usize)..entries.len() + 2 {
                let full = match i {
                    0 => reply.add(ino, 1, FileType::Directory, "."),
                    1 => reply.add(ino, 2, FileType::Directory, ".."),
                    _ => {
                        let e = &entries[i - 2];
                        reply.add(INodeNo(e.ino), (i + 1) as u64, file_type(e.kind), &*e.name)
                    }
                };
                if full {
                    break;
                }
            }
            reply.ok();
        });
    }

    fn readdirplus(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        self.spawn(|fs| async move {
            let entries = match fs.dir_entries(ino.0, fh.0).await {
                Ok(e) => e,
                Err(e) => return reply.error(errno(e)),
            };
            let ttl = fs.opts.attr_ttl;
            // Only the page asked for is built: a folder of 10,000 is read in
            // many calls. Each entry given (not `.` and `..`) is one the
            // kernel holds, as after a lookup. The folder's own attributes
            // only on the first page: its link count walks its listing.
            let dot = if offset < 2 {
                match fs.attr_of(ino.0) {
                    Ok(a) => Some(file_attr(&fs, ino.0, &a)),
                    Err(e) => return reply.error(errno(e)),
                }
            } else {
                None
            };
            for i in (offset as usize)..entries.len() + 2 {
                let full = match (i, &dot) {
                    (0 | 1, Some(dot)) => {
                        reply.add(ino, (i + 1) as u64, if i == 0 { "." } else { ".." }, &ttl, dot, Generation(0))
                    }
                    (0 | 1, None) => continue,
                    _ => {
                        let e = &entries[i - 2];
                        // Gone since the folder was opened: not given.
                        let Some((child, attr)) = fs.bind_entry(ino.0, e) else { continue };
                        let fa = file_attr(&fs, child, &attr);
                        let full = reply.add(INodeNo(child), (i + 1) as u64, &*e.name, &ttl, &fa, Generation(0));
                        if full {
                            fs.forget(child, 1); // not given after all
                        }
                        full
                    }
                };
                if full {
                    break;
                }
            }
            reply.ok();
        });
    }

    /// With `default_permissions` (always set) the kernel answers access(2)
    /// itself from the attributes getattr reports; should a kernel ask
    /// anyway, the answer is the same rule on the same attributes.
    fn access(&self, req: &Request, ino: INodeNo, mask: fuser::AccessFlags, reply: ReplyEmpty) {
        let a = match self.fs.attr_of(ino.0) {
            Ok(a) => a,
            Err(e) => return reply.error(errno(e)),
        };
        let fa = file_attr(&self.fs, ino.0, &a);
        let groups = super::owners::groups_of(req.pid(), req.gid());
        let is_dir = fa.kind == FileType::Directory;
        if super::owners::permits(fa.perm as u32, (fa.uid, fa.gid), is_dir, req.uid(), &groups, mask.bits()) {
            reply.ok()
        } else {
            reply.error(fuser::Errno::EACCES)
        }
    }

    /// A regular file by mknod(2) is created like any other; FIFOs, sockets
    /// and device nodes are objects of their own types.
    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, rdev: u32, reply: ReplyEntry) {
        let name = match name_of(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let (uid, gid) = (req.uid(), req.gid());
        self.spawn(|fs| async move {
            let perm = mode & !umask & 0o7777;
            entry(&fs, reply, fs.mknod(parent.0, &name, (mode & libc::S_IFMT) | perm, rdev, uid, gid).await)
        });
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let name = match name_of(newname) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.spawn(|fs| async move { entry(&fs, reply, fs.link(ino.0, newparent.0, &name).await) });
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.spawn(|fs| async move {
            match fs.statfs().await {
                Ok((total, free)) => {
                    let bsize = 4096u64;
                    reply.statfs(
                        total / bsize,
                        free / bsize,
                        free / bsize,
                        1 << 30,
                        1 << 30,
                        bsize as u32,
                        255,
                        bsize as u32,
                    )
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let name = match name_of(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let value = value.to_vec();
        self.spawn(|fs| async move { done(reply, fs.setxattr(ino.0, &name, Some(&value)).await) });
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let name = match name_of(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        // Only the user.* namespace is supported. `ls -l` asks every file for
        // its SELinux label and ACLs: "not supported" (at once, no task) lets
        // it stop asking for the rest of this filesystem.
        if !name.starts_with("user.") {
            return reply.error(fuser::Errno::EOPNOTSUPP);
        }
        self.spawn(|fs| async move {
            match fs.getxattr(ino.0, &name).await {
                Ok(v) if size == 0 => reply.size(v.len() as u32),
                Ok(v) if v.len() > size as usize => reply.error(fuser::Errno::ERANGE),
                Ok(v) => reply.data(&v),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.spawn(|fs| async move {
            match fs.listxattr(ino.0).await {
                Ok(names) => {
                    let mut buf = Vec::new();
                    for n in names {
                        buf.extend_from_slice(n.as_bytes());
                        buf.push(0);
                    }
                    if size == 0 {
                        reply.size(buf.len() as u32)
                    } else if buf.len() > size as usize {
                        reply.error(fuser::Errno::ERANGE)
                    } else {
                        reply.data(&buf)
                    }
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match name_of(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.spawn(|fs| async move { done(reply, fs.setxattr(ino.0, &name, None).await) });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let name = match name_of(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let (uid, gid) = (req.uid(), req.gid());
        self.spawn(|fs| async move {
            match fs.create(parent.0, &name, mode & !umask, uid, gid).await {
                Ok((ino, fh, a)) => reply.created(
                    &fs.opts.attr_ttl,
                    &file_attr(&fs, ino, &a),
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                ),
                Err(e) => reply.error(errno(e)),
            }
        });
    }
}
