//! `pithosfs user …`: Astakos identity.

use super::table::{self, flatten, key_values, Table};
use super::{print_json, CloudArgs, Context, Failure};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;

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

pub(crate) async fn user(command: &UserCommand, ctx: &Context<'_>, out: &mut impl Write) -> Result<(), Failure> {
    let (astakos, json) = (ctx.astakos, ctx.json);
    match command {
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
