//! `pithosfs file list|info|mkdir|mv|cp|rm|versions|publish|unpublish|share|unshare`,
//! `pithosfs container list|create|delete` and `pithosfs quota`: Pithos+
//! storage without moving data through this machine (copies and moves are
//! server-side), with kamaki's command names (its `move`, `copy`, `delete`
//! are aliases). Paths are `/CONTAINER/PATH`; sharing takes user names or
//! UUIDs and shows names.

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

// ---------- listing ----------

/// One line of a listing: a file, or a folder (a directory object, a
/// prefix others live under, or both).
struct Entry {
    name: String,
    folder: bool,
    bytes: u64,
    modified: Option<f64>,
    content_type: String,
    hash: Option<String>,
    version: Option<u64>,
}

impl Entry {
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "type": if self.folder { "folder" } else { "file" },
            "bytes": self.bytes,
            "modified": self.modified.map(rfc3339),
            "content_type": self.content_type,
            "hash": self.hash,
            "version": self.version,
        })
    }
}

/// Folder listings name a folder twice: as its directory object (`a`) and as
/// the roll-up of what is under it (`a/`). Both become one folder entry.
fn entries(listed: Vec<Listed>) -> Vec<Entry> {
    // Keyed by (name, is folder): a file and a folder of one name are both shown.
    let mut by_name: BTreeMap<(String, bool), Entry> = BTreeMap::new();
    for item in listed {
        match item {
            Listed::Subdir(s) => {
                let name = s.trim_end_matches('/').to_string();
                by_name.entry((name.clone(), true)).or_insert(Entry {
                    name,
                    folder: true,
                    bytes: 0,
                    modified: None,
                    content_type: String::new(),
                    hash: None,
                    version: None,
                });
            }
            Listed::Object(o) => {
                let e = Entry {
                    folder: o.is_directory(),
                    bytes: o.bytes,
                    modified: o.last_modified,
                    content_type: o.content_type,
                    hash: o.hash,
                    version: o.version,
                    name: o.name,
                };
                by_name.insert((e.name.clone(), e.folder), e);
            }
        }
    }
    by_name.into_values().collect()
}

