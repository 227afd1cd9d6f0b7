//! People and groups pushed over SCIM: their rows, read whole (the engine keeps them in
//! memory) and written with their ledger events.

use writ_domain::{DirectoryGroup, DirectoryId, DirectoryUser};

use crate::write::{Arg, doc};
use crate::{Store, StoreError, WriteTx, decode_doc_text};

impl Store {
    pub async fn directory_users(&self) -> Result<Vec<DirectoryUser>, StoreError> {
        self.directory_docs(
            "directory user",
            "SELECT id, doc FROM directory_users ORDER BY id",
        )
        .await
    }

    pub async fn directory_groups(&self) -> Result<Vec<DirectoryGroup>, StoreError> {
        self.directory_docs(
            "directory group",
            "SELECT id, doc FROM directory_groups ORDER BY id",
        )
        .await
    }

    /// Whether the ledger holds a directory change after event `seq` (a range read on
    /// the primary key: cheap when `seq` is recent).
    pub async fn directory_changed_after(&self, seq: i64) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM events WHERE seq > $1 AND kind LIKE 'directory.%' LIMIT 1) AS found",
        )
        .bind(seq)
        .fetch_one(&self.pool)
        .await?;
        Ok(sqlx::Row::try_get::<i64, _>(&row, "n")? > 0)
    }

    async fn directory_docs<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        sql: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let id: &str = row.try_get("id")?;
                let doc: &str = row.try_get("doc")?;
                decode_doc_text(what, id, doc)
            })
            .collect()
    }
}

impl WriteTx<'_> {
    pub async fn insert_directory_user(&mut self, user: &DirectoryUser) -> Result<(), StoreError> {
        self.buffer_statement(
            "INSERT INTO directory_users (id, user_name, user_name_key, doc) VALUES ($1, $2, $3, $4)",
            vec![
                Arg::Text(user.id.to_string()),
                Arg::Text(user.user_name.to_string()),
                Arg::Text(user.user_name.as_str().to_lowercase()),
                Arg::Text(doc(user)?),
            ],
        );
        Ok(())
    }

    pub async fn update_directory_user(&mut self, user: &DirectoryUser) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE directory_users SET user_name = $2, user_name_key = $3, doc = $4 WHERE id = $1",
            vec![
                Arg::Text(user.id.to_string()),
                Arg::Text(user.user_name.to_string()),
                Arg::Text(user.user_name.as_str().to_lowercase()),
                Arg::Text(doc(user)?),
            ],
        );
        Ok(())
    }

    pub async fn delete_directory_user(&mut self, id: DirectoryId) -> Result<(), StoreError> {
        self.buffer_statement(
            "DELETE FROM directory_users WHERE id = $1",
            vec![Arg::Text(id.to_string())],
        );
        Ok(())
    }

    pub async fn insert_directory_group(
        &mut self,
        group: &DirectoryGroup,
    ) -> Result<(), StoreError> {
        self.buffer_statement(
            "INSERT INTO directory_groups (id, display_name, display_name_key, doc) VALUES ($1, $2, $3, $4)",
            vec![
                Arg::Text(group.id.to_string()),
                Arg::OptionalText(group.display_name.clone()),
                Arg::OptionalText(group.display_name.as_ref().map(|n| n.to_lowercase())),
                Arg::Text(doc(group)?),
            ],
        );
        Ok(())
    }

    pub async fn update_directory_group(
        &mut self,
        group: &DirectoryGroup,
    ) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE directory_groups SET display_name = $2, display_name_key = $3, doc = $4 WHERE id = $1",
            vec![
                Arg::Text(group.id.to_string()),
                Arg::OptionalText(group.display_name.clone()),
                Arg::OptionalText(group.display_name.as_ref().map(|n| n.to_lowercase())),
                Arg::Text(doc(group)?),
            ],
        );
        Ok(())
    }

    pub async fn delete_directory_group(&mut self, id: DirectoryId) -> Result<(), StoreError> {
        self.buffer_statement(
            "DELETE FROM directory_groups WHERE id = $1",
            vec![Arg::Text(id.to_string())],
        );
        Ok(())
    }
}
