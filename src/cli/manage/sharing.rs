//! Sharing (`file share`, `file unshare`, shown by `file info` with names)
//! and public links (`file publish`, `file unpublish`).

use super::*;

/// (read, write) of an object's `X-Object-Sharing` header.
pub(super) fn sharing_of(i: &ObjectInfo) -> (Vec<String>, Vec<String>) {
    parse_sharing(i.info.header("x-object-sharing").unwrap_or(""))
}

/// (read, write) of a sharing value (`read=a,b; write=c`).
pub(super) fn parse_sharing(value: &str) -> (Vec<String>, Vec<String>) {
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
pub(super) async fn usernames<'a>(
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
pub(super) fn is_user(entry: &str) -> bool {
    entry != "*" && !entry.contains(':')
}

pub(super) fn user_json(uuid: &str, names: &BTreeMap<String, String>) -> Value {
    json!({"id": uuid, "name": names.get(uuid)})
}

pub(super) fn user_text(uuid: &str, names: &BTreeMap<String, String>) -> String {
    match (uuid, names.get(uuid)) {
        ("*", _) => "* (everyone)".into(),
        (_, Some(n)) => format!("{n} ({uuid})"),
        (_, None) => uuid.to_string(),
    }
}

pub(super) fn sharing_json(read: &[String], write: &[String], names: &BTreeMap<String, String>) -> Value {
    let users = |list: &[String]| Value::Array(list.iter().map(|u| user_json(u, names)).collect());
    json!({"read": users(read), "write": users(write)})
}

pub(super) async fn publish(ctx: &Context<'_>, out: &mut impl Write, path: &str) -> Result<(), Failure> {
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

pub(super) async fn unpublish(ctx: &Context<'_>, out: &mut impl Write, path: &str) -> Result<(), Failure> {
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
pub(super) async fn resolve_users(ctx: &Context<'_>, given: &[String]) -> Result<BTreeMap<String, String>, Failure> {
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

pub(super) async fn share(
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

pub(super) async fn unshare(
    ctx: &Context<'_>,
    out: &mut impl Write,
    path: &str,
    users: &[String],
) -> Result<(), Failure> {
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
pub(super) async fn set_sharing(
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
