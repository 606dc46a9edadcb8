//! `pithosfs file upload|download|cat`: transfers by hashmap, as kamaki's.
//!
//! An upload hashes the file and sends only the blocks the server lacks (an
//! unchanged file sends none); `-r` uploads a folder tree, with a folder
//! object for each folder as kamaki makes them. A download keeps the blocks
//! the local file already holds (each checked by its hash), so a cut download
//! run again fetches only the rest, and the result is always the object's
//! bytes. A file's destination follows cp: a remote PATH ending in `/` or
//! naming a folder, or a LOCAL naming a folder, gets the file inside it. A
//! tree's follows kamaki (and rclone): the contents go into the PATH or LOCAL
//! named, so that a second run updates, or resumes, the same tree.

use super::progress::Bars;
use super::remote::{self, pithos};
use super::units::human_bytes;
use super::{print_json, Context, Failure};
use crate::clients::pithos::{PithosClient, TransferOptions, Transferred};
use crate::clients::storage::{ListOptions, Listed, ObjectStorage, PutOptions};
use crate::clients::ClientError;
use clap::Subcommand;
use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum TransferCommand {
    /// Print an object on stdout.
    Cat {
        /// /CONTAINER/PATH
        path: String,
        /// Print this version of the object (see `file versions`).
        #[arg(long, value_name = "N")]
        version: Option<String>,
    },
    /// Upload a file: only the blocks the server lacks are sent. A PATH
    /// ending in `/` or naming a folder gets the file inside it. With -r, the
    /// folder's contents go into PATH (as kamaki's).
    Upload {
        /// The local file (a folder with -r).
        // Its own id: `local` is also the global `--local` flag.
        #[arg(id = "local_file", value_name = "LOCAL")]
        local: PathBuf,
        /// /CONTAINER[/PATH]
        path: String,
        /// Upload a folder and everything in it, with folder objects.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// No progress bar (there is none anyway when stderr is not a terminal).
        #[arg(short = 'N', long)]
        no_progress: bool,
    },
    /// Download an object. Blocks the local file already holds are kept, so a
    /// cut download run again fetches only the rest.
    Download {
        /// /CONTAINER/PATH
        path: String,
        /// The local file, or a folder to put it in [default: .]. With -r, the
        /// folder that gets the contents [default: the remote folder's name].
        #[arg(id = "local_file", value_name = "LOCAL")]
        local: Option<PathBuf>,
        /// Download this version of the object (see `file versions`).
        #[arg(long, value_name = "N", conflicts_with = "recursive")]
        version: Option<String>,
        /// Download everything under PATH (a folder, or the whole container).
        #[arg(short = 'r', long)]
        recursive: bool,
        /// No progress bar (there is none anyway when stderr is not a terminal).
        #[arg(short = 'N', long)]
        no_progress: bool,
    },
}

pub(crate) async fn execute(command: &TransferCommand, ctx: &Context<'_>, out: &mut impl Write) -> Result<(), Failure> {
    match command {
        TransferCommand::Cat { path, version } => {
            let remote = Remote::parse(path)?;
            let pithos = pithos(ctx, &remote.container).await?;
            cat(&pithos, &remote, version.as_deref(), out).await
        }
        TransferCommand::Upload { local, path, recursive, no_progress } => {
            let remote = Remote::parse(path)?;
            let pithos = pithos(ctx, &remote.container).await?;
            let run = Run { ctx, bars: Bars::new(*no_progress), started: Instant::now() };
            let meta = std::fs::metadata(local).map_err(|e| local_error(local, e))?;
            if meta.is_dir() && !recursive {
                return Err(message(format!("{} is a folder: upload it with -r", local.display())));
            }
            if !meta.is_dir() && *recursive {
                return Err(message(format!("{} is not a folder", local.display())));
            }
            if *recursive {
                upload_tree(&run, &pithos, local, &remote, out).await
            } else {
                let name = upload_target(&pithos, &remote, local).await?;
                let t = upload_one(&run, &pithos, local, &remote, &name).await?;
                report_one(&run, out, "uploaded", &local.display().to_string(), &remote.at(&name), &t)
            }
        }
        TransferCommand::Download { path, local, version, recursive, no_progress } => {
            let remote = Remote::parse(path)?;
            let pithos = pithos(ctx, &remote.container).await?;
            let run = Run { ctx, bars: Bars::new(*no_progress), started: Instant::now() };
            if *recursive {
                download_tree(&run, &pithos, &remote, local.as_deref(), out).await
            } else {
                let local = local.clone().unwrap_or_else(|| PathBuf::from("."));
                let info = pithos.get_object_info_at(&remote.path, version.as_deref()).await.map_err(|e| {
                    if e.status == 404 {
                        ClientError { message: format!("{}: no such object", remote.show()), ..e }
                    } else {
                        e
                    }
                })?;
                if info.is_directory() {
                    return Err(message(format!("{} is a folder: download it with -r", remote.show())));
                }
                let target = local_target(&local, &remote.path)?;
                let t = download_one(&run, &pithos, &remote.path, &target, version.clone()).await?;
                report_one(&run, out, "downloaded", &remote.show(), &target.display().to_string(), &t)
            }
        }
    }
}

