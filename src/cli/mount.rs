//! `pithosfs mount` and `pithosfs unmount` as a process: the daemon, its
//! signals and allocator, the login to the cloud, the block cache's disk
//! tier, and the filesystem (`crate::fs`) served through FUSE until unmounted.

use crate::clients::pithos::PithosClient;
use crate::clients::storage::ObjectStorage;
use crate::config::{self, Environment, Flags};
use crate::fs::store::{PithosStore, Store, SwiftStore};
use crate::fs::{cache, disk, fuse, Fs, FsOptions};
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
    /// A plain OpenStack object store instead of a Synnefo cloud.
    pub storage: Option<config::StorageTarget>,
    /// The disk tier of the block cache: its directory and size bound in bytes.
    pub cache_dir: Option<(PathBuf, u64)>,
}

/// Whether `path` is a mount point now.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else { return false };
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else { return false };
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1).is_some_and(|m| m.replace("\\040", " ") == canon.to_string_lossy()))
}

/// Mounts and serves until unmounted (foreground), or starts a background
/// copy of itself and returns once the mount is up.
pub fn mount(req: MountRequest) -> Result<(), String> {
    if !req.mountpoint.is_dir() {
        return Err(format!("{} is not a directory", req.mountpoint.display()));
    }
    if is_mounted(&req.mountpoint) {
        return Err(format!("{} is already a mount point", req.mountpoint.display()));
    }
    if !req.foreground {
        return spawn_background(&req);
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
    let mut options = vec![
        fuser::MountOption::FSName(what.clone()),
        fuser::MountOption::Subtype("pithosfs".into()),
        // The kernel checks modes, owners and groups on every call, for
        // every user (with --allow-other too), as on a local filesystem.
        fuser::MountOption::DefaultPermissions,
    ];
    // fuser mounts nosuid unless told otherwise: say which, explicitly.
    options.push(if req.fs.suid { fuser::MountOption::Suid } else { fuser::MountOption::NoSuid });
    // A device node is an object anyone with the account's token can write:
    // it opens a device only when asked (--dev).
    options.push(if req.fs.dev { fuser::MountOption::Dev } else { fuser::MountOption::NoDev });
    if req.fs.read_only {
        options.push(fuser::MountOption::RO);
    }
    let mut config = fuser::Config::default();
    config.mount_options = options;
    config.n_threads = Some(4);
    config.clone_fd = true;
    if req.allow_other {
        config.acl = fuser::SessionACL::All;
    }
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
        let _ = unmount(&mountpoint);
    });
    eprintln!("pithosfs: mounted {what} at {}", req.mountpoint.display());
    let result = fuser::mount(adapter, &req.mountpoint, &config).map_err(|e| format!("mount failed: {e}"));
    rt.block_on(async {
        fs.commit_all().await;
        if let Some(e) = embedded {
            e.shutdown().await;
        }
    });
    fs.cache.persist();
    result
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
    Ok(Connected::Pithos { store: PithosStore::new(pithos), embedded: resolved.embedded, what })
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

/// Runs `pithosfs mount -f …` detached and waits until the mount appears.
fn spawn_background(req: &MountRequest) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    args.push("--foreground".into());
    // The daemon's log: the user's own (0600, in the cache dir), since error
    // messages name files; not in a world-readable /tmp.
    let dir = crate::fs::default_cache_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    prune_logs(&dir);
    let log = dir.join(format!("mount-{}.log", std::process::id()));
    let log_file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&log)
    }
    .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the mount process: {e}"))?;
    // Named after the daemon, so that pruning knows whose log is still written.
    let named = dir.join(format!("mount-{}.log", child.id()));
    let log = if std::fs::rename(&log, &named).is_ok() { named } else { log };
    for _ in 0..600 {
        if is_mounted(&req.mountpoint) {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            eprint!("{said}");
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("the mount process ended ({status}):\n{said}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no mount at {} after 30 s; see {}", req.mountpoint.display(), log.display()))
}

/// Daemon logs kept: those of mounts still running, and the newest of the
/// others up to this many (a mount that ended, cleanly or killed, leaves its
/// log for a while; they must not pile up in the cache dir for ever).
const KEPT_LOGS: usize = 8;

/// Removes the oldest logs of ended mounts, making room for one more.
fn prune_logs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut ended: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let pid: u32 = name.strip_prefix("mount-")?.strip_suffix(".log")?.parse().ok()?;
            if process_runs(pid) {
                return None;
            }
            Some((e.metadata().ok()?.modified().ok()?, e.path()))
        })
        .collect();
    ended.sort();
    let extra = ended.len().saturating_sub(KEPT_LOGS - 1);
    for (_, path) in ended.into_iter().take(extra) {
        let _ = std::fs::remove_file(path);
    }
}

/// Whether process `pid` runs (exists and is not a zombie waiting to be reaped).
fn process_runs(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some(Some('Z' | 'X')) | None)
}

/// Unmounts (fusermount3 -u). Every file was committed when it was closed, so
/// once this returns nothing is left to send.
pub fn unmount(mountpoint: &Path) -> Result<(), String> {
    let out = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(mountpoint)
        .output()
        .or_else(|_| std::process::Command::new("umount").arg(mountpoint).output())
        .map_err(|e| format!("cannot run fusermount3: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    for _ in 0..200 {
        if !is_mounted(mountpoint) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(())
}
