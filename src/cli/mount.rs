//! `pithosfs mount` as a process: its signals and allocator, the login to the
//! cloud, the block cache's disk tier, and the filesystem (`crate::fs`) served
//! through FUSE until unmounted; "mounted" said (to the user, systemd and the
//! background launcher, `daemon`) once the session is up. The mount point's
//! states and `pithosfs unmount` are `mountpoint`'s; the FUSE session `session`'s.

use super::{daemon, mountpoint, session};
use crate::clients::pithos::PithosClient;
use crate::clients::storage::ObjectStorage;
use crate::config::{self, Environment, Flags};
use crate::fs::store::{PithosStore, Store, SwiftStore};
use crate::fs::{cache, disk, fuse, Fs, FsOptions};
use mountpoint::State;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What `pithosfs mount` was asked for.
#[derive(Debug, Clone)]
pub struct MountRequest {
    pub mountpoint: PathBuf,
    pub flags: Flags,
    pub fs: FsOptions,
    pub foreground: bool,
    pub allow_other: bool,
    /// Mount `noexec`.
    pub noexec: bool,
    /// A plain OpenStack object store instead of a Synnefo cloud.
    pub storage: Option<config::StorageTarget>,
    /// The disk tier of the block cache: its directory and size bound in bytes.
    pub cache_dir: Option<(PathBuf, u64)>,
    /// The background mount process: the pipe on which it tells its launcher
    /// that the mount is up (closing it unsaid means it failed).
    pub ready_fd: Option<i32>,
    /// `--log-file`: where the logs go (for a background mount, instead of its own log).
    pub log_file: Option<PathBuf>,
}

/// Mounts and serves until unmounted (foreground), or starts a background
/// copy of itself and returns once the mount is up (or says why it is not).
pub fn mount(req: MountRequest) -> Result<(), String> {
    match mountpoint::state(&req.mountpoint)? {
        State::Free => {}
        State::Dead => return Err(mountpoint::dead_message(&req.mountpoint)),
        State::Mounted { .. } => return Err(format!("{} is already a mount point", req.mountpoint.display())),
    }
    if !req.foreground {
        return daemon::launch(&req);
    }
    bound_allocator();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    match rt.block_on(connect(&req))? {
        Connected::Pithos { store, embedded, what } => serve(&rt, &req, store, embedded, what),
        Connected::Swift { store, what } => serve(&rt, &req, store, None, what),
    }
}

/// A store to mount, and what it is.
enum Connected {
    /// A Synnefo cloud (with the local cloud served by this process, if it is that).
    Pithos { store: PithosStore, embedded: Option<config::EmbeddedCloud>, what: String },
    /// A plain OpenStack object store.
    Swift { store: SwiftStore, what: String },
}

/// Serves `store` at the mount point until it is unmounted, then commits
/// what is still open and keeps the block cache for the next mount.
fn serve<S: Store>(
    rt: &tokio::runtime::Runtime,
    req: &MountRequest,
    store: S,
    embedded: Option<config::EmbeddedCloud>,
    what: String,
) -> Result<(), String> {
    let fs = Arc::new(build_fs(store, req)?);
    let adapter = fuse::FuseAdapter::new(fs.clone(), rt.handle().clone());
    // Ctrl-C or SIGTERM unmount; the session then ends after the last commit.
    let mountpoint = req.mountpoint.clone();
    rt.spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        if let Err(e) = mountpoint::unmount(&mountpoint) {
            tracing::warn!("unmounting on a signal: {e}");
        }
    });
    let mounted = session::mount(adapter, req, &what);
    let result = match mounted {
        Ok(m) => {
            session::raise_read_ahead(req);
            announce(req, &what);
            let own = m.own_mount;
            let ran = m.session.run().map_err(|e| format!("the FUSE session failed: {e}"));
            if ran.is_err() && own && mountpoint::is_mounted(&req.mountpoint) {
                session::detach(req);
            }
            ran
        }
        Err(e) => Err(e),
    };
    notify_systemd(sd_notify::NotifyState::Stopping);
    rt.block_on(async {
        fs.commit_all().await;
        if let Some(e) = embedded {
            e.shutdown().await;
        }
    });
    fs.cache.persist();
    if result.is_ok() {
        tracing::info!("unmounted {what} from {}", req.mountpoint.display());
    }
    result
}

