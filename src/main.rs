//! The `pithosfs` command.

use clap::{Parser, Subcommand};
use pithosfs::cli::{self, Control};
use pithosfs::cloud::{self, users, ServeConfig};
use pithosfs::config::StorageTarget;
use pithosfs::fs::owners::{Owners, Policy};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "pithosfs", version, about = "Synnefo clouds from Linux: FUSE mount, control command, local cloud")]
struct Cli {
    /// More detail: which cloud and user a command uses, and info logs (-vv: debug logs).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded, Synnefo-compatible local cloud (Astakos, Pithos+, Cyclades, Plankton).
    ///
    /// Prints its base URL on stdout once it accepts connections. Point kamaki at
    /// `<URL>/identity/v2.0` with the token printed on first start (kept in `<DATA>/token`).
    Serve(ServeArgs),
    /// Mount the Pithos+ account (containers are folders) or one container.
    ///
    /// With no cloud configured (no --url, PITHOSFS_URL or ~/.kamakirc) it uses the
    /// local cloud of the data directory (serving it itself when none runs), and says so.
    Mount(MountArgs),
    /// Unmount a pithosfs mount (every file was committed when it was closed).
    Unmount {
        /// The mount point.
        mountpoint: PathBuf,
    },
    /// Cyclades servers: `server list`, `server info ID`.
    Server(cli::ServerArgs),
    /// Astakos users: `user info`, `user uuid2name UUID…`, `user name2uuid NAME…`.
    User(cli::UserArgs),
    /// Cyclades flavors: `flavor list`.
    Flavor(cli::FlavorArgs),
    /// Plankton images: `image list`.
    Image(cli::ImageArgs),
    /// Pithos+ objects, with kamaki's names: `file list|upload|download|cat|info|…`.
    File(cli::FileArgs),
    /// Pithos+ containers: `container list|create|delete`.
    Container(cli::ContainerArgs),
    /// The account's quota and usage.
    Quota(cli::QuotaArgs),
}