async fn list(
    ctx: &Context<'_>,
    out: &mut impl Write,
    path: &str,
    account: Option<&str>,
    recursive: bool,
    details: bool,
) -> Result<(), Failure> {
    let (container, prefix) = parse_remote(path)?;
    let p = pithos_of(ctx, &container, account).await?;
    // `/c/photos` is the folder photos, as for `ls`.
    let folder = if prefix.is_empty() || prefix.ends_with('/') { prefix.clone() } else { format!("{prefix}/") };
    let o = ListOptions {
        prefix: (!folder.is_empty()).then(|| folder.clone()),
        delimiter: (!recursive).then(|| "/".to_string()),
        ..Default::default()
    };
    let listed = match p.list_objects(&o).await {
        Ok(l) => l,
        Err(e) => return Err(not_found(&p, &container, &prefix, e).await),
    };
    let mut rows = entries(listed);
    if rows.is_empty() && !prefix.is_empty() {
        // Not a folder with something in it: an empty folder, a file, or nothing.
        let name = prefix.trim_end_matches('/');
        match p.get_object_info(name).await {
            Ok(i) if i.is_directory() => {}
            Ok(i) => rows.push(Entry {
                name: name.to_string(),
                folder: false,
                bytes: i.bytes,
                modified: i.last_modified,
                content_type: i.content_type,
                hash: i.hash,
                version: i.version.and_then(|v| v.parse().ok()),
            }),
            Err(e) => return Err(not_found(&p, &container, name, e).await),
        }
    }
    if ctx.json {
        return print_json(out, &Value::Array(rows.iter().map(Entry::json).collect()));
    }
    let mut headers = vec!["NAME", "SIZE", "MODIFIED", "TYPE"];
    if details {
        headers.extend(["VERSION", "HASH"]);
    }
    let mut t = Table::new(&headers).right(1);
    for e in &rows {
        let mut row = vec![
            if e.folder { format!("{}/", e.name) } else { e.name.clone() },
            if e.folder { String::new() } else { human_bytes(e.bytes) },
            e.modified.map(local_time).unwrap_or_default(),
            if e.folder { "folder".to_string() } else { e.content_type.clone() },
        ];
        if details {
            row.push(e.version.map(|v| v.to_string()).unwrap_or_default());
            row.push(e.hash.clone().unwrap_or_default());
        }
        t.row(row);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

// ---------- info ----------

async fn info(
    ctx: &Context<'_>,
    out: &mut impl Write,
    path: &str,
    account: Option<&str>,
    version: Option<&str>,
) -> Result<(), Failure> {
    let (container, name) = parse_object(path)?;
    let name = name.trim_end_matches('/').to_string();
    let p = pithos_of(ctx, &container, account).await?;
    let i = match version {
        Some(v) => match p.get_object_info_at(&name, Some(v)).await {
            Ok(i) => i,
            Err(e) => return Err(not_found(&p, &container, &name, e).await),
        },
        None => object_or_folder(&p, &container, &name, false).await?.0,
    };
    let (read, write) = sharing_of(&i);
    let modified_by = i.info.header("x-object-modified-by").map(str::to_string);
    let names = usernames(ctx, read.iter().chain(&write).chain(&modified_by)).await?;
    let v = json!({
        "container": container,
        "path": name,
        "type": if i.is_directory() { "folder" } else { "file" },
        "bytes": i.bytes,
        "content_type": i.content_type,
        "etag": i.etag,
        "hash": i.hash,
        "uuid": i.uuid,
        "version": i.version.as_deref().map(version_json),
        "modified": i.last_modified.map(rfc3339),
        "modified_by": modified_by.as_ref().map(|u| user_json(u, &names)),
        "meta": i.meta,
        "sharing": sharing_json(&read, &write, &names),
        "shared_by": i.info.header("x-object-shared-by"),
        "public_url": i.info.header("x-object-public"),
    });
    if ctx.json {
        return print_json(out, &v);
    }
    let mut pairs: Vec<(String, String)> = vec![
        ("path".into(), format!("/{container}/{name}")),
        ("type".into(), if i.is_directory() { "folder".into() } else { i.content_type.clone() }),
        ("size".into(), format!("{} ({} bytes)", human_bytes(i.bytes), i.bytes)),
        ("modified".into(), i.last_modified.map(local_time).unwrap_or_default()),
    ];
    if let Some(u) = &modified_by {
        pairs.push(("modified by".into(), user_text(u, &names)));
    }
    pairs.push(("version".into(), i.version.clone().unwrap_or_default()));
    pairs.push(("hash".into(), i.hash.clone().unwrap_or_default()));
    pairs.push(("etag".into(), i.etag.clone()));
    pairs.push(("uuid".into(), i.uuid.clone().unwrap_or_default()));
    for (k, val) in &i.meta {
        pairs.push((format!("meta.{k}"), val.clone()));
    }
    let users = |list: &[String]| list.iter().map(|u| user_text(u, &names)).collect::<Vec<_>>().join(", ");
    if !read.is_empty() {
        pairs.push(("shared: read".into(), users(&read)));
    }
    if !write.is_empty() {
        pairs.push(("shared: write".into(), users(&write)));
    }
    if let Some(by) = i.info.header("x-object-shared-by") {
        pairs.push(("sharing from".into(), by.to_string()));
    }
    if let Some(url) = i.info.header("x-object-public") {
        pairs.push(("public URL".into(), url.to_string()));
    }
    // Keys hold metadata names and values server text: both made safe.
    let pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (table::clean(&k), table::clean(&v))).collect();
    write!(out, "{}", key_values(&pairs))?;
    Ok(())
}

/// (read, write) of an object's `X-Object-Sharing` header.
fn sharing_of(i: &ObjectInfo) -> (Vec<String>, Vec<String>) {
    parse_sharing(i.info.header("x-object-sharing").unwrap_or(""))
}

/// (read, write) of a sharing value (`read=a,b; write=c`).
fn parse_sharing(value: &str) -> (Vec<String>, Vec<String>) {
    let mut read = Vec::new();
    let mut write = Vec::new();
    for part in value.split(';') {
        let list = |s: &str| s.split(',').map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect();
        let part = part.trim();
        if let Some(r) = part.strip_prefix("read=") {
            read = list(r);
        } else if let Some(w) = part.strip_prefix("write=") {
            write = list(w);
        }
    }
    (read, write)
}

/// Display names of these UUIDs (`*` and groups are not users: left out).
async fn usernames<'a>(
    ctx: &Context<'_>,
    uuids: impl Iterator<Item = &'a String>,
) -> Result<BTreeMap<String, String>, Failure> {
    let uuids: BTreeSet<&str> = uuids.map(String::as_str).filter(|u| is_user(u)).collect();
    if uuids.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(ctx.astakos.get_usernames(&uuids.into_iter().collect::<Vec<_>>()).await?)
}

