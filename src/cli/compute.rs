//! `pithosfs server|flavor|image …`: Cyclades servers and flavors, Plankton images.

use super::table::{cell, clean, flatten, key_values, Table};
use super::units::parse_duration;
use super::{print_json, CloudArgs, Context, Failure};
use crate::clients::cyclades::server_status;
use crate::clients::{ssh_key_personality, ClientError, CycladesClient, ImageClient, NewServer};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Create a server; its admin password is printed this once.
    Create(CreateArgs),
    /// Delete a server (with --wait, until it is DELETED).
    Delete {
        /// Server id.
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Start a stopped server (with --wait, until it is ACTIVE).
    Start {
        /// Server id.
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Shut a server down (with --wait, until it is STOPPED).
    Shutdown {
        /// Server id.
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Reboot a server, softly unless --hard (with --wait, until it is ACTIVE again).
    Reboot {
        /// Server id.
        id: String,
        /// A hard reboot (power cycle) instead of a soft one.
        #[arg(long)]
        hard: bool,
        /// SOFT or HARD, as kamaki 0.16 spells it.
        #[arg(long = "type", value_name = "TYPE", conflicts_with = "hard", value_parser = reboot_type)]
        kind: Option<bool>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Wait until a server reaches --status, or (without it) leaves the status it is in now.
    Wait {
        /// Server id.
        id: String,
        /// The status to wait for (ACTIVE, STOPPED, DELETED…).
        #[arg(long, visible_alias = "until", value_name = "STATUS")]
        status: Option<String>,
        /// Wait while the server is in this status (kamaki's --while; done at once if it is not).
        #[arg(long = "while", value_name = "STATUS", conflicts_with = "status")]
        while_in: Option<String>,
        /// How long to wait at most: 90s, 5m, 1h (a bare number is seconds).
        #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
        timeout: Duration,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The new server's name.
    #[arg(long)]
    pub name: String,
    /// Flavor id (`pithosfs flavor list`).
    #[arg(long, value_name = "ID")]
    pub flavor: String,
    /// Image id (`pithosfs image list`).
    #[arg(long, value_name = "ID")]
    pub image: String,
    /// An SSH public key file (e.g. ~/.ssh/id_ed25519.pub), installed as root's authorized_keys.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// `--wait` and its `--timeout`, for the commands that change a server.
#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    /// Wait until the server has done it.
    #[arg(short = 'w', long)]
    pub wait: bool,
    /// With --wait: how long at most (90s, 5m, 1h; a bare number is seconds).
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

/// kamaki's `--type SOFT|HARD`: whether the reboot is hard.
fn reboot_type(s: &str) -> Result<bool, String> {
    match s.to_ascii_uppercase().as_str() {
        "SOFT" => Ok(false),
        "HARD" => Ok(true),
        _ => Err("SOFT or HARD".into()),
    }
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
    /// Everything about one flavor.
    Info {
        /// Flavor id.
        id: String,
    },
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
    /// Everything about one image: owner, size, checksum, location, properties.
    Info {
        /// Image id.
        id: String,
    },
}

pub(crate) async fn server(command: &ServerCommand, ctx: &Context<'_>, out: &mut impl Write) -> Result<(), Failure> {
    let cyclades = CycladesClient::from_catalog(ctx.astakos).await?;
    match command {
        ServerCommand::List => {
            let servers = cyclades.list_servers(true).await?;
            if ctx.json {
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
            let server = cyclades.get_server_details(id).await.map_err(|e| unknown(e, "server", id))?;
            if ctx.json {
                return print_json(out, &server);
            }
            write!(out, "{}", key_values(&flatten(&server, &["links"])))?;
        }
        ServerCommand::Create(args) => create(&cyclades, args, ctx, out).await?,
        ServerCommand::Delete { id, wait } => {
            cyclades.delete_server(id).await.map_err(|e| unknown(e, "server", id))?;
            change_done(&cyclades, id, "deletion requested", "DELETED", wait, ctx, out).await?;
        }
        ServerCommand::Start { id, wait } => {
            cyclades.start_server(id).await.map_err(|e| unknown(e, "server", id))?;
            change_done(&cyclades, id, "start requested", "ACTIVE", wait, ctx, out).await?;
        }
        ServerCommand::Shutdown { id, wait } => {
            cyclades.shutdown_server(id).await.map_err(|e| unknown(e, "server", id))?;
            change_done(&cyclades, id, "shutdown requested", "STOPPED", wait, ctx, out).await?;
        }
        ServerCommand::Reboot { id, hard, kind, wait } => {
            let hard = *hard || kind.unwrap_or(false);
            cyclades.reboot_server(id, hard).await.map_err(|e| unknown(e, "server", id))?;
            let what = if hard { "hard reboot requested" } else { "reboot requested" };
            change_done(&cyclades, id, what, "ACTIVE", wait, ctx, out).await?;
        }
        ServerCommand::Wait { id, status, while_in, timeout } => {
            let upper = |s: &Option<String>| s.as_deref().map(str::to_ascii_uppercase);
            let waited = match upper(while_in) {
                Some(current) => cyclades.wait_server_while(id, &current, *timeout).await,
                None => cyclades.wait_server(id, upper(status).as_deref(), *timeout).await,
            };
            let server = waited.map_err(|e| unknown(e, "server", id))?;
            if ctx.json {
                return print_json(out, &server);
            }
            writeln!(out, "server {} is {}", clean(id), clean(server_status(&server).unwrap_or("")))?;
        }
    }
    Ok(())
}

/// A 404 on `kind` `id` (or, for a flavor, the 400 of a malformed id), with
/// the way to find the right id. Other errors (a 400 for an action the
/// server's state forbids) stay as the cloud said them.
fn unknown(e: ClientError, kind: &str, id: &str) -> Failure {
    let place = if kind == "server" { "in this account" } else { "in this cloud" };
    match (e.status, kind) {
        (404, _) | (400, "flavor") => {
            Failure::Client(e.detail(format!("no {kind} {:?} {place}: `pithosfs {kind} list` lists them", clean(id))))
        }
        _ => Failure::Client(e),
    }
}

/// `server create`: the password is printed as soon as the server exists,
/// whatever happens next, since nothing can show it again.
async fn create(
    cyclades: &CycladesClient,
    args: &CreateArgs,
    ctx: &Context<'_>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let mut new = NewServer::new(&args.name, &args.flavor, &args.image);
    if let Some(file) = &args.ssh_key {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ClientError::new(format!("Cannot read the SSH key file {}: {e}", file.display())))?;
        let personality =
            ssh_key_personality(&text).map_err(|e| ClientError::new(format!("{}: {}", file.display(), e.message)))?;
        new.personality.push(personality);
    }
    // Which id is wrong, said before anything is created.
    cyclades.get_flavor_details(&args.flavor).await.map_err(|e| unknown(e, "flavor", &args.flavor))?;
    cyclades.get_image_details(&args.image).await.map_err(|e| unknown(e, "image", &args.image))?;
    let created = cyclades.create_server(&new).await?;
    let password = created.get("adminPass").cloned().unwrap_or(Value::Null);
    let id = cell(&created["id"]);
    if !ctx.json {
        let mut pairs = vec![
            ("id".to_string(), id.clone()),
            ("name".to_string(), cell(&created["name"])),
            ("status".to_string(), cell(&created["status"])),
            ("flavor".to_string(), cell(&created["flavor"]["id"])),
            ("image".to_string(), cell(&created["image"]["id"])),
            ("os".to_string(), cell(&created["metadata"]["os"])),
        ];
        if let Some(file) = &args.ssh_key {
            pairs.push((
                "ssh key".to_string(),
                format!("{} -> {}", file.display(), crate::clients::cyclades::AUTHORIZED_KEYS),
            ));
        }
        pairs.push(("password".to_string(), cell(&password)));
        write!(out, "{}", key_values(&pairs))?;
        writeln!(out, "The admin password is shown only now: the cloud keeps no copy of it. Note it down.")?;
        out.flush()?;
    }
    if !args.wait.wait {
        return if ctx.json { print_json(out, &created) } else { Ok(()) };
    }
    match cyclades.wait_server_while(&id, "BUILD", args.wait.timeout).await {
        Ok(mut server) => {
            if ctx.json {
                server["adminPass"] = password;
                return print_json(out, &server);
            }
            writeln!(out, "server {id} is {}", clean(server_status(&server).unwrap_or("")))?;
            Ok(())
        }
        Err(e) => {
            if ctx.json {
                print_json(out, &created)?;
            }
            Err(e.into())
        }
    }
}

/// After an action: says it was asked for, or (`--wait`) waits for `target`
/// and says so; `--json` prints the server as it then is.
async fn change_done(
    cyclades: &CycladesClient,
    id: &str,
    asked: &str,
    target: &str,
    wait: &WaitArgs,
    ctx: &Context<'_>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let seen = if wait.wait {
        cyclades.wait_server_until(id, target, wait.timeout).await
    } else {
        cyclades.get_server_details(id).await
    };
    let server = match seen {
        Ok(server) => server,
        // A cloud that forgets deleted servers at once: gone is deleted.
        Err(e) if e.status == 404 && target == "DELETED" => json!({"id": id, "status": "DELETED"}),
        Err(e) => return Err(e.into()),
    };
    if ctx.json {
        return print_json(out, &server);
    }
    let status = clean(server_status(&server).unwrap_or(""));
    if wait.wait {
        writeln!(out, "server {} is {status}", clean(id))?;
    } else {
        writeln!(out, "server {}: {asked} (now {status})", clean(id))?;
    }
    Ok(())
}

pub(crate) async fn flavor(command: &FlavorCommand, ctx: &Context<'_>, out: &mut impl Write) -> Result<(), Failure> {
    match command {
        FlavorCommand::List => {
            let cyclades = CycladesClient::from_catalog(ctx.astakos).await?;
            let flavors = cyclades.list_flavors(true).await?;
            if ctx.json {
                return print_json(out, &Value::Array(flavors));
            }
            let mut t = Table::new(&["ID", "NAME", "VCPUS", "RAM", "DISK"]).right(0).right(2).right(3).right(4);
            for f in &flavors {
                t.row(vec![cell(&f["id"]), cell(&f["name"]), cell(&f["vcpus"]), cell(&f["ram"]), cell(&f["disk"])]);
            }
            write!(out, "{}", t.render())?;
        }
        FlavorCommand::Info { id } => {
            let cyclades = CycladesClient::from_catalog(ctx.astakos).await?;
            let flavor = cyclades.get_flavor_details(id).await.map_err(|e| unknown(e, "flavor", id))?;
            if ctx.json {
                return print_json(out, &flavor);
            }
            write!(out, "{}", key_values(&flatten(&flavor, &["links"])))?;
        }
    }
    Ok(())
}

pub(crate) async fn image(command: &ImageCommand, ctx: &Context<'_>, out: &mut impl Write) -> Result<(), Failure> {
    match command {
        ImageCommand::List => {
            let images = ImageClient::from_catalog(ctx.astakos).await?;
            // Oldest first, as kamaki lists them: the system images before your own.
            let list = images.list_public(true, &BTreeMap::new(), Some("created_at")).await?;
            if ctx.json {
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
        ImageCommand::Info { id } => {
            let images = ImageClient::from_catalog(ctx.astakos).await?;
            let image = typed_image(images.get_meta(id).await.map_err(|e| unknown(e, "image", id))?);
            if ctx.json {
                return print_json(out, &image);
            }
            write!(out, "{}", key_values(&flatten(&image, &[])))?;
        }
    }
    Ok(())
}

/// Plankton gives an image as headers, every value text: the size becomes a
/// number and the flags booleans, as in its JSON listings.
fn typed_image(mut image: Value) -> Value {
    if let Some(size) = image.get("size").and_then(Value::as_str).and_then(|s| s.parse::<u64>().ok()) {
        image["size"] = size.into();
    }
    for flag in ["is_public", "is_snapshot"] {
        if let Some(b) = image.get(flag).and_then(Value::as_str).map(|s| s.eq_ignore_ascii_case("true")) {
            image[flag] = b.into();
        }
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_units_or_seconds() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").unwrap_err().contains("5m"));
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn plankton_headers_become_typed_fields() {
        let image = typed_image(json!({"size": "205", "is_public": "True", "is_snapshot": "False", "name": "x"}));
        assert_eq!(image, json!({"size": 205, "is_public": true, "is_snapshot": false, "name": "x"}));
    }
}
