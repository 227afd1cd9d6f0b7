//! The ledger as a Merkle tree, in the form of Certificate Transparency (RFC 6962,
//! RFC 9162 §2.1): leaf `i` is event `i + 1`, its entry the event's 32-byte hash. A
//! signed tree head then proves any one event (an inclusion proof of about log₂ n
//! hashes) and that a later head only appended to an earlier one (a consistency
//! proof), to someone who holds neither the database nor the other events.
//!
//! Pure: proofs are described as the ranges of leaves whose hashes make them, and the
//! hashes of those ranges as the perfect subtrees they are built from, so whoever
//! holds the tree (the store) fetches exactly those and nothing else.

use std::ops::Range;

use sha2::{Digest, Sha256};

/// A node of the tree: 32 bytes of SHA-256.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The hash of a leaf with this entry: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The leaf of an event: its hash (64 hex digits, as stored) as 32 bytes. `None` for
/// text that is not such a hash.
pub fn event_leaf(event_hash: &str) -> Option<Hash> {
    parse_hash(event_hash).map(|digest| leaf_hash(&digest))
}

/// 64 hex digits as a hash.
pub fn parse_hash(text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

/// A perfect subtree: the `2^level` leaves from `index << level` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subtree {
    pub level: u8,
    pub index: u64,
}

impl Subtree {
    /// The leaves it covers.
    pub fn leaves(self) -> Range<u64> {
        let start = self.index << self.level;
        start..start + (1u64 << self.level)
    }

    /// Its two halves (for a level above the leaves).
    pub fn children(self) -> Option<(Subtree, Subtree)> {
        let level = self.level.checked_sub(1)?;
        let left = Subtree {
            level,
            index: self.index * 2,
        };
        Some((
            left,
            Subtree {
                level,
                index: left.index + 1,
            },
        ))
    }
}

/// The largest power of two below `n` (for `n >= 2`): where RFC 6962 splits `n` leaves.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The perfect subtrees whose hashes make the hash of the leaves in `range`, largest
/// (leftmost) first: `MTH(range)` is `node_hash` folded over them from the right. The
/// ranges of a proof always start at a multiple of their largest piece, so each piece
/// is a subtree of the whole tree.
pub fn pieces(range: Range<u64>) -> Vec<Subtree> {
    let mut pieces = Vec::new();
    let mut start = range.start;
    let mut remaining = range.end.saturating_sub(range.start);
    while remaining > 0 {
        let level = 63 - remaining.leading_zeros();
        let size = 1u64 << level;
        debug_assert_eq!(start % size, 0, "a proof's range is aligned");
        pieces.push(Subtree {
            level: level as u8,
            index: start >> level,
        });
        start += size;
        remaining -= size;
    }
    pieces
}

/// The hash of a range from the hashes of its `pieces`, in order. `None` for no pieces.
pub fn fold_pieces(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(
        rest.iter()
            .rev()
            .fold(*last, |right, left| node_hash(left, &right)),
    )
}

/// The ranges whose hashes are the inclusion proof of leaf `index` in a tree of `size`
/// leaves (RFC 6962 §2.1.1 `PATH`), nearest the leaf first. Empty when `index` is not
/// in the tree or the tree is that one leaf.
pub fn inclusion_path(index: u64, size: u64) -> Vec<Range<u64>> {
    let mut path = Vec::new();
    if index >= size {
        return path;
    }
    // From the root down: at each split the proof takes the other side.
    let (mut start, mut end, mut leaf) = (0u64, size, index);
    while end - start > 1 {
        let k = split(end - start);
        if leaf < k {
            path.push(start + k..end);
            end = start + k;
        } else {
            path.push(start..start + k);
            start += k;
            leaf -= k;
        }
    }
    path.reverse();
    path
}

