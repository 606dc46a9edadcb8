//! `pithosfs file upload|download|cat`: transfers by hashmap, with progress.
//! (Being built on issue 11.)

use super::{Context, Failure};
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum TransferCommand {
    /// Print an object on stdout.
    Cat {
        /// /CONTAINER/PATH
        path: String,
    },
}

pub(crate) async fn execute(
    command: &TransferCommand,
    _ctx: &Context<'_>,
    _out: &mut impl Write,
) -> Result<(), Failure> {
    match command {
        TransferCommand::Cat { .. } => Err(Failure::Missing(vec!["file cat is not built yet".into()])),
    }
}
