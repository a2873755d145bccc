//! Drives a [`Source`] over one batch: the loop that runs inside the component, and natively in tests.

use crate::ocsf::Event;
use crate::{BatchContext, Diagnostic, EventFormat, Framing, Source, Translation};

/// Why a record was not translated. Becomes a diagnostic and a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The input field or OCSF attribute concerned.
    pub path: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl Reject {
    /// A rejection with a reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Reject {
            path: None,
            reason: reason.into(),
        }
    }

    /// A rejection about one input field or attribute.
    pub fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Reject {
            path: Some(path.into()),
            reason: reason.into(),
        }
    }
}

/// Where a plugin writes the OCSF records of the record being translated.
pub struct Output<'a> {
    context: &'a BatchContext,
    carry: Option<Vec<u8>>,
    translation: Translation,
    record: u32,
}

impl Output<'_> {
    /// Emits one OCSF record for the current input record.
    pub fn emit<E: Event>(&mut self, event: &E) {
        let events = &mut self.translation.events;
        let start = events.len();
        events.extend_from_slice(&[0; 4]);
        event.write_row(events);
        // The row's length goes before it (see `row::split_rows`).
        let len = (events.len() - start - 4) as u32;
        events[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.translation.origins.push(self.record);
    }

    /// Milliseconds since the Unix epoch when the gateway received the batch.
    pub fn received_ms(&self) -> i64 {
        self.context.received_ms
    }

    /// The configured source name.
    pub fn source(&self) -> &str {
        &self.context.source
    }

    /// The framing the host used.
    pub fn framing(&self) -> Framing {
        self.context.framing
    }

    /// The per-stream state carried from earlier records (see WIT `batch-context.carry`).
    pub fn carry(&self) -> Option<&[u8]> {
        self.carry.as_deref()
    }

    /// Replaces the per-stream state handed to later records and batches of this stream.
    pub fn set_carry(&mut self, carry: Option<Vec<u8>>) {
        self.carry = carry;
    }
}

/// Runs `P` over the records `data[ends[i-1]..ends[i]]` of one batch.
pub fn translate_batch<P: Source>(
    context: &BatchContext,
    data: &[u8],
    ends: &[u32],
) -> Translation {
    let mut out = Output {
        context,
        carry: context.carry.clone(),
        translation: Translation {
            // Rows are about 1.2x (CloudTrail) to 6x (VPC flow) their input: room for the
            // larger without growing (each growth copies the whole buffer).
            events: Vec::with_capacity(data.len() * 2 + ends.len() * 640),
            format: EventFormat::Rows,
            ..Translation::default()
        },
        record: 0,
    };
    let mut start = 0usize;
    for (i, &end) in ends.iter().enumerate() {
        let end = (end as usize).min(data.len());
        let record = &data[start.min(end)..end];
        start = end;
        out.record = i as u32;
        let events_before = out.translation.events.len();
        let origins_before = out.translation.origins.len();
        if let Err(reject) = P::translate(record, &mut out) {
            // A rejected record emits nothing, even what it emitted before failing.
            out.translation.events.truncate(events_before);
            out.translation.origins.truncate(origins_before);
            out.translation.diagnostics.push(Diagnostic {
                record: i as u32,
                path: reject.path,
                reason: reject.reason,
            });
        }
    }
    out.translation.carry = out.carry;
    out.translation
}
