//! `pithosfs container list|create|delete` and `pithosfs quota`.

use super::*;

// ---------- containers and quota ----------

/// `NAME` or `/NAME`: a container name has no slash.
pub(super) fn container_name(s: &str) -> Result<String, Failure> {
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
