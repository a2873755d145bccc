//! The columns a plugin's records can fill, per class: the OCSF schema cut down to the attribute
//! paths the plugin declares. The lake writer turns them into one fixed Arrow schema per
//! (source, class, OCSF version), so every file of a class has the same columns whatever its data.

pub use super::validate::EnumCaptions;
use super::validate::{Declarations, Definition, Kind, ObjectId, Schema, Scope};

/// How deep objects are expanded into nested columns. An object at this depth, or one that
/// would repeat an object type already on its path (OCSF has cycles, e.g. `process.parent_process`),
/// has no column; the validator rejects records that set one (with the advice to use
/// `unmapped`), so nothing accepted is ever dropped.
pub const MAX_OBJECT_DEPTH: usize = 4;

/// Whether the lake keeps an object of type `object` below the object types `path` (outermost
/// first): within [`MAX_OBJECT_DEPTH`], and not inside an object of its own type. The table's
/// columns, the validator's walks and its row plan all cut objects by this one rule.
pub(super) fn keeps_object(path: &[ObjectId], object: ObjectId) -> bool {
    path.len() + 1 < MAX_OBJECT_DEPTH && !path.contains(&object)
}

/// The base attributes every OCSF class requires: the only non-nullable columns.
pub const BASE_REQUIRED: [&str; 7] = [
    "activity_id",
    "category_uid",
    "class_uid",
    "metadata",
    "severity_id",
    "time",
    "type_uid",
];

/// One column: an OCSF attribute as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The attribute name.
    pub name: String,
    /// What it holds.
    pub kind: ColumnKind,
    /// An OCSF array: a list of `kind`.
    pub is_array: bool,
    /// Never null (one of [`BASE_REQUIRED`] at the top level).
    pub required: bool,
}

/// What a column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// An OCSF object expanded into its members.
    Struct(Vec<Column>),
    /// `unmapped`: string keys to string values.
    Map,
    /// JSON text: `json_t` and free-form objects.
    Json,
    /// Strings and string-based types (IPs, subnets, emails, ...).
    String,
    /// 32-bit integers: enum ids, ports, counts.
    Integer,
    /// 64-bit integers: `long_t` and `timestamp_t` (epoch milliseconds).
    Long,
    /// Numbers.
    Float,
    /// Booleans.
    Boolean,
    /// `datetime_t`: an RFC 3339 string in the record, a UTC millisecond timestamp in the lake.
    Datetime,
}

/// Where the members of one object go in its table: by the attribute's index in the object's
/// definition (the index rows name members by, [`crate::row`]), the position of the member's
/// column among the object's columns. The validator walks it along with a record, so that a
/// valid record has a column for every value, and the lake places rows' members by it.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    slots: Vec<Option<Slot>>,
    captions: Vec<Caption>,
}

/// An enum whose companion caption (`activity_name` of `activity_id`, `type_name` of
/// `type_uid`, ...) has a column of its own: a row may leave the caption out, and the lake then
/// stores the enum value's caption from the schema.
#[derive(Debug, Clone)]
pub struct Caption {
    /// The position of the enum's column among the object's columns.
    pub id: u16,
    /// The position of the caption's column.
    pub name: u16,
    /// Each enum value's caption.
    pub values: EnumCaptions,
}

/// One member's column.
#[derive(Debug, Clone)]
pub struct Slot {
    pub position: u16,
    /// The members' columns, for an object expanded into a struct.
    pub nested: Layout,
}

impl Layout {
    /// The column of the attribute at `index`, if it has one.
    pub fn slot(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index)?.as_ref()
    }

    /// The columns of the object's members, in attribute order.
    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    /// The object's enums whose captions have columns.
    pub fn captions(&self) -> &[Caption] {
        &self.captions
    }
}

/// A class's lake columns, and where each attribute goes among them.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<Column>,
    /// By attribute index, the index rows name members by.
    pub layout: Layout,
}

impl Schema {
    /// The columns of `class_uid` that the plugin's declarations allow, sorted by name at every
    /// level, and their layout; `None` when the plugin did not declare the class.
    pub(super) fn lake_table(&self, class_uid: u32, declarations: &Declarations) -> Option<Table> {
        let class = self.classes.get(&class_uid)?;
        let declared = declarations.get(class_uid)?;
        let mut walk = ColumnWalk {
            schema: self,
            types: Vec::new(),
        };
        let (columns, layout) = walk.members(class, true, Scope::Within(declared));
        Some(Table { columns, layout })
    }
}

struct ColumnWalk<'a> {
    schema: &'a Schema,
    /// Object types on the current path, to cut cycles.
    types: Vec<ObjectId>,
}

