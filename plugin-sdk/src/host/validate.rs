//! Validates OCSF records against the compiled schema and against what their plugin declared.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

mod plan;
use plan::Plan;

use super::columns::{keeps_object, Layout, Slot, Table, MAX_OBJECT_DEPTH};
use crate::input::Key;
use crate::row::{Malformed, RowReader, RowWrite, Tag};

use crate::ocsf::time::{format_rfc3339_ms, parse_rfc3339_ms};
use crate::ClassDeclaration;

/// The compiled OCSF 1.1.0 schema, vendored with its licence note in `plugin-sdk/schema/`.
pub const SCHEMA_1_1_0: &str = include_str!("../../schema/ocsf-schema-1.1.0.json");

/// A word-at-a-time multiply-fold hash. The validator's maps are keyed by attribute names and
/// paths from the schema, which a record can only look up, never add to, so SipHash's flooding
/// resistance buys nothing here, and it was most of the cost of each lookup; FNV-1a, used before
/// this, spent a multiply per byte.
#[derive(Default)]
pub(super) struct WordHash(u64);

impl WordHash {
    fn mix(&mut self, word: u64) {
        let product = u128::from(self.0 ^ word) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for WordHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.mix(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        }
        let rest = words.remainder();
        // The length goes into the last word, so that "a" and "a\0" differ.
        let last = rest
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        self.mix(last ^ ((rest.len() as u64) << 56));
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHash>>;

/// One broken rule at one attribute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path of the attribute, with array indexes, e.g. `observables[2].type_id`.
    pub path: String,
    /// The rule broken, e.g. `required attribute is missing`.
    pub rule: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            if self.path.is_empty() {
                "<record>"
            } else {
                &self.path
            },
            self.rule
        )
    }
}

/// What the lake writer needs of a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Valid {
    /// The record's `class_uid`.
    pub class_uid: u32,
    /// The record's `time`, epoch milliseconds.
    pub time: i64,
}

/// The OCSF schema, ready to validate records.
#[derive(Debug)]
pub struct Schema {
    version: String,
    pub(super) classes: FastMap<u32, Definition>,
    /// The object definitions, by [`ObjectId`].
    objects: Vec<Definition>,
    /// The profiles the schema defines; a record's are a bit set over these positions.
    profiles: Vec<String>,
}

#[derive(Debug)]
pub(super) struct Definition {
    name: String,
    caption: String,
    category_uid: i64,
    pub(super) attributes: FastMap<String, Attribute>,
    /// The attributes by [`Attribute::index`] (their names sorted), for rows, which name members
    /// by index.
    pub(super) by_index: Vec<(String, Attribute)>,
    /// The enum attribute of each companion string (`status` -> `status_id`).
    pub(super) enum_of_sibling: FastMap<String, String>,
    /// The attributes that are required, always or with their profile, with their indexes.
    required: Vec<(String, usize, Requirement)>,
    /// Constraints on groups of attributes, with their indexes (`usize::MAX`: not an
    /// attribute).
    at_least_one: Vec<(String, usize)>,
    just_one: Vec<(String, usize)>,
    /// `required` and the constraints as attribute sets, for the check of an object that meets
    /// them all (the usual case) in a few word operations; the lists above name what is missing.
    demands: Demands,
}

/// What a definition demands of an object's attributes, as sets over their indexes.
#[derive(Debug, Default)]
struct Demands {
    /// Always required.
    required: Present,
    /// Required with a profile: its bit in a record's profile set, and the attribute.
    by_profile: Vec<(u64, usize)>,
    /// The `at_least_one` and `just_one` groups, when the definition has them.
    at_least_one: Option<Present>,
    just_one: Option<Present>,
}

impl Demands {
    fn new(
        required: &[(String, usize, Requirement)],
        at_least_one: &[(String, usize)],
        just_one: &[(String, usize)],
    ) -> Demands {
        let set = |group: &[(String, usize)]| {
            let mut set = Present::default();
            for (_, index) in group.iter().filter(|(_, i)| *i < MAX_ATTRIBUTES) {
                set.set(*index);
            }
            set
        };
        let mut demands = Demands {
            at_least_one: (!at_least_one.is_empty()).then(|| set(at_least_one)),
            just_one: (!just_one.is_empty()).then(|| set(just_one)),
            ..Demands::default()
        };
        for (_, index, requirement) in required {
            match requirement {
                Requirement::Required => demands.required.set(*index),
                Requirement::RequiredByProfile(bit) => demands.by_profile.push((*bit, *index)),
                Requirement::Optional => {}
            }
        }
        demands
    }

    /// Whether an object with the attributes `present`, in a record with `profiles`, meets
    /// every demand.
    fn met_by(&self, present: &Present, profiles: u64) -> bool {
        present.contains(&self.required)
            && self
                .by_profile
                .iter()
                .all(|(bit, index)| profiles & bit == 0 || present.has(*index))
            && self
                .at_least_one
                .as_ref()
                .is_none_or(|group| present.meets(group))
            && self
                .just_one
                .as_ref()
                .is_none_or(|group| present.meets_once(group))
    }
}

/// The `datetime_t` values a row may hold as epoch milliseconds: the years 0 to 9999, which
/// RFC 3339 can write.
const DATETIME_MS: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

/// The most attributes one class or object may have (OCSF 1.1.0's largest has about 100).
const MAX_ATTRIBUTES: usize = 256;

/// An enum's values with their captions, sorted by value; shared by the schema and the lake
/// layouts that fill in captions.
#[derive(Debug, Clone)]
pub struct EnumCaptions(std::sync::Arc<[(i64, Box<str>)]>);

impl EnumCaptions {
    /// The caption of enum value `id`, if the enum defines it.
    pub fn of(&self, id: i64) -> Option<&str> {
        let at = self.0.binary_search_by_key(&id, |(v, _)| *v).ok()?;
        Some(&self.0[at].1)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Attribute {
    /// The attribute's position in its definition, below [`MAX_ATTRIBUTES`].
    pub(super) index: usize,
    pub(super) kind: Kind,
    pub(super) is_array: bool,
    requirement: Requirement,
    /// Integer enum values, sorted, when the attribute is an enum.
    values: Option<Box<[i64]>>,
    /// The caption of each of `values`.
    captions: Option<EnumCaptions>,
    /// The companion `*_name` attribute of an enum.
    pub(super) sibling: Option<String>,
    /// What the record-level rules read of this attribute's values.
    role: Role,
}

/// What the walks check a value of an attribute against.
#[derive(Clone, Copy)]
struct Rule<'r> {
    kind: Kind,
    role: Role,
    /// The values of an enum.
    values: Option<&'r [i64]>,
}

impl Attribute {
    /// A scalar enum's values with their captions, when it has a companion caption attribute.
    pub(super) fn captions(&self) -> Option<EnumCaptions> {
        self.sibling.as_ref().filter(|_| !self.is_array)?;
        self.captions.clone()
    }

    /// The caption of enum value `id`, if the attribute is an enum that defines it.
    pub(super) fn caption(&self, id: i64) -> Option<&str> {
        self.captions.as_ref()?.of(id)
    }

    fn rule(&self) -> Rule<'_> {
        Rule {
            kind: self.kind,
            role: self.role,
            values: self.values.as_deref(),
        }
    }
}

/// Attributes whose values the record-level rules compare, noted as the walk checks them, so
/// that no member is read twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Role {
    #[default]
    None,
    /// A class's `activity_id`, `type_uid`, `category_uid` and `time`.
    ActivityId,
    TypeUid,
    CategoryUid,
    Time,
    /// `metadata.profiles`: which profiles the record claims.
    Profiles,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Requirement {
    Required,
    /// Required only when the record lists the attribute's profile in `metadata.profiles`:
    /// its bit in a record's set (none, when the schema does not define the profile).
    RequiredByProfile(u64),
    Optional,
}

/// An object definition's position in its [`Schema`]: what an attribute of an object type
/// names, so that a walk reaches the object's definition without a lookup by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ObjectId(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Object(ObjectId),
    AnyObject,
    /// `unmapped`: a free-form object the lake stores as a map of strings.
    Unmapped,
    Json,
    String {
        max_len: Option<usize>,
    },
    Ip,
    Subnet,
    Datetime,
    Integer,
    Port,
    Long,
    Float,
    Boolean,
}

/// The schema of OCSF 1.1.0, parsed once per process.
pub fn schema_1_1_0() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::parse(SCHEMA_1_1_0).expect("the vendored OCSF schema parses"))
}

