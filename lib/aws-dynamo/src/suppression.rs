//! `SuppressionList` on DynamoDB: one item per address, put only if absent (the first entry
//! stays), read strongly consistent.

use async_trait::async_trait;
use jiff::Timestamp;
use landing_core::domain::{AddressSuppression, Email, SuppressedAddress};
use landing_core::ports::{StoreError, SuppressionList};
use landing_core::time;

use crate::DynamoStore;
use crate::errors::{is_condition_failed, unavailable};
use crate::items::s;

#[async_trait]
impl SuppressionList for DynamoStore {
    async fn suppress_address(
        &self,
        email: &Email,
        reason: AddressSuppression,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.suppression)
            .item("email", s(email.match_key()))
            .item("reason", s(reason.as_str()))
            .item("suppressed_at", s(time::format(at)))
            .condition_expression("attribute_not_exists(email)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn address_suppression(
        &self,
        email: &Email,
    ) -> Result<Option<SuppressedAddress>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.suppression)
            .key("email", s(email.match_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let text = |name: &'static str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .ok_or_else(|| StoreError::corrupt(name, "missing or not a string"))
        };
        Ok(Some(SuppressedAddress {
            email: email.clone(),
            reason: text("reason")?
                .parse()
                .map_err(|e| StoreError::corrupt("reason", e))?,
            at: time::parse(text("suppressed_at")?)
                .map_err(|e| StoreError::corrupt("suppressed_at", e))?,
        }))
    }
}