/// Says the mount is up: to the user (or the log), to systemd (`Type=notify`)
/// and to the launcher of a background mount.
fn announce(req: &MountRequest, what: &str) {
    eprintln!("pithosfs: mounted {what} at {}", req.mountpoint.display());
    notify_systemd(sd_notify::NotifyState::Ready);
    if let Some(fd) = req.ready_fd {
        daemon::tell_ready(fd, what);
    }
}

/// Tells systemd (when it started this process as a `Type=notify` service).
fn notify_systemd(state: sd_notify::NotifyState) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::warn!("cannot notify systemd (NOTIFY_SOCKET): {e}");
    }
}

/// Blocks (4 MiB each) come and go all the time. glibc's malloc keeps freed
/// memory in one arena per thread, so with the runtime's threads the process
/// held the cache budget plus ~300 MiB. One arena and fixed thresholds (blocks
/// reuse heap memory instead of fresh mappings, which cost page faults) keep a
/// 512 MiB cache within ~560 MiB (measured reading 1 GiB cold).
fn bound_allocator() {
    // SAFETY: mallopt only sets allocator tunables; called before the threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Resolves the cloud, logs in and checks the root exists.
async fn connect(req: &MountRequest) -> Result<Connected, String> {
    let env = Environment::current();
    if let Some(target) = &req.storage {
        return connect_plain(req, target, &env).await;
    }
    let resolved = config::resolve_or_start_local(&req.flags, &env).await.map_err(|e| e.0)?;
    let cfg = &resolved.config;
    if cfg.source.is_local() {
        eprintln!("pithosfs: no cloud configured: using {} at {}", cfg.source, cfg.identity_url);
    }
    for note in &cfg.notes {
        eprintln!("pithosfs: note: {note}");
    }
    // With the kamakirc's endpoint overrides (pithos_url…).
    let astakos = cfg.astakos().map_err(|e| e.message)?;
    let account = astakos.term("uuid").await.map_err(|e| format!("cannot authenticate: {}", e.message))?;
    let endpoint = astakos.get_endpoint_url("object-store").await.map_err(|e| e.message)?;
    let container = req.fs.container.clone().unwrap_or_else(|| "pithos".into());
    let pithos = PithosClient::new(&endpoint, cfg.token.expose(), &account, &container).map_err(|e| e.message)?;
    if req.fs.container.is_some() {
        pithos.get_container_info().await.map_err(|e| format!("container {container}: {}", e.message))?;
    } else {
        pithos.get_account_info().await.map_err(|e| format!("account {account}: {}", e.message))?;
    }
    let what = match &req.fs.container {
        Some(c) => format!("pithos:{c}"),
        None => "pithos".to_string(),
    };
    Ok(Connected::Pithos { store: PithosStore::new(pithos).with_names(astakos), embedded: resolved.embedded, what })
}

/// A plain OpenStack object store (Swift): the same tree, without the Pithos extensions.
async fn connect_plain(
    req: &MountRequest,
    target: &config::StorageTarget,
    env: &Environment,
) -> Result<Connected, String> {
    let container = req.fs.container.clone().unwrap_or_default();
    let storage = config::storage_client(target, &req.flags, env, &container).await.map_err(|e| e.0)?;
    if req.fs.container.is_some() {
        storage.get_container_info().await.map_err(|e| format!("container {container}: {}", e.message))?;
    } else {
        storage.get_account_info().await.map_err(|e| format!("account {}: {}", storage.account(), e.message))?;
    }
    let what = match &req.fs.container {
        Some(c) => format!("swift:{c}"),
        None => format!("swift:{}", storage.account()),
    };
    Ok(Connected::Swift { store: SwiftStore::new(storage), what })
}

/// The disk tier in `dir`. A mount that just ended may still be writing its
/// blocks there (after its unmount returned): wait for it, bounded.
fn open_disk_tier(dir: &Path, size: u64) -> Result<disk::DiskTier, String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match disk::DiskTier::open(dir, size) {
            Ok(d) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(format!("cannot use the cache dir {}: {e}", dir.display())),
        }
    }
}

/// The filesystem with its block cache (and the cache's disk tier, if asked for).
fn build_fs<S: Store>(store: S, req: &MountRequest) -> Result<Fs<S>, String> {
    let disk = match &req.cache_dir {
        Some((dir, size)) => Some(open_disk_tier(dir, *size)?),
        None => None,
    };
    let cache = cache::BlockCache::with_disk(req.fs.cache_size, disk);
    Ok(Fs::new(store, req.fs.clone(), cache))
}