impl Schema {
    /// Parses a compiled schema (the `/export/schema` layout, see `plugin-sdk/schema/`).
    pub fn parse(text: &str) -> Result<Schema, String> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("schema is not JSON: {e}"))?;
        let types = doc["types"].as_object().ok_or("schema has no types")?;
        let object_docs: Vec<(&String, &Value)> = doc["objects"]
            .as_object()
            .ok_or("schema has no objects")?
            .iter()
            .collect();
        let object_ids: FastMap<String, ObjectId> = object_docs
            .iter()
            .enumerate()
            .map(|(i, (name, _))| ((*name).clone(), ObjectId(i as u32)))
            .collect();
        let profiles: Vec<String> = doc["profiles"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        if profiles.len() > 64 {
            return Err(format!(
                "schema has {} profiles, more than the validator's 64",
                profiles.len()
            ));
        }
        let mut classes = FastMap::default();
        for (name, def) in doc["classes"].as_object().ok_or("schema has no classes")? {
            if name == "base_event" {
                continue;
            }
            let uid = def["uid"]
                .as_u64()
                .ok_or_else(|| format!("class {name} has no uid"))?;
            classes.insert(
                uid as u32,
                Definition::parse(name, def, types, &object_ids, &profiles)?,
            );
        }
        let mut objects = object_docs
            .iter()
            .map(|(name, def)| Definition::parse(name, def, types, &object_ids, &profiles))
            .collect::<Result<Vec<_>, String>>()?;
        for def in classes.values_mut() {
            for (name, role) in [
                ("activity_id", Role::ActivityId),
                ("type_uid", Role::TypeUid),
                ("category_uid", Role::CategoryUid),
                ("time", Role::Time),
            ] {
                if let Some(attr) = def.attributes.get_mut(name) {
                    attr.role = role;
                }
            }
        }
        if let Some(attr) = object_ids
            .get("metadata")
            .and_then(|id| objects[id.0 as usize].attributes.get_mut("profiles"))
        {
            attr.role = Role::Profiles;
        }
        for def in classes.values_mut().chain(objects.iter_mut()) {
            let mut by_index: Vec<(String, Attribute)> = def
                .attributes
                .iter()
                .map(|(n, a)| (n.clone(), a.clone()))
                .collect();
            by_index.sort_by_key(|(_, a)| a.index);
            def.by_index = by_index;
        }
        Ok(Schema {
            version: doc["version"].as_str().unwrap_or_default().to_string(),
            classes,
            objects,
            profiles,
        })
    }

    pub(super) fn object(&self, id: ObjectId) -> &Definition {
        &self.objects[id.0 as usize]
    }

    /// The bit of profile `name` in a record's set of profiles, if the schema defines it.
    fn profile_bit(&self, name: &str) -> Option<u64> {
        let position = self.profiles.iter().position(|p| p == name)?;
        Some(1 << position)
    }

    /// The OCSF version, e.g. `1.1.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The name of a class, e.g. `api_activity` for 6003.
    pub fn class_name(&self, class_uid: u32) -> Option<&str> {
        self.classes.get(&class_uid).map(|c| c.name.as_str())
    }

    /// The caption of a class, e.g. `API Activity` for 6003.
    pub fn class_caption(&self, class_uid: u32) -> Option<&str> {
        self.classes.get(&class_uid).map(|c| c.caption.as_str())
    }

    /// Checks that every declared path names an attribute of its class.
    pub fn check_declaration(&self, declaration: &ClassDeclaration) -> Result<(), String> {
        let class = self.classes.get(&declaration.class_uid).ok_or_else(|| {
            format!(
                "class_uid {} is not an OCSF {} class",
                declaration.class_uid, self.version
            )
        })?;
        for path in &declaration.attributes {
            let mut def = class;
            let segments: Vec<&str> = path.split('.').collect();
            for (i, segment) in segments.iter().enumerate() {
                let attr = def.attributes.get(*segment).ok_or_else(|| {
                    format!("declared attribute `{path}` of class {}: `{segment}` is not an attribute of `{}`", class.name, def.name)
                })?;
                match &attr.kind {
                    Kind::Object(o) => def = self.object(*o),
                    _ if i + 1 < segments.len() => {
                        if !matches!(attr.kind, Kind::AnyObject | Kind::Json | Kind::Unmapped) {
                            return Err(format!(
                                "declared attribute `{path}`: `{segment}` is not an object"
                            ));
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Validates one record given as a value (a convenience over [`Schema::validate_json`]).
    pub fn validate(&self, record: &Value, declarations: &Declarations) -> Vec<Violation> {
        self.validate_json(&record.to_string(), declarations)
            .err()
            .unwrap_or_default()
    }

    /// Validates one record as JSON text, without building a value tree: each object is cut
    /// into its members and each member checked where it lies. Returns the record's
    /// `class_uid` and `time` when it is valid. `declarations` are the plugin's
    /// ([`Declarations`]).
    pub fn validate_json(
        &self,
        text: &str,
        declarations: &Declarations,
    ) -> Result<Valid, Vec<Violation>> {
        self.check(text, declarations, None).0
    }

    /// Validates one record like [`Schema::validate_json`] and writes it into `row` as a row
    /// ([`crate::row`]), in the same pass: what a plugin of interface 0.2 would have emitted. `row` is cleared first; after a violation its content means nothing. A value
    /// the table has no column for (an object whose members all lie beyond the lake's depth) is
    /// a violation here.
    pub fn validate_row(
        &self,
        text: &str,
        declarations: &Declarations,
        row: &mut Vec<u8>,
    ) -> Result<Valid, Vec<Violation>> {
        row.clear();
        let (outcome, back) = self.check(text, declarations, Some(std::mem::take(row)));
        *row = back.unwrap_or_default();
        outcome
    }

    /// Validates one record given as a row ([`crate::row`]), as plugins of interface 0.2 emit
    /// them, against the same rules as [`Schema::validate_json`]. A valid row is the record's
    /// row as it is, for the lake.
    pub fn validate_row_bytes(
        &self,
        row: &[u8],
        declarations: &Declarations,
    ) -> Result<Valid, Vec<Violation>> {
        self.check_row_bytes(row, declarations, None)
    }

    /// [`Schema::validate_row_bytes`] for one row of many: an object that repeats, byte for
    /// byte, the one at the same path of an earlier row that `repeats` remembers (checked then
    /// without a violation, with the same profiles) is passed over after one comparison.
    /// `repeats` serves one `declarations` only: its places are those of their plans.
    pub(in crate::host) fn validate_rows_bytes(
        &self,
        row: &[u8],
        declarations: &Declarations,
        repeats: &mut Repeats,
    ) -> Result<Valid, Vec<Violation>> {
        self.check_row_bytes(row, declarations, Some(repeats))
    }

    /// The row walk of both: with nothing to remember for a lone row (WAL recovery checks
    /// each logged row so), no place is set up for it.
    fn check_row_bytes(
        &self,
        row: &[u8],
        declarations: &Declarations,
        repeats: Option<&mut Repeats>,
    ) -> Result<Valid, Vec<Violation>> {
        let malformed = || {
            failure(
                "",
                "plugin emitted a row that does not follow the row format".into(),
            )
        };
        let mut reader = RowReader::new(row);
        let Ok(uid) = reader.class() else {
            return malformed();
        };
        let mut root = Root {
            schema: self,
            declarations,
            outcome: None,
            row: None,
        };
        let mut class = match root.class(Some(i64::from(uid))) {
            Ok(class) => class,
            Err(outcome) => return outcome,
        };
        let plan = &declarations.plans[&uid];
        class.walk.repeats = repeats.map(|r| r.of_class(uid, plan.nodes()));
        let walked = class
            .walk
            .row_members(
                &mut reader,
                plan,
                plan.root(),
                class.def,
                &mut class.present,
            )
            .and_then(|()| {
                if reader.is_done() {
                    Ok(())
                } else {
                    Err(Malformed)
                }
            });
        match walked {
            Ok(()) => class.finish(&mut None),
            Err(Malformed) => malformed(),
        }
    }

    /// A record's row as the JSON an OCSF reader expects, for people and for the dead-letter
    /// area (`lakegate plugin test --output`, records of 0.2 plugins in golden tests).
    pub fn render_row(&self, row: &[u8]) -> Result<String, Malformed> {
        let mut reader = RowReader::new(row);
        let def = self.classes.get(&reader.class()?).ok_or(Malformed)?;
        let mut out = Vec::with_capacity(row.len() * 2);
        self.render_object(&mut reader, def, &mut out, 0)?;
        if !reader.is_done() {
            return Err(Malformed);
        }
        String::from_utf8(out).map_err(|_| Malformed)
    }

    fn render_object(
        &self,
        r: &mut RowReader<'_>,
        def: &Definition,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), Malformed> {
        if depth > MAX_ROW_NESTING {
            return Err(Malformed);
        }
        out.push(b'{');
        let mut first = true;
        let mut present = Present::default();
        // Enum members with a companion caption, and their values.
        let mut enums = Vec::new();
        while let Some(index) = r.member()? {
            let (name, attr) = def.by_index.get(index).ok_or(Malformed)?;
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            json_string(name, out);
            out.push(b':');
            let tag = r.tag()?;
            if tag == Tag::Int && attr.sibling.is_some() {
                enums.push((attr, r.clone().int()?));
            }
            present.set(index);
            self.render_value(r, tag, attr, out, depth + 1)?;
        }
        // A caption the row leaves out is the enum value's, as the lake stores it.
        for (attr, id) in enums {
            let sibling = attr.sibling.as_deref().unwrap_or_default();
            let absent = def
                .attributes
                .get(sibling)
                .is_some_and(|s| !present.has(s.index));
            if let Some(caption) = attr.caption(id).filter(|_| absent) {
                out.push(b',');
                json_string(sibling, out);
                out.push(b':');
                json_string(caption, out);
            }
        }
        out.push(b'}');
        Ok(())
    }

    fn render_value(
        &self,
        r: &mut RowReader<'_>,
        tag: Tag,
        attr: &Attribute,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), Malformed> {
        if depth > MAX_ROW_NESTING {
            return Err(Malformed);
        }
        match tag {
            Tag::Null => out.extend_from_slice(b"null"),
            Tag::Bool => out.extend_from_slice(if r.boolean()? { b"true" } else { b"false" }),
            Tag::Int if attr.kind == Kind::Datetime => {
                json_string(&format_rfc3339_ms(r.int()?), out)
            }
            Tag::Int => out.extend_from_slice(itoa::Buffer::new().format(r.int()?).as_bytes()),
            Tag::Float => serde_json::to_writer(&mut *out, &r.float()?).map_err(|_| Malformed)?,
            Tag::String => json_string(r.text()?, out),
            Tag::Json => out.extend_from_slice(r.text()?.as_bytes()),
            Tag::Object => {
                let Kind::Object(object) = &attr.kind else {
                    return Err(Malformed);
                };
                self.render_object(r, self.object(*object), out, depth + 1)?;
            }
            Tag::Array => {
                out.push(b'[');
                for i in 0..r.count()? {
                    if i > 0 {
                        out.push(b',');
                    }
                    let tag = r.tag()?;
                    self.render_value(r, tag, attr, out, depth + 1)?;
                }
                out.push(b']');
            }
            Tag::Map => {
                out.push(b'{');
                for i in 0..r.count()? {
                    if i > 0 {
                        out.push(b',');
                    }
                    json_string(r.text()?, out);
                    out.push(b':');
                    json_string(r.text()?, out);
                }
                out.push(b'}');
            }
        }
        Ok(())
    }

    /// The walk behind both: with `row`, it writes the record's row there and hands it back.
    fn check(
        &self,
        text: &str,
        declarations: &Declarations,
        row: Option<Vec<u8>>,
    ) -> (Result<Valid, Vec<Violation>>, Option<Vec<u8>>) {
        let mut root = Root {
            schema: self,
            declarations,
            outcome: None,
            row,
        };
        let mut parser = serde_json::Deserializer::from_str(text);
        let parsed = parser
            .deserialize_any(&mut root)
            .and_then(|()| parser.end());
        let outcome = match (parsed, root.outcome) {
            (Err(e), _) if e.is_data() => {
                failure("", "an OCSF record must be a JSON object".into())
            }
            (Err(e), _) => failure("", format!("plugin emitted invalid JSON: {e}")),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => failure("", "an OCSF record must be a JSON object".into()),
        };
        (outcome, root.row)
    }
}

/// Appends `s` as a JSON string.
fn json_string(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
}

/// An integer JSON value.
fn int_of(raw: &RawValue) -> Option<i64> {
    serde_json::from_str(raw.get()).ok()
}

fn failure(path: &str, rule: String) -> Result<Valid, Vec<Violation>> {
    Err(vec![Violation {
        path: path.into(),
        rule,
    }])
}

fn no_class_uid() -> Result<Valid, Vec<Violation>> {
    failure(
        "class_uid",
        "required attribute is missing or not an integer".into(),
    )
}

/// The record itself: an object of the class its `class_uid` names, checked in one pass.
/// Members before `class_uid` wait as raw text until the class is known (the SDK writes
/// `class_uid` first); the values the root rules compare are noted by the walk ([`Role`]).
struct Root<'s> {
    schema: &'s Schema,
    declarations: &'s Declarations,
    outcome: Option<Result<Valid, Vec<Violation>>>,
    /// The row being written, when one is asked for; the class's walk has it meanwhile.
    row: Option<Vec<u8>>,
}

/// The class a record names, once its `class_uid` has been read.
struct Class<'s> {
    uid: u32,
    def: &'s Definition,
    /// What the plugin declared for the class.
    declared: &'s Declared,
    /// Where its members go in the row, when one is written.
    layout: Option<&'s Layout>,
    walk: Walk<'s>,
    present: Present,
}

impl<'s> Class<'s> {
    /// Checks a root member from its raw text.
    fn member_raw<E: de::Error>(&mut self, name: &str, raw: &RawValue) -> Result<(), E> {
        self.walk
            .entry(
                self.def,
                name,
                Scope::Within(self.declared),
                self.layout,
                &mut self.present,
                |seed| seed.deserialize(&mut serde_json::Deserializer::from_str(raw.get())),
            )
            .map_err(E::custom)
    }
}

impl<'s> Root<'s> {
    /// The class `class_uid` names, or why it cannot be checked.
    fn class(
        &mut self,
        class_uid: Option<i64>,
    ) -> Result<Class<'s>, Result<Valid, Vec<Violation>>> {
        let schema = self.schema;
        let Some(class_uid) = class_uid else {
            return Err(no_class_uid());
        };
        let Some((uid, def)) = u32::try_from(class_uid)
            .ok()
            .and_then(|uid| Some((uid, schema.classes.get(&uid)?)))
        else {
            return Err(failure(
                "class_uid",
                format!("{class_uid} is not an OCSF {} class", schema.version),
            ));
        };
        let Some(declared) = self.declarations.get(uid) else {
            return Err(failure(
                "class_uid",
                format!(
                    "the plugin did not declare class {class_uid} ({})",
                    def.name
                ),
            ));
        };
        let mut row = self.row.take();
        if let Some(row) = &mut row {
            row.class(uid);
        }
        Ok(Class {
            uid,
            def,
            declared,
            layout: row.as_ref().and(self.declarations.layout(uid)),
            walk: Walk {
                schema,
                profiles: 0,
                root: RootValues::default(),
                violations: Vec::new(),
                path: Vec::with_capacity(2 * MAX_OBJECT_DEPTH),
                // Only the JSON walk tracks object types (the row walk's plan has them): it
                // allocates on its first object.
                objects: Vec::new(),
                row,
                repeats: None,
            },
            present: Present::default(),
        })
    }
}

/// The root members the record-level rules compare, as the walk found them (a value of the
/// wrong type is not noted; the walk reports it).
#[derive(Default)]
struct RootValues {
    activity_id: Option<i64>,
    type_uid: Option<i64>,
    category_uid: Option<i64>,
    time: Option<i64>,
}

impl<'de> Visitor<'de> for &mut Root<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OCSF record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut class: Option<Class<'_>> = None;
        let mut waiting: Vec<(Key<'de>, &'de RawValue)> = Vec::new();
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            if let Some(class) = class.as_mut() {
                let scope = Scope::Within(class.declared);
                class.walk.entry(
                    class.def,
                    &name,
                    scope,
                    class.layout,
                    &mut class.present,
                    |seed| map.next_value_seed(seed),
                )?;
                continue;
            }
            let raw: &'de RawValue = map.next_value()?;
            if &*name != "class_uid" {
                waiting.push((Key(name), raw));
                continue;
            }
            match self.class(int_of(raw)) {
                Ok(mut found) => {
                    waiting.push((Key(name), raw));
                    for (Key(name), raw) in waiting.drain(..) {
                        found.member_raw(&name, raw)?;
                    }
                    class = Some(found);
                }
                Err(outcome) => {
                    self.outcome = Some(outcome);
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    return Ok(());
                }
            }
        }
        self.outcome = Some(match class {
            Some(class) => class.finish(&mut self.row),
            None => no_class_uid(),
        });
        Ok(())
    }
}

