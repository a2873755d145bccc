//! Plain Rust mirrors of the WIT types, shared by the guest adapter, the native harness and the host.

use crate::ocsf::OCSF_VERSION;
use crate::SDK_VERSION;

/// How the host splits raw input into records (WIT `framing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// One JSON document per line.
    JsonLines,
    /// A JSON array of records, or an object whose `Records` member is that array.
    JsonRecords,
    /// One record per text line.
    TextLines,
    /// One syslog message per line.
    Syslog,
}

impl Framing {
    /// Every framing, in WIT order.
    pub const ALL: [Framing; 4] = [
        Framing::JsonLines,
        Framing::JsonRecords,
        Framing::TextLines,
        Framing::Syslog,
    ];

    /// The WIT name, e.g. `json-lines`.
    pub fn name(self) -> &'static str {
        match self {
            Framing::JsonLines => "json-lines",
            Framing::JsonRecords => "json-records",
            Framing::TextLines => "text-lines",
            Framing::Syslog => "syslog",
        }
    }

    /// The framing with this WIT name.
    pub fn from_name(name: &str) -> Option<Framing> {
        Framing::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// One OCSF class a plugin emits and the attribute paths it may set in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassDeclaration {
    /// The OCSF `class_uid`.
    pub class_uid: u32,
    /// Dotted attribute paths; an object path allows everything beneath it.
    pub attributes: Vec<String>,
}

/// What a plugin says about itself (WIT `manifest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Short machine name, `[a-z0-9-]+`.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// Vendor of the logged product.
    pub vendor: String,
    /// The logged product.
    pub product: String,
    /// One sentence on what the plugin translates.
    pub description: String,
    /// The SDK version the plugin was built with.
    pub sdk_version: String,
    /// The OCSF version of the emitted records.
    pub ocsf_version: String,
    /// Accepted framings, the default first.
    pub framings: Vec<Framing>,
    /// The classes the plugin emits.
    pub classes: Vec<ClassDeclaration>,
}

impl Manifest {
    /// A manifest for the OCSF version of this SDK; add framings and classes with the builders.
    pub fn new(name: &str, version: &str) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            vendor: String::new(),
            product: String::new(),
            description: String::new(),
            sdk_version: SDK_VERSION.into(),
            ocsf_version: OCSF_VERSION.into(),
            framings: Vec::new(),
            classes: Vec::new(),
        }
    }

    /// Sets vendor and product.
    pub fn product(mut self, vendor: &str, product: &str) -> Self {
        self.vendor = vendor.into();
        self.product = product.into();
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.into();
        self
    }

    /// Adds an accepted framing; the first added is the default.
    pub fn framing(mut self, framing: Framing) -> Self {
        self.framings.push(framing);
        self
    }

    /// Declares a class whose attribute paths are `shared` (the ones every class of the plugin
    /// sets) followed by the class's `own`.
    pub fn class_sharing(self, class_uid: u32, shared: &[&str], own: &[&str]) -> Self {
        let paths: Vec<&str> = shared.iter().chain(own).copied().collect();
        self.class(class_uid, &paths)
    }

    /// Declares a class and the attribute paths the plugin may set in it.
    pub fn class(mut self, class_uid: u32, attributes: &[&str]) -> Self {
        self.classes.push(ClassDeclaration {
            class_uid,
            attributes: attributes.iter().map(|a| a.to_string()).collect(),
        });
        self
    }
}

/// What the host says about a batch (WIT `batch-context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchContext {
    /// Milliseconds since the Unix epoch when the batch was received.
    pub received_ms: i64,
    /// The configured source name.
    pub source: String,
    /// The framing used for this batch.
    pub framing: Framing,
    /// The carry returned with the previous batch of the same stream.
    pub carry: Option<Vec<u8>>,
}

/// Why one input record produced no OCSF record (WIT `diagnostic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Index of the record in its batch.
    pub record: u32,
    /// The attribute path or input field concerned.
    pub path: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// How a translation's `events` hold its OCSF records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventFormat {
    /// JSON, one object per line, each followed by `\n` (interface 0.1).
    #[default]
    JsonLines,
    /// Rows ([`crate::row`]), each preceded by its length (interface 0.2, what this SDK emits).
    Rows,
}

/// The result of one batch (WIT `translation`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translation {
    /// OCSF records, in `format`.
    pub events: Vec<u8>,
    /// How `events` holds them: set by the interface version the plugin exports.
    pub format: EventFormat,
    /// The input record index of each record of `events`.
    pub origins: Vec<u32>,
    /// Rejected input records.
    pub diagnostics: Vec<Diagnostic>,
    /// State for the next batch of the same stream.
    pub carry: Option<Vec<u8>>,
}