/// Whether a sharing entry names one user (not `*`, not `owner:group`).
fn is_user(entry: &str) -> bool {
    entry != "*" && !entry.contains(':')
}

fn user_json(uuid: &str, names: &BTreeMap<String, String>) -> Value {
    json!({"id": uuid, "name": names.get(uuid)})
}

fn user_text(uuid: &str, names: &BTreeMap<String, String>) -> String {
    match (uuid, names.get(uuid)) {
        ("*", _) => "* (everyone)".into(),
        (_, Some(n)) => format!("{n} ({uuid})"),
        (_, None) => uuid.to_string(),
    }
}

fn sharing_json(read: &[String], write: &[String], names: &BTreeMap<String, String>) -> Value {
    let users = |list: &[String]| Value::Array(list.iter().map(|u| user_json(u, names)).collect());
    json!({"read": users(read), "write": users(write)})
}

// ---------- folders, moves, copies, removal ----------

async fn mkdir(ctx: &Context<'_>, out: &mut impl Write, path: &str) -> Result<(), Failure> {
    let (container, name) = parse_object(path)?;
    let name = name.trim_end_matches('/').to_string();
    let p = pithos(ctx, &container).await?;
    // Create only: a file of that name must never be replaced by a folder.
    let o =
        PutOptions { content_type: Some("application/directory".into()), if_not_exists: true, ..Default::default() };
    let created = match p.put_object(&name, Bytes::new(), &o).await {
        Ok(_) => true,
        Err(e) if e.status == 412 => match head(&p, &name).await? {
            Some(i) if i.is_directory() => false,
            _ => return Err(fail(format!("/{container}/{name} exists and is a file"))),
        },
        Err(e) => return Err(not_found(&p, &container, &name, e).await),
    };
    if ctx.json {
        return print_json(out, &json!({"container": container, "path": name, "created": created}));
    }
    if !created {
        writeln!(out, "/{}/{} already exists", table::clean(&container), table::clean(&name))?;
    }
    Ok(())
}

struct Transfer<'a> {
    src: &'a str,
    dst: &'a str,
    moving: bool,
    recursive: bool,
    force: bool,
}