impl Class<'_> {
    /// The record-level rules, once every member has been read; hands the row back.
    fn finish(mut self, row: &mut Option<Vec<u8>>) -> Result<Valid, Vec<Violation>> {
        let walk = &mut self.walk;
        walk.finish(self.def, &self.present);
        if let Some(mut written) = walk.row.take() {
            written.end();
            *row = Some(written);
        }
        let values = std::mem::take(&mut walk.root);
        let class_uid = i64::from(self.uid);
        if let (Some(activity), Some(type_uid)) = (values.activity_id, values.type_uid) {
            if type_uid != class_uid * 100 + activity {
                walk.violation_at(
                    "type_uid".into(),
                    format!(
                        "must be class_uid * 100 + activity_id = {}, found {type_uid}",
                        class_uid * 100 + activity
                    ),
                );
            }
        }
        if let Some(category) = values.category_uid {
            if category != self.def.category_uid {
                walk.violation_at(
                    "category_uid".into(),
                    format!(
                        "class {} belongs to category {}, found {category}",
                        self.def.name, self.def.category_uid
                    ),
                );
            }
        }
        if walk.violations.is_empty() {
            // `time` is required and checked to be a 64-bit integer by the walk.
            Ok(Valid {
                class_uid: self.uid,
                time: values.time.unwrap_or_default(),
            })
        } else {
            Err(std::mem::take(&mut walk.violations))
        }
    }
}

/// A plugin's declared attribute paths, per class, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct Declarations {
    classes: FastMap<u32, Declared>,
    /// Each declared class's lake columns and their layout.
    tables: FastMap<u32, Table>,
    /// Each declared class compiled for checking rows.
    plans: FastMap<u32, plan::Plan>,
}

/// The paths of one class as a tree: the root's children are the attributes the plugin may
/// set at the top level (declared ones, containers of declared ones, the attributes the SDK
/// derives, and the companion strings of declared enums), and so on down. Children are indexed
/// by the attribute's position in its definition, so the validator, walking the tree along
/// with the record, finds a member's entry without another lookup by name.
#[derive(Debug, Clone, Default)]
pub(super) struct Declared {
    /// Declared itself: everything beneath is allowed too. Otherwise only a container of
    /// declared paths, whose members are checked one by one.
    covered: bool,
    /// By [`Attribute::index`] of the object's definition; empty for a covered node.
    children: Vec<Option<Declared>>,
}

impl Declared {
    /// Adds the path `segments` below this node, an object of `def`. A segment that is not an
    /// attribute ends the path (nothing can match it), one below a value that is not an OCSF
    /// object covers that value (its content is not checked member by member).
    fn insert<'p>(
        &mut self,
        schema: &Schema,
        def: &Definition,
        mut segments: impl Iterator<Item = &'p str>,
    ) {
        let Some(name) = segments.next() else {
            self.covered = true;
            return;
        };
        let Some(attr) = def.attributes.get(name) else {
            return;
        };
        let child = self.child(attr.index);
        match &attr.kind {
            Kind::Object(o) => child.insert(schema, schema.object(*o), segments),
            _ => child.covered = true,
        }
    }

    /// The child for attribute `index`, added (empty) if it is not there.
    fn child(&mut self, index: usize) -> &mut Declared {
        if self.children.len() <= index {
            self.children.resize_with(index + 1, || None);
        }
        self.children[index].get_or_insert_with(Declared::default)
    }

    /// Allows the companion string of every enum allowed below this node (`status` with
    /// `status_id`), which is declared with it.
    fn add_siblings(&mut self, schema: &Schema, def: &Definition) {
        for (sibling, enum_name) in &def.enum_of_sibling {
            let (Some(s), Some(e)) = (def.attributes.get(sibling), def.attributes.get(enum_name))
            else {
                continue;
            };
            if self.children.get(e.index).is_some_and(Option::is_some) {
                self.child(s.index).covered = true;
            }
        }
        for attr in def.attributes.values() {
            if let (Kind::Object(o), Some(Some(child))) =
                (&attr.kind, self.children.get_mut(attr.index))
            {
                if !child.covered {
                    child.add_siblings(schema, schema.object(*o));
                }
            }
        }
    }
}

/// What may be set below an attribute the walk has reached.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope<'a> {
    /// Anything: the attribute, or one above it, is declared.
    Covered,
    /// The members `Declared` lists.
    Within(&'a Declared),
}

impl Declarations {
    /// Indexes a manifest's class declarations against `schema`. A class the schema does not
    /// have is left out: its records are refused as undeclared.
    pub fn new(schema: &Schema, classes: &[ClassDeclaration]) -> Self {
        let classes = classes
            .iter()
            .filter_map(|c| {
                let def = schema.classes.get(&c.class_uid)?;
                let mut root = Declared::default();
                let paths = c.attributes.iter().map(String::as_str);
                for path in paths.chain(ALWAYS_ALLOWED.iter().copied()) {
                    root.insert(schema, def, path.split('.'));
                }
                root.add_siblings(schema, def);
                Some((c.class_uid, root))
            })
            .collect();
        let mut declarations = Declarations {
            classes,
            tables: FastMap::default(),
            plans: FastMap::default(),
        };
        declarations.tables = declarations
            .classes
            .keys()
            .filter_map(|&uid| Some((uid, schema.lake_table(uid, &declarations)?)))
            .collect();
        declarations.plans = declarations
            .classes
            .iter()
            .map(|(&uid, declared)| {
                let def = &schema.classes[&uid];
                let plan = plan::Plan::new(schema, def, declared, declarations.layout(uid));
                (uid, plan)
            })
            .collect();
        declarations
    }

    pub(super) fn get(&self, class_uid: u32) -> Option<&Declared> {
        self.classes.get(&class_uid)
    }

    /// The lake table of a declared class: its columns, the OCSF schema cut down to the
    /// declared attribute paths and sorted by name at every level ([`super::columns`]), which
    /// the lake writer turns into the class's one fixed Arrow schema; and their layout.
    pub fn table(&self, class_uid: u32) -> Option<&Table> {
        self.tables.get(&class_uid)
    }

    fn layout(&self, class_uid: u32) -> Option<&Layout> {
        Some(&self.table(class_uid)?.layout)
    }
}

/// Attributes every record carries that the SDK derives, so no plugin declares them.
const ALWAYS_ALLOWED: &[&str] = &[
    "class_uid",
    "class_name",
    "category_uid",
    "category_name",
    "type_uid",
    "type_name",
    "activity_id",
    "activity_name",
];

impl<'a> Scope<'a> {
    /// What may be set below member `attr` of an object in this scope, or `None` if the member
    /// itself may not be set.
    pub(super) fn member(self, attr: &Attribute) -> Option<Scope<'a>> {
        let Scope::Within(node) = self else {
            return Some(Scope::Covered);
        };
        let child = node.children.get(attr.index)?.as_ref()?;
        Some(if child.covered {
            Scope::Covered
        } else {
            Scope::Within(child)
        })
    }
}

struct Walk<'a> {
    schema: &'a Schema,
    /// The profiles `metadata.profiles` names, by position in [`Schema::profiles`].
    profiles: u64,
    root: RootValues,
    violations: Vec<Violation>,
    /// The current attribute path, for messages: the schema's names and array indexes, joined
    /// into text only when a rule is broken.
    path: Vec<Segment<'a>>,
    /// Object types on the current path, for the lake's depth and cycle cut.
    objects: Vec<ObjectId>,
    /// The record as a row of its lake table, when one is asked for.
    row: Option<Vec<u8>>,
    /// The row walk's last checked object at each node of the class's plan.
    repeats: Option<&'a mut [Repeat]>,
}

/// What [`Schema::validate_rows_bytes`] remembers of the rows it checked: for each class, the
/// last object checked without a violation at each node of its plan. A stream's rows repeat
/// whole objects (every VPC flow record has the same `metadata`, most the same `cloud`), and
/// row bytes are self-delimiting, so an object whose bytes begin with the remembered ones *is*
/// the remembered object.
#[derive(Debug, Default)]
pub(in crate::host) struct Repeats {
    classes: Vec<(u32, Vec<Repeat>)>,
}

impl Repeats {
    fn of_class(&mut self, uid: u32, nodes: usize) -> &mut [Repeat] {
        let at = match self.classes.iter().position(|(c, _)| *c == uid) {
            Some(at) => at,
            None => {
                self.classes.push((uid, vec![Repeat::default(); nodes]));
                self.classes.len() - 1
            }
        };
        &mut self.classes[at].1
    }
}

/// One object as last checked without a violation.
#[derive(Debug, Default, Clone)]
pub(super) struct Repeat {
    /// Its members and end, as in the row.
    bytes: Vec<u8>,
    /// The record's profiles before the object was checked (the checks of attributes required
    /// by a profile read them) and after (`metadata.profiles` adds to them).
    profiles: (u64, u64),
    /// Objects compared at this place, and how many repeated the one before.
    tries: u32,
    hits: u32,
}

impl Repeat {
    /// Whether comparing still pays: an object that changes from row to row (an endpoint, an
    /// event's own `metadata` with its `uid`) would cost a comparison and a copy each time.
    /// Judged once, after [`REPEAT_TRIAL`] objects: a quarter must have repeated.
    fn pays(&self) -> bool {
        self.tries < REPEAT_TRIAL || u64::from(self.hits) * 4 >= u64::from(self.tries)
    }
}

/// How many objects at one place [`Repeat::pays`] looks at before it judges.
const REPEAT_TRIAL: u32 = 32;

/// The largest object a place remembers, in row bytes: what the remembered objects of one
/// runner can hold is bounded by this times the nodes of its plans.
const REMEMBERED_BYTES: usize = 4096;