#[derive(clap::Args)]
struct MountArgs {
    /// Where to mount.
    mountpoint: PathBuf,
    /// Mount this container as the root instead of the whole account.
    #[arg(long)]
    container: Option<String>,
    /// Refuse every change.
    #[arg(long)]
    read_only: bool,
    /// Memory for cached blocks, in MiB.
    #[arg(long, default_value_t = 512)]
    cache_size: u64,
    /// Seconds the kernel and pithosfs trust attributes.
    #[arg(long, default_value_t = 1.0)]
    attr_ttl: f64,
    /// Seconds a directory listing is trusted.
    #[arg(long, default_value_t = 1.0)]
    dir_ttl: f64,
    /// The account owner's local uid: owner of files that carry no owner of this
    /// machine [default: the mounting user].
    #[arg(long)]
    uid: Option<u32>,
    /// The account owner's local gid [default: the mounting user's].
    #[arg(long)]
    gid: Option<u32>,
    /// Which recorded owners to believe: those recorded on this machine (local), every
    /// recorded number (all: machines sharing one uid space), or none (mine: every file
    /// is the account owner's). See SEMANTICS.md, "Who may do what".
    #[arg(long, value_enum, default_value_t = OwnersArg::Local)]
    owners: OwnersArg,
    /// Mode of files that carry none (octal).
    #[arg(long, default_value = "644")]
    file_mode: String,
    /// Mode of folders that carry none (octal).
    #[arg(long, default_value = "755")]
    dir_mode: String,
    /// Let other local users reach the mount, within what modes, owners and groups allow
    /// (needs user_allow_other in /etc/fuse.conf unless root).
    #[arg(long)]
    allow_other: bool,
    /// Show setuid/setgid bits the server records, and mount without `nosuid`
    /// (only for a cloud you trust: by default they are masked).
    #[arg(long)]
    suid: bool,
    /// Mount without `nodev`: device nodes on the mount open their devices
    /// (only for a cloud you trust; by default they cannot be opened).
    #[arg(long)]
    dev: bool,
    /// Stay in the foreground (Ctrl-C unmounts).
    #[arg(short, long)]
    foreground: bool,
    /// Astakos identity URL (…/identity/v2.0) [env: PITHOSFS_URL].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// File holding the token [env: PITHOSFS_TOKEN_FILE, or the token itself in PITHOSFS_TOKEN].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// A cloud of the kamaki config file.
    #[arg(long, value_name = "NAME")]
    cloud: Option<String>,
    /// Disk tier of the block cache (kept across mounts); also where large writes spill
    /// [default for spills: ~/.cache/pithosfs/spill].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Size bound of --cache-dir, in MiB.
    #[arg(long, value_name = "MiB", default_value_t = 4096)]
    cache_dir_size: u64,
    /// A plain OpenStack object store (Swift) by storage URL (…/v1/AUTH_x), token as for --token-file.
    #[arg(long, value_name = "URL", conflicts_with_all = ["url", "cloud", "swift_auth"])]
    storage_url: Option<String>,
    /// A plain OpenStack Swift by v1 (tempauth) auth URL; needs --swift-user.
    #[arg(long, value_name = "URL", requires = "swift_user", conflicts_with_all = ["url", "cloud"])]
    swift_auth: Option<String>,
    /// The Swift user (account:user) for --swift-auth.
    #[arg(long, value_name = "USER")]
    swift_user: Option<String>,
    /// File holding the Swift key [env: PITHOSFS_SWIFT_KEY].
    #[arg(long, value_name = "FILE")]
    swift_key_file: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OwnersArg {
    Local,
    All,
    Mine,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ServeArgs {
    #[command(subcommand)]
    action: Option<ServeAction>,
    /// Data directory: metadata database and block store [default: ~/.local/share/pithosfs]
    #[arg(long, env = "PITHOSFS_DATA")]
    data: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Base URL announced in the service catalog, when clients reach the server by another name.
    #[arg(long)]
    public_url: Option<String>,
    /// Add a user by display name (repeatable); a token is generated on first start and
    /// kept in `<DATA>/tokens/<NAME>` (mode 0600). Tokens never go on the command line.
    #[arg(long = "user", value_name = "NAME")]
    users: Vec<String>,
    /// File of users with their tokens, one `NAME TOKEN` per line.
    #[arg(long, value_name = "FILE")]
    users_file: Option<PathBuf>,
    /// Account quota in bytes for every user (0: unlimited).
    #[arg(long, default_value_t = 0)]
    quota: u64,
    /// Block size in bytes (Synnefo uses 4 MiB).
    #[arg(long, default_value_t = pithosfs::blocks::DEFAULT_BLOCK_SIZE)]
    block_size: u64,
    /// Seconds a new server stays in BUILD before it turns ACTIVE.
    #[arg(long, default_value_t = 2.0)]
    build_seconds: f64,
    /// Connections served at once; more are answered 503.
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Seconds a request head may take to arrive (also how long an idle connection is kept).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    header_timeout: f64,
    /// Seconds a request body or a reply may make no progress before the connection is dropped.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    idle_timeout: f64,
    /// Seconds between background garbage collection passes.
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0)]
    gc_interval: f64,
    /// Seconds a block stays after its last reference goes away.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    gc_delay: f64,
    #[command(flatten)]
    grace: UploadGrace,
    /// Synnefo's MD5 mode (PITHOS_UPDATE_MD5): an object's ETag is the MD5 of its content
    /// instead of its Merkle hash, so that Swift clients (rclone, python-swiftclient) can
    /// write. Also takes the two Swift forms those clients send: `Destination:
    /// container/object` on COPY/MOVE, and a PUT without Content-Type.
    #[arg(long)]
    md5_etags: bool,
}

