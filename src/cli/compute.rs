//! `pithosfs server|flavor|image …`: Cyclades servers and flavors, Plankton images.

use super::table::{cell, flatten, key_values, Table};
use super::{print_json, CloudArgs, Context, Failure};
use crate::clients::{CycladesClient, ImageClient};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;

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
            let server = cyclades.get_server_details(id).await?;
            if ctx.json {
                return print_json(out, &server);
            }
            write!(out, "{}", key_values(&flatten(&server, &["links"])))?;
        }
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
    }
    Ok(())
}

pub(crate) async fn image(command: &ImageCommand, ctx: &Context<'_>, out: &mut impl Write) -> Result<(), Failure> {
    match command {
        ImageCommand::List => {
            let images = ImageClient::from_catalog(ctx.astakos).await?;
            let list = images.list_public(true, &BTreeMap::new(), None).await?;
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
    }
    Ok(())
}