/// One step of an attribute path.
#[derive(Clone, Copy)]
enum Segment<'a> {
    Name(&'a str),
    /// The attribute of a definition at an index, named when a message needs it.
    Attribute(&'a Definition, usize),
    Index(usize),
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl<'a> Walk<'a> {
    /// Records a broken rule at the current path. Cold, like the other reports: kept out of
    /// the checks' fast paths, which then save fewer registers on every call.
    #[cold]
    fn violation(&mut self, rule: impl Into<String>) {
        self.violation_at(self.path_text(), rule);
    }

    /// The current path as text: `a.b[2].c`.
    fn path_text(&self) -> String {
        use std::fmt::Write;
        let mut text = String::new();
        for segment in &self.path {
            let name = match segment {
                Segment::Name(name) => name,
                Segment::Attribute(def, index) => def.by_index[*index].0.as_str(),
                Segment::Index(i) => {
                    let _ = write!(text, "[{i}]");
                    continue;
                }
            };
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(name);
        }
        text
    }

    #[cold]
    fn violation_at(&mut self, path: String, rule: impl Into<String>) {
        self.violations.push(Violation {
            path,
            rule: rule.into(),
        });
    }

    /// Checks one object at the current path as it is parsed, its members against `scope`.
    /// The path is a reused stack of borrowed names, so a valid record costs no allocation or
    /// copy for it.
    fn object<'de, M: MapAccess<'de>>(
        &mut self,
        def: &'a Definition,
        mut map: M,
        scope: Scope<'a>,
        layout: Option<&'a Layout>,
    ) -> Result<(), M::Error> {
        let mut present = Present::default();
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            self.entry(def, &name, scope, layout, &mut present, |seed| {
                map.next_value_seed(seed)
            })?;
        }
        self.finish(def, &present);
        if let Some(row) = &mut self.row {
            row.end();
        }
        Ok(())
    }

    /// Writes a value into the row, if one is being written and the value has a column.
    fn put(&mut self, slot: Option<&Slot>, write: impl FnOnce(&mut Vec<u8>)) {
        if let (Some(row), Some(_)) = (&mut self.row, slot) {
            write(row);
        }
    }

    /// Starts an array value in the row (see [`Walk::put`]); returns where its count goes.
    fn array(&mut self, slot: Option<&Slot>) -> Option<usize> {
        slot.and(self.row.as_mut()).map(RowWrite::array)
    }

    fn set_count(&mut self, at: Option<usize>, count: usize) {
        if let (Some(row), Some(at)) = (&mut self.row, at) {
            row.set_count(at, count);
        }
    }

    /// Reads `unmapped`, writing it into the row as a map of texts: string values as they are,
    /// other values as JSON text, null values left out.
    fn unmapped<'de, M: MapAccess<'de>>(
        &mut self,
        mut map: M,
        slot: Option<&Slot>,
    ) -> Result<(), M::Error> {
        let at = slot.and(self.row.as_mut()).map(RowWrite::map);
        let mut count = 0;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            let text = value.get();
            if text == "null" {
                continue;
            }
            let Some(row) = self.row.as_mut().filter(|_| at.is_some()) else {
                continue;
            };
            row.text(&key);
            if text.starts_with('"') {
                let Key(s) = serde_json::from_str(text).map_err(de::Error::custom)?;
                row.text(&s);
            } else {
                row.text(text);
            }
            count += 1;
        }
        self.set_count(at, count);
        Ok(())
    }

    /// Checks member `name` of an object of `def`, whose value `read` parses with the seed it
    /// is given, and notes it in `present` unless it is null.
    fn entry<E>(
        &mut self,
        def: &'a Definition,
        name: &str,
        scope: Scope<'a>,
        layout: Option<&'a Layout>,
        present: &mut Present,
        read: impl FnOnce(Seed<'_, 'a>) -> Result<bool, E>,
    ) -> Result<(), E> {
        let mark = self.path.len();
        let (attr, is_set) = match self.member(def, name, scope) {
            Some((attr, Some(scope))) => {
                let slot = layout.and_then(|l| l.slot(attr.index));
                let start = self.row.as_ref().map(Vec::len);
                if let (Some(row), Some(_)) = (&mut self.row, slot) {
                    row.member(attr.index as u16);
                }
                let is_set = read(Seed::Check(Member {
                    walk: self,
                    attr,
                    scope,
                    slot,
                }))?;
                let unplaced = match (&mut self.row, start) {
                    (Some(row), Some(start)) if !is_set => {
                        row.truncate(start);
                        false
                    }
                    (Some(_), _) => slot.is_none(),
                    _ => false,
                };
                if unplaced {
                    self.violation(
                        "the lake's table has no column for this value (an object with nothing within the lake's depth): put it in `unmapped`",
                    );
                }
                (Some(attr), is_set)
            }
            // Undeclared: reported, and still counted for the constraints.
            Some((attr, None)) => (Some(attr), read(Seed::Skip)?),
            None => (None, read(Seed::Skip)?),
        };
        if let Some(attr) = attr.filter(|_| is_set) {
            if present.has(attr.index) {
                self.violation("appears more than once in its object");
            }
            present.set(attr.index);
        }
        self.path.truncate(mark);
        Ok(())
    }

    /// The checks on a whole object of `def` once its members are known.
    fn finish(&mut self, def: &Definition, present: &Present) {
        if def.demands.met_by(present, self.profiles) {
            return;
        }
        for unmet in def.unmet(present, self.profiles) {
            match unmet {
                Unmet::Missing(name) => self.violation_at(
                    join(&self.path_text(), name),
                    "required attribute is missing",
                ),
                Unmet::AtLeastOne => self.violation(format!(
                    "at least one of {} is required",
                    names(&def.at_least_one)
                )),
                Unmet::JustOne => self.violation(format!(
                    "exactly one of {} is required",
                    names(&def.just_one)
                )),
            }
        }
    }

    /// The attribute member `name` of `def` names, if it is one (the path then points at it),
    /// and, if the plugin declared it, what is declared beneath it.
    fn member(
        &mut self,
        def: &'a Definition,
        name: &str,
        scope: Scope<'a>,
    ) -> Option<(&'a Attribute, Option<Scope<'a>>)> {
        let Some((known, attr)) = def.attributes.get_key_value(name) else {
            let rule = format!(
                "`{name}` is not an attribute of OCSF {} `{}`",
                self.schema.version, def.name
            );
            self.violation_at(join(&self.path_text(), name), rule);
            return None;
        };
        self.path.push(Segment::Name(known));
        let Some(scope) = scope.member(attr) else {
            self.violation("the plugin did not declare this attribute in its manifest");
            return Some((attr, None));
        };
        Some((attr, Some(scope)))
    }

    /// Checks the members of one object of `def` in a row (see [`Schema::validate_row_bytes`])
    /// against its `node` of the class's plan, noting them in `present`. A structural error
    /// ends the walk.
    fn row_members(
        &mut self,
        r: &mut RowReader<'a>,
        plan: &'a Plan,
        node: &'a plan::Node,
        def: &'a Definition,
        present: &mut Present,
    ) -> Result<(), Malformed> {
        // One place in the path for the member being checked, set for each (not pushed and
        // popped: a member costs a store).
        let depth = self.path.len();
        self.path.push(Segment::Index(0));
        while let Some(index) = r.member()? {
            let tag = r.tag()?;
            let Some(entry) = node.entries.get(index) else {
                let rule = format!(
                    "member {index} is not an attribute of OCSF {} `{}`",
                    self.schema.version, def.name
                );
                self.path.truncate(depth);
                self.violation(rule);
                self.path.push(Segment::Index(0));
                skip(r, tag)?;
                continue;
            };
            self.path[depth] = Segment::Attribute(def, index);
            let is_set = tag != Tag::Null;
            if !entry.is_declared() {
                self.violation("the plugin did not declare this attribute in its manifest");
                skip(r, tag)?;
            } else {
                if is_set && !entry.has_column() {
                    self.violation(
                        "the lake's table has no column for this value (an object with nothing within the lake's depth): put it in `unmapped`",
                    );
                }
                if entry.is_array() && is_set {
                    self.row_array(r, tag, plan, entry)?;
                } else {
                    self.row_value(r, tag, plan, entry, false)?;
                }
            }
            if is_set {
                if present.has(index) {
                    self.violation("appears more than once in its object");
                }
                present.set(index);
            }
        }
        self.path.truncate(depth);
        Ok(())
    }

    fn row_array(
        &mut self,
        r: &mut RowReader<'a>,
        tag: Tag,
        plan: &'a Plan,
        entry: &'a plan::Entry,
    ) -> Result<(), Malformed> {
        if tag != Tag::Array {
            self.violation("must be an array");
            return skip(r, tag);
        }
        let depth = self.path.len();
        self.path.push(Segment::Index(0));
        for i in 0..r.count()? {
            self.path[depth] = Segment::Index(i);
            let tag = r.tag()?;
            self.row_value(r, tag, plan, entry, true)?;
        }
        self.path.truncate(depth);
        Ok(())
    }

    /// Checks one value of the member `entry` (an array's item when `item`).
    fn row_value(
        &mut self,
        r: &mut RowReader<'a>,
        tag: Tag,
        plan: &'a Plan,
        entry: &'a plan::Entry,
        item: bool,
    ) -> Result<(), Malformed> {
        let rule = Rule {
            kind: entry.kind,
            role: entry.role,
            values: plan.values(entry),
        };
        match (tag, entry.kind) {
            // A null member is absent; a null item is one only `json_t` arrays may hold.
            (Tag::Null, Kind::Json) => {}
            (Tag::Null, _) if !item => {}
            (Tag::Bool, Kind::Boolean) => {
                r.boolean()?;
            }
            (Tag::Int, Kind::Integer | Kind::Port | Kind::Long | Kind::Float) => {
                let v = r.int()?;
                self.integer(rule, v);
            }
            (Tag::Float, Kind::Float) => {
                r.float()?;
            }
            (Tag::Int, Kind::Datetime) => {
                let ms = r.int()?;
                if !DATETIME_MS.contains(&ms) {
                    self.violation(format!(
                        "{ms} ms since 1970 is not a date between the years 0 and 9999"
                    ));
                }
            }
            (Tag::String, Kind::String { .. } | Kind::Ip | Kind::Subnet | Kind::Datetime) => {
                let s = r.text()?;
                self.string(rule, s);
            }
            (Tag::Json, Kind::Json | Kind::AnyObject) => {
                let text = r.text()?;
                match serde_json::from_str::<&RawValue>(text) {
                    Ok(_) if entry.kind == Kind::Json || text.starts_with('{') => {}
                    Ok(_) => self.violation(format!("expected {}", entry.kind.describe())),
                    Err(e) => self.violation(format!("JSON text that is not JSON: {e}")),
                }
            }
            (Tag::Object, Kind::Object(o)) => {
                let def = self.schema.object(o);
                let Some(node) = plan.child(entry) else {
                    self.cut(def);
                    return skip(r, tag);
                };
                let slot = entry.node();
                if let Some(len) = self.repeated(slot, r.rest()) {
                    return r.pass(len);
                }
                let (start, violations, profiles) =
                    (r.rest(), self.violations.len(), self.profiles);
                let mut present = Present::default();
                self.row_members(r, plan, node, def, &mut present)?;
                self.finish(def, &present);
                if self.violations.len() == violations {
                    let checked = &start[..start.len() - r.rest().len()];
                    self.remember(slot, checked, profiles);
                }
            }
            (Tag::Map, Kind::Unmapped) => {
                for _ in 0..r.count()? {
                    r.text()?;
                    r.text()?;
                }
            }
            (tag, kind) => {
                self.violation(format!(
                    "expected {}, found {}",
                    kind.describe(),
                    tag.describe()
                ));
                skip(r, tag)?;
            }
        }
        Ok(())
    }

    /// The length of the object at the start of `rest` when it repeats the one remembered at
    /// plan node `slot` (the profiles it leaves are then the remembered ones).
    fn repeated(&mut self, slot: usize, rest: &[u8]) -> Option<usize> {
        let repeat = self.repeats.as_deref_mut()?.get_mut(slot)?;
        if !repeat.pays() {
            return None;
        }
        repeat.tries = repeat.tries.saturating_add(1);
        let hit = !repeat.bytes.is_empty()
            && repeat.profiles.0 == self.profiles
            && rest.starts_with(&repeat.bytes);
        hit.then(|| {
            repeat.hits = repeat.hits.saturating_add(1);
            self.profiles = repeat.profiles.1;
            repeat.bytes.len()
        })
    }

    /// Remembers `object`, just checked without a violation from `profiles`, at plan node `slot`.
    fn remember(&mut self, slot: usize, object: &[u8], profiles: u64) {
        let after = self.profiles;
        let repeats = self.repeats.as_deref_mut();
        if let Some(repeat) = repeats.and_then(|r| r.get_mut(slot)).filter(|r| r.pays()) {
            if object.len() > REMEMBERED_BYTES {
                // Large objects (JSON text, long lists) rarely repeat whole, and each place
                // would keep its largest for as long as the plugin runs.
                repeat.bytes = Vec::new();
                return;
            }
            repeat.bytes.clear();
            repeat.bytes.extend_from_slice(object);
            repeat.profiles = (profiles, after);
        }
    }

    /// Records that the object at the current path, of `def`, lies beyond the lake's cut
    /// ([`keeps_object`]).
    #[cold]
    fn cut(&mut self, def: &Definition) {
        self.violation(format!(
            "the lake stores objects at most {} levels deep and no object inside one of its own type (`{}`): put this value in `unmapped`",
            MAX_OBJECT_DEPTH - 1,
            def.name
        ));
    }

    /// Records that the value at the current path is not of `kind`.
    #[cold]
    fn mismatch(&mut self, kind: &Kind, found: &Value) {
        self.violation(format!(
            "expected {}, found {}",
            kind.describe(),
            describe_json(found)
        ));
    }

    /// Checks an integer against `rule`'s type and enum values.
    fn integer(&mut self, rule: Rule<'_>, n: i64) {
        let ok = match rule.kind {
            Kind::Integer => i32::try_from(n).is_ok(),
            Kind::Port => (0..=65535).contains(&n),
            Kind::Long | Kind::Float | Kind::Json => true,
            _ => false,
        };
        if !ok {
            return self.mismatch(&rule.kind, &Value::from(n));
        }
        let noted = match rule.role {
            Role::ActivityId => Some(&mut self.root.activity_id),
            Role::TypeUid => Some(&mut self.root.type_uid),
            Role::CategoryUid => Some(&mut self.root.category_uid),
            Role::Time => Some(&mut self.root.time),
            Role::None | Role::Profiles => None,
        };
        if let Some(noted) = noted {
            *noted = Some(n);
        }
        if let Some(allowed) = rule.values.filter(|v| v.binary_search(&n).is_err()) {
            self.violation(format!(
                "{n} is not a defined enum value (allowed: {allowed:?})"
            ));
        }
    }

    /// Checks a string against `rule`'s type.
    fn string(&mut self, rule: Rule<'_>, s: &str) {
        let ok = match rule.kind {
            Kind::String { max_len } => {
                if let Some(max) = max_len.filter(|m| s.len() > *m) {
                    self.violation(format!(
                        "string of {} bytes exceeds the type's maximum of {max}",
                        s.len()
                    ));
                }
                true
            }
            Kind::Json => true,
            kind => parses_as(kind, s),
        };
        if rule.role == Role::Profiles {
            self.profiles |= self.schema.profile_bit(s).unwrap_or(0);
        }
        if !ok {
            self.mismatch(&rule.kind, &Value::from(s));
        }
    }
}

