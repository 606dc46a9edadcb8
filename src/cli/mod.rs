//! The control command: `pithosfs server|user|flavor|image …`, kamaki's CLI
//! for the calls people use most. Tables for people by default, `--json`
//! (pretty, keys sorted) for scripts. On failure the exit code is 1 and
//! stderr has the error's message, status and details, as kamaki shows a
//! `ClientError`.
//!
//! `mount`: the process of `pithosfs mount`/`unmount` around `crate::fs`.

pub mod mount;
pub mod table;

use crate::clients::{AstakosClient, ClientError, CycladesClient, ImageClient};
use crate::config::{self, ConfigError, Environment, Flags};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use table::{cell, flatten, key_values, Table};

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
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl CloudArgs {
    fn flags(&self) -> Flags {
        Flags { url: self.url.clone(), token_file: self.token_file.clone(), cloud: self.cloud.clone() }
    }
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[command(subcommand)]
    pub command: ServerCommand,
}

#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// List the servers: id, name, status, flavor and OS.
    List,
    /// Everything about one server.
    Info {
        /// Server id.
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// The authenticated user: uuid (id), name, roles, default project.
    Info,
    /// Display names of users, by UUID.
    #[command(name = "uuid2name")]
    Uuid2Name {
        #[arg(required = true, value_name = "UUID")]
        uuids: Vec<String>,
    },
    /// UUIDs of users, by display name.
    #[command(name = "name2uuid")]
    Name2Uuid {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct FlavorArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[command(subcommand)]
    pub command: FlavorCommand,
}

#[derive(Subcommand, Debug)]
pub enum FlavorCommand {
    /// List the flavors: vCPUs, RAM (MiB), disk (GiB).
    List,
}

#[derive(Args, Debug)]
pub struct ImageArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List the images you may use (yours, public, shared with you).
    List,
}

/// One control command.
#[derive(Debug)]
pub enum Control {
    Server(ServerArgs),
    User(UserArgs),
    Flavor(FlavorArgs),
    Image(ImageArgs),
}

impl Control {
    fn cloud(&self) -> &CloudArgs {
        match self {
            Control::Server(a) => &a.cloud,
            Control::User(a) => &a.cloud,
            Control::Flavor(a) => &a.cloud,
            Control::Image(a) => &a.cloud,
        }
    }
}

/// Why a command failed.
#[derive(Debug)]
enum Failure {
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

/// Runs a control command with the process environment; prints, and gives
/// the exit code.
pub fn run(control: Control) -> ExitCode {
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
        let result = match resolved.config.astakos() {
            Ok(astakos) => execute(&control, &astakos, &mut std::io::stdout().lock()).await,
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

fn print_json(out: &mut impl Write, v: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Failure::Output(std::io::Error::other(e)))?;
    writeln!(out, "{text}")?;
    Ok(())
}

async fn execute(control: &Control, astakos: &AstakosClient, out: &mut impl Write) -> Result<(), Failure> {
    let json = control.cloud().json;
    match control {
        Control::Server(a) => {
            let cyclades = CycladesClient::from_catalog(astakos).await?;
            match &a.command {
                ServerCommand::List => {
                    let servers = cyclades.list_servers(true).await?;
                    if json {
                        return print_json(out, &Value::Array(servers));
                    }
                    let mut t = Table::new(&["ID", "NAME", "STATUS", "FLAVOR", "OS"]).right(0);
                    for s in &servers {
                        t.row(vec![
                            cell(&s["id"]),
                            cell(&s["name"]),
                            cell(&s["status"]),
                            cell(&s["flavor"]["id"]),
                            crate::clients::server_os(s).unwrap_or_default(),
                        ]);
                    }
                    write!(out, "{}", t.render())?;
                }
                ServerCommand::Info { id } => {
                    let server = cyclades.get_server_details(id).await?;
                    if json {
                        return print_json(out, &server);
                    }
                    write!(out, "{}", key_values(&flatten(&server, &["links"])))?;
                }
            }
        }
        Control::User(a) => match &a.command {
            UserCommand::Info => {
                let user = astakos.user_info().await?;
                if json {
                    return print_json(out, &user);
                }
                write!(out, "{}", key_values(&flatten(&user, &["roles_links"])))?;
            }
            UserCommand::Uuid2Name { uuids } => {
                let asked: Vec<&str> = uuids.iter().map(String::as_str).collect();
                let found = astakos.get_usernames(&asked).await?;
                print_catalog(out, json, &asked, &found, ("UUID", "NAME"), "no user with UUID")?;
            }
            UserCommand::Name2Uuid { names } => {
                let asked: Vec<&str> = names.iter().map(String::as_str).collect();
                let found = astakos.get_uuids(&asked).await?;
                print_catalog(out, json, &asked, &found, ("NAME", "UUID"), "no user named")?;
            }
        },
        Control::Flavor(a) => match a.command {
            FlavorCommand::List => {
                let cyclades = CycladesClient::from_catalog(astakos).await?;
                let flavors = cyclades.list_flavors(true).await?;
                if json {
                    return print_json(out, &Value::Array(flavors));
                }
                let mut t = Table::new(&["ID", "NAME", "VCPUS", "RAM", "DISK"]).right(0).right(2).right(3).right(4);
                for f in &flavors {
                    t.row(vec![cell(&f["id"]), cell(&f["name"]), cell(&f["vcpus"]), cell(&f["ram"]), cell(&f["disk"])]);
                }
                write!(out, "{}", t.render())?;
            }
        },
        Control::Image(a) => match a.command {
            ImageCommand::List => {
                let images = ImageClient::from_catalog(astakos).await?;
                let list = images.list_public(true, &BTreeMap::new(), None).await?;
                if json {
                    return print_json(out, &Value::Array(list));
                }
                let mut t = Table::new(&["ID", "NAME", "STATUS", "SIZE", "OS"]).right(3);
                for i in &list {
                    t.row(vec![
                        cell(&i["id"]),
                        cell(&i["name"]),
                        cell(&i["status"]),
                        cell(&i["size"]),
                        cell(&i["properties"]["os"]),
                    ]);
                }
                write!(out, "{}", t.render())?;
            }
        },
    }
    Ok(())
}

/// uuid → name (or name → uuid) answers: what was found, in the order asked;
/// what was not is a failure, after the rest is printed.
fn print_catalog(
    out: &mut impl Write,
    json: bool,
    asked: &[&str],
    found: &BTreeMap<String, String>,
    headers: (&str, &str),
    missing_text: &str,
) -> Result<(), Failure> {
    if json {
        let map: serde_json::Map<String, Value> = found.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        print_json(out, &Value::Object(map))?;
    } else {
        let mut t = Table::new(&[headers.0, headers.1]);
        for key in asked {
            if let Some(v) = found.get(*key) {
                t.row(vec![key.to_string(), v.clone()]);
            }
        }
        if !t.is_empty() {
            write!(out, "{}", t.render())?;
        }
    }
    let missing: Vec<String> = asked
        .iter()
        .filter(|k| !found.contains_key(**k))
        .map(|k| format!("{missing_text} {}", table::clean(k)))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Failure::Missing(missing))
    }
}
