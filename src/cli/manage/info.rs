//! `file info` and `file versions`.

use super::*;

// ---------- info ----------

pub(super) async fn info(
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

// ---------- versions and public URLs ----------

pub(super) async fn versions(
    ctx: &Context<'_>,
    out: &mut impl Write,
    path: &str,
    account: Option<&str>,
) -> Result<(), Failure> {
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