/// Whether `s` is a string of `kind` that has a syntax (an address, a subnet, a datetime).
/// Out of line: inlined, its parsers made every string check save and restore registers.
#[inline(never)]
fn parses_as(kind: Kind, s: &str) -> bool {
    match kind {
        Kind::Ip => s.parse::<std::net::IpAddr>().is_ok(),
        Kind::Subnet => s.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::IpAddr>().is_ok_and(|ip| {
                bits.parse::<u8>()
                    .is_ok_and(|b| b <= if ip.is_ipv4() { 32 } else { 128 })
            })
        }),
        Kind::Datetime => parse_rfc3339_ms(s).is_some(),
        _ => false,
    }
}

/// Which attributes of one object are present and not null, by [`Attribute::index`].
#[derive(Debug, Default)]
struct Present([u64; MAX_ATTRIBUTES / 64]);

impl Present {
    fn set(&mut self, index: usize) {
        self.0[index / 64] |= 1 << (index % 64);
    }

    fn has(&self, index: usize) -> bool {
        self.0
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// Whether every attribute of `other` is here.
    fn contains(&self, other: &Present) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & b == *b)
    }

    /// Whether any attribute of `other` is here.
    fn meets(&self, other: &Present) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    /// Whether exactly one attribute of `other` is here (without counting bits: the target's
    /// baseline has no instruction for it).
    fn meets_once(&self, other: &Present) -> bool {
        let common = self.0.iter().zip(&other.0).map(|(a, b)| a & b);
        let mut words = common.filter(|w| *w != 0);
        words.next().is_some_and(|w| w.is_power_of_two()) && words.next().is_none()
    }
}