#[derive(Subcommand)]
enum ServeAction {
    /// Reclaim now the blocks no object refers to.
    ///
    /// Asks the server running on the data directory (through `<DATA>/gc.sock`), or
    /// collects itself when none runs. Blocks uploaded for a hashmap that has not
    /// arrived yet are kept for their grace period.
    Gc {
        /// Data directory [default: ~/.local/share/pithosfs]
        #[arg(long, env = "PITHOSFS_DATA")]
        data: Option<PathBuf>,
        #[command(flatten)]
        grace: UploadGrace,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct UploadGrace {
    /// Seconds an uploaded block waits for the hashmap PUT that uses it.
    #[arg(long, value_name = "SECONDS", default_value_t = 21600.0)]
    upload_grace: f64,
}

/// Seconds from the command line, as a duration (negative and absurd values clamped).
fn seconds(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(if s.is_finite() { s.clamp(0.0, 1e9) } else { 0.0 })
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("pithosfs")
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PITHOSFS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Mount(args) => mount(args),
        Command::Unmount { mountpoint } => cli::mount::unmount(&mountpoint),
        // The control commands print their own errors.
        Command::Server(args) => return cli::run(Control::Server(args), cli.verbose),
        Command::User(args) => return cli::run(Control::User(args), cli.verbose),
        Command::Flavor(args) => return cli::run(Control::Flavor(args), cli.verbose),
        Command::Image(args) => return cli::run(Control::Image(args), cli.verbose),
        Command::File(args) => return cli::run(Control::File(args), cli.verbose),
        Command::Container(args) => return cli::run(Control::Container(args), cli.verbose),
        Command::Quota(args) => return cli::run(Control::Quota(args), cli.verbose),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pithosfs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn mount(a: MountArgs) -> Result<(), String> {
    let octal =
        |s: &str, what: &str| u32::from_str_radix(s, 8).map_err(|_| format!("--{what} must be octal, like 644"));
    let policy = match a.owners {
        OwnersArg::Local => Policy::Local,
        OwnersArg::All => Policy::All,
        OwnersArg::Mine => Policy::Mine,
    };
    let me = Owners::current(policy);
    let owners = Owners { uid: a.uid.unwrap_or(me.uid), gid: a.gid.unwrap_or(me.gid), ..me };
    let mut fs = pithosfs::fs::FsOptions { owners, ..Default::default() };
    fs.read_only = a.read_only;
    fs.suid = a.suid;
    fs.dev = a.dev;
    fs.container = a.container;
    fs.cache_size = a.cache_size.max(16) << 20;
    fs.attr_ttl = std::time::Duration::from_secs_f64(a.attr_ttl.clamp(0.0, 3600.0));
    fs.dir_ttl = std::time::Duration::from_secs_f64(a.dir_ttl.clamp(0.0, 3600.0));
    fs.file_mode = octal(&a.file_mode, "file-mode")?;
    fs.dir_mode = octal(&a.dir_mode, "dir-mode")?;
    if let Some(dir) = &a.cache_dir {
        fs.spill_dir = dir.join("spill");
    }
    let storage = match (a.storage_url, a.swift_auth, a.swift_user) {
        (Some(url), _, _) => Some(StorageTarget::StorageUrl(url)),
        (None, Some(url), Some(user)) => Some(StorageTarget::SwiftAuth { url, user, key_file: a.swift_key_file }),
        _ => None,
    };
    let cache_dir = a.cache_dir.map(|d| (d.join("blocks"), a.cache_dir_size.max(16) << 20));
    let flags = pithosfs::config::Flags { url: a.url, token_file: a.token_file, cloud: a.cloud, local: false };
    cli::mount::mount(cli::mount::MountRequest {
        mountpoint: a.mountpoint,
        flags,
        fs,
        foreground: a.foreground,
        allow_other: a.allow_other,
        storage,
        cache_dir,
    })
}

fn serve(args: ServeArgs) -> Result<(), String> {
    // Everything the server writes (blocks, database, tokens) is its users' data.
    cloud::datadir::private_umask();
    if let Some(ServeAction::Gc { data, grace, json }) = args.action {
        return collect_garbage(data.unwrap_or_else(default_data_dir), grace, json);
    }
    if args.block_size == 0 || args.block_size > 64 << 20 {
        return Err("--block-size must be between 1 byte and 64 MiB".into());
    }
    let mut config = ServeConfig::new(args.data.unwrap_or_else(default_data_dir));
    config.listen = args.listen;
    config.public_url = args.public_url;
    config.quota = args.quota;
    config.block_size = args.block_size;
    config.build_seconds = args.build_seconds.max(0.0);
    config.limits.max_connections = args.max_connections.max(1);
    config.limits.header_timeout = seconds(args.header_timeout);
    config.limits.idle_timeout = seconds(args.idle_timeout);
    config.gc.interval = seconds(args.gc_interval).max(std::time::Duration::from_millis(100));
    config.gc.delay = seconds(args.gc_delay);
    config.gc.upload_grace = seconds(args.grace.upload_grace);
    config.md5_etags = args.md5_etags;
    for name in args.users {
        users::validate_name(&name)?;
        config.users.push(users::UserSpec { name, token: None });
    }
    if let Some(file) = &args.users_file {
        config.users.extend(users::parse_users_file(file)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let running = cloud::bind(config)
            .await
            .map_err(|e| format!("cannot start the local cloud in {}: {e}", data_dir.display()))?;
        for (name, file, token) in &running.new_users.generated {
            eprintln!("pithosfs: created user {name}; token (kept in {}): {token}", file.display());
        }
        eprintln!(
            "pithosfs: local cloud on {url}; identity URL for kamaki: {url}{}",
            cloud::IDENTITY_PATH,
            url = running.url
        );
        println!("{}", running.url);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        running.run(shutdown_signal()).await.map_err(|e| format!("server failed: {e}"))
    })
}

fn collect_garbage(data: PathBuf, grace: UploadGrace, json: bool) -> Result<(), String> {
    let config = cloud::gc::GcConfig { upload_grace: seconds(grace.upload_grace), ..Default::default() };
    let r = cloud::gc::collect_in(&data, config)?;
    if json {
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
        return Ok(());
    }
    println!(
        "removed {} blocks ({} bytes); {} expired uploads; {} blocks kept for requests in flight; {} stored blocks swept",
        r.removed, r.freed_bytes, r.expired_uploads, r.pinned, r.swept
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
