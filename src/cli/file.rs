//! `pithosfs file …`, `pithosfs container …`, `pithosfs quota`: Pithos+ storage
//! with kamaki's command names. Transfers (upload, download, cat: progress,
//! resume) are in `transfer`; everything else (listing, info, moves, copies,
//! removal, versions, publishing, sharing, containers, quota) in `manage`.

use super::{manage, transfer, CloudArgs, Context, Failure};
use clap::{Args, Subcommand};
use std::io::Write;

#[derive(Args, Debug)]
pub struct FileArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[command(subcommand)]
    pub command: FileCommand,
}

#[derive(Subcommand, Debug)]
pub enum FileCommand {
    #[command(flatten)]
    Transfer(transfer::TransferCommand),
    #[command(flatten)]
    Manage(manage::ManageCommand),
}

#[derive(Args, Debug)]
pub struct ContainerArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[command(subcommand)]
    pub command: manage::ContainerCommand,
}

#[derive(Args, Debug)]
pub struct QuotaArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
}

pub(crate) async fn file(command: &FileCommand, ctx: &Context<'_>, out: &mut impl Write) -> Result<(), Failure> {
    match command {
        FileCommand::Transfer(c) => transfer::execute(c, ctx, out).await,
        FileCommand::Manage(c) => manage::execute(c, ctx, out).await,
    }
}
