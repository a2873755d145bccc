//! The row walk's plan: a declared class compiled once, when a plugin's declarations are
//! indexed, into what checking a row needs at each member.
//!
//! Checking a member of a row used to take three lookups, each in a table of its own: the
//! attribute in the schema's definition (120-byte entries), the declared-path tree (is it
//! declared, what is declared beneath) and the lake table's layout (has it a column). With
//! hundreds of kilobytes of rows streaming through per batch, those were cache misses more than
//! work. A plan node holds, for every attribute of one object the walk can reach, one small
//! entry with all three answers and, for an object member, the node of its own members.

use super::{Declared, Definition, Kind, ObjectId, Role, Schema, Scope};
use crate::host::columns::{keeps_object, Layout, MAX_OBJECT_DEPTH};

/// A declared class compiled for checking rows ([`Schema::validate_row_bytes`]).
#[derive(Debug, Clone)]
pub(in crate::host) struct Plan {
    /// The class's members first, then one node per object member the walk can enter.
    nodes: Vec<Node>,
    /// Enum values, by [`Entry::values`].
    values: Vec<Box<[i64]>>,
}

/// The members of one object on one path: by attribute index.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub entries: Box<[Entry]>,
}

/// What the walk needs to know of one member.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub kind: Kind,
    pub role: Role,
    flags: u8,
    /// The enum's values in [`Plan::values`], or [`NONE`].
    values: u32,
    /// For an object member: the node of its members, or [`NONE`] where the lake's depth or a
    /// cycle cuts the path.
    child: u32,
}

const NONE: u32 = u32::MAX;
const DECLARED: u8 = 1;
const COLUMN: u8 = 2;
const ARRAY: u8 = 4;

impl Entry {
    /// The plugin declared the member (or something above it).
    pub fn is_declared(&self) -> bool {
        self.flags & DECLARED != 0
    }

    /// The lake's table has a column for the member's value.
    pub fn has_column(&self) -> bool {
        self.flags & COLUMN != 0
    }

    pub fn is_array(&self) -> bool {
        self.flags & ARRAY != 0
    }

    /// For an object member the walk enters, the position of its members' node.
    pub fn node(&self) -> usize {
        self.child as usize
    }
}

impl Plan {
    /// Compiles class `def` as `declared`, its values placed by `layout` (none: no column).
    pub fn new(
        schema: &Schema,
        def: &Definition,
        declared: &Declared,
        layout: Option<&Layout>,
    ) -> Plan {
        let mut plan = Plan {
            nodes: Vec::new(),
            values: Vec::new(),
        };
        let mut path = Vec::with_capacity(MAX_OBJECT_DEPTH);
        plan.add(schema, def, Scope::Within(declared), layout, &mut path);
        plan
    }

    /// The class's own members.
    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }

    /// The node of an object member's members; `None` where the path is cut.
    pub fn child(&self, entry: &Entry) -> Option<&Node> {
        self.nodes.get(entry.child as usize)
    }

    /// How many nodes the plan has: [`Entry::node`] is below.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The values of an enum member.
    pub fn values(&self, entry: &Entry) -> Option<&[i64]> {
        self.values.get(entry.values as usize).map(|v| &v[..])
    }

    /// Adds the node of an object of `def` reached through the object types `path`, and those
    /// of the objects beneath it, as the walk would enter them; returns its position.
    fn add(
        &mut self,
        schema: &Schema,
        def: &Definition,
        scope: Scope<'_>,
        layout: Option<&Layout>,
        path: &mut Vec<ObjectId>,
    ) -> u32 {
        let at = self.nodes.len();
        self.nodes.push(Node {
            entries: Box::new([]),
        });
        let mut entries = Vec::with_capacity(def.by_index.len());
        for (index, (_, attr)) in def.by_index.iter().enumerate() {
            let member = scope.member(attr);
            let slot = layout.and_then(|l| l.slot(index));
            let mut flags = 0;
            if member.is_some() {
                flags |= DECLARED;
            }
            if slot.is_some() {
                flags |= COLUMN;
            }
            if attr.is_array {
                flags |= ARRAY;
            }
            let values = match &attr.values {
                Some(values) => {
                    self.values.push(values.clone());
                    (self.values.len() - 1) as u32
                }
                None => NONE,
            };
            let child = match (attr.kind, member) {
                (Kind::Object(o), Some(member)) if keeps_object(path, o) => {
                    path.push(o);
                    let child = self.add(
                        schema,
                        schema.object(o),
                        member,
                        slot.map(|s| &s.nested),
                        path,
                    );
                    path.pop();
                    child
                }
                _ => NONE,
            };
            entries.push(Entry {
                kind: attr.kind,
                role: attr.role,
                flags,
                values,
                child,
            });
        }
        self.nodes[at].entries = entries.into_boxed_slice();
        at as u32
    }
}