async fn transfer(ctx: &Context<'_>, out: &mut impl Write, t: Transfer<'_>) -> Result<(), Failure> {
    let (sc, sp) = parse_object(t.src)?;
    let sp = sp.trim_end_matches('/').to_string();
    let (dc, dp) = parse_remote(t.dst)?;
    let ps = pithos(ctx, &sc).await?;
    let pd = ps.with_container(&dc);
    let what = if t.moving { "move" } else { "copy" };
    if let Err(e) = pd.get_container_info().await {
        return Err(if e.is_not_found() {
            Failure::Client(ClientError::with_status(format!("no container {}", table::clean(&dc)), 404))
        } else {
            e.into()
        });
    }
    // The source: a file, a folder object, or a folder that is only a prefix.
    let source = head(&ps, &sp).await?;
    let under = children(&ps, &sp).await?;
    let folder = source.as_ref().is_some_and(ObjectInfo::is_directory) || (source.is_none() && !under.is_empty());
    if source.is_none() && under.is_empty() {
        return Err(not_found(&ps, &sc, &sp, ClientError::with_status("", 404)).await);
    }
    if folder && !t.recursive {
        return Err(fail(format!("/{sc}/{sp} is a folder: use -r to {what} it with everything in it")));
    }
    // Into a folder (`dst/` or an existing folder) it keeps its own name.
    let base = sp.rsplit('/').next().unwrap_or(&sp);
    let dn = if dp.is_empty() || dp.ends_with('/') {
        format!("{dp}{base}")
    } else {
        match head(&pd, &dp).await {
            Ok(Some(i)) if i.is_directory() => format!("{dp}/{base}"),
            Ok(_) => dp.trim_end_matches('/').to_string(),
            Err(e) => return Err(not_found(&pd, &dc, &dp, e).await),
        }
    };
    let (from, to) = (format!("/{sc}/{sp}"), format!("/{dc}/{dn}"));
    if sc == dc && (dn == sp || dn.starts_with(&format!("{sp}/"))) {
        return Err(fail(format!("cannot {what} {from} onto or into itself ({to})")));
    }
    let existing = match head(&pd, &dn).await {
        Ok(e) => e,
        Err(e) => return Err(not_found(&pd, &dc, &dn, e).await),
    };
    if existing.is_some() && !t.force {
        return Err(fail(format!("{to} exists: use -f to replace it")));
    }
    let written = match (folder, source.is_some(), t.moving) {
        (true, true, true) => pd.move_tree(&sc, &sp, &dn).await?,
        (true, true, false) => pd.copy_tree(&sc, &sp, &dn).await?,
        (true, false, _) => {
            // No folder object to carry the tree: one request per object.
            let mut last = None;
            for child in &under {
                let target = format!("{dn}/{}", child.rest);
                last = Some(if t.moving {
                    pd.move_object(&sc, &child.name, &target).await?
                } else {
                    pd.copy_object(&sc, &child.name, &target).await?
                });
            }
            last.unwrap_or_default()
        }
        (false, _, true) => pd.move_object(&sc, &sp, &dn).await?,
        (false, _, false) => pd.copy_object(&sc, &sp, &dn).await?,
    };
    if t.moving {
        // What was shared stays shared under its new name (a copy is not shared, as with cp).
        let mut moved: Vec<(String, String)> = Vec::new();
        // Its own sharing only: one inherited from a folder above (Shared-By) stays there.
        let own = source.as_ref().filter(|i| i.info.header("x-object-shared-by").is_none());
        if let Some(sharing) = own.and_then(|i| i.info.header("x-object-sharing")) {
            moved.push((dn.clone(), sharing.to_string()));
        }
        if folder {
            moved.extend(
                under.iter().filter_map(|c| c.sharing.as_ref().map(|s| (format!("{dn}/{}", c.rest), s.clone()))),
            );
        }
        carry_sharing(&pd, &moved).await?;
    }
    if ctx.json {
        return print_json(
            out,
            &json!({"from": from, "to": to, "type": if folder { "folder" } else { "file" }, "version": written.version.as_deref().map(version_json)}),
        );
    }
    writeln!(out, "{} {} -> {}", if t.moving { "moved" } else { "copied" }, table::clean(&from), table::clean(&to))?;
    Ok(())
}

/// An object under a folder, with its own sharing (`read=…; write=…`) if any.
struct Child {
    name: String,
    /// The name after the folder's `name/`.
    rest: String,
    sharing: Option<String>,
}