/// A `/CONTAINER/PATH` argument.
struct Remote {
    container: String,
    /// The object name or prefix, without a leading slash; may be empty.
    path: String,
}

impl Remote {
    /// `/CONTAINER[/PATH]`, by the one rule of `remote::parse_remote`.
    fn parse(arg: &str) -> Result<Remote, Failure> {
        let (container, path) = remote::parse_remote(arg)?;
        Ok(Remote { container, path })
    }
    fn show(&self) -> String {
        self.at(&self.path)
    }
    /// How the user writes an object `name` of this container.
    fn at(&self, name: &str) -> String {
        format!("/{}/{}", self.container, name)
    }
}

/// What every transfer of one command shares.
struct Run<'a, 'c> {
    ctx: &'a Context<'c>,
    bars: Bars,
    started: Instant,
}

/// Files of a tree in flight at once: many small files go faster side by
/// side (each is a few requests), and each file sends its blocks in parallel.
const FILES_AT_ONCE: usize = 4;

fn message(text: String) -> Failure {
    Failure::Client(ClientError::new(text))
}

fn local_error(path: &Path, e: std::io::Error) -> Failure {
    message(format!("cannot read {}: {e}", path.display()))
}

fn base_name(path: &Path) -> Result<String, Failure> {
    // `dir/.` and `..` have no name of their own: the canonical path has.
    let path =
        if path.file_name().is_none() { path.canonicalize().map_err(|e| local_error(path, e))? } else { path.into() };
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| message(format!("{} has no name that can be an object name (UTF-8)", path.display())))
}

