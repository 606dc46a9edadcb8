//! Where a file command works: a `/CONTAINER/PATH` as kamaki's `file`
//! commands take it, and the Pithos+ client of the configured account.

use super::{Context, Failure};
use crate::clients::pithos::PithosClient;
use crate::clients::ClientError;

/// Splits `/CONTAINER[/PATH]` into (container, path); the path may be empty
/// (the container itself). Repeated slashes between the parts are one.
pub(crate) fn parse_remote(s: &str) -> Result<(String, String), Failure> {
    let usage = |why: &str| {
        Failure::Client(
            ClientError::new(format!("{why}: {}", super::table::clean(s)))
                .detail("a remote path is /CONTAINER/PATH, e.g. /pithos/photos/cat.jpg"),
        )
    };
    let Some(rest) = s.strip_prefix('/') else {
        return Err(usage("a remote path starts with /CONTAINER"));
    };
    let rest = rest.trim_start_matches('/');
    let (container, path) = rest.split_once('/').unwrap_or((rest, ""));
    if container.is_empty() {
        return Err(usage("no container in the remote path"));
    }
    Ok((container.to_string(), path.trim_start_matches('/').to_string()))
}

/// [`parse_remote`] for commands that act on an object: the path must name one.
pub(crate) fn parse_object(s: &str) -> Result<(String, String), Failure> {
    let (container, path) = parse_remote(s)?;
    if path.is_empty() {
        return Err(Failure::Client(
            ClientError::new(format!("{} names a container, not a file: give /CONTAINER/PATH", super::table::clean(s)))
                .detail("for containers, see `pithosfs container --help`"),
        ));
    }
    Ok((container, path))
}

/// The Pithos+ client of the authenticated user (the account is the user's
/// UUID), from the service catalog, sharing the identity client's
/// connections and token; it works in `container`.
pub(crate) async fn pithos(ctx: &Context<'_>, container: &str) -> Result<PithosClient, Failure> {
    let http = ctx.astakos.service_http("object-store", "v1").await?;
    let account = ctx.astakos.term("uuid").await?;
    Ok(PithosClient::with_http(http, &account, container)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_split_into_container_and_path() {
        let ok = |s: &str| parse_remote(s).map_err(|_| ()).unwrap();
        assert_eq!(ok("/pithos"), ("pithos".into(), "".into()));
        assert_eq!(ok("/pithos/"), ("pithos".into(), "".into()));
        assert_eq!(ok("/pithos/a/b.txt"), ("pithos".into(), "a/b.txt".into()));
        assert_eq!(ok("//pithos//a/b/"), ("pithos".into(), "a/b/".into()));
        assert!(parse_remote("pithos/a").is_err());
        assert!(parse_remote("/").is_err());
        assert!(parse_remote("").is_err());
        assert!(parse_object("/pithos").is_err());
        assert!(parse_object("/pithos/x").is_ok());
    }
}