fn names(group: &[(String, usize)]) -> String {
    group
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One member's value: null (absent), an array of `attr` values, or one value. Yields whether
/// the member is present.
struct Member<'w, 'a> {
    walk: &'w mut Walk<'a>,
    attr: &'a Attribute,
    scope: Scope<'a>,
    /// The attribute's column, when a row is written and it has one.
    slot: Option<&'a Slot>,
}

impl Member<'_, '_> {
    /// Whether the attribute's values are taken as JSON text (`json_t`, free-form objects).
    fn takes_text(&self) -> bool {
        matches!(self.attr.kind, Kind::Json | Kind::AnyObject)
    }
}

impl<'de> DeserializeSeed<'de> for Member<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        if self.takes_text() && !self.attr.is_array {
            let raw = <&RawValue>::deserialize(d)?;
            if raw.get() == "null" {
                return Ok(false);
            }
            One(self).text(raw);
            return Ok(true);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Member<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OCSF attribute value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        if !self.attr.is_array {
            return One(self).visit_seq(seq).map(|()| true);
        }
        let mark = self.walk.path.len();
        let at = self.walk.array(self.slot);
        let mut i = 0usize;
        loop {
            self.walk.path.push(Segment::Index(i));
            let more = seq
                .next_element_seed(One(Member {
                    walk: &mut *self.walk,
                    attr: self.attr,
                    scope: self.scope,
                    slot: self.slot,
                }))?
                .is_some();
            self.walk.path.truncate(mark);
            if !more {
                self.walk.set_count(at, i);
                return Ok(true);
            }
            i += 1;
        }
    }

    // Anything but null and an array is one value, or not an array where one belongs.
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.one(|one| one.visit_bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.one(|one| one.visit_i64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.one(|one| one.visit_u64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.one(|one| one.visit_f64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.one(|one| one.visit_str(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        if self.attr.is_array {
            self.walk.violation("must be an array");
            return ignore_map(map).map(|()| true);
        }
        One(self).visit_map(map).map(|()| true)
    }
}

impl Member<'_, '_> {
    fn one<E>(self, check: impl FnOnce(One<'_, '_>) -> Result<(), E>) -> Result<bool, E> {
        if self.attr.is_array {
            self.walk.violation("must be an array");
        } else {
            check(One(self))?;
        }
        Ok(true)
    }
}

/// One value of an attribute (an array's element, or the member itself).
struct One<'w, 'a>(Member<'w, 'a>);

impl One<'_, '_> {
    /// Writes a value into the row if the attribute is of `kind`; records a mismatch with the
    /// value `found` builds otherwise.
    fn write_if<E>(
        self,
        kind: &Kind,
        found: impl FnOnce() -> Value,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), E> {
        let Member {
            walk, attr, slot, ..
        } = self.0;
        if attr.kind == *kind {
            walk.put(slot, write);
        } else {
            walk.mismatch(&attr.kind, &found());
        }
        Ok(())
    }

    /// Checks a value of an attribute that takes JSON text and writes the text into the row.
    fn text(self, raw: &RawValue) {
        let Member {
            walk, attr, slot, ..
        } = self.0;
        let text = raw.get();
        if attr.kind == Kind::AnyObject && !text.starts_with('{') {
            let found = serde_json::from_str(text).unwrap_or(Value::Null);
            return walk.mismatch(&attr.kind, &found);
        }
        walk.put(slot, |row| match text {
            "null" => row.null(),
            text => row.json(text),
        });
    }
}

impl<'de> DeserializeSeed<'de> for One<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.0.takes_text() {
            let raw = <&RawValue>::deserialize(d)?;
            self.text(raw);
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for One<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OCSF attribute value")
    }

    // JSON text (`json_t`, free-form objects) never reaches the visitor: `deserialize` takes it
    // whole. So null, a boolean, a float or an array is a mismatch unless the type is that.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        let Member { walk, attr, .. } = self.0;
        walk.mismatch(&attr.kind, &Value::Null);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.write_if(&Kind::Boolean, || Value::Bool(v), |row| row.boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        let Member {
            walk, attr, slot, ..
        } = self.0;
        walk.integer(attr.rule(), v);
        match attr.kind {
            // Out of range was reported by `integer`: the row is not used.
            Kind::Integer | Kind::Port | Kind::Long => walk.put(slot, |row| row.int(v)),
            Kind::Float => walk.put(slot, |row| row.float(v as f64)),
            _ => {}
        }
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        if let Ok(n) = i64::try_from(v) {
            return self.visit_i64(n);
        }
        self.write_if(&Kind::Float, || Value::from(v), |row| row.float(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.write_if(&Kind::Float, || Value::from(v), |row| row.float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let Member {
            walk, attr, slot, ..
        } = self.0;
        // A valid datetime goes into the row as its epoch milliseconds.
        let datetime = (attr.kind == Kind::Datetime)
            .then(|| parse_rfc3339_ms(v))
            .flatten();
        match datetime {
            Some(ms) => walk.put(slot, |row| row.int(ms)),
            None => {
                walk.string(attr.rule(), v);
                walk.put(slot, |row| row.string(v));
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let Member { walk, attr, .. } = self.0;
        let found = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        walk.mismatch(&attr.kind, &found);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let Member {
            walk,
            attr,
            scope,
            slot,
        } = self.0;
        match &attr.kind {
            Kind::Object(o) => {
                let schema: &Schema = walk.schema;
                let def = schema.object(*o);
                if !keeps_object(&walk.objects, *o) {
                    walk.cut(def);
                    return ignore_map(map);
                }
                walk.objects.push(*o);
                walk.put(slot, RowWrite::object);
                walk.object(def, map, scope, slot.map(|s| &s.nested))?;
                walk.objects.pop();
            }
            Kind::Unmapped => walk.unmapped(map, slot)?,
            _ => {
                let found = map_into_value(map)?;
                walk.mismatch(&attr.kind, &found);
            }
        }
        Ok(())
    }
}

/// How [`Walk::entry`] reads a member's value: checked, or (not an attribute, or not declared)
/// only skipped. Either tells whether the value is anything but null.
enum Seed<'w, 'a> {
    Check(Member<'w, 'a>),
    Skip,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        match self {
            Seed::Check(member) => member.deserialize(d),
            Seed::Skip => d.deserialize_any(NotNull),
        }
    }
}

/// Skips a value, telling whether it is anything but null.
struct NotNull;

impl<'de> Visitor<'de> for NotNull {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| true)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        IgnoredAny.visit_map(map).map(|_| true)
    }
}

/// How deep values may nest in a row that is skipped or rendered: far beyond what the lake
/// stores, and bounded, so that a row from a plugin cannot exhaust the host's stack.
const MAX_ROW_NESTING: usize = 64;

/// Reads past a value of a row.
fn skip(r: &mut RowReader<'_>, tag: Tag) -> Result<(), Malformed> {
    skip_nested(r, tag, 0)
}

fn skip_nested(r: &mut RowReader<'_>, tag: Tag, depth: usize) -> Result<(), Malformed> {
    if depth > MAX_ROW_NESTING {
        return Err(Malformed);
    }
    match tag {
        Tag::Null => {}
        Tag::Bool => {
            r.boolean()?;
        }
        Tag::Int => {
            r.int()?;
        }
        Tag::Float => {
            r.float()?;
        }
        Tag::String | Tag::Json => {
            r.text()?;
        }
        Tag::Object => {
            while r.member()?.is_some() {
                let tag = r.tag()?;
                skip_nested(r, tag, depth + 1)?;
            }
        }
        Tag::Array => {
            for _ in 0..r.count()? {
                let tag = r.tag()?;
                skip_nested(r, tag, depth + 1)?;
            }
        }
        Tag::Map => {
            for _ in 0..r.count()? {
                r.text()?;
                r.text()?;
            }
        }
    }
    Ok(())
}

/// Consumes the rest of an object.
fn ignore_map<'de, A: MapAccess<'de>>(map: A) -> Result<(), A::Error> {
    IgnoredAny::deserialize(MapAccessDeserializer::new(map)).map(drop)
}

/// Consumes the rest of an object, keeping it for a message.
fn map_into_value<'de, A: MapAccess<'de>>(map: A) -> Result<Value, A::Error> {
    Value::deserialize(MapAccessDeserializer::new(map))
}

impl Kind {
    fn describe(&self) -> &'static str {
        match self {
            Kind::Object(_) | Kind::AnyObject => "an object",
            Kind::Unmapped => "an object of source fields",
            Kind::Json => "JSON",
            Kind::String { .. } => "a string",
            Kind::Ip => "an IP address string",
            Kind::Subnet => "a CIDR subnet string",
            Kind::Datetime => "an RFC 3339 datetime string",
            Kind::Integer => "a 32-bit integer",
            Kind::Port => "a port number 0-65535",
            Kind::Long => "a 64-bit integer",
            Kind::Float => "a number",
            Kind::Boolean => "a boolean",
        }
    }
}

/// The JSON type of a value, for messages: `object`, `array`, `string`, ...
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn describe_json(v: &Value) -> String {
    let text = v.to_string();
    let short: String = text.chars().take(40).collect();
    let ellipsis = if short.len() < text.len() { "..." } else { "" };
    format!("{} {short}{ellipsis}", kind(v))
}

/// A demand of its definition that an object does not meet.
#[derive(Debug, PartialEq, Eq)]
enum Unmet<'d> {
    /// This required attribute is missing.
    Missing(&'d str),
    /// None of the `at_least_one` group is there.
    AtLeastOne,
    /// Not exactly one of the `just_one` group is there.
    JustOne,
}

impl Definition {
    /// The demands an object with the attributes `present`, in a record with `profiles`, does
    /// not meet, attribute by attribute (what [`Demands::met_by`] answers at once).
    fn unmet(&self, present: &Present, profiles: u64) -> Vec<Unmet<'_>> {
        let mut unmet: Vec<Unmet<'_>> = self
            .required
            .iter()
            .filter(|(_, index, requirement)| {
                let required = match requirement {
                    Requirement::RequiredByProfile(bit) => profiles & bit != 0,
                    _ => true,
                };
                required && !present.has(*index)
            })
            .map(|(name, ..)| Unmet::Missing(name))
            .collect();
        let count =
            |group: &[(String, usize)]| group.iter().filter(|(_, i)| present.has(*i)).count();
        if !self.at_least_one.is_empty() && count(&self.at_least_one) == 0 {
            unmet.push(Unmet::AtLeastOne);
        }
        if !self.just_one.is_empty() && count(&self.just_one) != 1 {
            unmet.push(Unmet::JustOne);
        }
        unmet
    }

    fn parse(
        name: &str,
        def: &Value,
        types: &Map<String, Value>,
        objects: &FastMap<String, ObjectId>,
        profiles: &[String],
    ) -> Result<Definition, String> {
        let mut attributes = FastMap::default();
        let members = def["attributes"]
            .as_object()
            .ok_or_else(|| format!("{name} has no attributes"))?;
        if members.len() > MAX_ATTRIBUTES {
            return Err(format!(
                "{name} has {} attributes, more than the validator's {MAX_ATTRIBUTES}",
                members.len()
            ));
        }
        // An attribute's index is its position among the names in order: rows name members by
        // it, so it must not depend on the order of the schema file.
        let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (index, (attr_name, a)) in sorted.into_iter().enumerate() {
            let ty = a["type"]
                .as_str()
                .ok_or_else(|| format!("{name}.{attr_name} has no type"))?;
            let kind = match kind_of(ty, a, types, objects).map_err(|o| {
                format!(
                    "{name}.{attr_name} is of object type `{o}`, which the schema does not define"
                )
            })? {
                Kind::AnyObject if attr_name == "unmapped" => Kind::Unmapped,
                kind => kind,
            };
            let requirement = match (a["requirement"].as_str(), a["profile"].as_str()) {
                (Some("required"), None) => Requirement::Required,
                (Some("required"), Some(profile)) => Requirement::RequiredByProfile(
                    profiles
                        .iter()
                        .position(|p| p == profile)
                        .map_or(0, |i| 1 << i),
                ),
                _ => Requirement::Optional,
            };
            let enumerated: Option<Vec<(i64, Box<str>)>> = a["enum"]
                .as_object()
                .filter(|_| matches!(kind, Kind::Integer | Kind::Long))
                .map(|e| {
                    let mut values: Vec<(i64, Box<str>)> = e
                        .iter()
                        .filter_map(|(k, v)| {
                            let caption = v["caption"].as_str().unwrap_or(k);
                            Some((k.parse().ok()?, caption.into()))
                        })
                        .collect();
                    values.sort_unstable();
                    values
                });
            let values = enumerated
                .as_ref()
                .map(|e| e.iter().map(|(v, _)| *v).collect());
            let captions = enumerated.map(|e| EnumCaptions(e.into()));
            attributes.insert(
                attr_name.clone(),
                Attribute {
                    index,
                    kind,
                    is_array: a["is_array"].as_bool().unwrap_or(false),
                    requirement,
                    values,
                    captions,
                    sibling: a["sibling"].as_str().map(str::to_string),
                    role: Role::None,
                },
            );
        }
        let index_of = |name: &str| attributes.get(name).map_or(usize::MAX, |a| a.index);
        let list = |kind: &str| -> Vec<(String, usize)> {
            def["constraints"][kind]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(Value::as_str)
                        .map(|name| (name.to_string(), index_of(name)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut required: Vec<(String, usize, Requirement)> = attributes
            .iter()
            .filter(|(_, a)| a.requirement != Requirement::Optional)
            .map(|(n, a)| (n.clone(), a.index, a.requirement))
            .collect();
        required.sort();
        let at_least_one = list("at_least_one");
        let just_one = list("just_one");
        let demands = Demands::new(&required, &at_least_one, &just_one);
        Ok(Definition {
            name: name.to_string(),
            caption: def["caption"].as_str().unwrap_or(name).to_string(),
            category_uid: def["category_uid"].as_i64().unwrap_or(-1),
            enum_of_sibling: attributes
                .iter()
                .filter_map(|(name, a)| Some((a.sibling.clone()?, name.clone())))
                .collect(),
            attributes,
            by_index: Vec::new(),
            required,
            at_least_one,
            just_one,
            demands,
        })
    }
}

/// The kind of an attribute of type `ty`; an object type the schema does not define is the error.
fn kind_of(
    ty: &str,
    attr: &Value,
    types: &Map<String, Value>,
    objects: &FastMap<String, ObjectId>,
) -> Result<Kind, String> {
    Ok(match ty {
        "object_t" => match attr["object_type"].as_str() {
            Some("object") | None => Kind::AnyObject,
            Some(o) => Kind::Object(*objects.get(o).ok_or_else(|| o.to_string())?),
        },
        "json_t" => Kind::Json,
        "ip_t" => Kind::Ip,
        "subnet_t" => Kind::Subnet,
        "datetime_t" => Kind::Datetime,
        "integer_t" => Kind::Integer,
        "port_t" => Kind::Port,
        "long_t" | "timestamp_t" => Kind::Long,
        "float_t" => Kind::Float,
        "boolean_t" => Kind::Boolean,
        other => {
            let t = &types[other];
            match t["type"].as_str() {
                Some(base) if base != "string_t" && base != other => {
                    return kind_of(base, attr, types, objects)
                }
                _ => Kind::String {
                    max_len: t["max_len"].as_u64().map(|m| m as usize),
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn declarations(paths: &[&str]) -> Declarations {
        Declarations::new(
            schema_1_1_0(),
            &[ClassDeclaration {
                class_uid: 6003,
                attributes: paths.iter().map(|p| p.to_string()).collect(),
            }],
        )
    }

    fn valid() -> Value {
        json!({
            "class_uid": 6003, "category_uid": 6, "activity_id": 1, "type_uid": 600301, "severity_id": 1, "time": 1,
            "metadata": {"version": "1.1.0", "product": {"vendor_name": "v", "name": "p"}},
            "actor": {"user": {"name": "alice"}}, "api": {"operation": "op"}, "src_endpoint": {"ip": "192.0.2.1"},
        })
    }

    fn rules(record: &Value, paths: &[&str]) -> Vec<String> {
        schema_1_1_0()
            .validate(record, &declarations(paths))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Paths that let `valid()` through but for `src_endpoint`.
    const BASE_PATHS: &[&str] = &[
        "time",
        "severity_id",
        "metadata",
        "actor.user",
        "api.operation",
    ];

    #[test]
    fn demands_met_at_once_agree_with_the_attribute_by_attribute_check() {
        let schema = schema_1_1_0();
        let definitions = schema.classes.values().chain(schema.objects.iter());
        let (mut checked, mut unmet_seen, mut groups) = (0, 0, 0);
        for def in definitions {
            groups += usize::from(!def.at_least_one.is_empty() || !def.just_one.is_empty());
            // The members: each required attribute, each group member, and one optional one.
            let mut indexes: Vec<usize> = def.required.iter().map(|(_, i, _)| *i).collect();
            indexes.extend(
                def.at_least_one
                    .iter()
                    .chain(&def.just_one)
                    .map(|(_, i)| *i)
                    .filter(|i| *i < MAX_ATTRIBUTES),
            );
            indexes.extend(def.by_index.first().map(|(_, a)| a.index));
            indexes.sort_unstable();
            indexes.dedup();
            // Every set with one or two of them left out, and every one alone, under no
            // profile and under all.
            let mut sets = vec![indexes.clone(), Vec::new()];
            for (a, &left_out) in indexes.iter().enumerate() {
                sets.push(indexes.iter().copied().filter(|i| *i != left_out).collect());
                sets.push(vec![left_out]);
                for &also in &indexes[a + 1..] {
                    let kept = indexes.iter().copied();
                    sets.push(kept.filter(|i| *i != left_out && *i != also).collect());
                }
            }
            for set in &sets {
                let mut present = Present::default();
                for index in set {
                    present.set(*index);
                }
                for profiles in [0, u64::MAX] {
                    let unmet = def.unmet(&present, profiles);
                    assert_eq!(
                        def.demands.met_by(&present, profiles),
                        unmet.is_empty(),
                        "{}: {set:?} under profiles {profiles:x}: {unmet:?}",
                        def.name
                    );
                    checked += 1;
                    unmet_seen += usize::from(!unmet.is_empty());
                }
            }
        }
        assert!(groups > 0, "the schema has constraint groups");
        assert!(
            checked > 5_000 && unmet_seen > checked / 4,
            "{checked} {unmet_seen}"
        );
    }

    #[test]
    fn violations_name_their_path_with_array_indexes() {
        let mut r = valid();
        r["resources"] = json!([{"uid": "a"}, {"uid": 7, "colour": "red"}]);
        r["metadata"]["profiles"] = json!(["cloud", 3]);
        r["api"]["nope"] = json!(1);
        let paths = [BASE_PATHS, &["src_endpoint", "cloud", "resources.uid"]].concat();
        let mut found = rules(&r, &paths);
        found.sort();
        assert_eq!(
            found,
            [
                "api.nope: `nope` is not an attribute of OCSF 1.1.0 `api`",
                "cloud: required attribute is missing",
                "metadata.profiles[1]: expected a string, found number 3",
                "resources[1].colour: `colour` is not an attribute of OCSF 1.1.0 `resource_details`",
                "resources[1].uid: expected a string, found number 7",
            ]
        );
    }

    #[test]
    fn members_before_and_after_class_uid_are_checked_alike() {
        let schema = schema_1_1_0();
        let declared = declarations(BASE_PATHS);
        // The SDK writes `class_uid` first, so most members stream past once the class is
        // known; any other order keeps the earlier members as raw text until it is.
        let first = r#"{"class_uid":6003,"category_uid":6,"activity_id":1,"type_uid":600302,"time":"x","severity_id":1,"metadata":{"version":"1.1.0","product":{"vendor_name":"v","name":"p"},"profiles":["cloud"]},"actor":{"user":{"name":7}},"api":{"operation":"op"},"src_endpoint":{"ip":"192.0.2.1"}}"#;
        let last = r#"{"actor":{"user":{"name":7}},"api":{"operation":"op"},"src_endpoint":{"ip":"192.0.2.1"},"time":"x","severity_id":1,"metadata":{"version":"1.1.0","product":{"vendor_name":"v","name":"p"},"profiles":["cloud"]},"category_uid":6,"activity_id":1,"type_uid":600302,"class_uid":6003}"#;
        let rules = |text: &str| -> Vec<String> {
            let mut rules: Vec<String> = schema
                .validate_json(text, &declared)
                .expect_err("invalid")
                .iter()
                .map(ToString::to_string)
                .collect();
            rules.sort();
            rules
        };
        let expected = [
            "actor.user.name: expected a string, found number 7",
            "cloud: required attribute is missing",
            "src_endpoint: the plugin did not declare this attribute in its manifest",
            "time: expected a 64-bit integer, found string \"x\"",
            "type_uid: must be class_uid * 100 + activity_id = 600301, found 600302",
        ];
        assert_eq!(rules(first), expected);
        assert_eq!(rules(last), expected);
    }

    #[test]
    fn objects_the_lake_cannot_store_are_refused() {
        let paths = [
            "actor",
            "api",
            "src_endpoint",
            "metadata",
            "time",
            "severity_id",
        ];
        let mut r = valid();
        r["actor"]["process"] = json!({"pid": 7, "parent_process": {"pid": 1}});
        let found = rules(&r, &paths);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("actor.process.parent_process:")
                && found[0].contains("put this value in `unmapped`"),
            "{found:?}"
        );
        // Depth: actor > user > groups (objects 1-3) are stored; a fourth level is not.
        let mut r = valid();
        r["actor"]["user"]["groups"] = json!([{"name": "admins"}]);
        assert!(rules(&r, &paths).is_empty());
        r["actor"]["user"]["ldap_person"] = json!({"manager": {"name": "bob"}});
        let found = rules(&r, &paths);
        assert!(
            found[0].starts_with("actor.user.ldap_person.manager:"),
            "{found:?}"
        );
    }

    /// Validates `text` with and without a row; both must agree. Returns the sorted rules.
    fn both_ways(text: &str, declared: &Declarations) -> (Vec<String>, Vec<String>) {
        let schema = schema_1_1_0();
        let sorted = |outcome: Result<Valid, Vec<Violation>>| {
            let mut rules: Vec<String> = outcome
                .err()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect();
            rules.sort();
            rules
        };
        let mut row = vec![1, 2, 3];
        let json = sorted(schema.validate_json(text, declared));
        let with_row = sorted(schema.validate_row(text, declared, &mut row));
        (json, with_row)
    }

    #[test]
    fn rows_are_written_for_valid_records_with_the_same_verdicts() {
        let declared = declarations(ALL);
        let mut row = Vec::new();
        let outcome = schema_1_1_0().validate_row(&valid().to_string(), &declared, &mut row);
        assert_eq!(outcome.map(|v| v.time), Ok(1));
        assert_eq!(&row[row.len() - 2..], &crate::row::END.to_le_bytes());
        // A member twice is refused, with or without a row.
        let twice = valid()
            .to_string()
            .replacen("\"time\":1", "\"time\":1,\"time\":2", 1);
        let (json, with_row) = both_ways(&twice, &declared);
        assert_eq!(json, ["time: appears more than once in its object"]);
        assert_eq!(with_row, json);
        let (json, with_row) = both_ways(r#"{"class_uid":6003,"time":"x"}"#, &declared);
        assert!(json.len() > 3 && with_row == json, "{json:?}");
    }

    /// The row of a valid JSON record.
    fn row_of(record: &Value, declared: &Declarations) -> Vec<u8> {
        let mut row = Vec::new();
        schema_1_1_0()
            .validate_row(&record.to_string(), declared, &mut row)
            .unwrap_or_else(|v| panic!("{v:?}"));
        row
    }

    fn row_rules(row: &[u8], declared: &Declarations) -> Vec<String> {
        let mut rules: Vec<String> = schema_1_1_0()
            .validate_row_bytes(row, declared)
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        rules.sort();
        rules
    }

    #[test]
    fn objects_rows_repeat_are_judged_as_if_each_row_were_checked_alone() {
        use crate::row::RowWrite;
        let declared = declarations(ALL);
        let schema = schema_1_1_0();
        let mut claims_cloud = valid();
        claims_cloud["metadata"]["profiles"] = json!(["cloud"]);
        claims_cloud["cloud"] = json!({"provider": "AWS", "region": "eu-west-1"});
        let mut other_product = claims_cloud.clone();
        other_product["metadata"]["product"]["name"] = json!("q");
        // The same `metadata` (which claims the cloud profile) but no `cloud`, which the profile
        // requires: the profile must come along when `metadata` is passed over.
        let mut no_cloud = claims_cloud.clone();
        no_cloud.as_object_mut().unwrap().remove("cloud");
        let good = row_of(&claims_cloud, &declared);
        // `valid()`'s row with a `cloud` whose region is a number: refused each time it comes.
        let bad_cloud = {
            let plain = row_of(&valid(), &declared);
            let mut row = plain[..plain.len() - 2].to_vec();
            let index = |def: &Definition, name: &str| def.attributes[name].index as u16;
            let cloud = schema.objects.iter().find(|o| o.name == "cloud").unwrap();
            row.member(index(&schema.classes[&6003], "cloud"));
            row.object();
            row.member(index(cloud, "provider"));
            row.string("AWS");
            row.member(index(cloud, "region"));
            row.int(1);
            row.end();
            row.end();
            row
        };
        let rows = [
            good.clone(),
            good.clone(),
            row_of(&other_product, &declared),
            good.clone(),
            {
                // Invalid, so written by hand from the JSON walk's row.
                let mut row = Vec::new();
                let refused = schema.validate_row(&no_cloud.to_string(), &declared, &mut row);
                assert!(refused.is_err() && !row.is_empty());
                row
            },
            bad_cloud.clone(),
            bad_cloud,
            good[..good.len() - 3].to_vec(),
            good,
        ];
        let mut repeats = Repeats::default();
        let outcomes: Vec<_> = rows
            .iter()
            .map(|row| schema.validate_rows_bytes(row, &declared, &mut repeats))
            .collect();
        let alone: Vec<_> = rows
            .iter()
            .map(|row| schema.validate_row_bytes(row, &declared))
            .collect();
        assert_eq!(outcomes, alone);
        let rules = |i: usize| {
            outcomes[i]
                .as_ref()
                .err()
                .map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        assert_eq!(
            rules(4),
            Some(vec!["cloud: required attribute is missing".to_string()])
        );
        for i in [5, 6] {
            assert_eq!(
                rules(i),
                Some(vec![
                    "cloud.region: expected a string, found an integer".to_string()
                ])
            );
        }
        assert!(rules(7).is_some(), "a cut row is malformed");
        // And repeats were passed over: `metadata` and `cloud` of rows 1, 3 and 8 at least.
        let hits: u32 = repeats.classes[0].1.iter().map(|r| r.hits).sum();
        assert!(hits >= 6, "{hits} objects passed over");
    }

    #[test]
    fn an_object_that_changes_every_row_stops_being_compared() {
        let declared = declarations(ALL);
        let mut repeats = Repeats::default();
        for i in 0..40 {
            let mut record = valid();
            record["src_endpoint"]["ip"] = json!(format!("192.0.2.{i}"));
            let row = row_of(&record, &declared);
            let outcome = schema_1_1_0().validate_rows_bytes(&row, &declared, &mut repeats);
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        let mut places: Vec<(u32, u32)> = repeats.classes[0]
            .1
            .iter()
            .map(|r| (r.tries, r.hits))
            .filter(|&(tries, _)| tries > 0)
            .collect();
        places.sort();
        // `src_endpoint` judged after its trial; `metadata`, `actor` and `api` repeated from
        // the second row on, so that `metadata.product` and `actor.user` were compared once.
        assert_eq!(
            places,
            [
                (1, 0),
                (1, 0),
                (REPEAT_TRIAL, 0),
                (40, 39),
                (40, 39),
                (40, 39)
            ],
            "(objects compared, repeats) per place"
        );
        // An object larger than a place remembers is checked every time, and not kept.
        let mut big = valid();
        big["actor"]["user"]["name"] = json!("a".repeat(REMEMBERED_BYTES));
        let row = row_of(&big, &declared);
        let mut repeats = Repeats::default();
        for _ in 0..3 {
            let outcome = schema_1_1_0().validate_rows_bytes(&row, &declared, &mut repeats);
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        let kept: Vec<(u32, usize)> = repeats.classes[0]
            .1
            .iter()
            .filter(|r| r.tries > 0)
            .map(|r| (r.hits, r.bytes.len()))
            .collect();
        // `metadata`, `api` and `src_endpoint` repeated; `actor` and `actor.user` not kept.
        assert_eq!(
            kept.iter().filter(|(hits, _)| *hits == 2).count(),
            3,
            "{kept:?}"
        );
        assert!(
            kept.iter().all(|(_, len)| *len <= REMEMBERED_BYTES),
            "{kept:?}"
        );
        assert_eq!(
            kept.iter()
                .filter(|&&(hits, len)| hits == 0 && len == 0)
                .count(),
            2,
            "{kept:?}"
        );
    }

    #[test]
    fn a_row_validates_and_renders_as_the_record_it_came_from() {
        let declared = declarations(&[ALL, &["unmapped", "api.request"]].concat());
        let mut record = valid();
        record["unmapped"] = json!({"a.b": "c", "n": 7, "gone": null});
        record["api"]["request"] = json!({"uid": "r-1", "data": {"k": [1, "two", null]}});
        record["metadata"]["profiles"] = json!(["cloud"]);
        record["cloud"] = json!({"provider": "AWS"});
        let row = row_of(&record, &declared);
        assert_eq!(
            schema_1_1_0().validate_row_bytes(&row, &declared),
            Ok(Valid {
                class_uid: 6003,
                time: 1
            })
        );
        let rendered: Value =
            serde_json::from_str(&schema_1_1_0().render_row(&row).unwrap()).unwrap();
        // `unmapped` keeps strings, non-strings as their JSON text, and leaves nulls out.
        record["unmapped"] = json!({"a.b": "c", "n": "7"});
        // The captions the record left out are the schema's, as the lake stores them.
        for (name, caption) in [
            ("class_name", "API Activity"),
            ("category_name", "Application Activity"),
            ("activity_name", "Create"),
            ("type_name", "API Activity: Create"),
            ("severity", "Informational"),
        ] {
            record[name] = json!(caption);
        }
        assert_eq!(rendered, record);
        // A caption the row gives is kept as it is.
        record["activity_name"] = json!("Provision");
        let rendered: Value = serde_json::from_str(
            &schema_1_1_0()
                .render_row(&row_of(&record, &declared))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(rendered, record);
    }

    #[test]
    fn rows_are_checked_like_json() {
        use crate::row::RowWrite;
        let declared = declarations(ALL);
        let good = row_of(&valid(), &declared);
        let index = |def: &str, name: &str| -> u16 {
            let schema = schema_1_1_0();
            let def = if def == "api_activity" {
                &schema.classes[&6003]
            } else {
                schema.objects.iter().find(|o| o.name == def).unwrap()
            };
            def.attributes[name].index as u16
        };
        // The valid row with members appended to the root (before its END).
        let with = |write: &dyn Fn(&mut Vec<u8>)| -> Vec<u8> {
            let mut row = good[..good.len() - 2].to_vec();
            write(&mut row);
            row.end();
            row
        };
        let rules = |write: &dyn Fn(&mut Vec<u8>)| row_rules(&with(write), &declared);
        assert_eq!(rules(&|_| {}), Vec::<String>::new());
        assert_eq!(
            rules(&|r| {
                r.member(index("api_activity", "message"));
                r.int(7);
            }),
            ["message: the plugin did not declare this attribute in its manifest"]
        );
        assert_eq!(
            rules(&|r| {
                r.member(index("api_activity", "severity_id"));
                r.string("high");
            }),
            [
                "severity_id: appears more than once in its object",
                "severity_id: expected a 32-bit integer, found a string"
            ]
        );
        assert_eq!(
            rules(&|r| {
                r.member(index("api_activity", "status_id"));
                r.int(77);
            }),
            ["status_id: 77 is not a defined enum value (allowed: [0, 1, 2, 99])"]
        );
        assert_eq!(
            rules(&|r| {
                r.member(9999);
                r.boolean(true);
            }),
            ["<record>: member 9999 is not an attribute of OCSF 1.1.0 `api_activity`"]
        );
        assert_eq!(
            rules(&|r| {
                r.member(index("api_activity", "cloud"));
                r.object();
                r.member(index("cloud", "region"));
                r.int(1);
                r.end();
            }),
            [
                "cloud.provider: required attribute is missing",
                "cloud.region: expected a string, found an integer"
            ]
        );
        // Paths name list items and the members after an unknown one.
        assert_eq!(
            rules(&|r| {
                r.member(index("api_activity", "src_endpoint"));
                r.object();
                r.member(index("network_endpoint", "intermediate_ips"));
                let count = r.array();
                r.set_count(count, 3);
                r.string("10.0.0.1");
                r.int(7);
                r.string("10.0.0.300");
                r.member(999);
                r.int(1);
                r.member(index("network_endpoint", "port"));
                r.string("80");
                r.end();
            }),
            [
                "src_endpoint.intermediate_ips[1]: expected an IP address string, found an integer",
                "src_endpoint.intermediate_ips[2]: expected an IP address string, found string \"10.0.0.300\"",
                "src_endpoint.port: expected a port number 0-65535, found a string",
                "src_endpoint: appears more than once in its object",
                "src_endpoint: at least one of ip, uid, name, hostname, svc_name, instance_uid, interface_uid, interface_name is required",
                "src_endpoint: member 999 is not an attribute of OCSF 1.1.0 `network_endpoint`",
            ]
        );
        // A datetime is epoch milliseconds (or RFC 3339 text), within the years RFC 3339 writes.
        let dated = declarations(&[ALL, &["time_dt"]].concat());
        let time_dt = |write: &dyn Fn(&mut Vec<u8>)| {
            row_rules(
                &with(&|r: &mut Vec<u8>| {
                    r.member(index("api_activity", "time_dt"));
                    write(r);
                }),
                &dated,
            )
        };
        assert_eq!(time_dt(&|r| r.int(1_714_549_264_007)), Vec::<String>::new());
        assert_eq!(
            time_dt(&|r| r.string("2024-05-01T07:41:04Z")),
            Vec::<String>::new()
        );
        assert_eq!(
            time_dt(&|r| r.int(i64::MAX)),
            ["time_dt: 9223372036854775807 ms since 1970 is not a date between the years 0 and 9999"]
        );
        let dated_row = with(&|r| {
            r.member(index("api_activity", "time_dt"));
            r.int(1_714_549_264_007);
        });
        let rendered: Value =
            serde_json::from_str(&schema_1_1_0().render_row(&dated_row).unwrap()).unwrap();
        assert_eq!(rendered["time_dt"], "2024-05-01T07:41:04.007Z");
        // Values nested without end (in an undeclared member, skipped) are refused, not followed.
        let deep = with(&|r| {
            r.member(index("api_activity", "message"));
            for _ in 0..100_000 {
                let at = r.array();
                r.set_count(at, 1);
            }
            r.null();
        });
        assert_eq!(
            row_rules(&deep, &declared),
            ["<record>: plugin emitted a row that does not follow the row format"]
        );
        assert_eq!(schema_1_1_0().render_row(&deep), Err(Malformed));
        // Structure errors name no attribute: the row cannot be read further.
        for bad in [&good[..good.len() - 1], &good[..3], &[][..]] {
            assert_eq!(
                row_rules(bad, &declared),
                ["<record>: plugin emitted a row that does not follow the row format"]
            );
        }
        let mut other_class = good.clone();
        other_class[..4].copy_from_slice(&4001u32.to_le_bytes());
        assert_eq!(
            row_rules(&other_class, &declared),
            ["class_uid: the plugin did not declare class 4001 (network_activity)"]
        );
    }

    /// Paths that let `valid()` through, with `actor.user` declared only by its name and by a
    /// member of a fourth object level, which the lake cuts.
    const BEYOND_THE_CUT: &[&str] = &[
        "time",
        "severity_id",
        "metadata",
        "api.operation",
        "src_endpoint",
        "actor.user.name",
        "actor.user.ldap_person.location.city",
    ];

    /// `record` as a row, member by member, whatever the declarations say: strings, integers,
    /// nulls and objects of the schema's object types.
    fn unchecked_row(record: &Value) -> Vec<u8> {
        use crate::row::RowWrite;
        fn members(def: &Definition, object: &Value, out: &mut Vec<u8>) {
            let schema = schema_1_1_0();
            for (name, value) in object.as_object().unwrap() {
                let attr = &def.attributes[name];
                out.member(attr.index as u16);
                match (value, attr.kind) {
                    (Value::Object(_), Kind::Object(o)) => {
                        out.object();
                        members(schema.object(o), value, out);
                    }
                    (Value::String(s), _) => out.string(s),
                    (Value::Number(n), _) => out.int(n.as_i64().unwrap()),
                    (Value::Null, _) => out.null(),
                    (other, _) => panic!("not written by this helper: {other}"),
                }
            }
            out.end();
        }
        let mut out = Vec::new();
        out.class(6003);
        members(&schema_1_1_0().classes[&6003], record, &mut out);
        out
    }

    #[test]
    fn rows_are_cut_at_the_lakes_depth_and_at_cycles_like_json() {
        let declared = declarations(&[BEYOND_THE_CUT, &["actor.process"]].concat());
        let cases = [
            // A process inside a process: the cycle is cut.
            (
                json!({"user": {"name": "a"}, "process": {"pid": 1, "parent_process": {"pid": 2}}}),
                "actor.process.parent_process: the lake stores objects at most 3 levels deep and no object inside one of its own type (`process`): put this value in `unmapped`",
            ),
            // A fourth object level: cut.
            (
                json!({"user": {"name": "a"}, "process": {"file": {"name": "f", "type_id": 1, "owner": {"name": "o"}}}}),
                "actor.process.file.owner: the lake stores objects at most 3 levels deep and no object inside one of its own type (`user`): put this value in `unmapped`",
            ),
            // Declared only for a member below the cut: no column.
            (
                json!({"user": {"name": "a", "ldap_person": {"location": {"city": "x"}}}}),
                "actor.user.ldap_person: the lake's table has no column for this value (an object with nothing within the lake's depth): put it in `unmapped`",
            ),
            // Declared beside a declared sibling only.
            (
                json!({"user": {"name": "a", "uid": "u"}}),
                "actor.user.uid: the plugin did not declare this attribute in its manifest",
            ),
        ];
        for (actor, expected) in cases {
            let mut r = valid();
            r["actor"] = actor;
            let from_row = row_rules(&unchecked_row(&r), &declared);
            assert!(from_row.iter().any(|v| v == expected), "{from_row:?}");
            // JSON records written as rows (plugins of interface 0.1) meet the same rules.
            let (_, from_json) = both_ways(&r.to_string(), &declared);
            assert!(from_json.iter().any(|v| v == expected), "{from_json:?}");
        }
        // Within the cuts, the same records are valid as rows.
        let mut r = valid();
        r["actor"] = json!({"user": {"name": "a"}, "process": {"pid": 1, "file": {"name": "f", "type_id": 1}}});
        assert_eq!(
            row_rules(&unchecked_row(&r), &declared),
            Vec::<String>::new()
        );
    }

    #[test]
    fn rows_refuse_an_object_the_table_has_no_column_for() {
        // `actor.user.ldap_person` is declared only for its `location`, a fourth object level,
        // which the lake cuts: the table has no `actor.user.ldap_person` column.
        let declared = declarations(BEYOND_THE_CUT);
        let mut r = valid();
        r["actor"]["user"]["ldap_person"] = json!({});
        let (json, with_row) = both_ways(&r.to_string(), &declared);
        assert_eq!(json, Vec::<String>::new());
        assert_eq!(with_row.len(), 1, "{with_row:?}");
        assert!(
            with_row[0].starts_with("actor.user.ldap_person: the lake's table has no column"),
            "{with_row:?}"
        );
        // Null is absent, so it needs no column.
        r["actor"]["user"]["ldap_person"] = Value::Null;
        assert_eq!(both_ways(&r.to_string(), &declared), (vec![], vec![]));
    }

    const ALL: &[&str] = &[
        "metadata",
        "actor",
        "api",
        "src_endpoint",
        "severity_id",
        "time",
        "cloud",
        "status_id",
    ];

    #[test]
    fn a_complete_record_passes() {
        assert_eq!(rules(&valid(), ALL), Vec::<String>::new());
    }

    #[test]
    fn type_uid_must_follow_class_and_activity() {
        let mut r = valid();
        r["type_uid"] = json!(600302);
        assert_eq!(
            rules(&r, ALL),
            vec!["type_uid: must be class_uid * 100 + activity_id = 600301, found 600302"]
        );
    }

    #[test]
    fn types_enums_and_unknown_attributes_are_named_by_path() {
        let mut r = valid();
        r["src_endpoint"]["ip"] = json!("300.1.1.1");
        r["status_id"] = json!(7);
        r["actor"]["user"]["shoe_size"] = json!(44);
        r["time"] = json!("yesterday");
        let found = rules(&r, ALL);
        assert!(
            found.contains(
                &"src_endpoint.ip: expected an IP address string, found string \"300.1.1.1\""
                    .to_string()
            ),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("status_id: 7 is not a defined enum value")),
            "{found:?}"
        );
        assert!(
            found.contains(
                &"actor.user.shoe_size: `shoe_size` is not an attribute of OCSF 1.1.0 `user`"
                    .to_string()
            ),
            "{found:?}"
        );
        assert!(
            found.contains(
                &"time: expected a 64-bit integer, found string \"yesterday\"".to_string()
            ),
            "{found:?}"
        );
    }

    #[test]
    fn required_attributes_and_constraints() {
        let mut r = valid();
        r.as_object_mut().unwrap().remove("api");
        r["src_endpoint"] = json!({"port": 443});
        let found = rules(&r, ALL);
        assert!(
            found.contains(&"api: required attribute is missing".to_string()),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("src_endpoint: at least one of ip, uid, name")),
            "{found:?}"
        );
    }

    #[test]
    fn profile_attributes_are_required_only_with_their_profile() {
        let mut r = valid();
        assert!(rules(&r, ALL).is_empty());
        r["metadata"]["profiles"] = json!(["cloud"]);
        assert_eq!(rules(&r, ALL), vec!["cloud: required attribute is missing"]);
    }

    #[test]
    fn a_profile_requires_the_attributes_it_contributes_whatever_their_names() {
        // Network File Activity's `actor` comes with the `host` profile.
        let declared = Declarations::new(
            schema_1_1_0(),
            &[ClassDeclaration {
                class_uid: 4010,
                attributes: [
                    "time",
                    "severity_id",
                    "metadata",
                    "file",
                    "src_endpoint",
                    "actor",
                ]
                .map(String::from)
                .to_vec(),
            }],
        );
        let mut r = json!({
            "class_uid": 4010, "category_uid": 4, "activity_id": 1, "type_uid": 401001, "severity_id": 1, "time": 1,
            "metadata": {"version": "1.1.0", "product": {"vendor_name": "v", "name": "p"}},
            "file": {"name": "a.txt", "type_id": 1}, "src_endpoint": {"ip": "192.0.2.1"},
        });
        let rules = |r: &Value| -> Vec<String> {
            let found = schema_1_1_0().validate(r, &declared);
            found.iter().map(ToString::to_string).collect()
        };
        assert!(rules(&r).is_empty(), "{:?}", rules(&r));
        r["metadata"]["profiles"] = json!(["host"]);
        assert_eq!(rules(&r), vec!["actor: required attribute is missing"]);
        r["actor"] = json!({"user": {"name": "alice"}});
        assert!(rules(&r).is_empty(), "{:?}", rules(&r));
    }

    #[test]
    fn undeclared_attributes_are_rejected_and_siblings_of_declared_enums_allowed() {
        let mut r = valid();
        r["status_id"] = json!(1);
        r["status"] = json!("Success");
        r["message"] = json!("hello");
        let found = rules(
            &r,
            &[
                "metadata",
                "actor.user.name",
                "api.operation",
                "src_endpoint.ip",
                "severity_id",
                "time",
                "status_id",
            ],
        );
        assert_eq!(
            found,
            vec!["message: the plugin did not declare this attribute in its manifest"]
        );
        let found = rules(
            &r,
            &[
                "metadata",
                "actor.user.uid",
                "api",
                "src_endpoint",
                "severity_id",
                "time",
                "status_id",
                "message",
            ],
        );
        assert_eq!(
            found,
            vec!["actor.user.name: the plugin did not declare this attribute in its manifest"]
        );
    }

    #[test]
    fn declarations_are_checked_against_the_schema() {
        let schema = schema_1_1_0();
        let ok = ClassDeclaration {
            class_uid: 4001,
            attributes: vec!["src_endpoint.ip".into(), "unmapped".into()],
        };
        assert_eq!(schema.check_declaration(&ok), Ok(()));
        let bad = ClassDeclaration {
            class_uid: 4001,
            attributes: vec!["src_endpoint.colour".into()],
        };
        assert!(schema
            .check_declaration(&bad)
            .unwrap_err()
            .contains("`colour` is not an attribute of `network_endpoint`"));
        let unknown = ClassDeclaration {
            class_uid: 9999,
            attributes: vec![],
        };
        assert!(schema
            .check_declaration(&unknown)
            .unwrap_err()
            .contains("9999"));
    }
}
