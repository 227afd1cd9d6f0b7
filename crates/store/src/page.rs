//! Keyset paging for lists: a page ends with a cursor naming the sort key of its last
//! row, and the next page starts strictly after it. Rows written meanwhile never shift a
//! page, and no row is skipped or repeated (sort keys end with the unique id).

/// Where a page of a list ended: the sort key of its last row. Sent to clients as text
/// they pass back unchanged (`next`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    /// The row's time column (requests, findings), when the list is ordered by one.
    at_us: Option<i64>,
    id: String,
}

/// One page of a list, newest first, and where the next one starts (`None`: this was
/// the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<PageCursor>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// How a list is ordered: newest first by a time column then the id, or by the id
/// alone (UUIDv7 ids are time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    TimeThenId(&'static str),
    Id,
}

/// A cursor of a list ordered by time then id: `<micros>.<id>`.
pub const TIMED_CURSOR_PATTERN: &str = "^-?[0-9]{1,18}\\.[0-9a-fA-F-]{1,64}$";
/// A cursor of a list ordered by id.
pub const ID_CURSOR_PATTERN: &str = "^[0-9a-fA-F-]{1,64}$";

/// A value bound to a placeholder of a keyset condition.
pub(crate) enum Bind {
    Int(i64),
    Text(String),
}

impl PageCursor {
    /// The cursor's text: `<micros>.<id>`, or `<id>` for lists ordered by id.
    pub fn to_text(&self) -> String {
        match self.at_us {
            Some(at) => format!("{at}.{}", self.id),
            None => self.id.clone(),
        }
    }

    /// Reads a cursor for a list ordered by `key`; `None` if it is not one (made up, or
    /// from another list). Exactly the texts `key.cursor_pattern()` describes.
    pub fn parse(text: &str, key: SortKey) -> Option<Self> {
        let id_like = |id: &str| {
            !id.is_empty()
                && id.len() <= 64
                && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        };
        match key {
            SortKey::TimeThenId(_) => {
                let (at, id) = text.split_once('.')?;
                let digits = at.strip_prefix('-').unwrap_or(at);
                let number =
                    (1..=18).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
                Some(Self {
                    at_us: Some(at.parse().ok().filter(|_| number)?),
                    id: id_like(id).then(|| id.to_string())?,
                })
            }
            SortKey::Id => id_like(text).then(|| Self {
                at_us: None,
                id: text.to_string(),
            }),
        }
    }

    pub(crate) fn new(at_us: Option<i64>, id: String) -> Self {
        Self { at_us, id }
    }

    /// ` AND (<condition>)` (`WHERE` when `clause` is empty) selecting the rows after
    /// this cursor in `key`'s order, with placeholders numbered from `first`; the values
    /// to bind to them, in order.
    pub(crate) fn after_clause(
        &self,
        clause: &mut String,
        first: usize,
        key: SortKey,
    ) -> Vec<Bind> {
        let joiner = if clause.is_empty() { "WHERE" } else { " AND" };
        match (key, self.at_us) {
            (SortKey::TimeThenId(column), Some(at)) => {
                clause.push_str(&format!(
                    "{joiner} ({column} < ${first} OR ({column} = ${} AND id < ${}))",
                    first + 1,
                    first + 2
                ));
                vec![Bind::Int(at), Bind::Int(at), Bind::Text(self.id.clone())]
            }
            _ => {
                clause.push_str(&format!("{joiner} id < ${first}"));
                vec![Bind::Text(self.id.clone())]
            }
        }
    }
}

impl SortKey {
    /// The cursors of a list in this order, as a regular expression (for API documents).
    pub fn cursor_pattern(self) -> &'static str {
        match self {
            Self::TimeThenId(_) => TIMED_CURSOR_PATTERN,
            Self::Id => ID_CURSOR_PATTERN,
        }
    }

    /// `ORDER BY` for this key, newest first.
    pub(crate) fn order(self) -> String {
        match self {
            Self::TimeThenId(column) => format!("{column} DESC, id DESC"),
            Self::Id => "id DESC".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_refuse_what_they_are_not() {
        let timed = PageCursor::new(Some(1_795_000_000_123_456), "0193a5c2-7d1e".into());
        let key = SortKey::TimeThenId("created_at_us");
        assert_eq!(PageCursor::parse(&timed.to_text(), key), Some(timed));
        let plain = PageCursor::new(None, "0193a5c2-7d1e".into());
        assert_eq!(
            PageCursor::parse(&plain.to_text(), SortKey::Id),
            Some(plain.clone())
        );
        for bad in [
            "",
            "x",
            "12.",
            ".abc",
            "12.ab'c",
            "1e3.abc",
            "+12.abc",
            "1234567890123456789.ab",
        ] {
            assert_eq!(PageCursor::parse(bad, key), None, "{bad:?}");
        }
        assert_eq!(
            PageCursor::parse("12.abc", SortKey::Id),
            None,
            "a cursor of another list"
        );
        assert_eq!(PageCursor::parse("abc'; --", SortKey::Id), None);
    }

    #[test]
    fn the_condition_continues_after_the_cursor() {
        let mut clause = "WHERE state = $1".to_string();
        let binds = PageCursor::new(Some(5), "ab".into()).after_clause(
            &mut clause,
            2,
            SortKey::TimeThenId("created_at_us"),
        );
        assert_eq!(
            clause,
            "WHERE state = $1 AND (created_at_us < $2 OR (created_at_us = $3 AND id < $4))"
        );
        assert_eq!(binds.len(), 3);
        let mut clause = String::new();
        PageCursor::new(None, "ab".into()).after_clause(&mut clause, 1, SortKey::Id);
        assert_eq!(clause, "WHERE id < $1");
    }
}
