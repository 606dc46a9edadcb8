//! The control command: `pithosfs server|user|flavor|image|file|container|quota …`,
//! kamaki's CLI for the calls people use most, one module per command group. Tables for people by default, `--json`
//! (pretty, keys sorted) for scripts. On failure the exit code is 1 and
//! stderr has the error's message, status and details, as kamaki shows a
//! `ClientError`.
//!
//! `mount`: the process of `pithosfs mount`/`unmount` around `crate::fs`, with
//! `mount_options` (flags and fstab's `-o`, sizes and durations by `units`),
//! `daemon` (the background mount), `session` (FUSE), `mountpoint` (free,
//! mounted, dead; unmount) and `logging` (-v, RUST_LOG, --log-file).

pub mod compute;
pub mod daemon;
pub mod file;
pub mod logging;
pub mod manage;
pub mod mount;
pub mod mount_options;
pub mod mountpoint;
pub mod progress;
pub mod remote;
pub mod session;
pub mod table;
pub mod transfer;
pub mod units;
pub mod user;

pub use compute::{FlavorArgs, FlavorCommand, ImageArgs, ImageCommand, ServerArgs, ServerCommand};
pub use file::{ContainerArgs, FileArgs, QuotaArgs};
pub use mount_options::MountArgs;
pub use user::{UserArgs, UserCommand};

use crate::clients::{AstakosClient, ClientError};
use crate::config::{self, ConfigError, Environment, Flags};
use clap::Args;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Which cloud, and how to print: accepted before or after the subcommand.
#[derive(Args, Debug, Clone, Default)]
pub struct CloudArgs {
    /// Astakos identity URL (…/identity/v2.0) [env: PITHOSFS_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// File holding the token [env: PITHOSFS_TOKEN_FILE, or the token itself in PITHOSFS_TOKEN].
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// A cloud of the kamaki config file ($KAMAKI_CONFIG or ~/.kamakirc) [default: its default_cloud].
    #[arg(long, global = true, value_name = "NAME")]
    pub cloud: Option<String>,
    /// The local cloud of the data directory ($PITHOSFS_DATA or ~/.local/share/pithosfs),
    /// started for this command if no `pithosfs serve` runs on it.
    #[arg(long, global = true, conflicts_with_all = ["url", "token_file", "cloud"])]
    pub local: bool,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl CloudArgs {
    fn flags(&self) -> Flags {
        Flags {
            url: self.url.clone(),
            token_file: self.token_file.clone(),
            cloud: self.cloud.clone(),
            local: self.local,
        }
    }
}

/// One control command.
#[derive(Debug)]
pub enum Control {
    Server(ServerArgs),
    User(UserArgs),
    Flavor(FlavorArgs),
    Image(ImageArgs),
    File(FileArgs),
    Container(ContainerArgs),
    Quota(QuotaArgs),
}

impl Control {
    fn cloud(&self) -> &CloudArgs {
        match self {
            Control::Server(a) => &a.cloud,
            Control::User(a) => &a.cloud,
            Control::Flavor(a) => &a.cloud,
            Control::Image(a) => &a.cloud,
            Control::File(a) => &a.cloud,
            Control::Container(a) => &a.cloud,
            Control::Quota(a) => &a.cloud,
        }
    }
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    Config(ConfigError),
    Client(ClientError),
    /// Some of what was asked for does not exist; what does was printed.
    Missing(Vec<String>),
    Output(std::io::Error),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::Config(e)
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        Failure::Client(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Output(e)
    }
}

/// What every command gets: the identity client (the way to every service's
/// endpoint), the output mode and the verbosity (`-v` count).
pub(crate) struct Context<'a> {
    pub astakos: &'a AstakosClient,
    pub json: bool,
    pub verbose: u8,
}

/// Runs a control command with the process environment; prints, and gives
/// the exit code. `verbose` is the count of `-v`.
pub fn run(control: Control, verbose: u8) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pithosfs: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let env = Environment::current();
    let result = runtime.block_on(async {
        let resolved = config::resolve(&control.cloud().flags(), &env).await?;
        tracing::debug!(url = %resolved.config.identity_url, source = %resolved.config.source, "cloud");
        for note in &resolved.config.notes {
            eprintln!("pithosfs: note: {note}");
        }
        let result = match resolved.config.astakos() {
            Ok(astakos) => {
                let ctx = Context { astakos: &astakos, json: control.cloud().json, verbose };
                match say_who(&resolved.config, &ctx).await {
                    Ok(()) => execute(&control, &ctx, &mut std::io::stdout().lock()).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e.into()),
        };
        // The clients (and their keep-alive connections) are gone by now; a
        // connection that still lingers must not keep the command alive.
        if let Some(embedded) = resolved.embedded {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), embedded.shutdown()).await;
        }
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            report(&failure);
            ExitCode::FAILURE
        }
    }
}

/// With `-v`: which cloud (and where that came from) and which user the
/// command uses, on stderr. The user costs one request (the token's user
/// info, kept for the command itself); the token is never shown.
async fn say_who(cloud: &config::CloudConfig, ctx: &Context<'_>) -> Result<(), Failure> {
    if ctx.verbose == 0 {
        return Ok(());
    }
    for line in cloud.describe() {
        eprintln!("pithosfs: {}", table::clean(&line));
    }
    let user = ctx.astakos.user_info().await?;
    let text = |key: &str| user.get(key).and_then(serde_json::Value::as_str).map(table::clean);
    let name = text("name").unwrap_or_else(|| "(no name)".into());
    let uuid = text("id").unwrap_or_else(|| "(no uuid)".into());
    eprintln!("pithosfs: user {name} (uuid {uuid})");
    Ok(())
}

/// The error on stderr, laid out like the seed's error handling example.
fn report(failure: &Failure) {
    let mut err = std::io::stderr().lock();
    let _ = match failure {
        Failure::Config(e) => writeln!(err, "pithosfs: {e}"),
        Failure::Output(e) => writeln!(err, "pithosfs: cannot write the output: {e}"),
        Failure::Missing(what) => what.iter().try_for_each(|w| writeln!(err, "pithosfs: {w}")),
        Failure::Client(e) => {
            let mut lines = vec![format!("pithosfs: {}", table::clean(&e.message))];
            if e.status != 0 {
                lines.push(format!("- error code: {}", e.status));
            }
            lines.extend(e.details.iter().filter(|d| !d.trim().is_empty()).map(|d| format!("- {}", table::clean(d))));
            match e.status {
                401 => lines.push(
                    "hint: check the token (--token-file, PITHOSFS_TOKEN_FILE, the kamakirc token) and the URL".into(),
                ),
                403 => lines.push("hint: this user may not do that".into()),
                _ => {}
            }
            lines.iter().try_for_each(|l| writeln!(err, "{l}"))
        }
    };
}

pub(crate) fn print_json(out: &mut impl Write, v: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Failure::Output(std::io::Error::other(e)))?;
    writeln!(out, "{text}")?;
    Ok(())
}

async fn execute(control: &Control, ctx: &Context<'_>, out: &mut impl Write) -> Result<(), Failure> {
    match control {
        Control::Server(a) => compute::server(&a.command, ctx, out).await,
        Control::Flavor(a) => compute::flavor(&a.command, ctx, out).await,
        Control::Image(a) => compute::image(&a.command, ctx, out).await,
        Control::User(a) => user::user(&a.command, ctx, out).await,
        Control::File(a) => file::file(&a.command, ctx, out).await,
        Control::Container(a) => manage::container(&a.command, ctx, out).await,
        Control::Quota(_) => manage::quota(ctx, out).await,
    }
}
