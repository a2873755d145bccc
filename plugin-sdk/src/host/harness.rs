//! The native test harness: run a plugin's Rust code exactly as the gateway runs its component,
//! framing and validation included, without WebAssembly.

use std::marker::PhantomData;

use super::runner::{ManifestError, PluginFailure, Report, RunOptions, Runner, Translator};
use crate::{translate_batch, BatchContext, Framing, Manifest, Source, Translation};

/// A [`Source`] called directly, as a [`Translator`].
pub struct Native<P> {
    manifest: Manifest,
    plugin: PhantomData<P>,
}

impl<P: Source> Native<P> {
    /// Wraps plugin `P`.
    pub fn new() -> Self {
        Native {
            manifest: P::manifest(),
            plugin: PhantomData,
        }
    }
}

impl<P: Source> Default for Native<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Source> Translator for Native<P> {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn translate(
        &mut self,
        context: &BatchContext,
        data: &[u8],
        ends: &[u32],
    ) -> Result<Translation, PluginFailure> {
        Ok(translate_batch::<P>(context, data, ends))
    }
}

/// Runs plugin `P` over `input` with its default framing, as the gateway would.
pub fn run<P: Source>(input: &[u8]) -> Result<Report, ManifestError> {
    Runner::new(Native::<P>::new())?.run(input, &RunOptions::default())
}

/// Runs plugin `P` over `input` with the given framing.
pub fn run_framed<P: Source>(input: &[u8], framing: Framing) -> Result<Report, ManifestError> {
    Runner::new(Native::<P>::new())?.run(
        input,
        &RunOptions {
            framing: Some(framing),
            ..RunOptions::default()
        },
    )
}
