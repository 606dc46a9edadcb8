//! `pithosfs file list|info|mkdir|mv|cp|rm|versions|publish|unpublish|share`,
//! `pithosfs container …` and `pithosfs quota`. (Being built on issue 11.)

use super::{Context, Failure};
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum ManageCommand {
    /// List objects: /CONTAINER[/PREFIX].
    List {
        /// /CONTAINER[/PREFIX]
        path: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List the containers.
    List,
}

pub(crate) async fn execute(command: &ManageCommand, _ctx: &Context<'_>, _out: &mut impl Write) -> Result<(), Failure> {
    match command {
        ManageCommand::List { .. } => Err(Failure::Missing(vec!["file list is not built yet".into()])),
    }
}

pub(crate) async fn container(
    command: &ContainerCommand,
    _ctx: &Context<'_>,
    _out: &mut impl Write,
) -> Result<(), Failure> {
    match command {
        ContainerCommand::List => Err(Failure::Missing(vec!["container list is not built yet".into()])),
    }
}

pub(crate) async fn quota(_ctx: &Context<'_>, _out: &mut impl Write) -> Result<(), Failure> {
    Err(Failure::Missing(vec!["quota is not built yet".into()]))
}
