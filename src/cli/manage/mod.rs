//! `pithosfs file list|info|mkdir|mv|cp|rm|versions|publish|unpublish|share|unshare`,
//! `pithosfs container list|create|delete` and `pithosfs quota`: Pithos+
//! storage without moving data through this machine (copies and moves are
//! server-side), with kamaki's command names (its `move`, `copy`, `delete`
//! are aliases). Paths are `/CONTAINER/PATH`; sharing takes user names or
//! UUIDs and shows names.

mod account;
mod info;
mod listing;
mod sharing;
mod tree;

pub(crate) use account::{container, quota};
use info::{info, versions};
use listing::list;
use sharing::{
    is_user, parse_sharing, publish, resolve_users, share, sharing_json, sharing_of, unpublish, unshare, user_json,
    user_text, usernames,
};
use tree::{children, mkdir, remove, transfer, Transfer};

use super::remote::{parse_object, parse_remote, pithos};
use super::table::{self, key_values, Table};
use super::units::{human_bytes, parse_bytes};
use super::{print_json, Context, Failure};
use crate::clients::pithos::PithosClient;
use crate::clients::storage::{ListOptions, Listed, ObjectInfo, ObjectStorage, PutOptions};
use crate::clients::ClientError;
use bytes::Bytes;
use clap::{ArgGroup, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum ManageCommand {
    /// List a container or a folder, one level (-r: everything below).
    #[command(alias = "ls")]
    List {
        /// /CONTAINER[/FOLDER]
        path: String,
        /// Everything below, not only the first level.
        #[arg(short, long)]
        recursive: bool,
        /// Also the version and hash of each file.
        #[arg(short = 'l', long)]
        details: bool,
        /// Of another user's account (name or UUID): what they share with you.
        #[arg(short = 'A', long, value_name = "USER")]
        account: Option<String>,
    },
    /// Metadata, hash, version, sharing and public URL of a file or folder.
    Info {
        /// /CONTAINER/PATH
        path: String,
        /// Of this version (see `file versions`).
        #[arg(long, alias = "object-version", value_name = "ID")]
        version: Option<String>,
        /// Of another user's account (name or UUID): what they share with you.
        #[arg(short = 'A', long, value_name = "USER")]
        account: Option<String>,
    },
    /// Create a folder (a directory object); an existing folder is kept.
    Mkdir {
        /// /CONTAINER/PATH
        path: String,
    },
    /// Move or rename, on the server (also to another container); a folder moves with everything in it.
    #[command(alias = "move")]
    Mv {
        /// /CONTAINER/PATH
        src: String,
        /// /CONTAINER/PATH, or an existing folder (or a path ending in /) to move into.
        dst: String,
        /// Replace an existing destination.
        #[arg(short, long)]
        force: bool,
    },
    /// Copy on the server (also to another container); -r for a folder.
    #[command(alias = "copy")]
    Cp {
        /// /CONTAINER/PATH
        src: String,
        /// /CONTAINER/PATH, or an existing folder (or a path ending in /) to copy into.
        dst: String,
        /// Copy a folder with everything in it.
        #[arg(short, long)]
        recursive: bool,
        /// Replace an existing destination.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove a file, or (-r) a folder with everything in it.
    #[command(alias = "delete")]
    Rm {
        /// /CONTAINER/PATH
        path: String,
        /// Remove a folder with everything in it.
        #[arg(short, long)]
        recursive: bool,
    },
    /// The versions of a file: ids (for `--version`) and times, oldest first.
    Versions {
        /// /CONTAINER/PATH
        path: String,
        /// Of another user's account (name or UUID): what they share with you.
        #[arg(short = 'A', long, value_name = "USER")]
        account: Option<String>,
    },
    /// Make a file readable by anyone with its URL; prints the URL.
    Publish {
        /// /CONTAINER/PATH
        path: String,
    },
    /// Withdraw the public URL of a file.
    Unpublish {
        /// /CONTAINER/PATH
        path: String,
    },
    /// Let users read or write a file or folder (names or UUIDs; `*` is everyone).
    #[command(group(ArgGroup::new("who").required(true).multiple(true).args(["read", "write"])))]
    Share {
        /// /CONTAINER/PATH
        path: String,
        /// Users who may read (names or UUIDs, several or comma-separated).
        #[arg(long, num_args = 1.., value_delimiter = ',', value_name = "USER")]
        read: Vec<String>,
        /// Users who may write, and so read.
        #[arg(long, num_args = 1.., value_delimiter = ',', value_name = "USER")]
        write: Vec<String>,
    },
    /// Take back what `share` gave: from these users, or from everyone when none is named.
    Unshare {
        /// /CONTAINER/PATH
        path: String,
        /// Names or UUIDs.
        #[arg(value_name = "USER")]
        users: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List the containers: objects, size, versioning and quota.
    List,
    /// Create a container.
    Create {
        /// NAME (or /NAME)
        name: String,
        /// Keep old versions (auto, the server's default) or not (none).
        #[arg(long, value_enum)]
        versioning: Option<Versioning>,
        /// Most bytes the container may hold (512M, 10G…; 0: no limit of its own).
        #[arg(long, value_parser = parse_bytes, value_name = "SIZE")]
        quota: Option<u64>,
    },
    /// Delete a container; one with objects only with -r.
    Delete {
        /// NAME (or /NAME)
        name: String,
        /// Delete its objects too.
        #[arg(short, long, visible_alias = "force")]
        recursive: bool,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Auto,
    None,
}

impl Versioning {
    fn as_str(self) -> &'static str {
        match self {
            Versioning::Auto => "auto",
            Versioning::None => "none",
        }
    }
}

pub(crate) async fn execute(command: &ManageCommand, ctx: &Context<'_>, out: &mut impl Write) -> Result<(), Failure> {
    match command {
        ManageCommand::List { path, recursive, details, account } => {
            list(ctx, out, path, account.as_deref(), *recursive, *details).await
        }
        ManageCommand::Info { path, version, account } => {
            info(ctx, out, path, account.as_deref(), version.as_deref()).await
        }
        ManageCommand::Mkdir { path } => mkdir(ctx, out, path).await,
        ManageCommand::Mv { src, dst, force } => {
            transfer(ctx, out, Transfer { src, dst, moving: true, recursive: true, force: *force }).await
        }
        ManageCommand::Cp { src, dst, recursive, force } => {
            transfer(ctx, out, Transfer { src, dst, moving: false, recursive: *recursive, force: *force }).await
        }
        ManageCommand::Rm { path, recursive } => remove(ctx, out, path, *recursive).await,
        ManageCommand::Versions { path, account } => versions(ctx, out, path, account.as_deref()).await,
        ManageCommand::Publish { path } => publish(ctx, out, path).await,
        ManageCommand::Unpublish { path } => unpublish(ctx, out, path).await,
        ManageCommand::Share { path, read, write } => share(ctx, out, path, read, write).await,
        ManageCommand::Unshare { path, users } => unshare(ctx, out, path, users).await,
    }
}

// ---------- errors ----------

fn fail(message: String) -> Failure {
    Failure::Client(ClientError::new(message))
}

/// A 404 said in words: which of the container or the object is missing.
async fn not_found(p: &PithosClient, container: &str, path: &str, e: ClientError) -> Failure {
    if !e.is_not_found() {
        return e.into();
    }
    let shown = table::clean(&format!("/{container}/{path}"));
    match p.with_container(container).get_container_info().await {
        Err(c) if c.is_not_found() => {
            Failure::Client(ClientError::with_status(format!("{shown}: no container {}", table::clean(container)), 404))
        }
        _ => Failure::Client(ClientError::with_status(format!("{shown}: no such file or folder"), 404)),
    }
}

/// The client of the user's own account, or (`-A`) of another user's, by
/// name or UUID: reading what they share.
async fn pithos_of(ctx: &Context<'_>, container: &str, account: Option<&str>) -> Result<PithosClient, Failure> {
    let p = pithos(ctx, container).await?;
    let Some(user) = account else { return Ok(p) };
    let ids = resolve_users(ctx, &[user.to_string()]).await?;
    match ids.get(user.trim()) {
        Some(uuid) if is_user(uuid) => Ok(p.with_account(uuid)),
        _ => Err(fail(format!("{} is not a user", table::clean(user)))),
    }
}

/// An object, or a folder that is only a prefix others live under (with
/// `make`, its folder object is created; else it is described as an empty
/// folder); the flag says whether the object exists. Neither: not found.
async fn object_or_folder(
    p: &PithosClient,
    container: &str,
    name: &str,
    make: bool,
) -> Result<(ObjectInfo, bool), Failure> {
    let missing = match p.get_object_info(name).await {
        Ok(i) => return Ok((i, true)),
        Err(e) if e.is_not_found() => e,
        Err(e) => return Err(e.into()),
    };
    if children(p, name).await?.is_empty() {
        return Err(not_found(p, container, name, missing).await);
    }
    if !make {
        let folder = ObjectInfo { content_type: "application/directory".into(), ..Default::default() };
        return Ok((folder, false));
    }
    let o =
        PutOptions { content_type: Some("application/directory".into()), if_not_exists: true, ..Default::default() };
    match p.put_object(name, Bytes::new(), &o).await {
        Ok(_) => {}
        // Made meanwhile by someone else: as good.
        Err(e) if e.status == 412 => {}
        Err(e) => return Err(e.into()),
    }
    Ok((p.get_object_info(name).await?, true))
}

/// HEAD of an object; None when there is none.
async fn head(p: &PithosClient, name: &str) -> Result<Option<ObjectInfo>, ClientError> {
    match p.get_object_info(name).await {
        Ok(i) => Ok(Some(i)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

// ---------- units ----------

/// A version id in JSON: a number, as Pithos's ids are (text if a server says otherwise).
fn version_json(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| Value::from(id), Value::from)
}

fn datetime(ts: f64) -> Option<chrono::DateTime<chrono::Utc>> {
    if !ts.is_finite() {
        return None;
    }
    chrono::DateTime::from_timestamp_micros((ts * 1e6).round() as i64)
}

/// Times in JSON: RFC 3339 in UTC.
fn rfc3339(ts: f64) -> Option<String> {
    datetime(ts).map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// Times for people: the local time zone, to the second.
fn local_time(ts: f64) -> String {
    datetime(ts).map(|d| d.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}