impl<'a> ColumnWalk<'a> {
    /// The columns of an object of `def` (the class itself at the `top`) that `scope` allows.
    fn members(
        &mut self,
        def: &'a Definition,
        top: bool,
        scope: Scope<'a>,
    ) -> (Vec<Column>, Layout) {
        let mut names: Vec<&String> = def.attributes.keys().collect();
        names.sort();
        let mut columns = Vec::new();
        let mut layout = Layout::default();
        for name in names {
            let attr = &def.attributes[name];
            let Some(scope) = scope.member(attr) else {
                continue;
            };
            let mut nested = Layout::default();
            let kind = match &attr.kind {
                Kind::Object(object) => {
                    if !keeps_object(&self.types, *object) {
                        continue;
                    } else {
                        let def = self.schema.object(*object);
                        self.types.push(*object);
                        let (members, members_layout) = self.members(def, false, scope);
                        self.types.pop();
                        if members.is_empty() {
                            continue;
                        }
                        nested = members_layout;
                        ColumnKind::Struct(members)
                    }
                }
                Kind::Unmapped => ColumnKind::Map,
                Kind::AnyObject | Kind::Json => ColumnKind::Json,
                Kind::String { .. } | Kind::Ip | Kind::Subnet => ColumnKind::String,
                Kind::Datetime => ColumnKind::Datetime,
                Kind::Integer | Kind::Port => ColumnKind::Integer,
                Kind::Long => ColumnKind::Long,
                Kind::Float => ColumnKind::Float,
                Kind::Boolean => ColumnKind::Boolean,
            };
            if layout.slots.len() <= attr.index {
                layout.slots.resize_with(attr.index + 1, || None);
            }
            layout.slots[attr.index] = Some(Slot {
                position: u16::try_from(columns.len()).expect("an object has few attributes"),
                nested,
            });
            columns.push(Column {
                name: name.clone(),
                kind,
                is_array: attr.is_array,
                required: top && BASE_REQUIRED.contains(&name.as_str()),
            });
        }
        for (_, attr) in &def.by_index {
            let (Some(id), Some(values)) = (layout.slot(attr.index), attr.captions()) else {
                continue;
            };
            let sibling = attr.sibling.as_ref().and_then(|s| def.attributes.get(s));
            if let Some(name) = sibling.and_then(|s| layout.slot(s.index)) {
                layout.captions.push(Caption {
                    id: id.position,
                    name: name.position,
                    values,
                });
            }
        }
        (columns, layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::validate::schema_1_1_0;
    use crate::ClassDeclaration;

    fn columns(paths: &[&str]) -> Vec<Column> {
        let declarations = Declarations::new(
            schema_1_1_0(),
            &[ClassDeclaration {
                class_uid: 4001,
                attributes: paths.iter().map(|p| p.to_string()).collect(),
            }],
        );
        declarations.table(4001).unwrap().columns.clone()
    }

    fn find<'a>(columns: &'a [Column], path: &str) -> Option<&'a Column> {
        let (head, rest) = path.split_once('.').unwrap_or((path, ""));
        let c = columns.iter().find(|c| c.name == head)?;
        match (&c.kind, rest) {
            (_, "") => Some(c),
            (ColumnKind::Struct(members), rest) => find(members, rest),
            _ => None,
        }
    }

    #[test]
    fn declared_paths_and_derived_attributes_only() {
        let cols = columns(&[
            "time",
            "time_dt",
            "src_endpoint.ip",
            "unmapped",
            "status_id",
        ]);
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        // Declared, derived by the SDK (class/category/type/activity), and the companion string
        // of a declared enum (`status` of `status_id`); nothing else.
        assert_eq!(
            names,
            [
                "activity_id",
                "activity_name",
                "category_name",
                "category_uid",
                "class_name",
                "class_uid",
                "src_endpoint",
                "status",
                "status_id",
                "time",
                "time_dt",
                "type_name",
                "type_uid",
                "unmapped"
            ]
        );
        assert_eq!(find(&cols, "time").unwrap().kind, ColumnKind::Long);
        assert!(find(&cols, "time").unwrap().required);
        assert!(!find(&cols, "time_dt").unwrap().required);
        assert_eq!(find(&cols, "time_dt").unwrap().kind, ColumnKind::Datetime);
        assert_eq!(find(&cols, "unmapped").unwrap().kind, ColumnKind::Map);
        assert_eq!(
            find(&cols, "activity_id").unwrap().kind,
            ColumnKind::Integer
        );
        assert_eq!(find(&cols, "type_uid").unwrap().kind, ColumnKind::Long);
        let ColumnKind::Struct(endpoint) = &find(&cols, "src_endpoint").unwrap().kind else {
            panic!("src_endpoint is a struct");
        };
        assert_eq!(endpoint.len(), 1, "only the declared member: {endpoint:?}");
        assert_eq!(
            find(&cols, "src_endpoint.ip").unwrap().kind,
            ColumnKind::String
        );
    }

    #[test]
    fn declared_objects_expand_with_cycles_and_depth_cut() {
        let cols = columns(&["time", "actor"]);
        // actor.process.parent_process repeats `process`: no column (the validator refuses it).
        assert!(find(&cols, "actor.process").is_some());
        assert!(find(&cols, "actor.process.parent_process").is_none());
        // Arrays of objects are lists of structs.
        let groups = find(&cols, "actor.user.groups").unwrap();
        assert!(groups.is_array);
        assert!(matches!(groups.kind, ColumnKind::Struct(_)));
        // Depth: actor (1) > user (2) > groups (3) > ... objects at depth 4 are JSON.
        fn depth(c: &[Column]) -> usize {
            c.iter()
                .map(|c| match &c.kind {
                    ColumnKind::Struct(m) => 1 + depth(m),
                    _ => 0,
                })
                .max()
                .unwrap_or(0)
        }
        assert!(depth(&cols) < MAX_OBJECT_DEPTH, "depth {}", depth(&cols));
    }
}
