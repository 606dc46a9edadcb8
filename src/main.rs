//! The `pithosfs` command.

use clap::{CommandFactory, Parser, Subcommand};
use pithosfs::cli::{self, Control};
use pithosfs::cloud::{self, users, ServeConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc, not glibc's malloc: a mount holding a million nodes keeps its
/// many small long-lived allocations apart from the listings' short-lived
/// ones by size class, where glibc's heap leaves them interleaved and cannot
/// give the holes back (`find` over a million objects: 780 MiB resident
/// with glibc, 598 MiB with jemalloc, and 20 % less CPU; with the compact
/// nodes, 540 MiB).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Freed pages go back to the system within a second, by a background
/// thread (jemalloc's default keeps them 10 s), and one arena serves every
/// thread, so a block freed by one task is the memory the next block
/// fetched by another reuses. Measured on the release build (`scripts/
/// bench-mount`'s workloads): `ls -l` of 100,000 objects peaks at 107 MiB
/// and settles at 63 (default conf: 136 and 135); 1,000 random reads with
/// a 512 MiB cache peak at 539 MiB (default arenas: 714); a cold 1 GiB
/// read peaks at 75 MiB (156), with no more CPU.
/// (`_RJEM_MALLOC_CONF` in the environment overrides it.)
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:1\0";

#[derive(Parser)]
#[command(name = "pithosfs", version, about = "Synnefo clouds from Linux: FUSE mount, control command, local cloud")]
struct Cli {
    /// More detail: which cloud and user a command uses, and info logs (-vv: debug logs).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Write logs to FILE (appended to) instead of stderr. RUST_LOG, when set, says
    /// what to log (`RUST_LOG=pithosfs=debug`), as -v and -vv do otherwise.
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<PathBuf>,
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
    Mount(cli::MountArgs),
    /// Unmount a pithosfs mount (every file was committed when it was closed); a
    /// dead one (its process ended without unmounting) is detached.
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
    /// Print a shell completion script: `source <(pithosfs completions bash)`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `pithosfs manpage | man -l -`; with a command's
    /// name, that command's page (pithosfs-mount(1)…).
    #[command(hide = true)]
    Manpage {
        /// A command: mount, file, server… [default: the page of pithosfs itself].
        command: Option<String>,
    },
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
    /// Where blocks are kept: `dir` (the data directory's `blocks/`) or
    /// `swift:AUTH_URL` (a Swift v1/tempauth endpoint: one object per block,
    /// which several servers can share). Recorded at the first start; a data
    /// directory keeps its choice.
    #[arg(long, value_name = "dir|swift:AUTH_URL", default_value = "dir")]
    blocks: String,
    /// The Swift user of `--blocks swift:…` (`account:user`).
    #[arg(long, value_name = "USER", env = "PITHOSFS_BLOCKS_SWIFT_USER")]
    blocks_swift_user: Option<String>,
    /// File holding the Swift key of `--blocks swift:…` (else the
    /// PITHOSFS_BLOCKS_SWIFT_KEY environment variable; never the command line).
    #[arg(long, value_name = "FILE")]
    blocks_swift_key_file: Option<PathBuf>,
    /// The Swift container of the blocks.
    #[arg(long, value_name = "NAME", default_value = pithosfs::cloud::swift_blocks::DEFAULT_CONTAINER)]
    blocks_swift_container: String,
    /// Where the metadata is kept: `sqlite` (the data directory's
    /// `meta.sqlite`) or `postgres://USER@HOST:PORT/DATABASE`, a PostgreSQL
    /// database that several servers share (the password from
    /// --meta-password-file or PITHOSFS_META_PASSWORD, never the URL).
    /// Recorded at the first start; a data directory keeps its choice.
    #[arg(long, value_name = "sqlite|postgres://…", default_value = "sqlite")]
    meta: String,
    /// File holding the PostgreSQL password of `--meta postgres://…`.
    #[arg(long, value_name = "FILE")]
    meta_password_file: Option<PathBuf>,
    /// The PostgreSQL schema (namespace) of the tables: servers that share
    /// one cloud give the same one.
    #[arg(long, value_name = "NAME", default_value = "pithosfs")]
    meta_schema: String,
}

/// `--meta` and its options as a `MetaAt`.
fn meta_at(args: &ServeArgs) -> Result<cloud::MetaAt, String> {
    if args.meta == "sqlite" {
        return Ok(cloud::MetaAt::Sqlite);
    }
    let password = match &args.meta_password_file {
        Some(f) => Some(std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?.trim().to_string()),
        None => std::env::var("PITHOSFS_META_PASSWORD").ok(),
    };
    let target = cloud::pg::PgTarget::new(&args.meta, password, &args.meta_schema)
        .map_err(|e| format!("--meta: {e} (give `sqlite` or `postgres://USER@HOST:PORT/DATABASE`)"))?;
    Ok(cloud::MetaAt::Postgres(target))
}

/// `--blocks` and its Swift options as a `BlocksAt`.
fn blocks_at(args: &ServeArgs) -> Result<cloud::BlocksAt, String> {
    if args.blocks == "dir" {
        return Ok(cloud::BlocksAt::Dir);
    }
    let Some(auth_url) = args.blocks.strip_prefix("swift:") else {
        return Err(format!("--blocks {:?}: give `dir` or `swift:AUTH_URL`", args.blocks));
    };
    let user = args
        .blocks_swift_user
        .clone()
        .ok_or("--blocks swift:…: give --blocks-swift-user (or set PITHOSFS_BLOCKS_SWIFT_USER)")?;
    let key = match &args.blocks_swift_key_file {
        Some(f) => std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?.trim().to_string(),
        None => std::env::var("PITHOSFS_BLOCKS_SWIFT_KEY")
            .map_err(|_| "--blocks swift:…: give --blocks-swift-key-file FILE or set PITHOSFS_BLOCKS_SWIFT_KEY")?,
    };
    if args.blocks_swift_container.is_empty() || args.blocks_swift_container.contains('/') {
        return Err("--blocks-swift-container: a container name, without '/'".into());
    }
    Ok(cloud::BlocksAt::Swift(cloud::swift_blocks::SwiftTarget {
        auth_url: auth_url.to_string(),
        user,
        key,
        container: args.blocks_swift_container.clone(),
    }))
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
    /// Write many objects straight into a data directory (no server may run on it).
    ///
    /// Objects `PREFIX/dDDDD/fFFFFFF`, FANOUT per folder (or `PREFIX/fFFFFFF` with
    /// --flat), all holding the same SIZE bytes (one shared stored block), committed
    /// as a PUT commits them.
    #[command(hide = true)]
    BulkLoad {
        /// Data directory [default: ~/.local/share/pithosfs]
        #[arg(long, env = "PITHOSFS_DATA")]
        data: Option<PathBuf>,
        /// The owner (made, with a token file, if new).
        #[arg(long)]
        user: String,
        /// The container (made if missing).
        #[arg(long)]
        container: String,
        /// The folder the objects go under.
        #[arg(long, default_value = "")]
        prefix: String,
        /// How many objects.
        #[arg(long)]
        count: u64,
        /// Objects per folder.
        #[arg(long, default_value_t = 1000)]
        fanout: u64,
        /// All objects in one folder: PREFIX/fNNNNNN (no --fanout folders).
        #[arg(long)]
        flat: bool,
        /// Bytes of each object (at most one 4 MiB block).
        #[arg(long, default_value_t = 1024)]
        size: u64,
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

/// Starts logging. The background mount process first sends its stdout and
/// stderr to its own log (named after its mount point and pid).
fn init_logging(cli: &Cli) -> Result<(), String> {
    use cli::logging::{self, Quiet};
    match &cli.command {
        Command::Mount(m) if m.ready_fd.is_some() => {
            let log = cli.log_file.clone().unwrap_or_else(|| logging::daemon_log(&m.mountpoint, std::process::id()));
            cli::daemon::redirect_output(&log)?;
            logging::init(cli.verbose, Quiet::Record, None)
        }
        Command::Mount(_) => logging::init(cli.verbose, Quiet::Record, cli.log_file.as_deref()),
        _ => logging::init(cli.verbose, Quiet::Warnings, cli.log_file.as_deref()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(&cli) {
        eprintln!("pithosfs: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Mount(args) => args.into_request(cli.log_file).and_then(cli::mount::mount),
        Command::Unmount { mountpoint } => cli::mountpoint::unmount(&mountpoint),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pithosfs", &mut script);
            write_out(&script)
        }
        Command::Manpage { command } => manpage(command.as_deref()),
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

/// Writes a generated text to stdout; a reader that stopped early (`| head`) is no error.
fn write_out(text: &[u8]) -> Result<(), String> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("cannot write to stdout: {e}")),
        _ => Ok(()),
    }
}

/// A manual page, from the command's own definition: pithosfs(1), or one
/// command's page (pithosfs-mount(1)…).
fn manpage(command: Option<&str>) -> Result<(), String> {
    let mut top = Cli::command();
    top.build();
    let page = match command {
        None => top,
        Some(name) => {
            let sub = top
                .find_subcommand(name)
                .filter(|s| !s.is_hide_set())
                .ok_or_else(|| format!("no command {name:?}: see `pithosfs --help`"))?;
            let title = format!("pithosfs-{name}");
            sub.clone().display_name(title).version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page).render(&mut roff).map_err(|e| e.to_string())?;
    write_out(&roff)
}

fn serve(args: ServeArgs) -> Result<(), String> {
    // Everything the server writes (blocks, database, tokens) is its users' data.
    cloud::datadir::private_umask();
    if let Some(ServeAction::Gc { data, grace, json }) = args.action {
        return collect_garbage(data.unwrap_or_else(default_data_dir), grace, json);
    }
    if let Some(ServeAction::BulkLoad { data, user, container, prefix, count, fanout, flat, size }) = args.action {
        let data_dir = data.unwrap_or_else(default_data_dir);
        let load = cloud::bulk::BulkLoad { data_dir, user, container, prefix, count, fanout, flat, size };
        let done = load.run()?;
        println!("loaded {} objects in {} folders in {:.1} s", done.objects, done.folders, done.seconds);
        return Ok(());
    }
    if args.block_size == 0 || args.block_size > 64 << 20 {
        return Err("--block-size must be between 1 byte and 64 MiB".into());
    }
    let blocks = blocks_at(&args)?;
    let meta = meta_at(&args)?;
    let mut config = ServeConfig::new(args.data.unwrap_or_else(default_data_dir));
    config.blocks = blocks;
    config.meta = meta;
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
