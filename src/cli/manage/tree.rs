//! Folders, moves, copies and removal on the server: `file mkdir`, `mv`,
//! `cp`, `rm`, for a file or a folder's tree.

use super::*;

// ---------- folders, moves, copies, removal ----------

pub(super) async fn mkdir(ctx: &Context<'_>, out: &mut impl Write, path: &str) -> Result<(), Failure> {
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

pub(super) struct Transfer<'a> {
    pub(super) src: &'a str,
    pub(super) dst: &'a str,
    pub(super) moving: bool,
    pub(super) recursive: bool,
    pub(super) force: bool,
}

pub(super) async fn transfer(ctx: &Context<'_>, out: &mut impl Write, t: Transfer<'_>) -> Result<(), Failure> {
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
pub(super) struct Child {
    name: String,
    /// The name after the folder's `name/`.
    rest: String,
    sharing: Option<String>,
}

/// Every object under `name/`. Only names that do start so are taken: a
/// server that ignored the prefix must not get others moved or removed.
pub(super) async fn children(p: &PithosClient, name: &str) -> Result<Vec<Child>, ClientError> {
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
pub(super) async fn carry_sharing(p: &PithosClient, moved: &[(String, String)]) -> Result<(), ClientError> {
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

pub(super) async fn remove(
    ctx: &Context<'_>,
    out: &mut impl Write,
    path: &str,
    recursive: bool,
) -> Result<(), Failure> {
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
