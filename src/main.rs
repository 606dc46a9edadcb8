//! The `pithosfs` command.

use clap::{Parser, Subcommand};
use pithosfs::cli::{self, Control};
use pithosfs::cloud::{self, users, ServeConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "pithosfs", version, about = "Synnefo clouds from Linux: FUSE mount, control command, local cloud")]
struct Cli {
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
    /// Cyclades servers: `server list`, `server info ID`.
    Server(cli::ServerArgs),
    /// Astakos users: `user info`, `user uuid2name UUID…`, `user name2uuid NAME…`.
    User(cli::UserArgs),
    /// Cyclades flavors: `flavor list`.
    Flavor(cli::FlavorArgs),
    /// Plankton images: `image list`.
    Image(cli::ImageArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
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
        // The control commands print their own errors.
        Command::Server(args) => return cli::run(Control::Server(args)),
        Command::User(args) => return cli::run(Control::User(args)),
        Command::Flavor(args) => return cli::run(Control::Flavor(args)),
        Command::Image(args) => return cli::run(Control::Image(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pithosfs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    if args.block_size == 0 || args.block_size > 64 << 20 {
        return Err("--block-size must be between 1 byte and 64 MiB".into());
    }
    let mut config = ServeConfig::new(args.data.unwrap_or_else(default_data_dir));
    config.listen = args.listen;
    config.public_url = args.public_url;
    config.quota = args.quota;
    config.block_size = args.block_size;
    config.build_seconds = args.build_seconds.max(0.0);
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
