//! The key of a record in a keyed tree of the working set, held inside the tree's node when
//! it is short. A lookup compares the key with several keys of each node on its way down;
//! boxed keys made each of those comparisons a read of another allocation, a cache miss
//! once the working set outgrows the caches (perf: the SKU lookups of apply on 10,000 SKUs).
//! Short keys (SKU ids, sales buckets) now sit in the node itself; longer ones stay boxed.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ops::Deref;

/// Longest key kept inline: with the length byte and the variant's tag, the key takes 24
/// bytes, a boxed slice's 16 and a word more.
const INLINE: usize = 22;

#[derive(Clone)]
pub(crate) enum TreeKey {
    Inline { len: u8, bytes: [u8; INLINE] },
    Boxed(Box<[u8]>),
}

impl TreeKey {
    fn as_slice(&self) -> &[u8] {
        match self {
            TreeKey::Inline { len, bytes } => &bytes[..*len as usize],
            TreeKey::Boxed(key) => key,
        }
    }
}

impl From<&[u8]> for TreeKey {
    fn from(key: &[u8]) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            TreeKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            TreeKey::Boxed(key.into())
        }
    }
}

impl From<Vec<u8>> for TreeKey {
    /// Keeps a long key's allocation rather than copying it.
    fn from(key: Vec<u8>) -> Self {
        if key.len() <= INLINE {
            TreeKey::from(&key[..])
        } else {
            TreeKey::Boxed(key.into_boxed_slice())
        }
    }
}

impl Deref for TreeKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for TreeKey {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

// Ordered and compared as the bytes they hold, whichever way they are held, so that lookups
// by `&[u8]` (through `Borrow`) agree with the tree's order.
impl PartialEq for TreeKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for TreeKey {}

impl PartialOrd for TreeKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TreeKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::fmt::Debug for TreeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_its_bytes_and_orders_as_they_do_around_the_inline_limit() {
        let keys: Vec<Vec<u8>> = [0, 1, INLINE - 1, INLINE, INLINE + 1, 40]
            .iter()
            .flat_map(|&len| [vec![b'a'; len], vec![b'b'; len], vec![0xff; len]])
            .collect();
        for a in &keys {
            let held = TreeKey::from(a.clone());
            assert_eq!(&*held, &a[..]);
            assert_eq!(&*TreeKey::from(&a[..]), &a[..]);
            assert_eq!(
                matches!(held, TreeKey::Inline { .. }),
                a.len() <= INLINE,
                "{} bytes",
                a.len()
            );
            for b in &keys {
                assert_eq!(held.cmp(&TreeKey::from(&b[..])), a.cmp(b));
            }
        }
    }

    #[test]
    fn a_map_finds_inline_and_boxed_keys_by_their_bytes() {
        let mut map = imbl::OrdMap::new();
        for len in 0..40 {
            map.insert(TreeKey::from(vec![b'k'; len]), len);
        }
        for len in 0..40 {
            assert_eq!(map.get(&vec![b'k'; len][..]), Some(&len));
        }
        let range: Vec<usize> = map
            .range::<_, [u8]>((
                std::ops::Bound::Included(&b"kk"[..]),
                std::ops::Bound::Excluded(&b"kkkk"[..]),
            ))
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(range, vec![2, 3]);
    }
}
