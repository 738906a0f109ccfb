//! `TokenStore` on DynamoDB: one item (`id = "amocrm"`), replaced by a conditional put that
//! compares the stored refresh token (compare-and-swap).

use async_trait::async_trait;
use landing_core::ports::{StoreError, TokenPair, TokenStore};
use landing_core::time;
use secrecy::{ExposeSecret, SecretString};

use crate::DynamoStore;
use crate::errors::{is_condition_failed, unavailable};
use crate::items::{self, TOKEN_ID, TokenItem, s};

#[async_trait]
impl TokenStore for DynamoStore {
    async fn load(&self) -> Result<Option<TokenPair>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.tokens)
            .key("id", s(TOKEN_ID))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let t = items::token_from_item(item)?;
        Ok(Some(TokenPair {
            expires_at: items::token_expires_at(&t)?,
            access_token: SecretString::from(t.access_token),
            refresh_token: SecretString::from(t.refresh_token),
        }))
    }

    async fn replace(
        &self,
        expected_refresh: Option<&str>,
        new: &TokenPair,
    ) -> Result<bool, StoreError> {
        let item = items::token_to_item(&TokenItem {
            id: TOKEN_ID.to_owned(),
            access_token: new.access_token.expose_secret().to_owned(),
            refresh_token: new.refresh_token.expose_secret().to_owned(),
            expires_at: time::format(new.expires_at),
            updated_at: time::format(jiff::Timestamp::now()),
        })?;
        let req = self
            .client
            .put_item()
            .table_name(&self.tables.tokens)
            .set_item(Some(item));
        let req = match expected_refresh {
            None => req.condition_expression("attribute_not_exists(id)"),
            // An absent item fails this condition too: there is nothing to replace.
            Some(old) => req
                .condition_expression("refresh_token = :expected")
                .expression_attribute_values(":expected", s(old)),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}
