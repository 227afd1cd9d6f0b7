//! The ledger's Merkle tree as stored: perfect subtrees of `2^STORED_LEVEL` events and
//! more in `ledger_tree`, smaller ones hashed from the events when asked. Kept off the
//! write path: `extend_tree` catches it up to a size (when a tree head is signed, or a
//! proof is asked for), reading events that are final and writing rows nobody changes.

use std::collections::HashMap;
use std::ops::Range;

use sqlx::Row;
use writ_domain::ledger::merkle::{self, Hash, Subtree};

use crate::write::Arg;
use crate::{Store, StoreError};

/// Subtrees of at least this level (256 events) are stored; smaller ones are hashed
/// from the events when needed, which reads at most one block of 256 events each.
pub const STORED_LEVEL: u8 = 8;
const BLOCK: u64 = 1 << STORED_LEVEL;
/// Blocks hashed per read while extending the tree (about 16,000 events).
const BLOCKS_PER_READ: u64 = 64;
/// Rows written per transaction while extending the tree.
const ROWS_PER_WRITE: usize = 512;

fn corrupt(id: impl ToString, problem: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: "ledger tree",
        id: id.to_string(),
        problem: problem.to_string(),
    }
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// The leaf hashes of the events in `leaves` (leaf `i` is event `i + 1`), read in
    /// one query. Missing or unreadable events are an error naming the first.
    pub async fn leaf_hashes(&self, leaves: Range<u64>) -> Result<Vec<Hash>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, hash FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq")
                .bind(int(leaves.start))
                .bind(int(leaves.end))
                .fetch_all(&self.pool)
                .await?;
        let mut hashes = Vec::with_capacity(rows.len());
        for (expected, row) in (leaves.start + 1..).zip(&rows) {
            let seq: i64 = row.try_get("seq")?;
            if seq != int(expected) {
                return Err(corrupt(expected, "the event is missing"));
            }
            let hash: String = row.try_get("hash")?;
            hashes.push(
                merkle::event_leaf(&hash)
                    .ok_or_else(|| corrupt(seq, "its hash is not 64 hex digits"))?,
            );
        }
        if hashes.len() as u64 != leaves.end - leaves.start {
            return Err(corrupt(
                leaves.start + hashes.len() as u64 + 1,
                "the event is missing",
            ));
        }
        Ok(hashes)
    }

    /// How many events the stored tree covers (whole blocks of 256).
    pub async fn tree_stored_size(&self) -> Result<u64, StoreError> {
        let blocks = self.stored_count(STORED_LEVEL).await?;
        Ok(blocks * BLOCK)
    }

    async fn stored_count(&self, level: u8) -> Result<u64, StoreError> {
        let row =
            sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM ledger_tree WHERE level = $1")
                .bind(i64::from(level))
                .fetch_one(&self.pool)
                .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Stores every perfect subtree of at least `STORED_LEVEL` within the first `size`
    /// events that is not stored yet. Safe to run on several nodes at once: they write
    /// the same rows, and a row written is never written again. Returns how many rows
    /// it added.
    pub async fn extend_tree(&self, size: u64) -> Result<u64, StoreError> {
        let mut added = 0u64;
        // The first stored level, from the events.
        let mut next = self.stored_count(STORED_LEVEL).await?;
        let blocks = size / BLOCK;
        while next < blocks {
            let end = (next + BLOCKS_PER_READ).min(blocks);
            let leaves = self.leaf_hashes(next * BLOCK..end * BLOCK).await?;
            let rows: Vec<(Subtree, Hash)> = leaves
                .chunks(BLOCK as usize)
                .zip(next..)
                .map(|(block, index)| {
                    (
                        Subtree {
                            level: STORED_LEVEL,
                            index,
                        },
                        merkle::root_of(block),
                    )
                })
                .collect();
            added += self.insert_tree_rows(&rows).await?;
            next = end;
        }
        // Each level above, from the one below.
        let mut below = blocks;
        let mut level = STORED_LEVEL + 1;
        while below >= 2 {
            let have = self.stored_count(level).await?;
            let complete = below / 2;
            if have < complete {
                let children = sqlx::query(
                    "SELECT idx, hash FROM ledger_tree WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
                )
                .bind(i64::from(level - 1))
                .bind(int(have * 2))
                .bind(int(complete * 2))
                .fetch_all(&self.pool)
                .await?;
                let hashes = stored_hashes(&children, level - 1, have * 2)?;
                if hashes.len() as u64 != (complete - have) * 2 {
                    return Err(corrupt(
                        format!("level {}", level - 1),
                        "a stored subtree is missing",
                    ));
                }
                let rows: Vec<(Subtree, Hash)> = hashes
                    .chunks(2)
                    .zip(have..)
                    .map(|(pair, index)| {
                        (
                            Subtree { level, index },
                            merkle::node_hash(&pair[0], &pair[1]),
                        )
                    })
                    .collect();
                added += self.insert_tree_rows(&rows).await?;
            }
            below = complete;
            level += 1;
        }
        Ok(added)
    }

    async fn insert_tree_rows(&self, rows: &[(Subtree, Hash)]) -> Result<u64, StoreError> {
        for chunk in rows.chunks(ROWS_PER_WRITE) {
            let mut tx = self.begin().await?;
            for (subtree, hash) in chunk {
                tx.buffer_statement(
                    "INSERT INTO ledger_tree (level, idx, hash) VALUES ($1, $2, $3) ON CONFLICT (level, idx) DO NOTHING",
                    vec![
                        Arg::Int(i64::from(subtree.level)),
                        Arg::Int(int(subtree.index)),
                        Arg::Text(hex::encode(hash)),
                    ],
                );
            }
            tx.commit().await?;
        }
        Ok(rows.len() as u64)
    }

    /// The hash of each range of leaves (RFC 6962 `MTH`) within the first `size`
    /// events, from the stored tree (extended to `size` first) and the events: what
    /// proofs and roots are made of. Reads each needed stored subtree and each block of
    /// events once, however many ranges share them.
    pub async fn tree_hashes(
        &self,
        ranges: &[Range<u64>],
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.extend_tree(size).await?;
        self.hashes_from_stored(ranges, size).await
    }

    /// `tree_hashes`, the stored tree already extended to `size`.
    async fn hashes_from_stored(
        &self,
        ranges: &[Range<u64>],
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        if ranges
            .iter()
            .any(|range| range.end > size || range.start >= range.end)
        {
            return Err(corrupt(size, "a range outside the tree was asked for"));
        }
        let pieces: Vec<Vec<Subtree>> = ranges.iter().cloned().map(merkle::pieces).collect();
        let mut known: HashMap<Subtree, Hash> = HashMap::new();
        let stored: Vec<Subtree> = pieces
            .iter()
            .flatten()
            .filter(|piece| piece.level >= STORED_LEVEL)
            .copied()
            .collect();
        known.extend(self.stored_subtrees(&stored).await?);
        let mut blocks: HashMap<u64, Vec<Hash>> = HashMap::new();
        for piece in pieces.iter().flatten().filter(|p| p.level < STORED_LEVEL) {
            let leaves = piece.leaves();
            let block = leaves.start / BLOCK;
            if let std::collections::hash_map::Entry::Vacant(entry) = blocks.entry(block) {
                let start = block * BLOCK;
                entry.insert(self.leaf_hashes(start..(start + BLOCK).min(size)).await?);
            }
            let offset = usize::try_from(leaves.start % BLOCK).unwrap_or(0);
            let width = 1usize << piece.level;
            let block_leaves = blocks.get(&block).map(Vec::as_slice).unwrap_or_default();
            let slice = block_leaves
                .get(offset..offset + width)
                .ok_or_else(|| corrupt(leaves.start + 1, "the event is missing"))?;
            known.insert(*piece, merkle::root_of(slice));
        }
        pieces
            .iter()
            .map(|parts| {
                let hashes: Vec<Hash> = parts
                    .iter()
                    .map(|part| {
                        known.get(part).copied().ok_or_else(|| {
                            corrupt(
                                format!("level {} index {}", part.level, part.index),
                                "a stored subtree is missing",
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
                merkle::fold_pieces(&hashes).ok_or_else(|| corrupt(size, "an empty range"))
            })
            .collect()
    }

    async fn stored_subtrees(
        &self,
        subtrees: &[Subtree],
    ) -> Result<HashMap<Subtree, Hash>, StoreError> {
        let mut found = HashMap::new();
        let mut wanted: Vec<Subtree> = subtrees.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        for chunk in wanted.chunks(200) {
            let clauses: Vec<String> = (0..chunk.len())
                .map(|i| format!("(level = ${} AND idx = ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "SELECT level, idx, hash FROM ledger_tree WHERE {}",
                clauses.join(" OR ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for subtree in chunk {
                query = query
                    .bind(i64::from(subtree.level))
                    .bind(int(subtree.index));
            }
            for row in query.fetch_all(&self.pool).await? {
                let level: i64 = row.try_get("level")?;
                let index: i64 = row.try_get("idx")?;
                let hash: String = row.try_get("hash")?;
                let subtree = Subtree {
                    level: u8::try_from(level).map_err(|_| corrupt(level, "not a level"))?,
                    index: u64::try_from(index).map_err(|_| corrupt(index, "not an index"))?,
                };
                let hash = merkle::parse_hash(&hash)
                    .ok_or_else(|| corrupt(format!("level {level} index {index}"), "not a hash"))?;
                found.insert(subtree, hash);
            }
        }
        Ok(found)
    }

    /// The root of the tree of the first `size` events.
    pub async fn tree_root(&self, size: u64) -> Result<Hash, StoreError> {
        if size == 0 {
            return Ok(merkle::EMPTY_ROOT);
        }
        let mut hashes = self
            .tree_hashes(std::slice::from_ref(&(0..size)), size)
            .await?;
        hashes.pop().ok_or_else(|| corrupt(size, "no root"))
    }

    /// The roots of the trees of the first `sizes[i]` events, the stored tree extended
    /// once: checking many tree heads costs a read or two each.
    pub async fn tree_roots(&self, sizes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        let largest = sizes.iter().copied().max().unwrap_or(0);
        self.extend_tree(largest).await?;
        let mut roots = Vec::with_capacity(sizes.len());
        for &size in sizes {
            if size == 0 {
                roots.push(merkle::EMPTY_ROOT);
                continue;
            }
            let mut hashes = self
                .hashes_from_stored(std::slice::from_ref(&(0..size)), size)
                .await?;
            roots.push(hashes.pop().ok_or_else(|| corrupt(size, "no root"))?);
        }
        Ok(roots)
    }

    /// The inclusion proof of event `seq` in the tree of the first `size` events.
    pub async fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        if seq == 0 || seq > size {
            return Err(corrupt(
                seq,
                format!("the event is not in a tree of {size}"),
            ));
        }
        self.tree_hashes(&merkle::inclusion_path(seq - 1, size), size)
            .await
    }

    /// The proof that the tree of the first `new` events extends the tree of the first
    /// `old`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        self.tree_hashes(&merkle::consistency_path(old, new), new)
            .await
    }

    /// Recomputes the stored tree from the events up to `size` and names the first
    /// stored subtree that differs: for `writ audit verify`, since proofs trust it.
    pub async fn check_stored_tree(&self, size: u64) -> Result<u64, StoreError> {
        let blocks = self.stored_count(STORED_LEVEL).await?.min(size / BLOCK);
        let mut checked = 0u64;
        let mut level_hashes: Vec<Hash> = Vec::new();
        let mut next = 0u64;
        while next < blocks {
            let end = (next + BLOCKS_PER_READ).min(blocks);
            let leaves = self.leaf_hashes(next * BLOCK..end * BLOCK).await?;
            level_hashes.extend(leaves.chunks(BLOCK as usize).map(merkle::root_of));
            next = end;
        }
        let mut level = STORED_LEVEL;
        while !level_hashes.is_empty() {
            let rows = sqlx::query(
                "SELECT idx, hash FROM ledger_tree WHERE level = $1 AND idx < $2 ORDER BY idx",
            )
            .bind(i64::from(level))
            .bind(int(level_hashes.len() as u64))
            .fetch_all(&self.pool)
            .await?;
            let stored = stored_hashes(&rows, level, 0)?;
            for (index, (expected, found)) in level_hashes.iter().zip(&stored).enumerate() {
                if expected != found {
                    return Err(corrupt(
                        format!("level {level} index {index}"),
                        "the stored subtree is not the hash of its events",
                    ));
                }
                checked += 1;
            }
            level_hashes = level_hashes
                .chunks_exact(2)
                .map(|pair| merkle::node_hash(&pair[0], &pair[1]))
                .collect();
            level += 1;
        }
        Ok(checked)
    }
}

/// Stored rows of one level, in order from `first`, as hashes. A gap is an error.
fn stored_hashes(
    rows: &[sqlx::any::AnyRow],
    level: u8,
    first: u64,
) -> Result<Vec<Hash>, StoreError> {
    rows.iter()
        .zip(first..)
        .map(|(row, expected)| {
            let index: i64 = row.try_get("idx")?;
            let id = || format!("level {level} index {expected}");
            if index != int(expected) {
                return Err(corrupt(id(), "a stored subtree is missing"));
            }
            let hash: String = row.try_get("hash")?;
            merkle::parse_hash(&hash).ok_or_else(|| corrupt(id(), "not a hash"))
        })
        .collect()
}