/// Every object under `name/`. Only names that do start so are taken: a
/// server that ignored the prefix must not get others moved or removed.
async fn children(p: &PithosClient, name: &str) -> Result<Vec<Child>, ClientError> {
    let prefix = format!("{name}/");
    let o = ListOptions { prefix: Some(prefix.clone()), ..Default::default() };
    let listed = match p.list_objects(&o).await {
        Ok(l) => l,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(listed
        .into_iter()
        .filter_map(|e| {
            let rest = e.name().strip_prefix(&prefix)?.to_string();
            let sharing = match &e {
                Listed::Object(o) => o.sharing.clone(),
                Listed::Subdir(_) => None,
            };
            Some(Child { name: e.name().to_string(), rest, sharing })
        })
        .collect())
}

/// Gives moved objects the sharing they had: Pithos keeps permissions with
/// the name, so a move would otherwise take them away from their users.
async fn carry_sharing(p: &PithosClient, moved: &[(String, String)]) -> Result<(), ClientError> {
    for (name, sharing) in moved {
        let (read, write) = parse_sharing(sharing);
        if read.is_empty() && write.is_empty() {
            continue;
        }
        let read: Vec<&str> = read.iter().map(String::as_str).collect();
        let write: Vec<&str> = write.iter().map(String::as_str).collect();
        p.set_object_sharing(name, &read, &write).await?;
    }
    Ok(())
}

async fn remove(ctx: &Context<'_>, out: &mut impl Write, path: &str, recursive: bool) -> Result<(), Failure> {
    let (container, name) = parse_object(path)?;
    let name = name.trim_end_matches('/').to_string();
    let p = pithos(ctx, &container).await?;
    let object = head(&p, &name).await?;
    let under = children(&p, &name).await?;
    if object.is_none() && under.is_empty() {
        return Err(not_found(&p, &container, &name, ClientError::with_status("", 404)).await);
    }
    if !under.is_empty() && !recursive {
        return Err(fail(format!(
            "/{container}/{name} is a folder with {} object(s) in it: use -r to remove it with them",
            under.len()
        )));
    }
    let under: Vec<String> = under.into_iter().map(|c| c.name).collect();
    let mut removed = Vec::new();
    if object.is_some() {
        if recursive {
            // The object and everything under `name/`, in one request.
            p.delete_tree(&name).await?;
        } else {
            p.delete_object(&name).await?;
        }
        removed.push(name.clone());
    } else {
        for child in &under {
            p.delete_object(child).await?;
        }
    }
    removed.extend(under);
    if ctx.json {
        return print_json(out, &json!({"container": container, "removed": removed}));
    }
    writeln!(out, "removed /{}/{} ({} object(s))", table::clean(&container), table::clean(&name), removed.len())?;
    Ok(())
}

// ---------- versions and public URLs ----------

async fn versions(ctx: &Context<'_>, out: &mut impl Write, path: &str, account: Option<&str>) -> Result<(), Failure> {
    let (container, name) = parse_object(path)?;
    let p = pithos_of(ctx, &container, account).await?;
    let list = match p.get_object_versionlist(&name).await {
        Ok(l) if !l.is_empty() => l,
        // An object without versions does not exist; say which part is missing.
        Ok(_) => return Err(not_found(&p, &container, &name, ClientError::with_status("", 404)).await),
        Err(e) => return Err(not_found(&p, &container, &name, e).await),
    };
    if ctx.json {
        let v = list
            .iter()
            .map(|(id, ts)| json!({"version": version_json(id), "timestamp": ts, "modified": rfc3339(*ts)}))
            .collect();
        return print_json(out, &Value::Array(v));
    }
    let mut t = Table::new(&["VERSION", "MODIFIED"]).right(0);
    for (id, ts) in &list {
        t.row(vec![id.clone(), local_time(*ts)]);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

async fn publish(ctx: &Context<'_>, out: &mut impl Write, path: &str) -> Result<(), Failure> {
    let (container, name) = parse_object(path)?;
    let p = pithos(ctx, &container).await?;
    let url = match p.publish_object(&name).await {
        Ok(u) => u,
        Err(e) => return Err(not_found(&p, &container, &name, e).await),
    };
    if ctx.json {
        return print_json(out, &json!({"container": container, "path": name, "public_url": url}));
    }
    writeln!(out, "{}", table::clean(&url))?;
    Ok(())
}

async fn unpublish(ctx: &Context<'_>, out: &mut impl Write, path: &str) -> Result<(), Failure> {
    let (container, name) = parse_object(path)?;
    let p = pithos(ctx, &container).await?;
    if let Err(e) = p.unpublish_object(&name).await {
        return Err(not_found(&p, &container, &name, e).await);
    }
    if ctx.json {
        return print_json(out, &json!({"container": container, "path": name, "public_url": null}));
    }
    Ok(())
}

// ---------- sharing ----------

/// User names or UUIDs to UUIDs, in one catalog call; `*` and
/// `owner:group` pass as they are. An unknown user is an error naming it.
async fn resolve_users(ctx: &Context<'_>, given: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let users: Vec<&str> =
        given.iter().map(|u| u.trim()).filter(|u| is_user(u)).collect::<BTreeSet<_>>().into_iter().collect();
    let (by_uuid, by_name) =
        if users.is_empty() { Default::default() } else { ctx.astakos.post_user_catalogs(&users, &users).await? };
    let mut resolved = BTreeMap::new();
    let mut unknown = Vec::new();
    for u in given.iter().map(|u| u.trim()) {
        // `*`, groups and known UUIDs are taken as they are.
        if !is_user(u) || by_uuid.contains_key(u) {
            resolved.insert(u.to_string(), u.to_string());
        } else if let Some(uuid) = by_name.get(u) {
            resolved.insert(u.to_string(), uuid.clone());
        } else {
            unknown.push(format!("no user named {} (nor with that UUID)", table::clean(u)));
        }
    }
    if unknown.is_empty() {
        Ok(resolved)
    } else {
        Err(Failure::Missing(unknown))
    }
}

async fn share(
    ctx: &Context<'_>,
    out: &mut impl Write,
    path: &str,
    read: &[String],
    write: &[String],
) -> Result<(), Failure> {
    let (container, name) = parse_object(path)?;
    let name = name.trim_end_matches('/').to_string();
    let p = pithos(ctx, &container).await?;
    let all: Vec<String> = read.iter().chain(write).cloned().collect();
    let ids = resolve_users(ctx, &all).await?;
    // A folder that is only a prefix gets its folder object: sharing is kept there.
    let (current, _) = object_or_folder(&p, &container, &name, true).await?;
    // Added to what is there; the server keeps a user in both lists in write only.
    let (mut r, mut w) = sharing_of(&current);
    let add = |list: &mut Vec<String>, given: &[String]| {
        for g in given {
            if let Some(id) = ids.get(g.trim()) {
                if !list.contains(id) {
                    list.push(id.clone());
                }
            }
        }
    };
    add(&mut r, read);
    add(&mut w, write);
    set_sharing(ctx, out, &p, &container, &name, Some((&r, &w))).await
}

async fn unshare(ctx: &Context<'_>, out: &mut impl Write, path: &str, users: &[String]) -> Result<(), Failure> {
    let (container, name) = parse_object(path)?;
    let name = name.trim_end_matches('/').to_string();
    let p = pithos(ctx, &container).await?;
    let ids = resolve_users(ctx, users).await?;
    let (current, exists) = object_or_folder(&p, &container, &name, false).await?;
    if !exists {
        // A folder that is only a prefix has no sharing of its own to take back.
        return set_sharing(ctx, out, &p, &container, &name, None).await;
    }
    let (mut r, mut w) = sharing_of(&current);
    if users.is_empty() {
        (r, w) = (Vec::new(), Vec::new());
    } else {
        let gone: BTreeSet<&String> = ids.values().collect();
        r.retain(|u| !gone.contains(u));
        w.retain(|u| !gone.contains(u));
    }
    set_sharing(ctx, out, &p, &container, &name, Some((&r, &w))).await
}

/// Sets the (read, write) lists, then prints them as the server now has them
/// (None: nothing to set, nothing shared).
async fn set_sharing(
    ctx: &Context<'_>,
    out: &mut impl Write,
    p: &PithosClient,
    container: &str,
    name: &str,
    lists: Option<(&[String], &[String])>,
) -> Result<(), Failure> {
    fn as_str(l: &[String]) -> Vec<&str> {
        l.iter().map(String::as_str).collect()
    }
    let (read, write) = match lists {
        Some((read, write)) => {
            p.set_object_sharing(name, &as_str(read), &as_str(write)).await?;
            p.get_object_sharing(name).await?
        }
        None => Default::default(),
    };
    let names = usernames(ctx, read.iter().chain(&write)).await?;
    if ctx.json {
        return print_json(
            out,
            &json!({"container": container, "path": name, "sharing": sharing_json(&read, &write, &names)}),
        );
    }
    let mut t = Table::new(&["USER", "ID", "MAY"]);
    for (list, may) in [(&read, "read"), (&write, "write")] {
        for u in list {
            let shown = if u == "*" { "everyone".to_string() } else { names.get(u).cloned().unwrap_or_default() };
            t.row(vec![shown, u.clone(), may.to_string()]);
        }
    }
    if t.is_empty() {
        writeln!(out, "/{}/{} is not shared", table::clean(container), table::clean(name))?;
    } else {
        write!(out, "{}", t.render())?;
    }
    Ok(())
}

// ---------- containers and quota ----------

/// `NAME` or `/NAME`: a container name has no slash.
fn container_name(s: &str) -> Result<String, Failure> {
    let name = s.strip_prefix('/').unwrap_or(s).trim_end_matches('/');
    if name.is_empty() || name.contains('/') {
        return Err(fail(format!(
            "{} is not a container name (NAME or /NAME, without other slashes)",
            table::clean(s)
        )));
    }
    Ok(name.to_string())
}

pub(crate) async fn container(
    command: &ContainerCommand,
    ctx: &Context<'_>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    match command {
        ContainerCommand::List => {
            let p = pithos(ctx, "pithos").await?;
            let list = p.list_containers().await?;
            let policy = |c: &crate::clients::storage::ContainerEntry, k: &str| {
                c.raw.get("x_container_policy").and_then(|pol| pol.get(k)).cloned().unwrap_or(Value::Null)
            };
            let rows: Vec<Value> = list
                .iter()
                .map(|c| {
                    let quota = policy(c, "quota");
                    let quota = quota.as_u64().or_else(|| quota.as_str().and_then(|q| q.parse().ok()));
                    json!({
                        "name": c.name,
                        "count": c.count,
                        "bytes": c.bytes,
                        "modified": c.last_modified.map(rfc3339),
                        "versioning": policy(c, "versioning"),
                        "quota": quota,
                    })
                })
                .collect();
            if ctx.json {
                return print_json(out, &Value::Array(rows));
            }
            let mut t = Table::new(&["NAME", "OBJECTS", "SIZE", "MODIFIED", "VERSIONING", "QUOTA"]).right(1).right(2);
            for (c, r) in list.iter().zip(&rows) {
                let quota = match r["quota"].as_u64() {
                    Some(0) => "-".to_string(),
                    Some(q) => human_bytes(q),
                    None => String::new(),
                };
                t.row(vec![
                    c.name.clone(),
                    c.count.to_string(),
                    human_bytes(c.bytes),
                    c.last_modified.map(local_time).unwrap_or_default(),
                    table::cell(&r["versioning"]),
                    quota,
                ]);
            }
            write!(out, "{}", t.render())?;
        }
        ContainerCommand::Create { name, versioning, quota } => {
            let name = container_name(name)?;
            let p = pithos(ctx, &name).await?;
            match p.get_container_info().await {
                Ok(_) => return Err(fail(format!("container {} exists", table::clean(&name)))),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            p.create_container_with(versioning.map(Versioning::as_str), *quota).await?;
            let info = p.get_container_info().await?;
            let v = json!({
                "name": name,
                "versioning": info.header("x-container-policy-versioning"),
                "quota": info.header("x-container-policy-quota").and_then(|q| q.trim().parse::<u64>().ok()),
            });
            if ctx.json {
                return print_json(out, &v);
            }
        }
        ContainerCommand::Delete { name, recursive } => {
            let name = container_name(name)?;
            let p = pithos(ctx, &name).await?;
            let info = match p.get_container_info().await {
                Ok(i) => i,
                Err(e) if e.is_not_found() => {
                    return Err(Failure::Client(ClientError::with_status(
                        format!("no container {}", table::clean(&name)),
                        404,
                    )))
                }
                Err(e) => return Err(e.into()),
            };
            let count = info.header("x-container-object-count").and_then(|c| c.trim().parse::<u64>().ok()).unwrap_or(0);
            if count > 0 && !recursive {
                return Err(fail(format!(
                    "container {} is not empty ({count} object(s)): use -r to delete it with its objects",
                    table::clean(&name)
                )));
            }
            if count > 0 {
                p.empty_container().await?;
            }
            p.delete_container().await?;
            if ctx.json {
                return print_json(out, &json!({"name": name, "deleted": true, "objects": count}));
            }
        }
    }
    Ok(())
}

pub(crate) async fn quota(ctx: &Context<'_>, out: &mut impl Write) -> Result<(), Failure> {
    let p = pithos(ctx, "pithos").await?;
    let (quota, used) = p.get_account_quota().await?;
    // 0: the server reports no limit.
    let available = (quota > 0).then(|| quota.saturating_sub(used));
    if ctx.json {
        return print_json(out, &json!({"quota": (quota > 0).then_some(quota), "used": used, "available": available}));
    }
    let show = |n: Option<u64>| n.map_or_else(|| "unlimited".to_string(), human_bytes);
    let pairs = vec![
        ("quota".to_string(), show((quota > 0).then_some(quota))),
        ("used".to_string(), human_bytes(used)),
        ("available".to_string(), show(available)),
    ];
    write!(out, "{}", key_values(&pairs))?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print_in_binary_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("10GiB"), Ok(10 << 30));
        assert_eq!(parse_bytes("1.5k"), Ok(1536));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert!(parse_bytes("20000P").is_err());
        assert!(parse_bytes("12X").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("1.2.3G").is_err());
        assert!(parse_bytes("-1G").is_err());
        assert!(parse_bytes("").is_err());
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(300 << 20), "300 MiB");
        assert_eq!(human_bytes(u64::MAX), "16 EiB");
        assert_eq!(human_bytes((1 << 50) - 56), "1.0 PiB");
    }

    #[test]
    fn a_folder_listed_twice_is_one_entry() {
        use crate::clients::storage::ObjectEntry;
        let obj = |name: &str, ct: &str| {
            Listed::Object(ObjectEntry { name: name.into(), content_type: ct.into(), ..Default::default() })
        };
        let rows = entries(vec![
            obj("a", "application/directory"),
            Listed::Subdir("a/".into()),
            obj("b", "text/plain"),
            Listed::Subdir("b/".into()),
            obj("c", "text/plain"),
        ]);
        let shown: Vec<(&str, bool)> = rows.iter().map(|e| (e.name.as_str(), e.folder)).collect();
        assert_eq!(shown, vec![("a", true), ("b", false), ("b", true), ("c", false)]);
    }
}
