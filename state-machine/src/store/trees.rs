//! The state trees of one generation. A snapshot install writes a whole new generation and
//! then switches one pointer, so the state is replaced atomically and a crash mid-install
//! leaves the old generation in place (the half-written one is dropped at the next open).

use sled::{Db, Tree};

/// Tree holding the current generation number; lives outside every generation.
pub(crate) const META_TREE: &str = "sm.meta";
pub(crate) const GENERATION_KEY: &[u8] = b"generation";
const PREFIX: &str = "sm.";

/// The state trees in snapshot order; the position is the record tag in a snapshot.
pub(crate) const NAMES: [&str; 10] = [
    "skus",
    "orders",
    "holds",
    "restocks",
    "deadlines",
    "user_orders",
    "applied",
    "patches",
    "events",
    "sales",
];

pub(crate) struct Trees {
    pub generation: u64,
    pub skus: Tree,
    pub orders: Tree,
    pub holds: Tree,
    pub restocks: Tree,
    pub deadlines: Tree,
    pub user_orders: Tree,
    pub applied: Tree,
    pub patches: Tree,
    pub events: Tree,
    pub sales: Tree,
}

pub(crate) fn tree_name(generation: u64, name: &str) -> String {
    format!("{PREFIX}{generation}.{name}")
}

impl Trees {
    pub fn open(db: &Db, generation: u64) -> sled::Result<Self> {
        let open = |name: &str| db.open_tree(tree_name(generation, name));
        Ok(Self {
            generation,
            skus: open(NAMES[0])?,
            orders: open(NAMES[1])?,
            holds: open(NAMES[2])?,
            restocks: open(NAMES[3])?,
            deadlines: open(NAMES[4])?,
            user_orders: open(NAMES[5])?,
            applied: open(NAMES[6])?,
            patches: open(NAMES[7])?,
            events: open(NAMES[8])?,
            sales: open(NAMES[9])?,
        })
    }

    /// In snapshot order, matching `NAMES`.
    pub fn in_order(&self) -> [&Tree; 10] {
        [
            &self.skus,
            &self.orders,
            &self.holds,
            &self.restocks,
            &self.deadlines,
            &self.user_orders,
            &self.applied,
            &self.patches,
            &self.events,
            &self.sales,
        ]
    }
}

/// Drops every state tree that does not belong to `keep` (left over from an interrupted
/// install or an old generation).
pub(crate) fn drop_other_generations(db: &Db, keep: u64) -> sled::Result<()> {
    let keep_prefix = format!("{PREFIX}{keep}.");
    for name in db.tree_names() {
        let Ok(name) = std::str::from_utf8(&name) else {
            continue;
        };
        if name.starts_with(PREFIX) && name != META_TREE && !name.starts_with(&keep_prefix) {
            db.drop_tree(name)?;
        }
    }
    Ok(())
}