/// The ranges whose hashes are the consistency proof from a tree of `old` leaves to
/// one of `new` (RFC 6962 §2.1.2 `PROOF`), in order. Empty unless `0 < old < new`.
pub fn consistency_path(old: u64, new: u64) -> Vec<Range<u64>> {
    let mut path = Vec::new();
    if old == 0 || old >= new {
        return path;
    }
    let (mut start, mut end, mut m, mut whole) = (0u64, new, old, true);
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                path.push(start..end);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            path.push(start + k..end);
            end = start + k;
        } else {
            path.push(start..start + k);
            start += k;
            m -= k;
            whole = false;
        }
    }
    path.reverse();
    path
}

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {index} is not in a tree of {size} leaves")]
    NotInTree { index: u64, size: u64 },
    #[error("the proof has {got} hashes where a tree of its size needs {expected}")]
    WrongLength { got: usize, expected: usize },
    #[error("the proof leads to another root")]
    RootMismatch,
    #[error("a tree of {new} leaves cannot extend one of {old}")]
    Shrunk { old: u64, new: u64 },
    #[error("trees of the same size {size} with different roots")]
    Forked { size: u64 },
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves with this `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::NotInTree { index, size });
    }
    let expected = inclusion_path(index, size).len();
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected,
        });
    }
    let (mut fnode, mut snode, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if snode == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode == 0 && r == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Checks that the tree of `new` leaves with root `new_root` extends the tree of `old`
/// leaves with root `old_root`: the first `old` leaves are the same (RFC 9162
/// §2.1.4.2). An empty old tree is extended by every tree.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::Shrunk { old, new });
    }
    let expected = consistency_path(old, new).len();
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected,
        });
    }
    if old == new {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Forked { size: old })
        };
    }
    if old == 0 {
        return Ok(());
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::RootMismatch);
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if fr == *old_root && sr == *new_root && snode == 0 {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The root of a tree with these leaves, computed from all of them (RFC 6962 `MTH`):
/// the reference the stored tree is checked against, and small trees' root.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = usize::try_from(split(n as u64)).unwrap_or(n / 2);
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The hashes of `ranges` over `leaves`, all of them in memory: proofs of small trees,
/// and the reference for the stored tree's.
pub fn hashes_of(ranges: &[Range<u64>], leaves: &[Hash]) -> Vec<Hash> {
    ranges
        .iter()
        .map(|range| {
            let start = usize::try_from(range.start).unwrap_or(usize::MAX);
            let end = usize::try_from(range.end).unwrap_or(usize::MAX);
            root_of(leaves.get(start..end).unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(text: &str) -> Hash {
        parse_hash(text).expect("a hash")
    }

    /// The RFC 6962 reference leaves (transparency-dev/merkle's test data).
    fn reference_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|entry| leaf_hash(&hex::decode(entry).expect("hex")))
        .collect()
    }

    const REFERENCE_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn roots_are_the_rfc_6962_reference_roots() {
        let leaves = reference_leaves();
        for (size, root) in REFERENCE_ROOTS.iter().enumerate() {
            assert_eq!(hex::encode(root_of(&leaves[..size])), *root, "size {size}");
        }
        assert_eq!(EMPTY_ROOT, h(REFERENCE_ROOTS[0]));
    }

    #[test]
    fn proofs_are_the_reference_proofs() {
        let leaves = reference_leaves();
        // (leaf index, tree size, proof): transparency-dev/merkle's inclusion vectors.
        let inclusion: [(u64, u64, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, expected) in inclusion {
            let proof = hashes_of(&inclusion_path(index, size), &leaves);
            let expected: Vec<Hash> = expected.iter().map(|e| h(e)).collect();
            assert_eq!(proof, expected, "inclusion of {index} in {size}");
            let root = root_of(&leaves[..size as usize]);
            verify_inclusion(index, size, &leaves[index as usize], &proof, &root)
                .expect("the reference proof verifies");
        }
        // (old size, new size, proof): the consistency vectors.
        let consistency: [(u64, u64, &[&str]); 4] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (old, new, expected) in consistency {
            let proof = hashes_of(&consistency_path(old, new), &leaves);
            let expected: Vec<Hash> = expected.iter().map(|e| h(e)).collect();
            assert_eq!(proof, expected, "consistency of {old} with {new}");
            let (old_root, new_root) = (
                root_of(&leaves[..old as usize]),
                root_of(&leaves[..new as usize]),
            );
            verify_consistency(old, new, &old_root, &new_root, &proof)
                .expect("the reference proof verifies");
        }
    }

    #[test]
    fn trivial_and_impossible_consistency() {
        let root = h(REFERENCE_ROOTS[3]);
        assert_eq!(verify_consistency(3, 3, &root, &root, &[]), Ok(()));
        assert_eq!(
            verify_consistency(3, 3, &root, &EMPTY_ROOT, &[]),
            Err(ProofError::Forked { size: 3 })
        );
        assert_eq!(verify_consistency(0, 5, &EMPTY_ROOT, &root, &[]), Ok(()));
        assert_eq!(
            verify_consistency(4, 3, &root, &root, &[]),
            Err(ProofError::Shrunk { old: 4, new: 3 })
        );
        assert!(verify_consistency(1, 2, &root, &root, &[]).is_err());
        assert!(verify_consistency(3, 3, &root, &root, &[root]).is_err());
        assert!(verify_inclusion(0, 0, &root, &[], &root).is_err());
        assert!(verify_inclusion(0, 1, &root, &[], &root).is_ok());
        assert!(verify_inclusion(1, 1, &root, &[], &root).is_err());
    }

    fn synthetic(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn every_proof_of_small_trees_verifies_and_every_altered_one_fails() {
        let leaves = synthetic(40);
        let other = h("abacaba000000000000000000000000000000000000000000060061e00123456");
        for size in 1..=40u64 {
            let root = root_of(&leaves[..size as usize]);
            for index in 0..size {
                let proof = hashes_of(&inclusion_path(index, size), &leaves);
                let leaf = leaves[index as usize];
                assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root), Ok(()));
                let mut bad = vec![
                    verify_inclusion(index + 1, size, &leaf, &proof, &root),
                    verify_inclusion(index, size * 2, &leaf, &proof, &root),
                    verify_inclusion(index, size, &other, &proof, &root),
                    verify_inclusion(index, size, &leaf, &proof, &other),
                    verify_inclusion(
                        index,
                        size,
                        &leaf,
                        &[proof.clone(), vec![root]].concat(),
                        &root,
                    ),
                    verify_inclusion(
                        index,
                        size,
                        &leaf,
                        &[vec![root], proof.clone()].concat(),
                        &root,
                    ),
                ];
                if index > 0 {
                    bad.push(verify_inclusion(index - 1, size, &leaf, &proof, &root));
                }
                for i in 0..proof.len() {
                    let mut flipped = proof.clone();
                    flipped[i][0] ^= 8;
                    bad.push(verify_inclusion(index, size, &leaf, &flipped, &root));
                    let mut shorter = proof.clone();
                    shorter.remove(i);
                    bad.push(verify_inclusion(index, size, &leaf, &shorter, &root));
                }
                assert!(bad.iter().all(Result::is_err), "{index} of {size}: {bad:?}");
            }
            for old in 1..size {
                let old_root = root_of(&leaves[..old as usize]);
                let proof = hashes_of(&consistency_path(old, size), &leaves);
                assert_eq!(
                    verify_consistency(old, size, &old_root, &root, &proof),
                    Ok(())
                );
                let mut bad = vec![
                    verify_consistency(old, size, &root, &old_root, &proof),
                    verify_consistency(old, size, &other, &root, &proof),
                    verify_consistency(old, size, &old_root, &other, &proof),
                    verify_consistency(old + 1, size, &old_root, &root, &proof),
                    verify_consistency(old, size * 2, &old_root, &root, &proof),
                    verify_consistency(old, size, &old_root, &root, &[]),
                ];
                for i in 0..proof.len() {
                    let mut flipped = proof.clone();
                    flipped[i][0] ^= 16;
                    bad.push(verify_consistency(old, size, &old_root, &root, &flipped));
                }
                assert!(bad.iter().all(Result::is_err), "{old} to {size}: {bad:?}");
            }
        }
    }

    proptest! {
        /// Every range a proof uses splits into aligned perfect subtrees whose fold is
        /// the range's hash: what lets the store answer from stored subtrees.
        #[test]
        fn proof_ranges_are_made_of_aligned_subtrees(size in 1u64..3000, a in any::<u64>(), b in any::<u64>()) {
            let index = a % size;
            let old = 1 + b % size;
            let ranges: Vec<Range<u64>> = inclusion_path(index, size)
                .into_iter()
                .chain(consistency_path(old, size))
                .collect();
            for range in ranges {
                let parts = pieces(range.clone());
                let mut covered = range.start;
                for part in &parts {
                    let leaves = part.leaves();
                    prop_assert_eq!(leaves.start, covered);
                    covered = leaves.end;
                }
                prop_assert_eq!(covered, range.end);
            }
        }

        #[test]
        fn a_range_is_the_fold_of_its_pieces(size in 1u64..600, a in any::<u64>()) {
            let leaves = synthetic(size);
            let old = 1 + a % size;
            for range in consistency_path(old, size).into_iter().chain(std::iter::once(0..size)) {
                let hashes: Vec<Hash> = pieces(range.clone())
                    .iter()
                    .map(|piece| root_of(&leaves[piece.leaves().start as usize..piece.leaves().end as usize]))
                    .collect();
                prop_assert_eq!(fold_pieces(&hashes), Some(root_of(&leaves[range.start as usize..range.end as usize])));
            }
        }
    }
}