/// Whether `name` is a folder object on the server (kamaki's
/// `application/directory`); false when there is no such object.
async fn is_folder(pithos: &PithosClient, name: &str) -> Result<Option<bool>, Failure> {
    if name.is_empty() {
        return Ok(Some(true)); // the container itself
    }
    match pithos.get_object_info(name).await {
        Ok(info) => Ok(Some(info.is_directory())),
        Err(e) if e.status == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Where `local` goes for `upload LOCAL /C/PATH`, as cp: inside PATH when it
/// ends in `/`, is empty or names a folder; PATH itself otherwise.
async fn upload_target(pithos: &PithosClient, remote: &Remote, local: &Path) -> Result<String, Failure> {
    if remote.path.is_empty() || remote.path.ends_with('/') {
        return Ok(format!("{}{}", remote.path, base_name(local)?));
    }
    if is_folder(pithos, &remote.path).await? == Some(true) {
        return Ok(format!("{}/{}", remote.path, base_name(local)?));
    }
    Ok(remote.path.clone())
}

/// Where an object goes for `download /C/PATH LOCAL`: inside LOCAL when it is
/// a folder, LOCAL itself otherwise.
fn local_target(local: &Path, name: &str) -> Result<PathBuf, Failure> {
    if !local.is_dir() {
        return Ok(local.to_path_buf());
    }
    let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if !safe_relative(base) {
        return Err(message(format!("the object name {name:?} cannot be a local file name")));
    }
    Ok(local.join(base))
}

/// A relative path of plain names only: nothing that climbs out (`..`),
/// starts at the root, or holds an empty name or a NUL.
fn safe_relative(rel: &str) -> bool {
    !rel.is_empty() && !rel.contains('\0') && rel.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

async fn upload_one(
    run: &Run<'_, '_>,
    pithos: &PithosClient,
    local: &Path,
    remote: &Remote,
    name: &str,
) -> Result<Transferred, Failure> {
    let tracker = run.bars.tracker(&remote.at(name));
    let t = TransferOptions { progress: Some(tracker.clone()), ..Default::default() };
    let result = pithos.upload_file_with(name, local, &PutOptions::default(), &t).await;
    tracker.clear();
    result.map_err(|e| match e.status {
        404 => ClientError { message: format!("/{}: no such container", remote.container), ..e }.into(),
        _ => e.into(),
    })
}

async fn download_one(
    run: &Run<'_, '_>,
    pithos: &PithosClient,
    name: &str,
    target: &Path,
    version: Option<String>,
) -> Result<Transferred, Failure> {
    // A file that is there is resumed in place (it may be a cut download of
    // another tool). A new one is written as `LOCAL.pithosfs-part` and renamed
    // when complete, so a cut never leaves a file that looks whole; the part
    // file is what the next run resumes.
    let part = part_file(target)?;
    let into = if target.exists() { target.to_path_buf() } else { part.clone() };
    let existed = into.exists();
    let tracker = run.bars.tracker(&target.display().to_string());
    // Resuming is always safe: a kept block is one whose bytes hash to the
    // object's block, so the result is the object's bytes in any case.
    let t = TransferOptions { version, resume: true, progress: Some(tracker.clone()) };
    let result = pithos.download_file_with(name, &into, &t).await;
    tracker.clear();
    match result {
        Ok(done) => {
            if into == part {
                std::fs::rename(&part, target)
                    .map_err(|e| message(format!("cannot rename {} to {}: {e}", part.display(), target.display())))?;
            }
            Ok(done)
        }
        Err(e) => {
            // A file this command made and filled with nothing is not left behind;
            // one that holds fetched blocks is kept for the next run to resume.
            if !existed && tracker.received() == 0 {
                let _ = std::fs::remove_file(&into);
            }
            Err(e.into())
        }
    }
}

/// Where a new download is written until it is complete.
fn part_file(target: &Path) -> Result<PathBuf, Failure> {
    let name = target.file_name().ok_or_else(|| message(format!("{} is not a file name", target.display())))?;
    let mut part = name.to_os_string();
    part.push(".pithosfs-part");
    Ok(target.with_file_name(part))
}

fn summary(verb: &str, from: &str, to: &str, t: &Transferred, seconds: f64) -> (String, Value) {
    let (moved, there) = if verb == "uploaded" { ("sent", "already there") } else { ("fetched", "already here") };
    let line = format!(
        "{verb} {from} -> {to}: {} in {}, {} {moved}, {} {there} ({seconds:.1} s)",
        human_bytes(t.bytes),
        blocks(t.blocks),
        t.blocks_moved,
        t.blocks_skipped()
    );
    let v = json!({
        "name": if verb == "uploaded" { to } else { from },
        "local": if verb == "uploaded" { from } else { to },
        "bytes": t.bytes,
        "hash": t.hash,
        "version": t.version,
        "blocks": t.blocks,
        format!("blocks_{moved}"): t.blocks_moved,
        format!("bytes_{moved}"): t.bytes_moved,
        "blocks_skipped": t.blocks_skipped(),
        "seconds": (seconds * 1000.0).round() / 1000.0,
    });
    (super::table::clean(&line), v)
}

fn blocks(n: usize) -> String {
    if n == 1 {
        "1 block".into()
    } else {
        format!("{n} blocks")
    }
}

fn report_one(
    run: &Run<'_, '_>,
    out: &mut impl Write,
    verb: &str,
    from: &str,
    to: &str,
    t: &Transferred,
) -> Result<(), Failure> {
    let (line, v) = summary(verb, from, to, t, run.started.elapsed().as_secs_f64());
    if run.ctx.json {
        return print_json(out, &v);
    }
    writeln!(out, "{line}")?;
    Ok(())
}

/// A folder tree: its folders (relative paths, parents first) and files.
#[derive(Default)]
struct Tree {
    folders: Vec<String>,
    files: Vec<(String, PathBuf)>,
    /// What cannot be an object (symlinks, sockets, names not in UTF-8).
    skipped: Vec<String>,
}

fn walk(root: &Path, rel: &str, tree: &mut Tree) -> Result<(), Failure> {
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let mut entries = std::fs::read_dir(&dir)
        .map_err(|e| local_error(&dir, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| local_error(&dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            tree.skipped.push(format!("{} (its name is not UTF-8)", path.display()));
            continue;
        };
        let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let kind = entry.file_type().map_err(|e| local_error(&path, e))?;
        if kind.is_dir() {
            tree.folders.push(child.clone());
            walk(root, &child, tree)?;
        } else if kind.is_file() {
            tree.files.push((child, path));
        } else {
            tree.skipped.push(format!("{} (not a file or a folder)", path.display()));
        }
    }
    Ok(())
}

async fn upload_tree(
    run: &Run<'_, '_>,
    pithos: &PithosClient,
    local: &Path,
    remote: &Remote,
    out: &mut impl Write,
) -> Result<(), Failure> {
    // As kamaki and rclone: the folder's contents go into PATH, whether it
    // exists or not, so that running it again updates the same tree; the
    // container alone gets a folder of the local folder's name.
    let root = match remote.path.trim_end_matches('/') {
        "" => base_name(local)?,
        p => p.to_string(),
    };
    if is_folder(pithos, &root).await? == Some(false) {
        return Err(message(format!("{} is a file: cannot put a folder there", remote.at(&root))));
    }
    let mut tree = Tree::default();
    walk(local, "", &mut tree)?;
    for s in &tree.skipped {
        eprintln!("pithosfs: skipped {}", super::table::clean(s));
    }
    let folders: Vec<String> =
        std::iter::once(root.clone()).chain(tree.folders.iter().map(|f| format!("{root}/{f}"))).collect();
    for f in &folders {
        if is_folder(pithos, f).await? != Some(true) {
            pithos.create_directory(f).await?;
        }
    }
    let mut files = Vec::new();
    let mut total = Transferred::default();
    let root_ref = &root;
    let mut uploads = stream::iter(&tree.files)
        .map(|(rel, path)| async move {
            let name = format!("{root_ref}/{rel}");
            let t = upload_one(run, pithos, path, remote, &name).await?;
            Ok::<_, Failure>((path, name, t))
        })
        .buffered(FILES_AT_ONCE);
    while let Some(done) = uploads.next().await {
        let (path, name, t) = done?;
        add(&mut total, &t);
        let (line, v) = summary(
            "uploaded",
            &path.display().to_string(),
            &remote.at(&name),
            &t,
            run.started.elapsed().as_secs_f64(),
        );
        if !run.ctx.json {
            run.bars.suspend(|| writeln!(out, "{line}"))?;
        }
        files.push(v);
    }
    let seconds = run.started.elapsed().as_secs_f64();
    if run.ctx.json {
        let folders: Vec<String> = folders.iter().map(|f| remote.at(f)).collect();
        return print_json(
            out,
            &json!({
                "name": remote.at(&root),
                "folders": folders,
                "files": files,
                "bytes": total.bytes,
                "blocks": total.blocks,
                "blocks_sent": total.blocks_moved,
                "bytes_sent": total.bytes_moved,
                "blocks_skipped": total.blocks_skipped(),
                "seconds": (seconds * 1000.0).round() / 1000.0,
            }),
        );
    }
    writeln!(
        out,
        "uploaded {} files and {} folders to {}: {}, {} blocks sent, {} already there ({seconds:.1} s)",
        tree.files.len(),
        folders.len(),
        super::table::clean(&remote.at(&root)),
        human_bytes(total.bytes),
        total.blocks_moved,
        total.blocks_skipped()
    )?;
    Ok(())
}

fn add(total: &mut Transferred, t: &Transferred) {
    total.bytes = total.bytes.saturating_add(t.bytes);
    total.blocks = total.blocks.saturating_add(t.blocks);
    total.blocks_moved = total.blocks_moved.saturating_add(t.blocks_moved);
    total.bytes_moved = total.bytes_moved.saturating_add(t.bytes_moved);
}

async fn download_tree(
    run: &Run<'_, '_>,
    pithos: &PithosClient,
    remote: &Remote,
    local: Option<&Path>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let base = remote.path.trim_end_matches('/');
    let prefix = if base.is_empty() { String::new() } else { format!("{base}/") };
    let listed = pithos.list_objects(&ListOptions { prefix: Some(prefix.clone()), ..Default::default() }).await?;
    let objects: Vec<_> = listed
        .into_iter()
        .filter_map(|l| match l {
            Listed::Object(o) => Some(o),
            Listed::Subdir(_) => None,
        })
        .collect();
    if objects.is_empty() && is_folder(pithos, base).await? != Some(true) {
        return Err(message(format!("{}: no such folder", remote.show())));
    }
    // The contents go into LOCAL, whether it exists or not (as the upload's
    // into PATH), so that a cut download run again resumes the same tree;
    // without LOCAL, a folder of the remote folder's (or container's) name.
    let root = match local {
        Some(l) => l.to_path_buf(),
        None => {
            let name =
                if base.is_empty() { remote.container.as_str() } else { base.rsplit('/').next().unwrap_or(base) };
            if !safe_relative(name) {
                return Err(message(format!("the name {name:?} cannot be a local folder name")));
            }
            PathBuf::from(name)
        }
    };
    // Every name is checked before anything is written: none may climb out of the root.
    let mut plan = Vec::new();
    for o in &objects {
        let rel = o.name.strip_prefix(&prefix).unwrap_or(&o.name).trim_end_matches('/');
        if rel.is_empty() {
            continue; // the folder object itself
        }
        if !safe_relative(rel) {
            return Err(message(format!(
                "the object {} cannot be a local file: its name leaves the folder or has an empty part",
                super::table::clean(&remote.at(&o.name))
            )));
        }
        plan.push((o.name.clone(), rel.to_string(), o.is_directory()));
    }
    std::fs::create_dir_all(&root).map_err(|e| message(format!("cannot create {}: {e}", root.display())))?;
    // Folders first (the empty ones too), then the files, several at once.
    for (_, rel, folder) in &plan {
        let dir = if *folder {
            root.join(rel)
        } else {
            root.join(rel).parent().map_or_else(|| root.clone(), Path::to_path_buf)
        };
        std::fs::create_dir_all(&dir).map_err(|e| message(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut files = Vec::new();
    let mut total = Transferred::default();
    let mut downloads = stream::iter(plan.iter().filter(|(_, _, folder)| !folder))
        .map(|(name, rel, _)| {
            let target = root.join(rel);
            async move {
                let t = download_one(run, pithos, name, &target, None).await?;
                Ok::<_, Failure>((name, target, t))
            }
        })
        .buffered(FILES_AT_ONCE);
    while let Some(done) = downloads.next().await {
        let (name, target, t) = done?;
        add(&mut total, &t);
        let (line, v) = summary(
            "downloaded",
            &remote.at(name),
            &target.display().to_string(),
            &t,
            run.started.elapsed().as_secs_f64(),
        );
        if !run.ctx.json {
            run.bars.suspend(|| writeln!(out, "{line}"))?;
        }
        files.push(v);
    }
    let seconds = run.started.elapsed().as_secs_f64();
    if run.ctx.json {
        return print_json(
            out,
            &json!({
                "name": remote.show(),
                "local": root.display().to_string(),
                "files": files,
                "bytes": total.bytes,
                "blocks": total.blocks,
                "blocks_fetched": total.blocks_moved,
                "bytes_fetched": total.bytes_moved,
                "blocks_skipped": total.blocks_skipped(),
                "seconds": (seconds * 1000.0).round() / 1000.0,
            }),
        );
    }
    writeln!(
        out,
        "downloaded {} files to {}: {}, {} blocks fetched, {} already here ({seconds:.1} s)",
        files.len(),
        root.display(),
        human_bytes(total.bytes),
        total.blocks_moved,
        total.blocks_skipped()
    )?;
    Ok(())
}

async fn cat(
    pithos: &PithosClient,
    remote: &Remote,
    version: Option<&str>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let t = TransferOptions { version: version.map(str::to_string), ..Default::default() };
    let mut sink = SyncWriter(out);
    match pithos.download_to_writer(&remote.path, &mut sink, &t).await {
        Ok(_) => Ok(()),
        // `pithosfs file cat … | head`: the reader has what it wanted.
        Err(e) if e.message.contains("Broken pipe") => Ok(()),
        Err(e) if e.status == 404 => {
            Err(ClientError { message: format!("{}: no such object", remote.show()), ..e }.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The command's output (stdout) as the async writer the client wants; a
/// write blocks its thread, as a write to stdout does.
struct SyncWriter<'a, W: Write>(&'a mut W);

impl<W: Write> tokio::io::AsyncWrite for SyncWriter<'_, W> {
    fn poll_write(self: Pin<&mut Self>, _: &mut std::task::Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.get_mut().0.write(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_and_safe_names() {
        let r = Remote::parse("/pithos/a/b.txt").map_err(|_| ()).unwrap();
        assert_eq!((r.container.as_str(), r.path.as_str()), ("pithos", "a/b.txt"));
        let r = Remote::parse("/pithos").map_err(|_| ()).unwrap();
        assert_eq!((r.container.as_str(), r.path.as_str()), ("pithos", ""));
        assert!(Remote::parse("/").is_err());
        assert!(Remote::parse("").is_err());
        assert!(safe_relative("a/b/c.txt"));
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", ".", "a\0b"] {
            assert!(!safe_relative(bad), "{bad:?}");
        }
    }
}
